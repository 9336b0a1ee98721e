"""moto's SQS at queue depth: the same answers, without walking every queued message several times a request.

A corpus uploaded at once queues a message a document, and `raas local`'s pump reads them while more
arrive. moto 5.2.5 (`moto/sqs/models.py`) made each request cost time proportional to the queue's depth,
several times over:

- `Queue.attributes` (a property) counts the visible, delayed and in-flight messages, one pass over the
  queue each, reading the clock twice a message, whatever attribute the caller wants;
- `SQSBackend.get_queue_attributes` with named attributes reads `queue.attributes` two or three times a
  name, `receive_message` calls it once for every message it returns (for `MessageRetentionPeriod`),
  and `send_message` reads `queue.attributes` once a message (for `ContentBasedDeduplication`);
- `Queue.messages` reads the clock twice a message; `Queue.delete_message` walks the queue twice, building
  a list of receipt handles for every message.

Measured (bench/queue_depth.py): a receive of ten messages from 5,000 queued took 183 ms, deleting ten
28 ms, sending ten 65 ms; from 100 queued, 18, 4.6 and 8.3 ms.

The replacements keep moto's logic and its answers, attribute by attribute and in the same order:

- the three counts are made in one pass with one clock reading, and only when an attribute asked for is
  one of them (`queue_attributes`); `Queue.attributes` still returns every attribute, counts included;
- `get_queue_attributes` validates names as moto does and computes only the names asked for;
- `Queue.messages` reads the clock once; `Queue.delete_message` walks the queue once.

tests/integration/test_moto_sqs.py plays the same scenario (standard and FIFO queues, delays, in-flight
messages, redelivery, deletes of live, deleted and unknown handles, every attribute) against moto as is
and patched and compares every answer. `install()` is called by `raas.local.moto_patches.install()`;
`uninstall()` puts moto's own functions back (the test and the benchmark compare the two).
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections.abc import Collection
from typing import Any

_APPROXIMATE_COUNTS = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesDelayed",
    "ApproximateNumberOfMessagesNotVisible",
)
_originals: dict[str, Any] = {}
_lock = threading.Lock()


def fast_unix_time_millis(dt: Any = None) -> float:
    """moto's `unix_time_millis()` without an argument, from `time.time()`: the same milliseconds since the
    epoch, without building two datetimes (moto's SQS reads it for every queued message on every receive)."""
    if dt is not None:
        return float(_originals["unix_time_millis"](dt))
    return time.time() * 1000.0


def message_counts(queue: Any) -> dict[str, int]:
    """moto's three approximate counts (`Queue.approximate_number_of_messages*`: visible and not delayed;
    delayed; not visible) in one pass, at one instant."""
    from moto.sqs import models as sqs_models

    now = sqs_models.unix_time_millis()
    ready = delayed = in_flight = 0
    for message in queue._messages:
        visible = now > message.visible_at
        if not visible:
            in_flight += 1
        if now < message.delayed_until:
            delayed += 1
        elif visible:
            ready += 1
    return dict(zip(_APPROXIMATE_COUNTS, (ready, delayed, in_flight), strict=True))


@functools.cache
def _field(attribute: str) -> str:
    from moto.core.utils import camelcase_to_underscores

    return str(camelcase_to_underscores(attribute))


def queue_attributes(queue: Any, wanted: Collection[str] | None = None) -> dict[str, Any]:
    """moto's `Queue.attributes`, limited to `wanted` (all when None): the same keys in the same order, the
    same values (booleans as "true"/"false", the redrive policy as JSON); the counts only if one is wanted."""
    names = list(queue.BASE_ATTRIBUTES)
    if queue.fifo_queue:
        names += queue.FIFO_ATTRIBUTES
    if queue.kms_master_key_id:
        names += queue.KMS_ATTRIBUTES
    result: dict[str, Any] = {}
    counts: dict[str, int] | None = None
    for attribute in names:
        if wanted is not None and attribute not in wanted:
            continue
        if attribute in _APPROXIMATE_COUNTS:
            counts = counts if counts is not None else message_counts(queue)
            result[attribute] = counts[attribute]
        else:
            result[attribute] = getattr(queue, _field(attribute))
    if queue.policy and (wanted is None or "Policy" in wanted):
        result["Policy"] = queue.policy
    if queue.redrive_policy and (wanted is None or "RedrivePolicy" in wanted):
        result["RedrivePolicy"] = json.dumps(queue.redrive_policy)
    for key, value in result.items():
        if isinstance(value, bool):
            result[key] = str(value).lower()
    return result


def get_queue_attributes(self: Any, queue_name: str, attribute_names: list[str]) -> dict[str, Any]:
    """moto's `SQSBackend.get_queue_attributes`: the same validation and answer, computing only what is asked."""
    from moto.sqs.exceptions import InvalidAttributeName

    queue = self.get_queue(queue_name)
    if not attribute_names:
        return {}
    valid_names = ["All", *queue.BASE_ATTRIBUTES, *queue.FIFO_ATTRIBUTES, *queue.KMS_ATTRIBUTES]
    invalid_name = next((name for name in attribute_names if name not in valid_names), None)
    if invalid_name or invalid_name == "":
        raise InvalidAttributeName(invalid_name)
    if "All" in attribute_names:
        return queue_attributes(queue)
    present = queue_attributes(queue, set(attribute_names))
    return {name: present[name] for name in attribute_names if name in present and present[name] is not None}


def _visible_messages(self: Any) -> list[Any]:
    """moto's `Queue.messages` (visible and not delayed), with the clock read once."""
    from moto.sqs import models as sqs_models

    now = sqs_models.unix_time_millis()
    return [message for message in self._messages if now > message.visible_at and not now < message.delayed_until]


def _delete_message(self: Any, receipt_handle: str) -> None:
    """moto's `Queue.delete_message` in one pass: a handle deleted before is accepted again, a handle no
    message ever had is refused, and every message that had it leaves the queue and the pending set."""
    from moto.sqs.exceptions import ReceiptHandleIsInvalid

    if receipt_handle in self.deleted_messages:
        return
    kept: list[Any] = []
    deleted: list[Any] = []
    for message in self._messages:
        had = message.receipt_handle == receipt_handle or receipt_handle in message._old_receipt_handles
        (deleted if had else kept).append(message)
    if not deleted:
        raise ReceiptHandleIsInvalid()
    for message in deleted:
        self.pending_messages.discard(message)
        self.deleted_messages.update(message.all_receipt_handles)
    self._messages = kept


def install() -> None:
    """Idempotent; raas.local.moto_patches checks moto's version before calling it."""
    from moto.sqs import models as sqs_models
    from moto.sqs.models import Queue, SQSBackend

    with _lock:
        if _originals:
            return
        _originals["unix_time_millis"] = sqs_models.unix_time_millis
        _originals["Queue.attributes"] = Queue.__dict__["attributes"]
        _originals["Queue.messages"] = Queue.__dict__["messages"]
        _originals["Queue.delete_message"] = Queue.delete_message
        _originals["SQSBackend.get_queue_attributes"] = SQSBackend.get_queue_attributes
        sqs_models.unix_time_millis = fast_unix_time_millis
        # every attribute: `wanted` defaults to all
        Queue.attributes = property(queue_attributes)  # type: ignore[assignment,method-assign]
        Queue.messages = property(_visible_messages)  # type: ignore[assignment,method-assign]
        Queue.delete_message = _delete_message  # type: ignore[method-assign]
        SQSBackend.get_queue_attributes = get_queue_attributes  # type: ignore[method-assign]


def uninstall() -> None:
    """Puts moto's own SQS functions back (the equivalence test and the benchmark run both)."""
    from moto.sqs import models as sqs_models
    from moto.sqs.models import Queue, SQSBackend

    with _lock:
        if not _originals:
            return
        sqs_models.unix_time_millis = _originals.pop("unix_time_millis")
        Queue.attributes = _originals.pop("Queue.attributes")  # type: ignore[method-assign]
        Queue.messages = _originals.pop("Queue.messages")  # type: ignore[method-assign]
        Queue.delete_message = _originals.pop("Queue.delete_message")  # type: ignore[method-assign]
        SQSBackend.get_queue_attributes = _originals.pop("SQSBackend.get_queue_attributes")  # type: ignore[method-assign]


def installed() -> bool:
    return bool(_originals)
