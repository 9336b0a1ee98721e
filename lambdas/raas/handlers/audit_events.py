"""Audit function (platform bus): records lifecycle and quota events in the tenant's audit log."""

from __future__ import annotations

from raas.bootstrap import services
from raas.domain.events import PlatformEvent
from raas.handlers.platform_events import platform_event_handler

_BASE_FIELDS = {"version", "event_id", "tenant_id", "occurred_at", "actor"}


def _record(event: PlatformEvent) -> str:
    details = {k: v for k, v in event.model_dump(mode="json").items() if k not in _BASE_FIELDS}
    services().audit_log.record(event.tenant_id, event.actor, f"lifecycle.{event.detail_type()}", event.tenant_id, details)
    return "recorded"


handler = platform_event_handler("audit", _record)
