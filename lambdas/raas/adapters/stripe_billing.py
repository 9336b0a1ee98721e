"""Stripe behind the BillingProvider port: customers and Billing meter events.

The stripe SDK loads only here (never in a handler that does not bill). Every call that
creates something carries an idempotency key or identifier derived from our own ids, so a
retry after a timeout cannot make a second customer or count usage twice.
"""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools import Logger

from raas.domain.errors import ServiceUnavailable

logger = Logger(service="raas")

# Our usage counter -> the Stripe meter's event name, and how to scale the value to the meter's unit.
METER_EVENTS: dict[str, tuple[str, int]] = {
    "queries": ("raas_queries", 1),
    "api_calls": ("raas_api_calls", 1),
    "storage_byte_days": ("raas_storage_mb_days", 1_000_000),
}


class StripeBilling:
    def __init__(self, api_key: str, api_base: str | None = None, max_network_retries: int = 2, timeout_seconds: float = 20.0):
        import stripe

        self._stripe = stripe
        http_client = stripe.RequestsClient(timeout=timeout_seconds) if _has_requests() else None
        kwargs: dict[str, Any] = {"max_network_retries": max_network_retries}
        if api_base:
            kwargs["base_addresses"] = {"api": api_base, "meter_events": api_base}
        if http_client is not None:
            kwargs["http_client"] = http_client
        self.client = stripe.StripeClient(api_key, **kwargs)

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except self._stripe.InvalidRequestError:
            raise
        except self._stripe.StripeError as exc:
            logger.warning("stripe call failed", extra={"what": what, "error": type(exc).__name__})
            raise ServiceUnavailable(f"the payment provider is unavailable ({what}); try again", code="billing_unavailable") from exc

    def ensure_customer(self, tenant_id: str, name: str) -> str:
        customer = self._call(
            "create customer",
            self.client.v1.customers.create,
            params={"name": name, "metadata": {"raas_tenant_id": tenant_id}},
            options={"idempotency_key": f"raas-customer-{tenant_id}"},
        )
        return str(customer.id)

    def archive_customer(self, customer_id: str) -> bool:
        """Deletes the customer: Stripe cancels its subscriptions and keeps its invoices and payments."""
        try:
            self._call("delete customer", self.client.v1.customers.delete, customer_id)
        except self._stripe.InvalidRequestError as exc:
            if getattr(exc, "http_status", None) == 404:
                return False
            raise
        return True

    def tenant_of_customer(self, customer_id: str) -> str | None:
        try:
            customer = self._call("read customer", self.client.v1.customers.retrieve, customer_id)
        except self._stripe.InvalidRequestError:
            return None
        metadata = customer.to_dict().get("metadata") or {}
        tenant_id = metadata.get("raas_tenant_id")
        return str(tenant_id) if tenant_id else None

    def send_meter_event(self, customer_id: str, metric: str, value: int, identifier: str, timestamp: int) -> None:
        event_name, unit = METER_EVENTS[metric]
        scaled = value // unit
        if scaled <= 0:
            return
        self._call(
            "meter event",
            self.client.v1.billing.meter_events.create,
            params={
                "event_name": event_name,
                "identifier": identifier,
                "timestamp": timestamp,
                "payload": {"stripe_customer_id": customer_id, "value": str(scaled)},
            },
            options={"idempotency_key": f"raas-meter-{identifier}"},
        )


def _has_requests() -> bool:
    try:
        import requests  # noqa: F401
    except ImportError:
        return False
    return True


class WebhookTimestampInFuture(ValueError):
    """A validly signed webhook whose timestamp is ahead of our clock by more than the skew allowed."""


def verify_webhook(
    payload: bytes,
    signature: str | None,
    secret: str,
    tolerance_seconds: int = 300,
    future_skew_seconds: int = 300,
    now: float | None = None,
) -> None:
    """Raises ValueError unless `signature` is Stripe's valid, recent signature of `payload`.

    The SDK refuses only timestamps older than the tolerance (Stripe's default is five minutes:
    https://docs.stripe.com/webhooks#replay-attacks); a signed timestamp in the future would stay
    "fresh", and replayable, until that time has passed. So one more than `future_skew_seconds`
    ahead of our clock is refused too."""
    import stripe

    if not signature:
        raise ValueError("missing Stripe-Signature header")
    try:
        stripe.WebhookSignature.verify_header(payload.decode("utf-8"), signature, secret, tolerance_seconds)
    except (stripe.SignatureVerificationError, UnicodeDecodeError) as exc:
        raise ValueError(str(exc)) from None
    # The header parsed and its signature matched, so its first `t=` is the signed timestamp (as the SDK reads it).
    signed_at = next(int(part[2:]) for part in signature.split(",") if part.startswith("t="))
    current = time.time() if now is None else now
    if signed_at > current + future_skew_seconds:
        raise WebhookTimestampInFuture(f"the signature's timestamp is {signed_at - int(current)} seconds in the future")
