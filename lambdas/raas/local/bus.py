"""Plays EventBridge for the local platform: rules from the same routing table the CDK app reads.

Each published event goes to every function the routing table names for its type, as the
deployed rules send it, in the envelope EventBridge uses. A target that fails is retried (as
EventBridge's retry policy does) and, after the last attempt, the event goes to a dead-letter
list an operator can inspect, as the deployed targets' DLQs keep it.

Targets that the deployed rules reach through an SQS queue (`QUEUED_TARGETS`: webhook delivery)
are asynchronous to whoever published, as in AWS: a background thread delivers them, so a slow
receiver (10 s timeout per endpoint) never holds up the API request or the ingest that published
the event. As the queue's event source does, it hands the function what has queued up in batches
(up to the batch size of `QUEUED_FUNCTIONS`, as an SQS event whose bodies are the envelopes), and only
the records the function reports failed are tried again. Tests that want to see deliveries at once
pass `queued_targets=frozenset()`.
"""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Logger

from raas.domain.events import PlatformEvent, eventbridge_envelope
from raas.handlers.registry import EVENT_ROUTES, QUEUED_FUNCTIONS, load_event_handler
from raas.local.invocation import QueuedMessage, lambda_context, sqs_event

logger = Logger(service="raas")

BUS_NAME = "raas-local"
# In AWS: rule -> SQS -> function (stacks/lifecycle.py); the publisher never waits for these.
QUEUED_TARGETS = frozenset(QUEUED_FUNCTIONS)


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
            taken = [self._queue.get()]
            while len(taken) < max(QUEUED_FUNCTIONS.values()):  # what else has queued up meanwhile, as SQS batches it
                try:
                    taken.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            for function in dict.fromkeys(function for function, _ in taken):
                envelopes = [envelope for named, envelope in taken if named == function]
                size = QUEUED_FUNCTIONS.get(function, 1)
                for start in range(0, len(envelopes), size):
                    try:
                        self.deliver_batch(function, envelopes[start : start + size])
                    except Exception:  # deliver_batch() already retries and dead-letters; the worker must live on
                        logger.exception("queued event delivery failed", extra={"function": function})
            for _ in taken:
                self._queue.task_done()

    def deliver_batch(self, function: str, envelopes: list[dict[str, Any]]) -> None:
        """Invokes `function` with the envelopes as one SQS batch; what it reports failed (`batchItemFailures`), or
        the whole batch when it raises, is tried again, up to `attempts` times, then dead-lettered one by one."""
        handler = load_event_handler(function)
        pending = {uuid.uuid4().hex: envelope for envelope in envelopes}
        error = ""
        for attempt in range(1, self.attempts + 1):
            event = sqs_event(f"raas-{function}", [QueuedMessage(message_id, json.dumps(e)) for message_id, e in pending.items()])
            try:
                result = handler(event, lambda_context(f"raas-{function}"))
                failed = {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])}
                error = "the function reported the record failed" if failed else ""
            except Exception as exc:  # noqa: BLE001 - the whole batch failed: every record comes back
                failed, error = set(pending), f"{type(exc).__name__}: {exc}"
            for message_id in [m for m in pending if m not in failed]:
                self.delivered.append((function, pending.pop(message_id)["detail-type"]))
            if not pending:
                return
            logger.warning("event target failed", extra={"function": function, "attempt": attempt, "error": error, "records": len(pending)})
        for envelope in pending.values():
            logger.error("event dead-lettered", extra={"function": function, "detail_type": envelope["detail-type"], "error": error})
            self.dead_letters.append(DeadLetter(function, envelope, error))

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
