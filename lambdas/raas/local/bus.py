"""Plays EventBridge for the local platform: rules from the same routing table the CDK app reads.

Each published event goes to every function the routing table names for its type, as the
deployed rules send it, in the envelope EventBridge uses. A target that fails is retried (as
EventBridge's retry policy does) and, after the last attempt, the event goes to a dead-letter
list an operator can inspect, as the deployed targets' DLQs keep it.

Targets that the deployed rules reach through an SQS queue (`QUEUED_TARGETS`: webhook delivery)
are asynchronous to whoever published, as in AWS: a background thread delivers them, so a slow
receiver (10 s timeout per endpoint) never holds up the API request or the ingest that published
the event. Tests that want to see deliveries at once pass `queued_targets=frozenset()`.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Logger

from raas.domain.events import PlatformEvent, eventbridge_envelope
from raas.handlers.registry import EVENT_ROUTES, load_event_handler
from raas.local.invocation import lambda_context

logger = Logger(service="raas")

BUS_NAME = "raas-local"
# In AWS: rule -> SQS -> function (stacks/lifecycle.py); the publisher never waits for these.
QUEUED_TARGETS = frozenset({"webhook_delivery"})


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
    queued_targets: frozenset[str] = QUEUED_TARGETS
    _lock: threading.RLock = field(default_factory=threading.RLock)
    # Its own lock: a publisher enqueueing must not wait behind another event's synchronous deliveries.
    _worker_lock: threading.Lock = field(default_factory=threading.Lock)
    _queue: queue.Queue[tuple[str, dict[str, Any]]] = field(default_factory=queue.Queue)
    _worker: threading.Thread | None = None

    def publish(self, event: PlatformEvent) -> None:
        envelope = eventbridge_envelope(event, BUS_NAME)
        functions = EVENT_ROUTES.get(event.detail_type(), ())
        for function in functions:
            if function in self.queued_targets:
                self._enqueue(function, envelope)
        synchronous = [function for function in functions if function not in self.queued_targets]
        if not synchronous:
            return  # nothing to wait for: never queue behind another event's synchronous targets
        with self._lock:  # one event at a time, like one rule target's ordered retries
            for function in synchronous:
                self.deliver(function, envelope)

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Whether every queued delivery was made within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)
        return not self._queue.unfinished_tasks

    def _enqueue(self, function: str, envelope: dict[str, Any]) -> None:
        with self._worker_lock:
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._drain_queue, name="raas-bus-queued", daemon=True)
                self._worker.start()
        self._queue.put((function, envelope))

    def _drain_queue(self) -> None:
        while True:
            function, envelope = self._queue.get()
            try:
                self.deliver(function, envelope)
            except Exception:  # deliver() already retries and dead-letters; the worker must live on
                logger.exception("queued event delivery failed", extra={"function": function})
            finally:
                self._queue.task_done()

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
