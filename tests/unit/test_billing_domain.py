"""Pure rules of metering and billing: prices, quotes, thresholds, periods, events, throttling."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from raas.domain.catalog import Tier
from raas.domain.errors import ValidationFailed
from raas.domain.events import EVENT_TYPES, QuotaThresholdReached, TenantTierChanged, UnknownEvent, eventbridge_envelope, parse, to_entry
from raas.domain.pricing import BillableUsage, price_list, quote, storage_gb_months
from raas.domain.usage import crossed_thresholds, days_in_period, parse_period, previous_period, seconds_until_next_period
from raas.local.ratelimit import TokenBuckets, retry_after_header


def test_the_price_list_matches_the_product_brief() -> None:
    prices = price_list()
    assert prices.tiers[Tier.SMB].band_cents == (29_900, 99_900)
    assert prices.tiers[Tier.MIDMARKET].band_cents == (200_000, 1_000_000)
    assert prices.tiers[Tier.ENTERPRISE].base_monthly_cents == 2_500_000
    assert prices.tiers[Tier.ENTERPRISE].custom
    overage = sorted(t.query_overage_millicents for tier, t in prices.tiers.items() if tier is not Tier.FREE)
    assert overage[0] == 1000
    assert overage[-1] == 5000
    assert prices.storage_gb_month_millicents == 10_000  # $0.10 per GB-month
    assert prices.api_call_millicents == 100  # $0.001 per call
    discounts = [t.annual_discount_bp for tier, t in prices.tiers.items() if tier is not Tier.FREE]
    assert min(discounts) >= 1500
    assert max(discounts) <= 2000


def test_a_quote_lists_every_charge_in_integer_cents() -> None:
    result = quote(Tier.MIDMARKET, BillableUsage(queries=100_001, storage_gb=Decimal("50.0004"), api_calls=1_000_003))
    assert [line.amount_cents for line in result.lines] == [200_000, 2, 0]  # 0.0004 GB rounds away; 3 calls = 0.3 cent
    assert result.total_cents == 200_002
    assert all(isinstance(line.amount_cents, int) for line in result.lines)


def test_within_the_included_quotas_only_the_base_fee_is_charged() -> None:
    result = quote(Tier.SMB, BillableUsage(queries=10_000, storage_gb=Decimal(5), api_calls=100_000))
    assert [line.amount_cents for line in result.lines] == [29_900]


def test_annual_billing_discounts_the_base_fee_only() -> None:
    monthly = quote(Tier.ENTERPRISE, BillableUsage(queries=2_000_000))
    annual = quote(Tier.ENTERPRISE, BillableUsage(queries=2_000_000), annual=True)
    assert monthly.total_cents - annual.total_cents == 500_000  # 20 % of $25,000
    assert annual.discount_cents == 500_000


@given(
    queries=st.integers(min_value=0, max_value=10**9),
    storage=st.decimals(min_value=0, max_value=10**6, places=3, allow_nan=False),
    calls=st.integers(min_value=0, max_value=10**10),
    tier=st.sampled_from(list(Tier)),
    annual=st.booleans(),
)
def test_quotes_add_up_and_never_go_negative(queries: int, storage: Decimal, calls: int, tier: Tier, annual: bool) -> None:
    result = quote(tier, BillableUsage(queries=queries, storage_gb=storage, api_calls=calls), annual)
    assert result.total_cents == sum(line.amount_cents for line in result.lines)
    assert result.total_cents >= 0
    more = quote(tier, BillableUsage(queries=queries + 1000, storage_gb=storage, api_calls=calls), annual)
    assert more.total_cents >= result.total_cents


def test_bad_usage_is_refused() -> None:
    with pytest.raises(ValidationError):
        BillableUsage(queries=-1)


def test_storage_gb_months_average_daily_snapshots() -> None:
    assert storage_gb_months(30 * 2 * 10**9, 30) == Decimal("2.000000")
    assert storage_gb_months(10**9, 31) == Decimal("0.032258")


def test_thresholds_are_crossed_once() -> None:
    assert crossed_thresholds(79, 80, 100) == [80]
    assert crossed_thresholds(80, 81, 100) == []
    assert crossed_thresholds(99, 100, 100) == [100]
    assert crossed_thresholds(0, 100, 100) == [80, 100]
    assert crossed_thresholds(0, 1, 0) == []


def test_periods() -> None:
    assert parse_period("2026-02") == "2026-02"
    for bad in ("2026-13", "26-01", "2026-1", "../x"):
        with pytest.raises(ValidationFailed):
            parse_period(bad)
    assert days_in_period("2028-02") == 29
    assert previous_period("2027-01") == "2026-12"
    assert seconds_until_next_period(datetime(2026, 11, 30, 23, 59, 0, tzinfo=UTC)) == 60


def test_events_carry_a_version_and_round_trip_through_eventbridge() -> None:
    event = TenantTierChanged(tenant_id="t000000000000001", previous_tier=Tier.FREE, tier=Tier.SMB, actor="operator:k1")
    entry = to_entry(event, "raas-bus")
    assert (entry["Source"], entry["DetailType"]) == ("raas.platform", "TenantTierChanged")
    envelope = eventbridge_envelope(event, "raas-bus")
    assert parse(envelope["detail-type"], envelope["detail"]) == event
    assert parse(entry["DetailType"], entry["Detail"]) == event
    assert envelope["detail"]["version"] == 1
    from raas.handlers.registry import EVENT_ROUTES

    assert set(EVENT_TYPES) == set(EVENT_ROUTES), "every event type has a routing entry (the CDK rules and the local bus read it)"


def test_unknown_types_versions_and_fields_are_refused() -> None:
    with pytest.raises(UnknownEvent):
        parse("TenantExploded", {})
    detail = QuotaThresholdReached(tenant_id="t1", metric="queries", period="2026-11", threshold_percent=80, used=8, limit=10)
    with pytest.raises(ValidationError):
        parse("QuotaThresholdReached", {**detail.model_dump(mode="json"), "version": 2})
    with pytest.raises(ValidationError):
        parse("QuotaThresholdReached", {**detail.model_dump(mode="json"), "tenant": "other"})


def test_token_buckets_allow_the_burst_then_the_rate() -> None:
    now = [0.0]
    buckets = TokenBuckets(clock=lambda: now[0])
    assert [buckets.take("a", rate=2, burst=3) for _ in range(3)] == [0, 0, 0]
    wait = buckets.take("a", rate=2, burst=3)
    assert wait == pytest.approx(0.5)
    assert retry_after_header(wait) == "1"
    assert buckets.take("b", rate=2, burst=3) == 0  # per tenant
    now[0] += 0.5
    assert buckets.take("a", rate=2, burst=3) == 0
    now[0] += 100
    assert [buckets.take("a", rate=2, burst=3) for _ in range(4)].count(0) == 3  # never more than the burst
