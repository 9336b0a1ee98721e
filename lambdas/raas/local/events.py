"""Plays Lambda's SQS event source for the local platform: queue -> handler, partial failures, DLQ.

S3 (moto) sends `ObjectCreated` notifications to the ingest queue exactly as the deployed
bucket does; this pump long-polls that queue and calls the real ingest handler with the
same event shape Lambda would, deleting only the messages the handler reports as done.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from raas.adapters.aws import client
from raas.adapters.objects import tenant_of_object_key
from raas.domain.documents import SOURCE_OBJECT_SUFFIX
from raas.local.containers import FunctionPool, default_tenant_share, env_int
from raas.local.invocation import QueuedMessage, lambda_context, sqs_event
from raas.services.ingest import INGEST_BATCH_SIZE

logger = Logger(service="raas")

INGEST_QUEUE = "raas-ingest"
INGEST_DLQ = "raas-ingest-dlq"
MAX_RECEIVES = 5
VISIBILITY_TIMEOUT_SECONDS = 30
INGEST_WORKERS_ENV = "RAAS_LOCAL_INGEST_WORKERS"
INGEST_TENANT_WORKERS_ENV = "RAAS_LOCAL_INGEST_TENANT_WORKERS"
DEFAULT_INGEST_WORKERS = 4


def ensure_ingest_queue(bucket: str) -> str:
    """The queue (with its DLQ) and the bucket notification that feeds it; returns the queue URL."""
    sqs, s3 = client("sqs"), client("s3")
    dlq_url = sqs.create_queue(QueueName=INGEST_DLQ)["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = f'{{"deadLetterTargetArn": "{dlq_arn}", "maxReceiveCount": "{MAX_RECEIVES}"}}'
    attributes = {"VisibilityTimeout": str(VISIBILITY_TIMEOUT_SECONDS), "RedrivePolicy": redrive}
    queue_url = sqs.create_queue(QueueName=INGEST_QUEUE, Attributes=attributes)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": queue_arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {
                        "Key": {"FilterRules": [{"Name": "prefix", "Value": "tenants/"}, {"Name": "suffix", "Value": SOURCE_OBJECT_SUFFIX}]}
                    },
                }
            ]
        },
    )
    return str(queue_url)


def tenant_of_message(body: str) -> str | None:
    """The tenant whose document an S3 notification is about (from the object key), else None."""
    try:
        records = json.loads(body).get("Records") or []
        key = unquote_plus(str(records[0]["s3"]["object"]["key"]))
    except (ValueError, AttributeError, LookupError, TypeError):
        return None
    located = tenant_of_object_key(key)
    return located[0] if located else None


@dataclass
class _Waiting:
    message: dict[str, Any]
    tenant: str
    received_at: float


class _TenantBacklog:
    """Received messages waiting for a worker, one line per tenant, served round-robin.

    This is what an SQS fair queue does on the service side (it prefers quiet tenants' messages
    over a tenant that holds a large share of the in-flight ones), done here by the pump, which
    can see every message it has read ahead:
    https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-fair-queues.html
    A tenant with `tenant_share` messages in flight waits, so one tenant's slow documents hold at
    most that many workers and the others stay free for everyone else."""

    def __init__(self, tenant_share: int):
        self.tenant_share = tenant_share
        self._lines: dict[str, deque[_Waiting]] = {}
        self._turns: deque[str] = deque()  # tenants with waiting messages, next one first
        self._in_flight: dict[str, int] = {}
        self._ids: set[str] = set()
        self._changed = threading.Condition()
        self._closed = False

    def __len__(self) -> int:
        with self._changed:
            return sum(len(line) for line in self._lines.values())

    def add(self, message: dict[str, Any], tenant: str) -> bool:
        """Whether the message now waits here: not once the backlog is closed (`drop_all`)."""
        with self._changed:
            if self._closed:
                return False
            if message["MessageId"] in self._ids:  # read again after its visibility lapsed: keep the newest handle
                for line in self._lines.values():
                    for waiting in line:
                        if waiting.message["MessageId"] == message["MessageId"]:
                            waiting.message = message
                return True
            self._ids.add(message["MessageId"])
            if tenant not in self._lines:
                self._lines[tenant] = deque()
                self._turns.append(tenant)
            self._lines[tenant].append(_Waiting(message, tenant, time.monotonic()))
            self._changed.notify_all()
            return True

    def take(self, stop: threading.Event, poll_seconds: float = 0.2, batch_size: int = 1) -> list[_Waiting]:
        """The next tenant's waiting messages (up to `batch_size`, one invocation's batch), by tenant round-robin,
        skipping tenants at their share of invocations; an empty list once stopped."""
        with self._changed:
            while not stop.is_set():
                for _ in range(len(self._turns)):
                    tenant = self._turns[0]
                    self._turns.rotate(-1)
                    if self._in_flight.get(tenant, 0) >= self.tenant_share:
                        continue
                    line = self._lines[tenant]
                    taken = [line.popleft() for _ in range(min(batch_size, len(line)))]
                    if not line:
                        del self._lines[tenant]
                        self._turns.remove(tenant)
                    self._in_flight[tenant] = self._in_flight.get(tenant, 0) + 1
                    return taken
                self._changed.wait(poll_seconds)
        return []

    def wake(self) -> None:
        """Wakes every worker waiting in `take` (at stop: they return at once, not after their poll)."""
        with self._changed:
            self._changed.notify_all()

    def done(self, taken: list[_Waiting]) -> None:
        """One invocation's batch (all of one tenant, from `take`) is over."""
        with self._changed:
            self._ids.difference_update(waiting.message["MessageId"] for waiting in taken)
            tenant = taken[0].tenant
            self._in_flight[tenant] -= 1
            if not self._in_flight[tenant]:
                del self._in_flight[tenant]
            self._changed.notify_all()

    def discard(self, waiting: _Waiting) -> None:
        """Forgets a message that is no longer this pump's to deliver (deleted, or visible again)."""
        with self._changed:
            line = self._lines.get(waiting.tenant)
            if line is None or waiting not in line:
                return
            line.remove(waiting)
            if not line:
                del self._lines[waiting.tenant]
                self._turns.remove(waiting.tenant)
            self._ids.discard(waiting.message["MessageId"])

    def waiting_since(self, before: float) -> list[_Waiting]:
        with self._changed:
            return [w for line in self._lines.values() for w in line if w.received_at < before]

    def drop_all(self) -> list[_Waiting]:
        """Everything waiting, taken out; the backlog takes nothing more."""
        with self._changed:
            self._closed = True
            waiting = [w for line in self._lines.values() for w in line]
            self._lines.clear()
            self._turns.clear()
            self._ids.difference_update(w.message["MessageId"] for w in waiting)
            return waiting


def _handler_module(handler: Callable[..., Any]) -> ModuleType | None:
    """The module whose `handler` this is (the container image further containers copy), if any."""
    module = sys.modules.get(getattr(handler, "__module__", "") or "")
    return module if module is not None and getattr(module, "handler", None) is handler else None


class QueuePump:
    """Lambda's SQS event source mapping, locally.

    `pump_once`/`drain` deliver batches in the caller's thread (tests wait for ingestion with them).
    `start` runs the platform's pump: one thread reads the queue ahead into a per-tenant backlog and
    `workers` threads (RAAS_LOCAL_INGEST_WORKERS, default 4) each invoke the function in a container
    of its own, with up to `INGEST_BATCH_SIZE` messages of one tenant (the deployed event source's
    batch size: its documents share an embedding call), taking tenants in turn, a tenant holding at most
    `tenant_share` of them (RAAS_LOCAL_INGEST_TENANT_WORKERS, default half). So a tenant's large
    document no longer delays another tenant's small one: in AWS the event source mapping scales
    out (max_concurrency in stacks/api.py) and an SQS fair queue orders delivery by tenant
    (docs/performance.md, "Fairness between tenants")."""

    def __init__(
        self,
        queue_url: str,
        handler: Any,
        function_name: str = "raas-ingest",
        wait_seconds: int = 1,
        workers: int | None = None,
        tenant_share: int | None = None,
        batch_size: int = INGEST_BATCH_SIZE,
    ):
        self.queue_url = queue_url
        self.batch_size = batch_size
        self.handler = handler
        self.function_name = function_name
        self.wait_seconds = wait_seconds
        module = _handler_module(handler)
        if module is None:  # not a module's entry point, so it cannot be copied: one container
            module = ModuleType(f"{function_name}-container")
            module.handler = handler  # type: ignore[attr-defined]
            workers = 1
        self.workers = max(1, workers if workers is not None else env_int(INGEST_WORKERS_ENV, DEFAULT_INGEST_WORKERS))
        share = tenant_share if tenant_share is not None else env_int(INGEST_TENANT_WORKERS_ENV, default_tenant_share(self.workers))
        self.tenant_share = max(1, min(self.workers, share))
        # Workers wait for their own container rather than being throttled: an event source mapping
        # keeps messages in the queue while the function is at its concurrency.
        self.containers = FunctionPool(function_name, module, concurrency=self.workers, tenant_share=self.workers, wait_seconds=3600.0)
        self._backlog = _TenantBacklog(self.tenant_share)
        self._stop = threading.Event()
        self._reader: threading.Thread | None = None
        self._ingesters: list[threading.Thread] = []

    def _event(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        return sqs_event(
            INGEST_QUEUE,
            [
                QueuedMessage(m["MessageId"], m["Body"], m["ReceiptHandle"], m.get("Attributes", {}), m.get("MD5OfBody", ""))
                for m in messages
            ],
        )

    def _receive(self, wait_seconds: int, most: int = 10) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = (
            client("sqs")
            .receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=most, WaitTimeSeconds=wait_seconds, AttributeNames=["All"])
            .get("Messages", [])
        )
        return messages

    def _deliver(self, messages: list[dict[str, Any]], tenant: str) -> int:
        """One invocation in a container; deletes what the function reports done; returns how many."""
        try:
            with self.containers.container(tenant) as container:
                result = container.handler(self._event(messages), lambda_context(self.function_name))
        except Exception:  # the whole batch failed: every message returns after its visibility timeout
            logger.exception("ingest batch failed")
            return 0
        failed = {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])}
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            client("sqs").delete_message_batch(
                QueueUrl=self.queue_url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)]
            )
        return len(done)

    def pump_once(self, wait_seconds: int | None = None) -> int:
        """Delivers one batch (up to `batch_size` messages) in this thread; returns how many were handled successfully."""
        received = self._receive(self.wait_seconds if wait_seconds is None else wait_seconds, self.batch_size)
        return self._deliver(received, "batch") if received else 0

    def drain(self, max_batches: int = 100) -> int:
        """Delivers until the queue is empty (tests use this to wait for ingestion)."""
        total = 0
        for _ in range(max_batches):
            handled = self.pump_once(wait_seconds=0)
            if handled == 0 and not self.holds_messages():
                break
            total += handled
        return total

    def holds_messages(self, *, in_flight: bool = False) -> bool:
        """Whether the queue has messages waiting (and, with `in_flight`, received but not yet deleted)."""
        names = ["ApproximateNumberOfMessages"] + (["ApproximateNumberOfMessagesNotVisible"] if in_flight else [])
        attributes = client("sqs").get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=names)["Attributes"]
        return any(int(attributes.get(name, "0")) for name in names)

    def start(self) -> None:
        self._reader = threading.Thread(target=self._read_ahead, name="raas-ingest-pump", daemon=True)
        self._ingesters = [threading.Thread(target=self._work, name=f"raas-ingest-worker-{i}", daemon=True) for i in range(self.workers)]
        for thread in (self._reader, *self._ingesters):
            thread.start()

    def _read_ahead(self) -> None:
        """Keeps the backlog filled (up to ten messages a worker) and its messages invisible to others."""
        while not self._stop.is_set():
            try:
                self._keep_invisible()
                if len(self._backlog) >= 10 * self.workers:
                    self._stop.wait(0.2)
                    continue
                received = self._receive(self.wait_seconds)
                refused = [m for m in received if not self._backlog.add(m, tenant_of_message(m.get("Body", "")) or "-")]
                if refused:  # the pump stopped during this poll: they go back to the queue at once
                    self._return_to_queue(refused)
                if not received and not self.wait_seconds:
                    # Short polling found nothing: pause instead of spinning, which would take the
                    # interpreter from the workers (long polling, wait_seconds >= 1, waits in SQS).
                    self._stop.wait(0.05)
            except Exception:
                logger.exception("ingest pump error")
                self._stop.wait(1)

    def _keep_invisible(self) -> None:
        """A message waiting in the backlog is still in flight for SQS: before its visibility timeout
        lapses, extend it, or SQS would hand it out again while it waits here."""
        # https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-visibility-timeout.html
        for waiting in self._backlog.waiting_since(time.monotonic() - VISIBILITY_TIMEOUT_SECONDS / 2):
            try:
                client("sqs").change_message_visibility(
                    QueueUrl=self.queue_url, ReceiptHandle=waiting.message["ReceiptHandle"], VisibilityTimeout=VISIBILITY_TIMEOUT_SECONDS
                )
            except ClientError as exc:
                # The handle is stale: the message was deleted or became visible again (SQS answers
                # ReceiptHandleIsInvalid or MessageNotInflight). It is no longer ours to deliver; one
                # such message must not stop the pump from keeping the others (a redelivery re-reads it).
                logger.warning("dropping a read-ahead message", extra={"error": exc.response["Error"]["Code"]})
                self._backlog.discard(waiting)
                continue
            waiting.received_at = time.monotonic()

    def _work(self) -> None:
        while not self._stop.is_set():
            taken = self._backlog.take(self._stop, batch_size=self.batch_size)
            if not taken:
                return
            try:
                self._deliver([waiting.message for waiting in taken], taken[0].tenant)
            except Exception:
                logger.exception("ingest worker error")
            finally:
                self._backlog.done(taken)

    def stop(self) -> None:
        """Lets the ingests in flight finish; what was read ahead but never started goes back to the queue at once,
        for the next pump. The reading thread is not waited for: its long poll (up to `wait_seconds`) returns what
        it receives to the queue itself, as the backlog is closed by then."""
        self._stop.set()
        self._backlog.wake()
        for thread in self._ingesters:
            thread.join(timeout=10)
        self._return_to_queue([waiting.message for waiting in self._backlog.drop_all()])
        if self._reader is not None:  # short polls end at once: waited for; a long poll (up to a second) is not
            self._reader.join(timeout=0.05 if self.wait_seconds else 10)

    def _return_to_queue(self, messages: list[dict[str, Any]]) -> None:
        for message in messages:
            try:
                handle = message["ReceiptHandle"]
                client("sqs").change_message_visibility(QueueUrl=self.queue_url, ReceiptHandle=handle, VisibilityTimeout=0)
            except Exception:
                logger.exception("could not return a message to the queue")
