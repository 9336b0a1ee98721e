"""Lifecycle function (platform bus): provisions, suspends, resumes, re-tiers and deletes tenants."""

from __future__ import annotations

from raas.bootstrap import services
from raas.domain.events import PlatformEvent
from raas.handlers.platform_events import platform_event_handler


def _handle(event: PlatformEvent) -> str:
    return services().lifecycle_service.handle(event)


handler = platform_event_handler("lifecycle", _handle)
