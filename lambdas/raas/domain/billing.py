"""Invoices and the billing outbox entries."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import ConfigDict

from raas.domain.catalog import Tier
from raas.domain.model import Model
from raas.domain.pricing import Line


class Invoice(Model):
    tenant_id: str
    period: str
    tier: Tier
    annual: bool
    currency: str
    lines: list[Line]
    subtotal_cents: int
    discount_cents: int
    total_cents: int
    issued_at: datetime
    status: Literal["open", "paid"] = "open"
    paid_at: datetime | None = None
    payment_reference: str | None = None


class OutboxEntry(Model):
    model_config = ConfigDict(extra="ignore")

    tenant_id: str
    event_id: str
    occurred_at: datetime
    counters: dict[str, int]
    attempts: int = 0
