"""Tenant account API: usage, invoices, audit log and export; the operator's usage view."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import Router
from pydantic import Field

from raas.bootstrap import services
from raas.domain.billing import Invoice
from raas.domain.console import DailyUsage
from raas.domain.exports import ExportResult
from raas.domain.tenants import Role
from raas.domain.usage import UsageReport
from raas.handlers.api import JSON, lambda_handler, make_app, require, require_tenant, responses
from raas.handlers.idempotency import idempotent_post
from raas.handlers.schemas import AuditPage, InvoicePage, OperatorUsagePage, OperatorUsageRow


class TenantUsage(UsageReport):
    """The month's usage, and what the tenant stores now (documents and the export bundles not yet expired)."""

    stored_bytes: int = Field(
        description="bytes stored now: documents and live export bundles; what the storage quota and the daily billed "
        "storage snapshot (`storage_gb`) count"
    )
    export_bytes: int = Field(description="of which export bundles, kept for 7 days after their creation")
    exports: int = Field(description="export bundles kept now")


router = Router()
PERIOD = r"^20\d\d-(0[1-9]|1[0-2])$"
Period = Annotated[str | None, Query(pattern=PERIOD, description="YYYY-MM (UTC); default: this month")]
Limit = Annotated[int, Query(ge=1, le=100)]
Cursor = Annotated[str | None, Query(max_length=2048)]


@router.get("/v1/usage", summary="The tenant's usage in a month", tags=["usage"], responses=responses(200, TenantUsage, "Usage"))
def get_usage(period: Period = None) -> TenantUsage:
    caller = require_tenant(app, Role.ADMIN)
    report = services().metering_service.report(caller.tenant_id, period)
    stored = services().export_service.stored_bytes(caller.tenant_id)
    return TenantUsage(**report.model_dump(), stored_bytes=stored.bytes, export_bytes=stored.export_bytes, exports=stored.exports)


@router.get(
    "/v1/usage/daily",
    summary="The tenant's usage in a month, day by day (UTC)",
    tags=["usage"],
    responses=responses(200, DailyUsage, "Every day of the month up to today, zeros included"),
)
def get_daily_usage(
    period: Annotated[str | None, Query(description="YYYY-MM (UTC); default: this month; anything else is 422 invalid_period")] = None,
) -> DailyUsage:
    caller = require_tenant(app, Role.ADMIN)
    return services().metering_service.daily(caller.tenant_id, period)


@router.get(
    "/v1/operator/usage", summary="Every tenant's usage in a month", tags=["operator"], responses=responses(200, OperatorUsagePage, "Usage")
)
def operator_usage(period: Period = None, limit: Limit = 50, cursor: Cursor = None) -> OperatorUsagePage:
    require(app, Role.OPERATOR)
    month, rows, next_cursor = services().metering_service.operator_report(period, limit, cursor)
    return OperatorUsagePage(
        period=month,
        tenants=[OperatorUsageRow(tenant_id=t.tenant_id, name=t.name, tier=t.tier, status=t.status.value, usage=u) for t, u in rows],
        next_cursor=next_cursor,
    )


@router.get(
    "/v1/invoices", summary="The tenant's invoices, newest first", tags=["billing"], responses=responses(200, InvoicePage, "Invoices")
)
def list_invoices(limit: Limit = 24, cursor: Cursor = None) -> InvoicePage:
    caller = require_tenant(app, Role.ADMIN)
    invoices, next_cursor = services().metering_service.list_invoices(caller.tenant_id, limit, cursor)
    return InvoicePage(invoices=invoices, next_cursor=next_cursor)


@router.get("/v1/invoices/<period>", summary="One month's invoice", tags=["billing"], responses=responses(200, Invoice, "The invoice"))
def get_invoice(period: str) -> Invoice:
    caller = require_tenant(app, Role.ADMIN)
    return services().metering_service.get_invoice(caller.tenant_id, period)


@router.get("/v1/audit", summary="The tenant's audit log, newest first", tags=["audit"], responses=responses(200, AuditPage, "Entries"))
def list_audit(limit: Limit = 50, cursor: Cursor = None) -> AuditPage:
    caller = require_tenant(app, Role.ADMIN)
    entries, next_cursor = services().audit_log.list(caller.tenant_id, limit, cursor)
    return AuditPage(entries=entries, next_cursor=next_cursor)


@router.post(
    "/v1/export",
    summary="Export the tenant's data as a zip (documents, chunk metadata, configuration, usage, audit log)",
    tags=["audit"],
    responses=responses(201, ExportResult, "The bundle (kept 7 days, counted in the tenant's storage) and a presigned link"),
    middlewares=[idempotent_post],
)
def export() -> Response[ExportResult]:
    caller = require_tenant(app, Role.ADMIN)
    return Response(201, JSON, services().export_service.export(caller.tenant_id, caller.actor, caller.tier))


app = make_app()
app.include_router(router)
handler = lambda_handler(app)
