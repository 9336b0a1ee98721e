"""A tenant's own `limits` (set in its configuration, below its tier's) are enforced wherever the
tier's are: monthly queries and LLM budget by the quota guard, requests per second by the token
bucket that stands in for the usage plan (moto for the quota ledger)."""

from __future__ import annotations

import pytest

from raas.bootstrap import services
from raas.domain import catalog
from raas.domain.catalog import Tier
from raas.domain.config import Limits
from raas.domain.errors import TooManyRequests
from raas.local.ratelimit import TokenBuckets, tenant_rate
from tests.conftest import TenantHandle, create_tenant
from tests.helpers import ApiClient, expect

pytestmark = pytest.mark.usefixtures("aws", "chat")


def test_a_tenants_own_monthly_query_cap_is_enforced_below_the_tiers(tenant_a: TenantHandle) -> None:
    guard = services().quota_guard
    caps = Limits(monthly_queries=2)
    for _ in range(2):
        guard.reserve(tenant_a.tenant_id, Tier.ENTERPRISE, 0.0, caps)
    with pytest.raises(TooManyRequests) as refused:
        guard.reserve(tenant_a.tenant_id, Tier.ENTERPRISE, 0.0, caps)
    assert refused.value.code == "quota_exceeded"
    assert (refused.value.headers["X-Quota-Queries-Limit"], refused.value.headers["X-Quota-Queries-Remaining"]) == ("2", "0")
    assert "own limit of 2 queries" in refused.value.message
    assert catalog.tier_limits(Tier.ENTERPRISE).monthly_queries > 2  # the tier alone would have allowed it
    guard.reserve(tenant_a.tenant_id, Tier.ENTERPRISE, 0.0, Limits(monthly_queries=None))


def test_a_tenants_own_llm_budget_is_enforced_below_the_tiers(tenant_a: TenantHandle) -> None:
    guard = services().quota_guard
    caps = Limits(monthly_cost_usd=0.01)
    guard.reserve(tenant_a.tenant_id, Tier.ENTERPRISE, 0.006, caps)
    with pytest.raises(TooManyRequests) as refused:
        guard.reserve(tenant_a.tenant_id, Tier.ENTERPRISE, 0.006, caps)
    assert refused.value.code == "llm_budget_exceeded"
    assert refused.value.headers["X-Quota-Budget-Remaining-Usd"] == "0.004000"
    with pytest.raises(TooManyRequests):  # one call dearer than the whole cap is refused outright
        guard.reserve(tenant_a.tenant_id, Tier.ENTERPRISE, 0.02, caps)


def test_a_cap_above_the_tiers_changes_nothing() -> None:
    tier = catalog.tier_limits(Tier.SMB)
    assert tenant_rate(tier, Limits(requests_per_second=tier.rate_limit_rps + 5)) == (tier.rate_limit_rps, tier.burst)
    assert tenant_rate(tier, None) == (tier.rate_limit_rps, tier.burst)


def test_a_tenants_own_requests_per_second_cap_throttles_below_the_tiers() -> None:
    tier = catalog.tier_limits(Tier.ENTERPRISE)
    assert tier.rate_limit_rps > 2
    rate, burst = tenant_rate(tier, Limits(requests_per_second=2))
    assert (rate, burst) == (2, 2)
    now = [0.0]
    buckets = TokenBuckets(clock=lambda: now[0])
    assert [buckets.take("t1", rate, burst) for _ in range(3)] == [0.0, 0.0, 0.5]  # the third waits half a second
    now[0] = 0.5
    assert buckets.take("t1", rate, burst) == 0.0


def test_a_budget_cap_above_the_tiers_is_refused_and_a_smaller_tier_clamps_it(api: ApiClient) -> None:
    tenant = create_tenant(api, "frugal", "smb")
    budget = catalog.tier_limits(Tier.SMB).monthly_llm_budget_usd
    over = api.request("PATCH", "/v1/config", key=tenant.admin_key, json_body={"limits": {"monthly_cost_usd": budget + 1}})
    assert (over.status, over.json()["error"]["code"]) == (422, "tier_limit_exceeded")
    expect(api.request("PATCH", "/v1/config", key=tenant.admin_key, json_body={"limits": {"monthly_cost_usd": budget}}), 200)
    free_budget = catalog.tier_limits(Tier.FREE).monthly_llm_budget_usd
    assert free_budget < budget
    services().tenant_service.update(tenant.tenant_id, name=None, tier=Tier.FREE, actor="operator")
    clamped = expect(api.request("GET", "/v1/config", key=tenant.admin_key), 200)
    assert clamped["config"]["limits"]["monthly_cost_usd"] == free_budget


def test_a_query_over_the_tenants_own_cap_answers_429(api: ApiClient) -> None:
    tenant = create_tenant(api, "capped", "smb")
    expect(api.request("PATCH", "/v1/config", key=tenant.admin_key, json_body={"limits": {"monthly_queries": 1}}), 200)
    expect(api.request("POST", "/v1/query", key=tenant.admin_key, json_body={"query": "alpha"}), 200)
    refused = api.request("POST", "/v1/query", key=tenant.admin_key, json_body={"query": "beta"})
    assert (refused.status, refused.json()["error"]["code"]) == (429, "quota_exceeded")
    assert refused.headers["X-Quota-Queries-Limit"] == "1"
