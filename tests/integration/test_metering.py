"""Usage reports, quotas with atomic reservations, throttling, storage snapshots and invoices."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import pytest

from raas.bootstrap import services
from raas.domain import catalog
from raas.domain.catalog import Tier
from raas.domain.errors import GatewayTimeout, TooManyRequests
from raas.domain.usage import period_of
from raas.handlers import account
from raas.local.gateway import LocalGateway
from raas.local.invocation import lambda_context
from tests.conftest import OPERATOR_KEY, TenantHandle, create_tenant
from tests.helpers import ApiClient, GatewayClient, RecordingChat, expect

pytestmark = pytest.mark.usefixtures("aws", "chat")


def _ask(api: ApiClient, tenant: TenantHandle, text: str = "alpha") -> Any:
    return api.request("POST", "/v1/query", key=tenant.admin_key, json_body={"query": text})


def test_usage_counts_queries_tokens_and_api_calls(api: ApiClient, tenant_a: TenantHandle, ingest_queue: Any) -> None:
    expect(api.request("POST", "/v1/documents", key=tenant_a.admin_key, json_body={"title": "t", "text": "alpha beta"}), 202)
    ingest_queue.drain()
    expect(_ask(api, tenant_a, "alpha"), 200)
    expect(_ask(api, tenant_a, "beta"), 200)
    usage = expect(api.request("GET", "/v1/usage", key=tenant_a.admin_key), 200)
    assert usage["period"] == period_of(datetime.now(UTC))
    assert usage["queries"] == 2
    assert usage["prompt_tokens"] > 0
    assert usage["completion_tokens"] > 0
    assert usage["cost_usd"] > 0
    assert usage["bytes_ingested"] == len("alpha beta")
    assert usage["api_calls"] == 4  # the fixture's key listing, the document, two queries (this GET counts after it answers)
    assert set(usage) >= {
        "period",
        "queries",
        "prompt_tokens",
        "completion_tokens",
        "cost_usd",
        "bytes_ingested",
        "storage_gb",
        "api_calls",
    }
    again = expect(api.request("GET", "/v1/usage", key=tenant_a.admin_key), 200)
    assert again["api_calls"] == 5
    assert api.request("GET", "/v1/usage?period=2026-13", key=tenant_a.admin_key).status == 422


def test_an_api_call_is_counted_once_per_request_id(api: ApiClient, tenant_a: TenantHandle) -> None:
    principal = {"tenant_id": tenant_a.tenant_id, "role": "admin", "tier": "enterprise", "key_id": tenant_a.admin_key_id}
    event = {
        "resource": "/v1/usage",
        "path": "/v1/usage",
        "httpMethod": "GET",
        "headers": {},
        "requestContext": {"requestId": "req-fixed-1", "authorizer": principal, "resourcePath": "/v1/usage", "httpMethod": "GET"},
        "body": None,
    }
    before = services().usage_recorder.totals(tenant_a.tenant_id, period_of(datetime.now(UTC)))["api_calls"]
    for _ in range(3):  # a Lambda retry re-delivers the same request
        assert account.handler(event, lambda_context("raas-account"))["statusCode"] == 200
    assert services().usage_recorder.totals(tenant_a.tenant_id, period_of(datetime.now(UTC)))["api_calls"] == before + 1


def _usage_markers(tenant: TenantHandle) -> list[str]:
    """The usage events written for the tenant (one EVENT# marker per usage transaction)."""
    from raas.adapters.registry import tenant_pk

    table = services().settings.usage_table
    rows = (
        services()
        .platform_client("dynamodb")
        .query(
            TableName=table,
            KeyConditionExpression="PK = :pk AND begins_with(SK, :event)",
            ExpressionAttributeValues={":pk": {"S": tenant_pk(tenant.tenant_id)}, ":event": {"S": "EVENT#"}},
        )["Items"]
    )
    return [row["SK"]["S"] for row in rows]


def test_a_query_and_its_api_call_are_one_usage_write(api: ApiClient, tenant_a: TenantHandle) -> None:
    """A query's usage event carries its request's API call: one transaction, not two; a route that
    records no usage of its own still has its call written alone, under the request's id."""
    period = period_of(datetime.now(UTC))
    before, markers_before = services().usage_recorder.totals(tenant_a.tenant_id, period), set(_usage_markers(tenant_a))
    expect(_ask(api, tenant_a, "alpha"), 200)
    after, markers_after = services().usage_recorder.totals(tenant_a.tenant_id, period), set(_usage_markers(tenant_a))
    assert (after["queries"] - before["queries"], after["api_calls"] - before["api_calls"]) == (1, 1)
    added = markers_after - markers_before
    assert len(added) == 1, added
    assert not next(iter(added)).startswith("EVENT#api-"), added
    expect(api.request("GET", "/v1/config", key=tenant_a.admin_key), 200)
    added = set(_usage_markers(tenant_a)) - markers_after
    assert len(added) == 1, added
    assert next(iter(added)).startswith("EVENT#api-"), added
    assert services().usage_recorder.totals(tenant_a.tenant_id, period)["api_calls"] == after["api_calls"] + 1


def test_the_operator_sees_every_tenants_usage(api: ApiClient, tenant_a: TenantHandle, tenant_b: TenantHandle) -> None:
    expect(_ask(api, tenant_a), 200)
    page = expect(api.request("GET", "/v1/operator/usage", key=OPERATOR_KEY), 200)
    rows = {row["tenant_id"]: row for row in page["tenants"]}
    assert rows[tenant_a.tenant_id]["usage"]["queries"] == 1
    assert rows[tenant_b.tenant_id]["usage"]["queries"] == 0
    assert api.request("GET", "/v1/operator/usage", key=tenant_a.admin_key).status == 403


def _fill_quota(tenant: TenantHandle, queries: int = 0, cost_microusd: int = 0) -> None:
    services().quota_ledger.adjust(tenant.tenant_id, period_of(datetime.now(UTC)), queries=queries, cost_microusd=cost_microusd)


def test_over_the_monthly_query_quota_answers_429_with_retry_after(api: ApiClient) -> None:
    tenant = create_tenant(api, "small", "free")
    limit = catalog.tier_limits(Tier.FREE).monthly_queries
    _fill_quota(tenant, queries=limit - 1)
    expect(_ask(api, tenant), 200)
    refused = _ask(api, tenant)
    assert refused.status == 429
    assert refused.json()["error"]["code"] == "quota_exceeded"
    assert 0 < int(refused.headers["Retry-After"]) <= 31 * 24 * 3600
    assert refused.headers["X-Quota-Queries-Remaining"] == "0"
    assert refused.headers["X-Quota-Queries-Limit"] == str(limit)


def test_thresholds_at_80_and_100_percent_raise_events_once(api: ApiClient) -> None:
    tenant = create_tenant(api, "small", "free")
    limit = catalog.tier_limits(Tier.FREE).monthly_queries
    _fill_quota(tenant, queries=int(limit * 0.8) - 1)
    expect(_ask(api, tenant), 200)  # crosses 80 %
    expect(_ask(api, tenant, "again"), 200)  # no new threshold
    _fill_quota(tenant, queries=limit - int(limit * 0.8) - 2)
    expect(_ask(api, tenant, "last"), 200)  # reaches 100 %
    assert _ask(api, tenant, "over").status == 429
    entries = expect(api.request("GET", "/v1/audit?limit=100", key=tenant.admin_key), 200)["entries"]
    thresholds = [e["details"]["threshold_percent"] for e in entries if e["action"] == "lifecycle.QuotaThresholdReached"]
    assert sorted(thresholds) == [80, 100]


def test_the_llm_budget_is_reserved_before_the_call(api: ApiClient, chat: RecordingChat) -> None:
    tenant = create_tenant(api, "small", "free")
    budget = int(catalog.tier_limits(Tier.FREE).monthly_llm_budget_usd * 1_000_000)
    _fill_quota(tenant, cost_microusd=budget - 1)
    calls_before = len(chat.requests)
    refused = _ask(api, tenant)
    assert (refused.status, refused.json()["error"]["code"]) == (429, "llm_budget_exceeded")
    assert len(chat.requests) == calls_before  # the LLM was never called


def test_a_failed_llm_call_gives_its_reservation_back(api: ApiClient, chat: RecordingChat) -> None:
    tenant = create_tenant(api, "small", "free")
    chat.fail_with = GatewayTimeout("the provider timed out")
    assert _ask(api, tenant).status == 504
    assert services().quota_ledger.used(tenant.tenant_id, period_of(datetime.now(UTC))) == (0, 0)


def test_concurrent_reservations_at_the_limit_never_overshoot(api: ApiClient) -> None:
    tenant = create_tenant(api, "small", "free")
    limit = catalog.tier_limits(Tier.FREE).monthly_queries
    _fill_quota(tenant, queries=limit - 5)
    guard = services().quota_guard
    outcomes: list[str] = []

    def reserve() -> None:
        try:
            guard.reserve(tenant.tenant_id, Tier.FREE, 0.0)
            outcomes.append("ok")
        except TooManyRequests:
            outcomes.append("refused")

    threads = [threading.Thread(target=reserve) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("ok") == 5
    assert services().quota_ledger.used(tenant.tenant_id, period_of(datetime.now(UTC)))[0] == limit


def test_the_local_gateway_throttles_each_tenant_at_its_tier_rate(api: ApiClient) -> None:
    slow = create_tenant(api, "slow", "free")
    other = create_tenant(api, "other", "free")
    throttled = GatewayClient(LocalGateway(rate_limits=True))
    burst = catalog.tier_limits(Tier.FREE).burst
    statuses = [throttled.request("GET", "/v1/config", key=slow.admin_key).status for _ in range(burst + 3)]
    assert statuses[:burst] == [200] * burst
    assert 429 in statuses[burst:]
    refused = next(r for r in (throttled.request("GET", "/v1/config", key=slow.admin_key),) if r.status == 429)
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.json()["error"]["code"] == "rate_limited"
    assert throttled.request("GET", "/v1/config", key=other.admin_key).status == 200  # one tenant's burst is its own


def test_the_local_gateway_throttles_a_tenant_at_its_own_lower_rate(api: ApiClient) -> None:
    capped = create_tenant(api, "capped", "enterprise")
    expect(api.request("PATCH", "/v1/config", key=capped.admin_key, json_body={"limits": {"requests_per_second": 1}}), 200)
    throttled = GatewayClient(LocalGateway(rate_limits=True))
    assert catalog.tier_limits(Tier.ENTERPRISE).burst > 3
    statuses = [throttled.request("GET", "/v1/config", key=capped.admin_key).status for _ in range(3)]
    assert statuses[0] == 200
    assert 429 in statuses[1:]  # the tier's burst would have let all three through
    refused = next(r for r in (throttled.request("GET", "/v1/config", key=capped.admin_key),) if r.status == 429)
    assert "own limits" in refused.json()["error"]["message"]


def test_storage_is_snapshotted_once_a_day(api: ApiClient, tenant_a: TenantHandle, ingest_queue: Any) -> None:
    expect(api.request("POST", "/v1/documents", key=tenant_a.admin_key, json_body={"title": "t", "text": "x" * 5000}), 202)
    ingest_queue.drain()
    metering = services().metering_service
    day = datetime.now(UTC)
    assert metering.snapshot_storage(day) >= 1
    assert metering.snapshot_storage(day) == 0  # the same day again counts nothing
    totals = services().usage_recorder.totals(tenant_a.tenant_id, period_of(day))
    assert totals["storage_byte_days"] == 5000


def test_invoices_are_issued_once_per_period(api: ApiClient, tenant_a: TenantHandle) -> None:
    expect(_ask(api, tenant_a), 200)
    metering = services().metering_service
    period = period_of(datetime.now(UTC))
    assert metering.close_period(period) >= 1
    first = expect(api.request("GET", f"/v1/invoices/{period}", key=tenant_a.admin_key), 200)
    expect(_ask(api, tenant_a, "more usage after closing"), 200)
    metering.close_period(period)
    assert expect(api.request("GET", f"/v1/invoices/{period}", key=tenant_a.admin_key), 200) == first
    assert first["lines"][0]["amount_cents"] == 2_500_000  # enterprise base fee
    assert first["total_cents"] == sum(line["amount_cents"] for line in first["lines"])
    listed = expect(api.request("GET", "/v1/invoices", key=tenant_a.admin_key), 200)["invoices"]
    assert [i["period"] for i in listed] == [period]
    assert api.request("GET", "/v1/invoices/2020-01", key=tenant_a.admin_key).status == 404


def test_the_pricing_estimate_is_public_and_matches_the_cli(api: ApiClient) -> None:
    from raas.cli import main

    body = {"tier": "smb", "queries": 15000, "storage_gb": 7.5, "api_calls": 120000, "annual": True}
    quote = expect(api.request("POST", "/v1/pricing/estimate", json_body=body), 200)
    assert quote["total_cents"] == 29900 + 25000 + 25 + 2000 - 4485
    assert [line["amount_cents"] for line in quote["lines"]] == [29900, 25000, 25, 2000, -4485]
    assert api.request("POST", "/v1/pricing/estimate", json_body={"tier": "gold"}).status == 422
    assert main(["price", "--tier", "smb", "--queries", "15000", "--storage-gb", "7.5", "--api-calls", "120000", "--annual"]) == 0
