"""Public billing routes: the pricing calculator and Stripe's webhook (signature-verified)."""

from __future__ import annotations

import json

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler.router import Router

from raas.bootstrap import services
from raas.domain.errors import BadRequest, ServiceUnavailable
from raas.domain.pricing import BillableUsage, Quote, quote
from raas.handlers.api import lambda_handler, make_app, responses
from raas.handlers.schemas import EstimateRequest, WebhookAck

logger = Logger(service="raas")
router = Router()


@router.post(
    "/v1/pricing/estimate", summary="Price a month of usage on a tier", tags=["billing"], responses=responses(200, Quote, "Lines and total")
)
def estimate(body: EstimateRequest) -> Quote:
    usage = BillableUsage(queries=body.queries, storage_gb=body.storage_gb, api_calls=body.api_calls)
    return quote(body.tier, usage, body.annual)


@router.post(
    "/v1/billing/stripe/webhook",
    summary="Stripe webhook: payment failed / invoice paid",
    tags=["billing"],
    responses=responses(200, WebhookAck, "Handled"),
)
def stripe_webhook() -> WebhookAck:
    secret = services().provider_key("stripe_webhook")
    service = services().billing_service
    if not secret or service is None:
        raise ServiceUnavailable("billing is not configured on this deployment", code="billing_not_configured")
    from raas.adapters.stripe_billing import WebhookTimestampInFuture, verify_webhook

    event = app.current_event
    raw = event.decoded_body or ""
    try:
        verify_webhook(raw.encode("utf-8"), event.headers.get("Stripe-Signature") or event.headers.get("stripe-signature"), secret)
    except WebhookTimestampInFuture as exc:
        raise BadRequest(f"webhook timestamp is not valid: {exc}", code="webhook_timestamp_in_future") from None
    except ValueError as exc:
        raise BadRequest(f"webhook signature is not valid: {exc}", code="invalid_signature") from None
    try:
        payload = json.loads(raw)
    except ValueError:
        raise BadRequest("webhook body is not JSON", code="invalid_json") from None
    outcome = service.handle_webhook(payload)
    logger.info("stripe webhook", extra={"type": payload.get("type"), "outcome": outcome})
    return WebhookAck(received=True, outcome=outcome)


app = make_app()
app.include_router(router)
handler = lambda_handler(app)
