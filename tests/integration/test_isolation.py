from __future__ import annotations

import pytest

from raas.bootstrap import services
from raas.domain.usage import period_of
from raas.handlers.registry import PUBLIC_ROUTES
from raas.local.events import QueuePump
from tests.conftest import TenantHandle
from tests.helpers import ApiClient, Reply, expect
from tests.isolation import A_MARKER, enumerate_calls, give_a_document, minimal_body, run_isolation_harness


def test_tenant_b_cannot_reach_tenant_a_through_any_route(
    api: ApiClient, tenant_a: TenantHandle, tenant_b: TenantHandle, ingest_queue: QueuePump
) -> None:
    document_id = give_a_document(api, tenant_a)
    ingest_queue.drain()
    period = give_an_invoice(tenant_a)
    calls = run_isolation_harness(api, tenant_a, tenant_b, {"document_id": document_id, "period": period})
    covered = {(c.method, c.template) for c in calls}
    # The harness must see what the router has, including routes with path parameters.
    assert {
        ("DELETE", "/v1/keys/{key_id}"),
        ("POST", "/v1/tenants/{tenant_id}/suspend"),
        ("PATCH", "/v1/config"),
        ("DELETE", "/v1/documents/{document_id}"),
        ("POST", "/v1/query"),
        ("POST", "/v1/search"),
        ("GET", "/v1/invoices/{period}"),
        ("DELETE", "/v1/tenants/{tenant_id}"),
        ("POST", "/v1/export"),
        ("GET", "/v1/audit"),
    } <= covered
    search_call = next(c for c in calls if c.template == "/v1/search")
    assert search_call.body == {"query": "zebrafish telemetry protocol"}  # B really hunts for A's words


def give_an_invoice(tenant: TenantHandle) -> str:
    """An invoice of A's for this month, which B must not be able to read."""
    profile = services().tenant_store.get_tenant(tenant.tenant_id)
    assert profile is not None
    period = period_of(profile.created_at)
    services().metering_service.invoice_for(profile, period)
    return period


def test_the_harness_catches_a_leak(api: ApiClient, tenant_a: TenantHandle, tenant_b: TenantHandle, ingest_queue: QueuePump) -> None:
    """A client that leaks A's marker into B's answers must make the harness fail."""

    class Leaky:
        def __init__(self, inner: ApiClient):
            self.inner = inner

        def request(self, method: str, path: str, **kwargs: object) -> Reply:
            reply = self.inner.request(method, path, **kwargs)  # type: ignore[arg-type]
            if kwargs.get("key") == tenant_b.admin_key and path == "/v1/search":
                return Reply(reply.status, reply.headers, reply.text.replace("]", f', "{A_MARKER}"]', 1))
            return reply

    document_id = give_a_document(api, tenant_a)
    ingest_queue.drain()
    with pytest.raises(AssertionError, match="leaked"):
        run_isolation_harness(Leaky(api), tenant_a, tenant_b, {"document_id": document_id})


def test_every_non_public_route_is_enumerated() -> None:
    from raas.handlers.openapi import combined_app

    app = combined_app()
    routes = {(r.method, r.path) for r in app._static_routes + app._dynamic_routes}
    calls = enumerate_calls({"tenant_id": "t000000000000000"})
    assert len(calls) == len(routes) - len(PUBLIC_ROUTES)  # health, OpenAPI, pricing and the Stripe webhook are public
    assert len(PUBLIC_ROUTES) == 4


def test_minimal_body_satisfies_required_fields_and_bounds() -> None:
    components = {
        "M": {
            "type": "object",
            "required": ["n", "e", "s", "query"],
            "properties": {
                "n": {"type": "integer", "minimum": 3},
                "e": {"enum": ["b", "c"]},
                "s": {"type": "string", "minLength": 4},
                "query": {"type": "string"},
                "opt": {"type": "string"},
            },
        }
    }
    assert minimal_body({"$ref": "#/components/schemas/M"}, components, {"query": "probe"}) == {
        "n": 3,
        "e": "b",
        "s": "xxxx",
        "query": "probe",
    }


def test_concurrent_requests_of_two_tenants_never_see_each_other(api: ApiClient, tenant_a: TenantHandle, tenant_b: TenantHandle) -> None:
    """The handlers keep the current request on a module-level resolver, as Lambda allows (one
    request per container); the local server is threaded, so this must hold under concurrency:
    each tenant's concurrent writes land in its own configuration with its own values."""
    import threading

    values = {tenant_a.tenant_id: [2, 3, 4, 5], tenant_b.tenant_id: [6, 7, 8, 9]}
    barrier = threading.Barrier(8)

    def write(tenant: TenantHandle, top_k: int) -> None:
        barrier.wait()
        expect(api.request("PATCH", "/v1/config", key=tenant.admin_key, json_body={"top_k": top_k}), 200)

    threads = [threading.Thread(target=write, args=(t, v)) for t in (tenant_a, tenant_b) for v in values[t.tenant_id]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for tenant in (tenant_a, tenant_b):
        versions = expect(api.request("GET", "/v1/config/versions?limit=50", key=tenant.admin_key), 200)["versions"]
        assert len(versions) == 4
        seen = {v["version"]: v for v in versions}
        for version in seen.values():
            assert version["created_by"].endswith(tenant.admin_key_id)
        current = expect(api.request("GET", "/v1/config", key=tenant.admin_key), 200)
        assert current["config"]["top_k"] in values[tenant.tenant_id]
