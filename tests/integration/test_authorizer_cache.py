"""The local gateway's authorizer cache: API Gateway's (per Authorization header, Allow and Deny alike, a
TTL, no call without the header), except that any write to the tenants table forgets it, so a revocation,
a suspension or a tier change still counts from the next request (raas.local.authorizer_cache)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from raas.local.authorizer_cache import AuthorizerCache, tenants_written
from tests.conftest import OPERATOR_KEY, TenantHandle, create_tenant
from tests.helpers import FakeClock, GatewayClient, expect


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def cached(aws: None, clock: FakeClock) -> Iterator[tuple[GatewayClient, list[str], AuthorizerCache]]:
    """A gateway whose authorizer answers are cached for 60 s, and the Authorization headers the authorizer saw."""
    from raas.bootstrap import services
    from raas.local.gateway import LocalGateway

    services().key_service.create_operator_key("test operator", secret=OPERATOR_KEY)
    cache = AuthorizerCache(60, services().settings.tenants_table, clock=clock)
    cache.watch()
    gateway = LocalGateway(rate_limits=False, authorizer_cache=cache)
    seen: list[str] = []
    real = gateway.authorizer.handler

    class Counting:
        @staticmethod
        def handler(event: dict[str, Any], context: Any) -> Any:
            seen.append(str(event["headers"].get("Authorization")))
            return real(event, context)

    gateway.authorizer = Counting  # type: ignore[assignment]
    try:
        yield GatewayClient(gateway), seen, cache
    finally:
        cache.unwatch()


Cached = tuple[GatewayClient, list[str], AuthorizerCache]


def test_one_authorizer_call_serves_a_key_until_the_ttl_ends(cached: Cached, clock: FakeClock) -> None:
    api, seen, _ = cached
    tenant = create_tenant(api, "cached", "enterprise")
    expect(api.request("GET", "/v1/config", key=tenant.admin_key), 200)  # answered and kept (its first use was a write)
    seen.clear()
    for path in ("/v1/config", "/v1/usage", "/v1/documents", "/v1/config"):  # every route: the cached policy is API-wide
        expect(api.request("GET", path, key=tenant.admin_key), 200)
    clock.now += 59
    expect(api.request("GET", "/v1/config", key=tenant.admin_key), 200)
    assert seen == []
    clock.now += 2  # past the TTL: asked again
    expect(api.request("GET", "/v1/config", key=tenant.admin_key), 200)
    assert seen == [f"Bearer {tenant.admin_key}"]


def test_a_missing_header_is_refused_without_calling_the_authorizer_and_a_refusal_is_not_kept(
    cached: tuple[GatewayClient, list[str], AuthorizerCache],
) -> None:
    api, seen, _ = cached
    assert api.request("GET", "/v1/config").status == 401
    assert seen == []
    for _ in range(2):  # an unknown key raises "Unauthorized": an error, asked again each time
        assert api.request("GET", "/v1/config", key="raas_" + "x" * 43).status == 401
    assert len(seen) == 2


def test_a_revoked_key_is_refused_at_the_next_request(cached: tuple[GatewayClient, list[str], AuthorizerCache]) -> None:
    api, _, _ = cached
    tenant = create_tenant(api, "revoking", "enterprise")
    second = expect(api.request("POST", "/v1/keys", key=tenant.admin_key, json_body={"name": "app", "role": "reader"}), 201)
    expect(api.request("GET", "/v1/config", key=second["api_key"]), 200)
    expect(api.request("GET", "/v1/config", key=second["api_key"]), 200)  # from the cache now
    expect(api.request("DELETE", f"/v1/keys/{second['key']['key_id']}", key=tenant.admin_key), 204)
    assert api.request("GET", "/v1/config", key=second["api_key"]).status == 401


def test_suspension_and_a_tier_change_count_from_the_next_request(cached: tuple[GatewayClient, list[str], AuthorizerCache]) -> None:
    api, seen, _ = cached
    tenant: TenantHandle = create_tenant(api, "suspending", "enterprise")
    assert api.request("GET", "/v1/me", key=tenant.admin_key).json()["tier"] == "enterprise"
    expect(api.request("PATCH", f"/v1/tenants/{tenant.tenant_id}", key=OPERATOR_KEY, json_body={"tier": "free"}), 200)
    assert api.request("GET", "/v1/me", key=tenant.admin_key).json()["tier"] == "free"
    expect(api.request("POST", f"/v1/tenants/{tenant.tenant_id}/suspend", key=OPERATOR_KEY, json_body={}), 200)
    calls = len(seen)
    for _ in range(2):  # the Deny is a policy: cached like an Allow
        refused = api.request("GET", "/v1/config", key=tenant.admin_key)
        assert (refused.status, refused.json()["error"]["code"]) == (403, "tenant_suspended")
    assert len(seen) == calls + 1
    expect(api.request("POST", f"/v1/tenants/{tenant.tenant_id}/resume", key=OPERATOR_KEY, json_body={}), 200)
    expect(api.request("GET", "/v1/config", key=tenant.admin_key), 200)


def test_an_answer_read_before_a_write_is_not_kept_after_it(clock: FakeClock) -> None:
    """The authorizer read the key, a revocation then forgot every answer, and only then does the first answer
    arrive: keeping it would let the revoked key in for a whole TTL."""
    cache = AuthorizerCache(60, "raas-tenants", clock=clock)
    allow = {"principalId": "k", "policyDocument": {"Statement": [{"Effect": "Allow"}]}, "context": {}}
    generation = cache.generation
    cache.forget_all()  # the revocation's write
    cache.put("Bearer raas_k", allow, generation)
    assert cache.get("Bearer raas_k") is None
    cache.put("Bearer raas_k", allow, cache.generation)
    assert cache.get("Bearer raas_k") == allow


def test_the_tenants_a_write_touches() -> None:
    def key(pk: str) -> dict[str, Any]:
        return {"PK": {"S": pk}, "SK": {"S": "PROFILE"}}

    assert tenants_written("put_item", ("raas-tenants", key("TENANT#ta#")), {}, "raas-tenants") == {"ta"}
    assert tenants_written("update_item", (), {"table_name": "raas-tenants", "key": key("OPERATOR")}, "raas-tenants") == {None}
    assert tenants_written("delete_item", ("raas-usage", key("TENANT#ta#")), {}, "raas-tenants") == set()
    operations = [
        {"ConditionCheck": {"TableName": "raas-tenants", "Key": key("TENANT#ta#")}},  # reads the tenant's status only
        {"Put": {"TableName": "raas-usage", "Item": key("TENANT#ta#")}},
    ]
    assert tenants_written("transact_write_items", (operations,), {}, "raas-tenants") == set()
    operations += [
        {"Update": {"TableName": "raas-tenants", "Key": key("TENANT#tb#")}},
        {"Delete": {"TableName": "raas-tenants", "Key": key("OPERATOR")}},
    ]
    assert tenants_written("transact_write_items", (), {"transact_items": operations}, "raas-tenants") == {"tb", None}


def test_a_tenants_write_forgets_its_own_answers_only(cached: Cached) -> None:
    api, seen, _ = cached
    a, b = create_tenant(api, "writes", "enterprise"), create_tenant(api, "reads on", "enterprise")
    for tenant in (a, b):
        expect(api.request("GET", "/v1/config", key=tenant.admin_key), 200)
    seen.clear()
    expect(api.request("PUT", "/v1/config", key=a.admin_key, json_body={"top_k": 4}), 200)  # a write to a's items
    expect(api.request("GET", "/v1/config", key=b.admin_key), 200)
    assert seen == []  # b's answer was kept
    expect(api.request("POST", "/v1/documents", key=a.admin_key, json_body={"title": "t", "text": "Otters hold hands."}), 202)
    assert seen == [f"Bearer {a.admin_key}"]  # a's was forgotten
    expect(api.request("GET", "/v1/config", key=a.admin_key), 200)
    assert seen == [f"Bearer {a.admin_key}"]  # and kept again: a document's status check in the tenants table writes nothing there


def test_an_answer_about_one_tenant_is_forgotten_and_the_others_kept(clock: FakeClock) -> None:
    cache = AuthorizerCache(60, "raas-tenants", clock=clock)

    def allow(tenant_id: str) -> dict[str, Any]:
        return {"principalId": "k", "policyDocument": {"Statement": [{"Effect": "Allow"}]}, "context": {"tenant_id": tenant_id}}

    for name, tenant_id in (("a", "ta"), ("b", "tb"), ("op", "")):
        cache.put(f"Bearer {name}", allow(tenant_id), cache.generation)
    cache.forget({"ta"})
    assert [cache.get(f"Bearer {name}") is not None for name in ("a", "b", "op")] == [False, True, False]  # op: no tenant
    cache.forget({None})  # outside every tenant's partition: all of them
    assert cache.get("Bearer b") is None
