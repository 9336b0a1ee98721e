"""Metering function (schedules): daily storage snapshot and grace enforcement, monthly
invoices for the period just closed, and draining the billing outbox to Stripe."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger

from raas.adapters.usage import BufferedUsageRecorder
from raas.bootstrap import services
from raas.domain.usage import period_of, previous_period

logger = Logger(service="raas")


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    action = str(event.get("action", ""))
    now = datetime.now(UTC)
    billing = services().billing_service
    if action == "daily":
        result: dict[str, Any] = {"storage_snapshots": services().metering_service.snapshot_storage(now)}
        result["suspended_for_payment"] = billing.enforce_grace() if billing else 0
    elif action == "invoice":
        period = str(event.get("period") or previous_period(period_of(now)))
        result = {"period": period, "invoices": services().metering_service.close_period(period)}
    elif action == "replay_usage":
        recorder = services().usage_recorder
        result = {"replayed": recorder.replay() if isinstance(recorder, BufferedUsageRecorder) else 0}
    elif action == "drain_outbox":
        drained = billing.drain_outbox() if billing else None
        result = {"sent": drained.sent, "skipped": drained.skipped, "failed": drained.failed} if drained else {"billing": "not configured"}
    else:
        raise ValueError(f"unknown metering action {action!r}")
    logger.info("metering run", extra={"action": action, **result})
    return result
