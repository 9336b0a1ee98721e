"""Publishes platform events to the EventBridge bus, retrying entries EventBridge did not accept."""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools import Logger

from raas.adapters.dynamo import storage_errors
from raas.domain.errors import ServiceUnavailable
from raas.domain.events import PlatformEvent, to_entry

logger = Logger(service="raas")

ATTEMPTS = 4


class EventBridgePublisher:
    def __init__(self, events: Any, bus_name: str, sleep: Any = time.sleep):
        self.events = events
        self.bus_name = bus_name
        self._sleep = sleep

    def publish(self, event: PlatformEvent) -> None:
        entry = to_entry(event, self.bus_name)
        for attempt in range(ATTEMPTS):
            with storage_errors("the event bus"):
                result = self.events.put_events(Entries=[entry])
            if not result.get("FailedEntryCount"):
                logger.info("event published", extra={"tenant_id": event.tenant_id, "detail_type": event.detail_type()})
                return
            failure = result["Entries"][0]
            logger.warning(
                "event not accepted; retrying",
                extra={"tenant_id": event.tenant_id, "error": failure.get("ErrorCode"), "attempt": attempt + 1},
            )
            self._sleep(0.1 * 2**attempt)
        raise ServiceUnavailable("the event bus did not accept the event; try again", code="event_bus_unavailable")
