"""Usage events: what every billable action records, with an id that makes it count once."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

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
)


class UsageEvent(BaseModel):
    event_id: str = Field(min_length=8, max_length=128)
    tenant_id: str
    occurred_at: datetime
    counters: dict[str, int]

    @property
    def period(self) -> str:
        return self.occurred_at.strftime("%Y-%m")


def usd_to_micro(usd: float) -> int:
    return round(usd * 1_000_000)
