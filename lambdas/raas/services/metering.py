"""Usage reports, the daily storage snapshot and monthly invoices."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from typing import Protocol

from aws_lambda_powertools import Logger

from raas.domain import ids
from raas.domain.billing import Invoice
from raas.domain.console import DailyUsage, UsageDay
from raas.domain.errors import NotFound
from raas.domain.events import InvoiceIssued
from raas.domain.paging import all_items
from raas.domain.ports import EventPublisher, TenantStore
from raas.domain.pricing import BillableUsage, quote
from raas.domain.tenants import Tenant, TenantStatus
from raas.domain.usage import UsageEvent, UsageReport, days_in_period, parse_period, period_of
from raas.services.notify import announce

logger = Logger(service="raas")

BILLABLE_STATUSES = (TenantStatus.ACTIVE, TenantStatus.SUSPENDED)


class Usage(Protocol):
    def totals(self, tenant_id: str, period: str) -> dict[str, int]: ...

    def days(self, tenant_id: str, period: str) -> dict[str, dict[str, int]]:
        """The month's per-day counters, `YYYY-MM-DD` -> totals (written with the month's, once per event)."""

    def record(self, event: UsageEvent) -> bool: ...


class StoredBytes(Protocol):
    def stats(self, tenant_id: str) -> dict[str, int]: ...


class InvoiceStore(Protocol):
    def put_if_absent(self, invoice: Invoice) -> Invoice: ...

    def get(self, tenant_id: str, period: str) -> Invoice | None: ...

    def list(self, tenant_id: str, limit: int, cursor: str | None) -> tuple[list[Invoice], str | None]: ...


def all_tenants(tenants: TenantStore) -> Iterator[Tenant]:
    return all_items(lambda cursor: tenants.list_tenants(100, cursor))


class MeteringService:
    def __init__(
        self,
        tenants: TenantStore,
        usage: Usage,
        stored: StoredBytes,
        invoices: InvoiceStore,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        release_expired_exports: Callable[[str, datetime], object] | None = None,
        events: EventPublisher | None = None,
    ):
        self.events = events  # invoice.issued for tenants' webhooks (best effort)
        self.tenants = tenants
        self.usage = usage
        self.stored = stored
        self.invoices = invoices
        self._now = clock
        # Export bundles count in `stored` bytes while they live (raas.services.export); this gives back the
        # bytes of expired ones before a snapshot, so a tenant who never calls again stops paying for them.
        self.release_expired_exports = release_expired_exports

    def report(self, tenant_id: str, period: str | None) -> UsageReport:
        period = parse_period(period) if period else period_of(self._now())
        return UsageReport.of(period, self.usage.totals(tenant_id, period))

    def daily(self, tenant_id: str, period: str | None) -> DailyUsage:
        """The month day by day: every day up to today (UTC), the whole month once it is over, none for a month to
        come; a day without usage is zeros. Counted from events recorded since per-day counters exist."""
        today = self._now().astimezone(UTC).date()
        period = parse_period(period) if period else today.strftime("%Y-%m")
        year, month = (int(part) for part in period.split("-"))
        current = today.strftime("%Y-%m")
        last = 0 if period > current else today.day if period == current else days_in_period(period)
        counted = self.usage.days(tenant_id, period)
        days = [date(year, month, day) for day in range(1, last + 1)]
        return DailyUsage(period=period, days=[UsageDay.of(day, counted.get(day.isoformat(), {})) for day in days])

    def operator_report(
        self, period: str | None, limit: int, cursor: str | None
    ) -> tuple[str, list[tuple[Tenant, UsageReport]], str | None]:
        period = parse_period(period) if period else period_of(self._now())
        page, next_cursor = self.tenants.list_tenants(limit, cursor)
        rows = [(t, self.report(t.tenant_id, period)) for t in page if t.status is not TenantStatus.DELETED]
        return period, rows, next_cursor

    def snapshot_storage(self, day: datetime | None = None) -> int:
        """Counts one day of each tenant's stored bytes (once per tenant and day, whatever the retries)."""
        day = (day or self._now()).astimezone(UTC)
        counted = 0
        for tenant in all_tenants(self.tenants):
            if tenant.status not in BILLABLE_STATUSES:
                continue
            if self.release_expired_exports is not None:
                self.release_expired_exports(tenant.tenant_id, day)
            stored = self.stored.stats(tenant.tenant_id)["bytes"]
            event = UsageEvent(
                event_id=f"storage-{tenant.tenant_id}-{day:%Y-%m-%d}",
                tenant_id=tenant.tenant_id,
                occurred_at=day,
                counters={"storage_byte_days": stored},
            )
            counted += int(self.usage.record(event))
        return counted

    def invoice_for(self, tenant: Tenant, period: str) -> Invoice:
        """The tenant's invoice for a closed period, computed once and then read back (idempotent)."""
        existing = self.invoices.get(tenant.tenant_id, period)
        if existing is not None:
            return existing
        report = self.report(tenant.tenant_id, period)
        priced = quote(
            tenant.tier,
            BillableUsage(queries=report.queries, storage_gb=report.storage_gb, api_calls=report.api_calls),
            tenant.annual_billing,
        )
        invoice = Invoice(
            tenant_id=tenant.tenant_id,
            period=period,
            tier=tenant.tier,
            annual=priced.annual,
            currency=priced.currency,
            lines=priced.lines,
            subtotal_cents=priced.subtotal_cents,
            discount_cents=priced.discount_cents,
            total_cents=priced.total_cents,
            issued_at=self._now(),
        )
        stored = self.invoices.put_if_absent(invoice)
        if stored is invoice:  # issued by this run
            announce(
                self.events,
                InvoiceIssued(
                    event_id=f"invoice-issued-{tenant.tenant_id}-{period}",
                    tenant_id=tenant.tenant_id,
                    period=period,
                    total_cents=invoice.total_cents,
                    currency=invoice.currency,
                ),
            )
        return stored

    def close_period(self, period: str) -> int:
        """Issues every billable tenant's invoice for `period`; safe to run again."""
        parse_period(period)
        issued = 0
        for tenant in all_tenants(self.tenants):
            if tenant.status in BILLABLE_STATUSES and period_of(tenant.created_at) <= period:
                self.invoice_for(tenant, period)
                issued += 1
        logger.info("invoices issued", extra={"period": period, "count": issued})
        return issued

    def list_invoices(self, tenant_id: str, limit: int, cursor: str | None) -> tuple[list[Invoice], str | None]:
        return self.invoices.list(tenant_id, limit, cursor)

    def get_invoice(self, tenant_id: str, period: str) -> Invoice:
        invoice = self.invoices.get(tenant_id, parse_period(period)) if ids.is_tenant_id(tenant_id) else None
        if invoice is None:
            raise NotFound(f"no invoice for {period}", code="invoice_not_found")
        return invoice
