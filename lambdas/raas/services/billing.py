"""Payment provider side of billing: drain the usage outbox, act on webhooks, enforce grace."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from aws_lambda_powertools import Logger

from raas.domain.billing import Invoice, OutboxEntry
from raas.domain.errors import BadRequest, ServiceUnavailable
from raas.domain.events import InvoicePaid, InvoicePaymentFailed, PlatformEvent
from raas.domain.ports import BillingProvider, EventPublisher, TenantStore
from raas.domain.tenants import SuspensionReason, Tenant, TenantStatus
from raas.domain.usage import period_of
from raas.services.metering import all_tenants
from raas.services.notify import announce
from raas.services.tenants import TenantService

logger = Logger(service="raas")


class Outbox(Protocol):
    def pending(self, limit: int) -> list[OutboxEntry]: ...

    def pending_for(self, tenant_id: str) -> list[OutboxEntry]: ...

    def mark_sent(self, entry: OutboxEntry) -> None: ...

    def mark_failed(self, entry: OutboxEntry, error: str) -> None: ...


class BillingRecords(Protocol):
    def mark_paid(self, tenant_id: str, period: str, paid_at: str, reference: str) -> Invoice | None: ...

    def claim_webhook_event(self, tenant_id: str, event_id: str) -> bool:
        """True for the first delivery of a Stripe event (or a retry of one whose handling died);
        False when it was handled already or is being handled right now."""

    def finish_webhook_event(self, tenant_id: str, event_id: str) -> None: ...

    def release_webhook_event(self, tenant_id: str, event_id: str) -> None:
        """Forgets a claim whose handling failed, so Stripe's retry runs it again."""


@dataclass
class DrainResult:
    sent: int = 0
    skipped: int = 0
    failed: int = 0


class BillingService:
    def __init__(
        self,
        tenants: TenantStore,
        tenant_service: TenantService,
        outbox: Outbox,
        provider: BillingProvider,
        invoices: BillingRecords,
        grace_days: int,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        events: EventPublisher | None = None,
    ):
        self.events = events  # invoice.paid / invoice.payment_failed for tenants' webhooks (best effort)
        self.tenants = tenants
        self.tenant_service = tenant_service
        self.outbox = outbox
        self.provider = provider
        self.invoices = invoices
        self.grace = timedelta(days=grace_days)
        self._now = clock

    # --- usage to the provider ---------------------------------------------------------------
    def drain_outbox(self, batch: int = 100, max_batches: int = 50) -> DrainResult:
        """Reports pending usage; stops at the first provider outage (the rest waits for the next run)."""
        result = DrainResult()
        customers: dict[str, Tenant | None] = {}
        for _ in range(max_batches):
            entries = self.outbox.pending(batch)
            if not entries:
                break
            progressed = False
            for entry in entries:
                if entry.tenant_id not in customers:
                    customers[entry.tenant_id] = self.tenants.get_tenant(entry.tenant_id)
                tenant = customers[entry.tenant_id]
                if tenant is None or tenant.status is TenantStatus.DELETED:
                    self.outbox.mark_sent(entry)  # nobody left to bill
                    result.skipped += 1
                    progressed = True
                    continue
                if not tenant.stripe_customer_id:
                    result.skipped += 1  # provisioning has not made the customer yet; next run
                    continue
                try:
                    self._send(tenant.stripe_customer_id, entry)
                except ServiceUnavailable as exc:
                    self.outbox.mark_failed(entry, exc.message)
                    result.failed += 1
                    logger.warning("billing provider unavailable; outbox drain stops", extra={"tenant_id": entry.tenant_id})
                    return result
                self.outbox.mark_sent(entry)
                result.sent += 1
                progressed = True
            if not progressed:
                break
        return result

    def flush_tenant(self, tenant_id: str, customer_id: str) -> int:
        """Reports every unsent usage entry of one tenant now (before its deletion removes them);
        raises ServiceUnavailable if the provider is down, so the deletion step is retried."""
        sent = 0
        for entry in self.outbox.pending_for(tenant_id):
            self._send(customer_id, entry)
            self.outbox.mark_sent(entry)
            sent += 1
        return sent

    def _send(self, customer_id: str, entry: OutboxEntry) -> None:
        for metric, value in sorted(entry.counters.items()):
            self.provider.send_meter_event(
                customer_id,
                metric,
                value,
                identifier=f"{entry.event_id}:{metric}",  # the provider drops a repeat
                timestamp=int(entry.occurred_at.timestamp()),
            )

    # --- webhooks ----------------------------------------------------------------------------
    def handle_webhook(self, event: dict[str, Any]) -> str:
        """Acts on a verified Stripe event once. Stripe delivers at least once and retries for
        up to three days, and a captured delivery can be replayed while its signature is fresh:
        each event id acts once (https://docs.stripe.com/webhooks#handle-duplicate-events)."""
        kind = str(event.get("type", ""))
        obj = (event.get("data") or {}).get("object") or {}
        if kind not in ("invoice.payment_failed", "invoice.paid"):
            return "ignored"
        event_id = event.get("id")
        if not isinstance(event_id, str) or not event_id:
            raise BadRequest("the webhook event has no id", code="invalid_event")
        customer = obj.get("customer")
        tenant_id = (obj.get("metadata") or {}).get("raas_tenant_id") or (self.provider.tenant_of_customer(customer) if customer else None)
        tenant = self.tenants.get_tenant(tenant_id) if tenant_id else None
        if tenant is None or tenant.status.gone:
            return "unknown tenant"
        if not self.invoices.claim_webhook_event(tenant.tenant_id, event_id):
            return "duplicate"
        try:
            created = event.get("created")
            if isinstance(created, int) and not self.tenant_service.tenants.advance_payment_clock(tenant.tenant_id, created):
                outcome = "older than a payment event already applied; ignored"
            else:
                outcome = self._payment_failed(tenant) if kind == "invoice.payment_failed" else self._paid(tenant, obj)
        except Exception:
            try:
                self.invoices.release_webhook_event(tenant.tenant_id, event_id)
            except Exception:  # the claim then goes stale and Stripe's later retry takes it over
                logger.exception("could not release a webhook claim", extra={"tenant_id": tenant.tenant_id, "event_id": event_id})
            raise
        self.invoices.finish_webhook_event(tenant.tenant_id, event_id)
        period = (obj.get("metadata") or {}).get("raas_period") or _period_of_timestamp(obj.get("period_start"))
        if kind == "invoice.paid":
            notice: PlatformEvent = InvoicePaid(
                event_id=f"stripe-{event_id}", tenant_id=tenant.tenant_id, actor="billing", period=period, reference=str(obj.get("id", ""))
            )
        else:
            notice = InvoicePaymentFailed(event_id=f"stripe-{event_id}", tenant_id=tenant.tenant_id, actor="billing", period=period)
        announce(self.events, notice)
        return outcome

    def _payment_failed(self, tenant: Tenant) -> str:
        if tenant.payment_failed_at is None:
            self.tenants.update_tenant(tenant.tenant_id, fields={"payment_failed_at": self._now()})
        self.enforce_grace(tenant.tenant_id)
        return "payment failure recorded"

    def _paid(self, tenant: Tenant, invoice: dict[str, Any]) -> str:
        period = (invoice.get("metadata") or {}).get("raas_period") or _period_of_timestamp(invoice.get("period_start"))
        if period:
            self.invoices.mark_paid(tenant.tenant_id, period, self._now().isoformat(), str(invoice.get("id", "")))
        if tenant.payment_failed_at is not None or SuspensionReason.PAYMENT in tenant.suspension_reasons:
            # Clears the failure and lifts only the payment reason, in one update: a suspension the
            # operator set stays until the operator lifts it.
            self.tenant_service.resume(tenant.tenant_id, actor="billing", reason=SuspensionReason.PAYMENT)
        return "payment recorded"

    def enforce_grace(self, tenant_id: str | None = None) -> int:
        """Suspends for payment the tenants whose failed payment is older than the grace period,
        suspended already by the operator or not (so the operator's resume does not lift it)."""
        suspended = 0
        candidates = [self.tenants.get_tenant(tenant_id)] if tenant_id else list(all_tenants(self.tenants))
        for tenant in candidates:
            if tenant is None or tenant.payment_failed_at is None or tenant.status not in (TenantStatus.ACTIVE, TenantStatus.SUSPENDED):
                continue
            if SuspensionReason.PAYMENT in tenant.suspension_reasons:
                continue
            if self._now() - tenant.payment_failed_at >= self.grace:
                self.tenant_service.suspend(tenant.tenant_id, actor="billing", reason=SuspensionReason.PAYMENT, while_payment_failed=True)
                suspended += 1
        return suspended


def _period_of_timestamp(value: Any) -> str | None:
    if not isinstance(value, int | float):
        return None
    return period_of(datetime.fromtimestamp(value, UTC))
