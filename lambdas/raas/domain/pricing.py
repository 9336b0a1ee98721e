"""Prices, quotes and invoice lines from `pricing.json`. Pure: integer cents out, no floats in sums."""

from __future__ import annotations

import json
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from importlib import resources

from pydantic import ConfigDict, Field

from raas.domain.catalog import Tier
from raas.domain.model import Model

MILLICENTS_PER_CENT = 1000
BYTES_PER_GB = 10**9


class Included(Model):
    model_config = ConfigDict(frozen=True)

    queries: int
    storage_gb: Decimal
    api_calls: int


class TierPrice(Model):
    model_config = ConfigDict(frozen=True)

    base_monthly_cents: int
    band_cents: tuple[int, int | None]
    included: Included
    query_overage_millicents: int
    annual_discount_bp: int = Field(description="basis points off the base fee when billed annually")
    custom: bool


class PriceList(Model):
    model_config = ConfigDict(frozen=True)

    currency: str
    storage_gb_month_millicents: int
    api_call_millicents: int
    tiers: dict[Tier, TierPrice]


@cache
def price_list() -> PriceList:
    data = json.loads(resources.files("raas.data").joinpath("pricing.json").read_text(encoding="utf-8"))
    data.pop("_comment", None)
    return PriceList.model_validate(data)


class BillableUsage(Model):
    queries: int = Field(default=0, ge=0, le=10**12)
    storage_gb: Decimal = Field(default=Decimal(0), ge=0, le=10**9, description="average GB stored over the month (GB-months)")
    api_calls: int = Field(default=0, ge=0, le=10**13)


class Line(Model):
    description: str
    quantity: Decimal
    unit_price_millicents: int
    amount_cents: int


class Quote(Model):
    tier: Tier
    currency: str
    annual: bool
    lines: list[Line]
    subtotal_cents: int
    discount_cents: int
    total_cents: int
    custom_contract: bool = Field(description="list price shown; the tier is sold on custom terms")


def _cents(quantity: Decimal, unit_millicents: int) -> int:
    return int((quantity * unit_millicents / MILLICENTS_PER_CENT).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _line(description: str, quantity: Decimal | int, unit_millicents: int) -> Line:
    quantity = Decimal(quantity)
    return Line(
        description=description, quantity=quantity, unit_price_millicents=unit_millicents, amount_cents=_cents(quantity, unit_millicents)
    )


def quote(tier: Tier, usage: BillableUsage, annual: bool = False) -> Quote:
    """One month's charges for `usage` on `tier` (an annual plan is billed per month at its discount)."""
    prices = price_list()
    price = prices.tiers[tier]
    lines = [_line(f"{tier.value} plan, monthly base fee", 1, price.base_monthly_cents * MILLICENTS_PER_CENT)]
    extra_queries = max(0, usage.queries - price.included.queries)
    if extra_queries and price.query_overage_millicents:
        lines.append(_line(f"queries beyond the {price.included.queries:,} included", extra_queries, price.query_overage_millicents))
    extra_storage = max(Decimal(0), usage.storage_gb - price.included.storage_gb).quantize(Decimal("0.001"), rounding=ROUND_HALF_UP)
    if extra_storage:
        lines.append(
            _line(f"storage beyond {price.included.storage_gb} GB-month included", extra_storage, prices.storage_gb_month_millicents)
        )
    extra_calls = max(0, usage.api_calls - price.included.api_calls)
    if extra_calls:
        lines.append(_line(f"API calls beyond the {price.included.api_calls:,} included", extra_calls, prices.api_call_millicents))
    subtotal = sum(line.amount_cents for line in lines)
    discount = 0
    if annual and price.annual_discount_bp:
        discount = int((Decimal(price.base_monthly_cents) * price.annual_discount_bp / 10_000).quantize(Decimal(1), rounding=ROUND_HALF_UP))
        lines.append(
            Line(
                description=f"annual billing discount ({price.annual_discount_bp / 100:g} % of the base fee)",
                quantity=Decimal(1),
                unit_price_millicents=-discount * MILLICENTS_PER_CENT,
                amount_cents=-discount,
            )
        )
    return Quote(
        tier=tier,
        currency=prices.currency,
        annual=annual,
        lines=lines,
        subtotal_cents=subtotal,
        discount_cents=discount,
        total_cents=subtotal - discount,
        custom_contract=price.custom,
    )


def storage_gb_months(byte_days: int, days_in_month: int) -> Decimal:
    """Average GB stored over a month, from the sum of daily byte snapshots."""
    if days_in_month <= 0:
        return Decimal(0)
    return (Decimal(byte_days) / days_in_month / BYTES_PER_GB).quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)
