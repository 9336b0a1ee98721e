"""The Python client against `raas local` over HTTP, and the client checked against the served OpenAPI document.

The drift check fails when the client and `GET /v1/openapi.json` disagree: an operation the client
calls that the document does not have (method and path), a query parameter, request field or
`Idempotency-Key` the route does not take, an answer field the document does not promise (or a
required one the client's model lacks), and any operation of the document that the client does not
cover and `NOT_IN_SDK` does not explain. Routes in `PENDING_ROUTES` (added in parallel) are checked
the same way as soon as the server serves them; until then they are only reported."""

from __future__ import annotations

import copy
import types
import typing
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from raas_client import AsyncClient, Client, DeltaEvent, DoneEvent, RetrievalEvent, errors
from raas_client import models as m
from raas_client.operations import NOT_IN_SDK, OPERATIONS, PENDING_QUERY_PARAMETERS, PENDING_ROUTES, Operation
from tests.conftest import TenantHandle
from tests.e2e.conftest import LocalServer
from tests.helpers import run_coroutine

pytestmark = pytest.mark.e2e

HTTP_METHODS = {"get", "post", "put", "patch", "delete"}


# --- the drift check -------------------------------------------------------------------------------


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """Follows `$ref`, and the non-null branch of `anyOf: [X, null]`."""
    while True:
        if "$ref" in schema:
            schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
        elif "anyOf" in schema:
            branches = [b for b in schema["anyOf"] if b.get("type") != "null"]
            if len(branches) != 1:
                return schema
            schema = branches[0]
        else:
            return schema


def _nested_models(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models inside an annotation (X, X | None, list[X], dict[str, X])."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is not None:
        return [model for arg in typing.get_args(annotation) for model in _nested_models(arg)]
    return []


def _compare_model(spec: dict[str, Any], model: type[BaseModel], schema: dict[str, Any], where: str, *, request: bool) -> list[str]:
    schema = _resolve(spec, schema)
    properties = schema.get("properties")
    if model is m.Loose or properties is None:
        return []
    problems = []
    fields = {field.alias or name: field for name, field in model.model_fields.items()}  # the names on the wire
    for name, field in fields.items():
        if name not in properties:
            problems.append(f"{where}: the client's {model.__name__}.{name} is not a field of the document's schema")
            continue
        for nested in _nested_models(field.annotation):
            sub = _resolve(spec, properties[name])
            if sub.get("type") == "array":
                sub = _resolve(spec, sub.get("items", {}))
            problems += _compare_model(spec, nested, sub, f"{where}.{name}", request=request)
    for name in schema.get("required", []):
        if name not in fields:
            side = "cannot send" if request else "does not read"
            problems.append(f"{where}: the document requires {name!r}, which the client's {model.__name__} {side}")
    return problems


def _json_schema(operation_spec: dict[str, Any], statuses: str = "2") -> tuple[str | None, dict[str, Any] | None]:
    for status, response in sorted(operation_spec.get("responses", {}).items()):
        if status.startswith(statuses):
            content = response.get("content", {}).get("application/json")
            return status, content.get("schema") if content else None
    return None, None


def operation_problems(spec: dict[str, Any], name: str, op: Operation) -> list[str]:
    where = f"{name} ({op.method} {op.path})"
    operation_spec = spec["paths"].get(op.path, {}).get(op.method.lower())
    if operation_spec is None:
        return [f"{where}: not in the document"]
    problems = []
    parameters = operation_spec.get("parameters", [])
    served_query = {p["name"] for p in parameters if p["in"] == "query"}
    pending = PENDING_QUERY_PARAMETERS.get((op.method, op.path), frozenset()) - served_query
    for query in sorted(set(op.query) - served_query - pending):
        problems.append(f"{where}: the client sends query parameter {query!r}, the document has {sorted(served_query)}")
    for query in sorted(served_query - set(op.query)):
        problems.append(f"{where}: the document's query parameter {query!r} is not offered by the client")
    served_path = {p["name"] for p in parameters if p["in"] == "path"}
    wanted_path = {part[1:-1] for part in op.path.split("/") if part.startswith("{")}
    if served_path != wanted_path:
        problems.append(f"{where}: path parameters {sorted(wanted_path)} vs the document's {sorted(served_path)}")
    takes_key = any(p["in"] == "header" and p["name"].lower() == "idempotency-key" for p in parameters)
    if takes_key != op.idempotency_key:
        problems.append(f"{where}: Idempotency-Key is {'' if takes_key else 'not '}accepted by the route, the client says otherwise")
    body = operation_spec.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
    if op.body is not None:
        if body is None:
            problems.append(f"{where}: the client sends a {op.body.__name__} body, the route takes none")
        else:
            problems += _compare_model(spec, op.body, body, f"{where} request", request=True)
    elif body is not None and operation_spec["requestBody"].get("required"):
        problems.append(f"{where}: the route requires a body the client does not send")
    status, answer = _json_schema(operation_spec)
    if op.response is None:
        if status != "204":
            problems.append(f"{where}: the client expects 204 without a body, the document answers {status}")
        return problems
    if answer is None or status == "204":
        return [*problems, f"{where}: the client reads a {op.response.__name__}, the document answers {status} without JSON"]
    if op.items is not None:
        page = _resolve(spec, answer)
        listed = page.get("properties", {}).get(op.items)
        if listed is None or _resolve(spec, listed).get("type") != "array":
            return [*problems, f"{where}: the answer has no {op.items!r} list"]
        if op.paginated and "next_cursor" not in page.get("properties", {}):
            problems.append(f"{where}: the answer has no next_cursor")
        answer = _resolve(spec, listed).get("items", {})
    return problems + _compare_model(spec, op.response, answer, f"{where} answer", request=False)


def spec_operations(spec: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in spec["paths"].items() for method in item if method in HTTP_METHODS}


def drift(spec: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(problems, pending routes or query parameters the server does not serve yet)."""
    served = spec_operations(spec)
    problems, pending = [], []
    for name, op in OPERATIONS.items():
        route = (op.method, op.path)
        if route in PENDING_ROUTES and route not in served:
            pending.append(f"{op.method} {op.path}")
            continue
        problems += operation_problems(spec, name, op)
    for route, parameters in PENDING_QUERY_PARAMETERS.items():
        operation_spec = spec["paths"].get(route[1], {}).get(route[0].lower(), {})
        served_query = {p["name"] for p in operation_spec.get("parameters", []) if p["in"] == "query"}
        pending += [f"{route[0]} {route[1]}?{name}=" for name in sorted(parameters - served_query)]
    covered = {(op.method, op.path) for op in OPERATIONS.values()}
    for method, path in sorted(served - covered - set(NOT_IN_SDK)):
        problems.append(f"{method} {path}: in the document but neither in the client (operations.OPERATIONS) nor in NOT_IN_SDK")
    for method, path in sorted(set(NOT_IN_SDK) - served):
        problems.append(f"{method} {path}: listed in NOT_IN_SDK but not in the document any more")
    return problems, pending


@pytest.fixture(scope="module")
def spec(local_server: LocalServer) -> dict[str, Any]:
    document: dict[str, Any] = httpx.get(f"{local_server.url}/v1/openapi.json", timeout=30).json()
    return document


def test_the_client_and_the_served_openapi_document_agree(spec: dict[str, Any]) -> None:
    problems, pending = drift(spec)
    assert not problems, "the client and /v1/openapi.json disagree:\n" + "\n".join(problems)
    if pending:
        warnings.warn(f"not served yet (operations.PENDING_*): {', '.join(pending)}", UserWarning, stacklevel=1)


def test_the_drift_check_catches_each_kind_of_disagreement(spec: dict[str, Any]) -> None:
    """The check itself, on altered copies of the served document: each change must be reported."""

    def problems_after(change: Any) -> list[str]:
        altered = copy.deepcopy(spec)
        change(altered)
        return drift(altered)[0]

    schemas = lambda s: s["components"]["schemas"]  # noqa: E731
    assert any(
        "Tenant.suspension_reasons" in p for p in problems_after(lambda s: schemas(s)["Tenant"]["properties"].pop("suspension_reasons"))
    )
    assert any("requires 'brand_new'" in p for p in problems_after(lambda s: schemas(s)["Document"]["required"].append("brand_new")))
    assert any("CreateKeyRequest.role" in p for p in problems_after(lambda s: schemas(s)["CreateKeyRequest"]["properties"].pop("role")))
    assert any("not in the document" in p for p in problems_after(lambda s: s["paths"].pop("/v1/feedback/summary")))
    assert any("Idempotency-Key" in p for p in problems_after(lambda s: s["paths"]["/v1/search"]["post"]["parameters"].clear()))
    assert any(
        "neither in the client" in p
        for p in problems_after(lambda s: s["paths"].setdefault("/v1/brand-new", {}).update({"get": {"responses": {}}}))
    )
    new_query = {"name": "sort", "in": "query", "schema": {"type": "string"}}
    assert any(
        "'sort' is not offered" in p for p in problems_after(lambda s: s["paths"]["/v1/documents"]["get"]["parameters"].append(new_query))
    )
    nested = lambda s: schemas(s)["Citation"]["properties"].pop("snippet")  # noqa: E731  # reached through QueryResponse.citations
    assert any("Citation.snippet" in p for p in problems_after(nested))


# --- the client against raas local -----------------------------------------------------------------


@pytest.fixture(scope="module")
def operator(local_server: LocalServer) -> Iterator[Client]:
    with Client(local_server.url, local_server.operator_key) as client:  # closed: no idle connection holds up the server's drain
        yield client


@pytest.fixture(scope="module")
def tenant(operator: Client) -> TenantHandle:
    created = operator.tenants.create("SDK tenant", "enterprise")
    keys = operator.with_api_key(created.api_key).keys.list()
    return TenantHandle(created.tenant.tenant_id, created.api_key, keys[0].key_id, "enterprise")


def test_operator_and_tenant_round_trip(operator: Client, tenant: TenantHandle, tmp_path: Path) -> None:
    raas = operator.with_api_key(tenant.admin_key)
    # tenants: created active locally; every page of the list is walked
    assert operator.tenants.get(tenant.tenant_id).status == "active"
    for n in range(2):
        operator.tenants.create(f"filler {n}", "free")
    listed = [t.tenant_id for t in operator.tenants.list(page_size=1)]
    assert tenant.tenant_id in listed
    assert len(listed) == len(set(listed)) >= 3
    # config: merge update, versions, rollback
    raas.config.update(top_k=4)
    view = raas.config.update(temperature=0.2, chunking={"size": 300})
    assert (view.config.temperature, view.config.chunking["size"]) == (0.2, 300)
    with pytest.raises(errors.VersionConflictError):
        raas.config.update(top_k=3, if_match=view.version - 1)
    assert [v.version for v in raas.config.versions(page_size=1)][:2] == [view.version, view.version - 1]
    assert raas.config.rollback(0).config.temperature == 0.7
    # documents: inline, then a file through the upload helper (presigned PUT with progress, wait for indexed)
    accepted = raas.documents.create("Shipping", text="We ship worldwide within five business days.", metadata={"dept": "ops"})
    path = tmp_path / "refunds.md"
    path.write_text("# Refund policy\n\nCustomers may request a refund within 30 days of purchase.\n")
    progress: list[tuple[int, int]] = []
    uploaded = raas.documents.upload(path, metadata={"dept": "support"}, progress=lambda sent, total: progress.append((sent, total)))
    assert (uploaded.status, uploaded.filename, uploaded.metadata["dept"]) == ("indexed", "refunds.md", "support")
    assert progress[-1] == (path.stat().st_size, path.stat().st_size)
    assert raas.documents.wait_indexed(accepted.document_id).status == "indexed"
    assert {d.document_id for d in raas.documents.list(page_size=1)} == {accepted.document_id, uploaded.document_id}
    # answers: JSON, streamed, search, history, feedback
    answer = raas.query("How long do customers have to request a refund?")
    assert "30 days" in answer.answer
    assert answer.citations[0].document_id == uploaded.document_id
    events = list(raas.ask_stream("When can customers request a refund?"))
    assert isinstance(events[0], RetrievalEvent)
    assert isinstance(events[-1], DoneEvent)
    assert "30 days" in "".join(e.text for e in events if isinstance(e, DeltaEvent))
    assert raas.search("shipping", filters={"dept": "ops"}).results[0].document_id == accepted.document_id
    assert [q.query_id for q in raas.queries(page_size=1)][:2] == [events[-1].query_id, answer.query_id]
    assert raas.feedback.give(answer.query_id, "up", "clear").rating == "up"
    assert [f.query_id for f in raas.feedback.list(rating="up")] == [answer.query_id]
    assert raas.feedback.summary().versions[0].up == 1
    # conversations: a streamed follow-up and the messages iterator
    conversation = raas.conversations.create("support")
    first = raas.conversations.ask(conversation.conversation_id, "What is the refund policy?")
    assert first.answer.citations
    streamed = list(raas.conversations.ask_stream(conversation.conversation_id, "and the second one?"))
    done = streamed[-1]
    assert isinstance(done, DoneEvent)
    assert done.conversation_id == conversation.conversation_id
    messages = list(raas.conversations.messages(conversation.conversation_id, page_size=1))
    assert [msg.role for msg in messages] == ["user", "assistant", "user", "assistant"]
    assert [c.conversation_id for c in raas.conversations.list()] == [conversation.conversation_id]
    # usage, audit, keys, errors
    assert raas.usage.get().queries >= 3
    assert any(e.action.startswith("config") for e in raas.audit.list(page_size=2))
    reader = raas.keys.create("ci", "reader")
    with pytest.raises(errors.InsufficientRoleError) as caught:
        raas.with_api_key(reader.api_key).keys.list()
    assert caught.value.status == 403
    assert caught.value.request_id
    raas.keys.revoke(reader.key.key_id)
    with pytest.raises(errors.UnauthorizedError):
        raas.with_api_key(reader.api_key).config.get()
    with pytest.raises(errors.DocumentNotFoundError):
        raas.documents.get("d_missing")
    with pytest.raises(errors.TenantKeyRequiredError):
        operator.config.get()
    assert any(u.tenant_id == tenant.tenant_id for u in operator.usage.operator())
    assert operator.pricing.estimate("smb", queries=15000).total_cents > 0


def test_identity_daily_usage_schema_chunks_timeline_and_tier_preview(operator: Client, tenant: TenantHandle) -> None:
    raas = operator.with_api_key(tenant.admin_key)
    me = raas.me()
    assert (me.role, me.tenant_id, me.key_id) == ("admin", tenant.tenant_id, tenant.admin_key_id)
    assert operator.me().role == "operator"
    daily = raas.usage.daily()
    assert daily.period == raas.usage.get().period
    assert sum(day.api_calls for day in daily.days) >= 1
    schema = raas.config.schema()
    assert schema.tier == "enterprise"
    assert "temperature" in schema.json_schema["properties"]
    version = raas.config.get().version
    checked = raas.config.validate({"top_k": 3})
    assert checked.valid
    assert checked.config.top_k == 3
    assert raas.config.get().version == version  # validating saves nothing
    document = raas.documents.create("Chunks", text="First paragraph about refunds.\n\nSecond paragraph about shipping.")
    raas.documents.wait_indexed(document.document_id)
    chunks = list(raas.documents.chunks(document.document_id, page_size=1))
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    assert "refunds" in chunks[0].text
    assert operator.tenants.timeline(tenant.tenant_id)[0].kind
    preview = operator.tenants.tier_preview(tenant.tenant_id, "free")
    assert preview.tier == "free"
    assert operator.tenants.get(tenant.tenant_id).tier == "enterprise"  # a preview changes nothing
    assert [t.tenant_id for t in operator.tenants.list(status="active", tier="enterprise", q="SDK tenant")] == [tenant.tenant_id]


def test_the_async_client_against_raas_local(local_server: LocalServer, operator: Client) -> None:
    # its own tenant and document: xdist may run this test in another worker (another server) than the others
    created = operator.tenants.create("SDK async tenant", "enterprise")
    refunds = operator.with_api_key(created.api_key).documents.create("Refunds", text="Customers may request a refund within 30 days.")
    assert operator.with_api_key(created.api_key).documents.wait_indexed(refunds.document_id).status == "indexed"

    async def run() -> tuple[str, list[str], int]:
        async with AsyncClient(local_server.url, created.api_key) as raas:
            answer = await raas.query("How long do customers have to request a refund?")
            kinds: list[str] = [event.event async for event in raas.ask_stream("refund window?")]
            documents = [d async for d in raas.documents.list(page_size=1)]
            return answer.answer, kinds, len(documents)

    answer, kinds, documents = run_coroutine(run())
    assert "30 days" in answer
    assert kinds[0] == "retrieval"
    assert kinds[-1] == "done"
    assert "delta" in kinds
    assert documents == 1
