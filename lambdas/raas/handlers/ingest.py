"""The ingest Lambda: S3 `ObjectCreated` events, delivered through SQS (partial batch failures).

The tenant id comes from the object key, which only raas writes (`tenants/{tenant_id}/documents/
{document_id}/source`) and which the upload URL pins; keys outside that shape are ignored.
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

logger = Logger(service="raas")
processor = BatchProcessor(event_type=EventType.SQS)


def s3_records(body: str) -> list[dict[str, Any]]:
    message = json.loads(body)
    if message.get("Event") == "s3:TestEvent":
        return []
    return list(message.get("Records", []))


def handle_record(record: SQSRecord) -> None:
    for s3_record in s3_records(record.body):
        if not str(s3_record.get("eventName", "")).startswith("ObjectCreated"):
            continue
        key = unquote_plus(s3_record["s3"]["object"]["key"])
        located = tenant_of_object_key(key)
        document_id = document_of_object_key(located[1]) if located else None
        if located is None or document_id is None:
            logger.warning("ignoring an object outside the documents layout", extra={"key": key})
            continue
        tenant_id = located[0]
        # Per thread: locally several ingest workers share this module (raas.local.events).
        logger.thread_safe_append_keys(tenant_id=tenant_id, document_id=document_id)
        services().ingest_service.ingest(tenant_id, document_id)


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    logger.thread_safe_clear_keys()
    return dict(process_partial_response(event=event, record_handler=handle_record, processor=processor, context=context))
