"""The isolation harness: every route of the app, called with tenant B's keys on tenant A's resources.

Routes come from the router itself, and request bodies are built from each route's own
OpenAPI schema, so a route added later is covered without editing this file. A route with
path parameters must answer 403/404 to B; a route without them acts on B's own data and
must not reveal anything of A. Afterwards A's state must be exactly as before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from raas.domain.usage import period_of
from raas.handlers.openapi import combined_app, openapi_document
from raas.handlers.registry import PUBLIC_ROUTES
from tests.conftest import OPERATOR_KEY, TenantHandle
from tests.helpers import ApiClient, expect

A_MARKER = "alpha-only-marker-5b1e"
# Words of A's document that B's probes search for; the marker above is in the same text.
A_DOCUMENT_WORDS = "zebrafish telemetry protocol"
A_DOCUMENT_TEXT = f"The {A_DOCUMENT_WORDS} is documented in {A_MARKER}."
# Body fields B fills with an attack rather than a filler value.
PROBES = {"query": A_DOCUMENT_WORDS}


@dataclass(frozen=True)
class RouteCall:
    method: str
    template: str
    path: str
    body: Any


def minimal_body(schema: dict[str, Any], components: dict[str, Any], probes: dict[str, Any] | None = None) -> Any:
    """The smallest instance that satisfies `schema` (required fields only); `probes` fill named fields."""
    probes = probes or {}
    if "$ref" in schema:
        return minimal_body(components[schema["$ref"].split("/")[-1]], components, probes)
    for combinator in ("anyOf", "oneOf", "allOf"):
        if combinator in schema:
            options = [s for s in schema[combinator] if s.get("type") != "null"] or schema[combinator]
            return minimal_body(options[0], components, probes)
    if "default" in schema:
        return schema["default"]
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties", {})
        return {name: probes.get(name, minimal_body(properties[name], components, probes)) for name in schema.get("required", [])}
    if kind == "array":
        return [minimal_body(schema.get("items", {}), components, probes) for _ in range(schema.get("minItems", 0))]
    if kind == "integer":
        return max(int(schema.get("minimum", 1)), 1)
    if kind == "number":
        return float(schema.get("minimum", 0.5))
    if kind == "boolean":
        return False
    return "x" * max(int(schema.get("minLength", 1)), 1)


# Path parameters that count per tenant (each tenant has its own config version 3), not ids of A: B naming one reads
# its own (or gets 404), and the answer must hold nothing of A. A month is not a secret either, but B has no invoice.
COUNTER_PARAMETERS = frozenset({"version"})
NOT_SECRET = COUNTER_PARAMETERS | {"period"}


def enumerate_calls(resources: dict[str, str]) -> list[RouteCall]:
    document = openapi_document()
    components = document.get("components", {}).get("schemas", {})
    calls = []
    app = combined_app()
    for route in app._static_routes + app._dynamic_routes:
        if (route.method, route.path) in PUBLIC_ROUTES:
            continue
        template = re.sub(r"<(\w+)>", r"{\1}", route.path)
        params = re.findall(r"<(\w+)>", route.path)
        # A parameter with no known resource of A still gets one of A's ids.
        defaults = {"period": period_of(datetime.now(UTC))}  # B has no invoice for this month either
        path = template.format(**{p: resources.get(p, defaults.get(p, resources["tenant_id"])) for p in params})
        operation = document["paths"].get(template, {}).get(route.method.lower(), {})
        schema = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
        calls.append(RouteCall(route.method, template, path, minimal_body(schema, components, PROBES) if schema else None))
    return calls


def snapshot(api: ApiClient, tenant: TenantHandle) -> dict[str, Any]:
    return {
        "tenant": expect(api.request("GET", f"/v1/tenants/{tenant.tenant_id}", key=OPERATOR_KEY), 200),
        "config": expect(api.request("GET", "/v1/config", key=tenant.admin_key), 200),
        "versions": expect(api.request("GET", "/v1/config/versions", key=tenant.admin_key), 200),
        # without last_used_at: A's own snapshot calls move it (at most once a minute), which a slow run shows
        "keys": [
            {k: v for k, v in key.items() if k != "last_used_at"}
            for key in expect(api.request("GET", "/v1/keys", key=tenant.admin_key), 200)["keys"]
        ],
        "documents": expect(api.request("GET", "/v1/documents", key=tenant.admin_key), 200),
        "search": expect(api.request("POST", "/v1/search", key=tenant.admin_key, json_body={"query": A_DOCUMENT_WORDS}), 200),
    }


def give_a_document(api: ApiClient, a: TenantHandle) -> str:
    """A's document with the marker in it; the caller waits until it is indexed."""
    reply = expect(api.request("POST", "/v1/documents", key=a.admin_key, json_body={"title": "A private", "text": A_DOCUMENT_TEXT}), 202)
    return str(reply["document_id"])


def run_isolation_harness(
    api: ApiClient, a: TenantHandle, b: TenantHandle, extra_resources: dict[str, str] | None = None
) -> list[RouteCall]:
    # Give A data that must never show up in B's answers.
    expect(
        api.request(
            "PATCH",
            "/v1/config",
            key=a.admin_key,
            json_body={"prompt_template": "For {org}: {query}", "prompt_variables": {"org": A_MARKER}},
        ),
        200,
    )
    a_reader = expect(api.request("POST", "/v1/keys", key=a.admin_key, json_body={"name": A_MARKER, "role": "reader"}), 201)
    b_reader = expect(api.request("POST", "/v1/keys", key=b.admin_key, json_body={"name": "b reader", "role": "reader"}), 201)["api_key"]
    before = snapshot(api, a)
    assert before["search"]["results"], "A's document must be indexed before the harness runs"
    # A's config version holding the marker: B asking for the same number reads its own version or nothing.
    a_version = before["config"]["version"]
    resources = {"tenant_id": a.tenant_id, "key_id": a_reader["key"]["key_id"], "version": str(a_version), **(extra_resources or {})}
    # A month and a version number are path parameters, not secrets: they show up in every timestamp and counter.
    secrets_of_a = {
        a.admin_key,
        a.admin_key_id,
        a_reader["api_key"],
        A_MARKER,
        *(v for k, v in resources.items() if k not in NOT_SECRET),
    }

    calls = enumerate_calls(resources)
    assert calls, "the harness found no routes"
    for call in calls:
        for key in (b.admin_key, b_reader):
            reply = api.request(call.method, call.path, key=key, json_body=call.body)
            where = f"{call.method} {call.path} as B"
            if set(re.findall(r"{(\w+)}", call.template)) - COUNTER_PARAMETERS:  # one of A's ids: never found
                assert reply.status in (403, 404), f"{where}: {reply.status} {reply.text}"
            else:
                assert reply.status < 500, f"{where}: {reply.status} {reply.text}"
            # Echoing the id the caller itself sent reveals nothing; anything else of A does.
            leaked = [s for s in secrets_of_a if s in reply.text and s not in call.path]
            assert not leaked, f"{where} leaked {leaked}: {reply.text}"

    assert snapshot(api, a) == before, "tenant A's state changed while B called every route"
    return calls
