"""Plays EventBridge for the local platform: rules from the same routing table the CDK app reads.

Each published event goes to every function the routing table names for its type, as the
deployed rules send it, in the envelope EventBridge uses. A target that fails is retried (as
EventBridge's retry policy does) and, after the last attempt, the event goes to a dead-letter
list an operator can inspect, as the deployed targets' DLQs keep it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Logger

from raas.domain.events import PlatformEvent, eventbridge_envelope
from raas.handlers.registry import EVENT_ROUTES, load_event_handler
from raas.local.invocation import lambda_context

logger = Logger(service="raas")

BUS_NAME = "raas-local"


@dataclass
class DeadLetter:
    function: str
    envelope: dict[str, Any]
    error: str


@dataclass
class LocalEventBus:
    attempts: int = 3
    dead_letters: list[DeadLetter] = field(default_factory=list)
    delivered: list[tuple[str, str]] = field(default_factory=list)  # (function, detail-type), for tests and logs
    _lock: threading.RLock = field(default_factory=threading.RLock)

    def publish(self, event: PlatformEvent) -> None:
        envelope = eventbridge_envelope(event, BUS_NAME)
        with self._lock:  # one event at a time, like one rule target's ordered retries
            for function in EVENT_ROUTES.get(event.detail_type(), ()):
                self.deliver(function, envelope)

    def deliver(self, function: str, envelope: dict[str, Any]) -> bool:
        handler = load_event_handler(function)
        error = ""
        for attempt in range(1, self.attempts + 1):
            try:
                handler(envelope, lambda_context(f"raas-{function}"))
            except Exception as exc:  # noqa: BLE001 - a failing target is retried, then dead-lettered
                error = f"{type(exc).__name__}: {exc}"
                logger.warning("event target failed", extra={"function": function, "attempt": attempt, "error": error})
                continue
            self.delivered.append((function, envelope["detail-type"]))
            return True
        logger.error("event dead-lettered", extra={"function": function, "detail_type": envelope["detail-type"], "error": error})
        self.dead_letters.append(DeadLetter(function, envelope, error))
        return False
