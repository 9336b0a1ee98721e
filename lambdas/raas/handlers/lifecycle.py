"""Lifecycle function (platform bus): provisions, suspends, resumes, re-tiers and deletes tenants."""

from __future__ import annotations

from raas import wiring
from raas.domain.events import PlatformEvent
from raas.handlers.platform_events import platform_event_handler


def _handle(event: PlatformEvent) -> str:
    return wiring.lifecycle_service().handle(event)


handler = platform_event_handler("lifecycle", _handle)
