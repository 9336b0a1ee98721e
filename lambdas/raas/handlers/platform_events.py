"""What the platform-bus functions share: parse the EventBridge delivery into its typed event,
log with the tenant id, and run the work at most once per (tenant, event) with Powertools
idempotency. A failed run leaves no record, so EventBridge's retry runs it again."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger

from raas.bootstrap import services
from raas.domain.events import PlatformEvent, parse

logger = Logger(service="raas")

# The key names the tenant as well as the event: two tenants can never share a record.
IDEMPOTENCY_KEY = "[tenant_id, event_id, detail_type]"


def platform_event_handler(function: str, work: Callable[[PlatformEvent], str]) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    def run(delivery: dict[str, Any]) -> dict[str, Any]:
        event = parse(delivery["detail_type"], delivery["detail"])
        outcome = work(event)
        logger.info("event handled", extra={"detail_type": delivery["detail_type"], "outcome": outcome})
        return {"outcome": outcome}

    @logger.inject_lambda_context(clear_state=True)
    def handler(envelope: dict[str, Any], context: Any) -> dict[str, Any]:
        detail_type = str(envelope.get("detail-type", ""))
        event = parse(detail_type, envelope.get("detail") or {})  # unknown types and bad payloads fail loudly (-> DLQ)
        logger.append_keys(tenant_id=event.tenant_id, event_id=event.event_id)
        # Imported with the first event, as the API functions load it with the first keyed request: its
        # DynamoDB layer imports the whole of boto3, which the function's first client loads anyway.
        from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function

        config = IdempotencyConfig(event_key_jmespath=IDEMPOTENCY_KEY, expires_after_seconds=7 * 24 * 3600)
        config.register_lambda_context(context)
        once = idempotent_function(
            run,
            data_keyword_argument="delivery",
            persistence_store=services().idempotency_store(function),
            config=config,
            key_prefix=f"raas-{function}",
        )
        delivery = {
            "tenant_id": event.tenant_id,
            "event_id": event.event_id,
            "detail_type": detail_type,
            "detail": event.model_dump(mode="json"),
        }
        result: dict[str, Any] = once(delivery=delivery)
        return result

    return handler
