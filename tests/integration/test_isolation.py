from __future__ import annotations

from tests.conftest import TenantHandle
from tests.helpers import ApiClient
from tests.isolation import enumerate_calls, minimal_body, run_isolation_harness


def test_tenant_b_cannot_reach_tenant_a_through_any_route(api: ApiClient, tenant_a: TenantHandle, tenant_b: TenantHandle) -> None:
    calls = run_isolation_harness(api, tenant_a, tenant_b)
    covered = {(c.method, c.template) for c in calls}
    # The harness must see what the router has, including routes with path parameters.
    assert ("DELETE", "/v1/keys/{key_id}") in covered
    assert ("POST", "/v1/tenants/{tenant_id}/suspend") in covered
    assert ("PATCH", "/v1/config") in covered


def test_every_non_public_route_is_enumerated() -> None:
    from raas.handlers.openapi import combined_app

    app = combined_app()
    routes = {(r.method, r.path) for r in app._static_routes + app._dynamic_routes}
    calls = enumerate_calls({"tenant_id": "t000000000000000"})
    assert len(calls) == len(routes) - 2  # health and the OpenAPI document are public


def test_minimal_body_satisfies_required_fields_and_bounds() -> None:
    components = {
        "M": {
            "type": "object",
            "required": ["n", "e", "s"],
            "properties": {
                "n": {"type": "integer", "minimum": 3},
                "e": {"enum": ["b", "c"]},
                "s": {"type": "string", "minLength": 4},
                "opt": {"type": "string"},
            },
        }
    }
    assert minimal_body({"$ref": "#/components/schemas/M"}, components) == {"n": 3, "e": "b", "s": "xxxx"}
