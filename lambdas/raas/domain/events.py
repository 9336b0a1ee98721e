"""Platform events on the EventBridge bus: one pydantic schema per event type, each versioned.

Every event names the tenant it concerns and carries its own id, so a handler that sees the
same event twice (EventBridge delivers at least once) can recognise it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import ConfigDict, Field

from raas.domain.catalog import Tier
from raas.domain.model import Model

SOURCE = "raas.platform"
SCHEMA_VERSION = 1


class PlatformEvent(Model):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = 1  # SCHEMA_VERSION; bump with a new Literal when a schema changes
    event_id: str = Field(default_factory=lambda: str(uuid.uuid4()), min_length=8, max_length=128)
    tenant_id: str
    occurred_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    actor: str = "platform"

    @classmethod
    def detail_type(cls) -> str:
        return cls.__name__


class TenantCreated(PlatformEvent):
    tier: Tier


class TenantProvisioned(PlatformEvent):
    tier: Tier


class TenantSuspended(PlatformEvent):
    reason: str = "operator"


class TenantResumed(PlatformEvent):
    pass


class TenantTierChanged(PlatformEvent):
    previous_tier: Tier
    tier: Tier


class TenantDeletionRequested(PlatformEvent):
    export_first: bool = False


class TenantDeleted(PlatformEvent):
    pass


class QuotaThresholdReached(PlatformEvent):
    metric: str
    period: str
    threshold_percent: int
    used: int
    limit: int


class DocumentIndexed(PlatformEvent):
    document_id: str
    title: str
    chunk_count: int


class DocumentFailed(PlatformEvent):
    document_id: str
    title: str
    reason: str


class ConfigChanged(PlatformEvent):
    config_version: int  # `version` is the event schema's
    mode: str
    changed_fields: list[str]


class KeyCreated(PlatformEvent):
    key_id: str
    name: str
    role: str


class KeyRevoked(PlatformEvent):
    key_id: str
    name: str
    role: str


class InvoiceIssued(PlatformEvent):
    period: str
    total_cents: int
    currency: str


class InvoicePaid(PlatformEvent):
    period: str | None
    reference: str


class InvoicePaymentFailed(PlatformEvent):
    period: str | None = None


class ExportReady(PlatformEvent):
    key: str
    url: str
    expires_in: int
    documents: int


EVENT_TYPES: dict[str, type[PlatformEvent]] = {
    cls.detail_type(): cls
    for cls in (
        TenantCreated,
        TenantProvisioned,
        TenantSuspended,
        TenantResumed,
        TenantTierChanged,
        TenantDeletionRequested,
        TenantDeleted,
        QuotaThresholdReached,
        DocumentIndexed,
        DocumentFailed,
        ConfigChanged,
        KeyCreated,
        KeyRevoked,
        InvoiceIssued,
        InvoicePaid,
        InvoicePaymentFailed,
        ExportReady,
    )
}


class UnknownEvent(ValueError):
    pass


def to_entry(event: PlatformEvent, bus_name: str) -> dict[str, Any]:
    """The PutEvents entry for an event."""
    return {"Source": SOURCE, "DetailType": event.detail_type(), "Detail": event.model_dump_json(), "EventBusName": bus_name}


def parse(detail_type: str, detail: dict[str, Any] | str) -> PlatformEvent:
    """The typed event of an EventBridge delivery; refuses types and versions we do not know."""
    cls = EVENT_TYPES.get(detail_type)
    if cls is None:
        raise UnknownEvent(f"unknown event type {detail_type!r}")
    if isinstance(detail, str):
        return cls.model_validate_json(detail)
    return cls.model_validate(detail)


def eventbridge_envelope(event: PlatformEvent, bus_name: str, region: str = "us-east-1", account: str = "000000000000") -> dict[str, Any]:
    """The event as EventBridge hands it to a Lambda target (the local dispatcher builds these)."""
    return {
        "version": "0",
        "id": event.event_id,
        "detail-type": event.detail_type(),
        "source": SOURCE,
        "account": account,
        "time": event.occurred_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [],
        "detail": event.model_dump(mode="json"),
        "event-bus-name": bus_name,
    }
