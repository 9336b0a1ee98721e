"""The API's function groups: one Lambda each. The local platform and the CDK stacks both read this."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import ModuleType
from typing import Any

# function group -> module exposing `router`, `app` and `handler`
API_HANDLERS: dict[str, str] = {
    "health": "raas.handlers.health",
    "openapi": "raas.handlers.openapi",
    "tenants": "raas.handlers.tenants",
    "keys": "raas.handlers.keys",
    "config": "raas.handlers.config",
    "documents": "raas.handlers.documents",
    "query": "raas.handlers.query",
    "account": "raas.handlers.account",
    "billing": "raas.handlers.billing",
    "feedback": "raas.handlers.feedback",
    "conversations": "raas.handlers.conversations",
    "webhooks": "raas.handlers.webhooks",
}

# Functions driven by events rather than HTTP: name -> module exposing `handler`.
EVENT_HANDLERS: dict[str, str] = {
    "ingest": "raas.handlers.ingest",  # S3 -> SQS
    "lifecycle": "raas.handlers.lifecycle",  # platform bus
    "audit": "raas.handlers.audit_events",  # platform bus
    "metering": "raas.handlers.metering",  # schedules
    "webhook_delivery": "raas.handlers.webhook_delivery",  # platform bus (through SQS in AWS) + retry schedule
}

# Functions the platform bus reaches through an SQS queue (rule -> queue -> function), with the event source's
# batch size: stacks/lifecycle.py says why webhooks go this way; the local bus hands them over in batches as well.
QUEUED_FUNCTIONS: dict[str, int] = {"webhook_delivery": 10}

# The one routing table of the platform bus: event type -> the functions that take it.
# The CDK app generates one rule per (function, its event types) from this, and the local
# platform dispatches through it, so the two cannot drift. TenantDeleted has no function
# target: it is for the operator's own integrations (a rule of theirs on the bus).
EVENT_ROUTES: dict[str, tuple[str, ...]] = {
    "TenantCreated": ("lifecycle", "audit"),
    "TenantProvisioned": ("audit",),
    "TenantSuspended": ("lifecycle", "audit", "webhook_delivery"),
    "TenantResumed": ("lifecycle", "audit", "webhook_delivery"),
    "TenantTierChanged": ("lifecycle", "audit", "webhook_delivery"),
    "TenantDeletionRequested": ("lifecycle",),
    "TenantDeleted": (),
    "QuotaThresholdReached": ("audit", "webhook_delivery"),
    # Tenant webhooks (domain/webhooks.py): the services already audit these, so only delivery takes them.
    "DocumentIndexed": ("webhook_delivery",),
    "DocumentFailed": ("webhook_delivery",),
    "ConfigChanged": ("webhook_delivery",),
    "KeyCreated": ("webhook_delivery",),
    "KeyRevoked": ("webhook_delivery",),
    "InvoiceIssued": ("webhook_delivery",),
    "InvoicePaid": ("webhook_delivery",),
    "InvoicePaymentFailed": ("webhook_delivery",),
    "ExportReady": ("webhook_delivery",),
}

# Scheduled invocations: name -> (function, schedule expression, input). UTC.
SCHEDULES: dict[str, tuple[str, str, dict[str, str]]] = {
    "daily-metering": ("metering", "cron(10 0 * * ? *)", {"action": "daily"}),
    "monthly-invoicing": ("metering", "cron(30 0 1 * ? *)", {"action": "invoice"}),
    "drain-billing-outbox": ("metering", "rate(15 minutes)", {"action": "drain_outbox"}),
    "replay-buffered-usage": ("metering", "rate(5 minutes)", {"action": "replay_usage"}),
    "webhook-retries": ("webhook_delivery", "rate(1 minute)", {"action": "retry_due"}),
}

AUTHORIZER = "raas.handlers.authorizer"

# (method, path template) served without the authorizer
PUBLIC_ROUTES: frozenset[tuple[str, str]] = frozenset(
    {
        ("GET", "/v1/health"),
        ("GET", "/v1/openapi.json"),
        ("POST", "/v1/pricing/estimate"),
        ("POST", "/v1/billing/stripe/webhook"),  # Stripe signs it; the handler verifies the signature
    }
)


def load(group: str) -> ModuleType:
    return importlib.import_module(API_HANDLERS[group])


def load_event_handler(function: str) -> Callable[[dict[str, Any], Any], Any]:
    handler: Callable[[dict[str, Any], Any], Any] = importlib.import_module(EVENT_HANDLERS[function]).handler
    return handler


def routes_by_function() -> dict[str, list[str]]:
    """function -> the event types routed to it (what one EventBridge rule matches)."""
    targets: dict[str, list[str]] = {}
    for detail_type, functions in EVENT_ROUTES.items():
        for function in functions:
            targets.setdefault(function, []).append(detail_type)
    return targets
