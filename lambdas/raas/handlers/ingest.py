"""The ingest Lambda: S3 `ObjectCreated` events, delivered through SQS (partial batch failures).

The tenant id comes from the object key, which only raas writes (`tenants/{tenant_id}/documents/
{document_id}/source`) and which the upload URL pins; keys outside that shape are ignored.

The batch's documents are ingested together (`IngestService.ingest_batch`: one embedding call per
tenant's wave); a record whose document met an error that should bring it back (transient, or a
suspended tenant) is reported as a batch item failure, and SQS delivers only that one again:
https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html
A record's `ApproximateReceiveCount` attribute (in every SQS record Lambda passes:
https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html) tells its last delivery, the queue's
maxReceiveCount (`MAX_DELIVERIES`): a transient error there fails the document instead.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from raas.adapters.objects import tenant_of_object_key
from raas.bootstrap import services
from raas.services.documents import document_of_object_key
from raas.services.ingest import MAX_DELIVERIES

logger = Logger(service="raas")
processor = BatchProcessor(event_type=EventType.SQS)


def s3_records(body: str) -> list[dict[str, Any]]:
    message = json.loads(body)
    if message.get("Event") == "s3:TestEvent":
        return []
    return list(message.get("Records", []))


def documents_of(body: str) -> list[tuple[str, str]]:
    """The (tenant id, document id) of each created object an SQS message tells of."""
    documents = []
    for s3_record in s3_records(body):
        if not str(s3_record.get("eventName", "")).startswith("ObjectCreated"):
            continue
        key = unquote_plus(s3_record["s3"]["object"]["key"])
        located = tenant_of_object_key(key)
        document_id = document_of_object_key(located[1]) if located else None
        if located is None or document_id is None:
            logger.warning("ignoring an object outside the documents layout", extra={"key": key})
            continue
        documents.append((located[0], document_id))
    return documents


def _receive_count(record: dict[str, Any]) -> int:
    try:
        return int((record.get("attributes") or {}).get("ApproximateReceiveCount", 1))
    except (TypeError, ValueError):
        return 1


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    logger.thread_safe_clear_keys()
    wanted: dict[str, list[tuple[str, str]]] = {}
    errors: dict[str, Exception] = {}  # by message id: what brings the message back (Powertools reports it failed)
    batch: list[tuple[str, str]] = []
    last_deliveries: set[int] = set()  # positions in `batch` of documents whose message is on its last delivery
    for record in event.get("Records") or []:
        try:
            documents = wanted[record["messageId"]] = documents_of(record["body"])
        except (ValueError, KeyError, TypeError, AttributeError) as exc:  # a body that is no S3 notification
            errors[record["messageId"]] = exc
            continue
        if _receive_count(record) >= MAX_DELIVERIES:
            last_deliveries.update(range(len(batch), len(batch) + len(documents)))
        batch += documents
    outcomes = services().ingest_service.ingest_batch(batch, last_deliveries)
    position = 0
    for message_id, documents in wanted.items():
        for outcome in outcomes[position : position + len(documents)]:
            if isinstance(outcome, Exception):
                errors.setdefault(message_id, outcome)
        position += len(documents)

    def handle_record(record: SQSRecord) -> None:
        if record.message_id in errors:
            raise errors[record.message_id]

    return dict(process_partial_response(event=event, record_handler=handle_record, processor=processor, context=context))
