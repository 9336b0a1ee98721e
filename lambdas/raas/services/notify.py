"""Best-effort announcements on the platform bus for what tenants may subscribe to (webhooks).

The work is done and recorded before its event is published; a bus that is down must not undo or
fail it (as QuotaGuard already treats its threshold events), so a failed publish is logged, not
raised. The publisher is resolved on first publish (`Deferred`), so a service that never announces
anything (the authorizer's key store, a CLI) never needs a bus.
"""

from __future__ import annotations

from collections.abc import Callable

from aws_lambda_powertools import Logger

from raas.domain.events import PlatformEvent
from raas.domain.ports import EventPublisher

logger = Logger(service="raas")


class Deferred:
    """An EventPublisher built when the first event is published."""

    def __init__(self, build: Callable[[], EventPublisher]):
        self._build = build

    def publish(self, event: PlatformEvent) -> None:
        self._build().publish(event)


def announce(events: EventPublisher | None, event: PlatformEvent) -> None:
    """Publishes `event`; a failure is logged and swallowed (the change it reports has happened)."""
    if events is None:
        return
    try:
        events.publish(event)
    except Exception:  # an announcement never fails the work it reports
        logger.exception("could not publish an event", extra={"tenant_id": event.tenant_id, "detail_type": event.detail_type()})
