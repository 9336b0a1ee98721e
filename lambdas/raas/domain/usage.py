"""Usage events: what every billable action records, with an id that makes it count once."""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from pydantic import Field

from raas.domain.errors import ValidationFailed
from raas.domain.model import Model
from raas.domain.pricing import storage_gb_months

PERIOD_PATTERN = re.compile(r"^(20\d\d)-(0[1-9]|1[0-2])$")
THRESHOLDS_PERCENT = (80, 100)

# Counters a usage event may carry. Money is kept in micro-dollars so counters stay integers.
METRICS = (
    "queries",
    "searches",
    "prompt_tokens",
    "completion_tokens",
    "cost_microusd",
    "bytes_ingested",
    "documents_indexed",
    "chunks_indexed",
    "api_calls",
    "storage_byte_days",  # one daily snapshot of bytes stored; / days / 1e9 = GB-months
)


class UsageEvent(Model):
    event_id: str = Field(min_length=8, max_length=128)
    tenant_id: str
    occurred_at: datetime
    counters: dict[str, int]

    @property
    def period(self) -> str:
        return self.occurred_at.strftime("%Y-%m")

    @property
    def day(self) -> str:
        """The UTC day it counts in (`YYYY-MM-DD`), within `period`."""
        return self.occurred_at.strftime("%Y-%m-%d")


def usd_to_micro(usd: float) -> int:
    return round(usd * 1_000_000)


class UsageReport(Model):
    """A tenant's usage in one calendar month (UTC)."""

    period: str
    queries: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    bytes_ingested: int
    storage_gb: Decimal = Field(description="GB-months so far: the average of the daily snapshots over the month's days")
    api_calls: int
    searches: int
    documents_indexed: int

    @classmethod
    def of(cls, period: str, totals: dict[str, int]) -> UsageReport:
        return cls(
            period=period,
            queries=totals.get("queries", 0),
            prompt_tokens=totals.get("prompt_tokens", 0),
            completion_tokens=totals.get("completion_tokens", 0),
            cost_usd=round(totals.get("cost_microusd", 0) / 1_000_000, 6),
            bytes_ingested=totals.get("bytes_ingested", 0),
            storage_gb=storage_gb_months(totals.get("storage_byte_days", 0), days_in_period(period)),
            api_calls=totals.get("api_calls", 0),
            searches=totals.get("searches", 0),
            documents_indexed=totals.get("documents_indexed", 0),
        )


def period_of(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m")


def parse_period(period: str) -> str:
    if not PERIOD_PATTERN.match(period):
        raise ValidationFailed("period must be YYYY-MM", code="invalid_period", details=[{"field": "period", "message": "YYYY-MM"}])
    return period


def days_in_period(period: str) -> int:
    year, month = (int(part) for part in period.split("-"))
    return calendar.monthrange(year, month)[1]


def previous_period(period: str) -> str:
    year, month = (int(part) for part in period.split("-"))
    return f"{year - 1}-12" if month == 1 else f"{year}-{month - 1:02d}"


def seconds_until_next_period(now: datetime) -> int:
    """When a monthly quota resets: the start of next month, UTC."""
    now = now.astimezone(UTC)
    first_next = (now.replace(day=1, hour=0, minute=0, second=0, microsecond=0) + timedelta(days=32)).replace(day=1)
    return max(1, int((first_next - now).total_seconds()))


def crossed_thresholds(before: int, after: int, limit: int) -> list[int]:
    """The alert thresholds (percent of `limit`) that moving from `before` to `after` crossed."""
    if limit <= 0:
        return []
    return [t for t in THRESHOLDS_PERCENT if before * 100 < t * limit <= after * 100]
