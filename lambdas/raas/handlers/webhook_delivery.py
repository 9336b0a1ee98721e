"""Webhook delivery function: platform events -> the tenant's subscribed endpoints, and due retries.

It takes three shapes of input:
- an EventBridge event (the local bus calls it so, as a rule target would);
- an SQS batch whose bodies are EventBridge events (in AWS the rule targets a queue that feeds this
  function; a record that fails is reported alone and comes back, see `process_partial_response`);
- `{"action": "retry_due"}` from the retry schedule (handlers/registry.py SCHEDULES).

No Powertools idempotency here: the store makes one delivery per (endpoint, event) whatever the number
of hand-overs, and a crash leaves a pending delivery the retry schedule finishes (at least once).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from raas.bootstrap import services
from raas.domain.events import parse

if TYPE_CHECKING:
    from raas.services.webhooks import EndpointReader

logger = Logger(service="raas")
processor = BatchProcessor(event_type=EventType.SQS)


def deliver_envelope(envelope: dict[str, Any], endpoints: EndpointReader | None = None) -> int:
    event = parse(str(envelope.get("detail-type", "")), envelope.get("detail") or {})  # unknown types fail loudly (-> DLQ)
    logger.thread_safe_append_keys(tenant_id=event.tenant_id, event_id=event.event_id)
    return len(services().webhook_dispatcher.dispatch(event, endpoints))


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    logger.thread_safe_clear_keys()
    if event.get("action") == "retry_due":
        return {"retried": services().webhook_dispatcher.retry_due()}
    if "Records" in event:
        endpoints = services().webhook_dispatcher.batch_reader()  # each tenant's endpoints read once for the batch

        def record_handler(record: SQSRecord) -> None:
            deliver_envelope(json.loads(record.body), endpoints)

        return dict(process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context))
    return {"deliveries": deliver_envelope(event)}
