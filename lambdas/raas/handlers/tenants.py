"""Operator API: create, list, read, update, suspend and resume tenants."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import Router
from pydantic import ConfigDict, Field

from raas.bootstrap import services
from raas.domain.catalog import Tier
from raas.domain.console import TierPreview, TierPreviewRequest, Timeline
from raas.domain.model import Model
from raas.domain.tenants import Role, SuspensionReason, Tenant, TenantStatus
from raas.handlers.api import JSON, lambda_handler, make_app, require, responses
from raas.handlers.idempotency import idempotent_post
from raas.handlers.schemas import CreateTenantRequest, DeleteTenantRequest, TenantCreated, TenantPage, UpdateTenantRequest

router = Router()
TAGS = ["operator"]


class ResumeTenantRequest(Model):
    model_config = ConfigDict(extra="forbid")

    reason: SuspensionReason = Field(
        default=SuspensionReason.OPERATOR,
        description="the suspension reason to lift: `operator` (the default, the operator's own suspension) or `payment` "
        "(waives the failed payment); the tenant is active again only when no reason is left",
    )


@router.post(
    "/v1/tenants",
    summary="Create a tenant and its first admin key",
    tags=TAGS,
    responses=responses(201, TenantCreated, "Created"),
    middlewares=[idempotent_post],
)
def create_tenant(body: CreateTenantRequest) -> Response[TenantCreated]:
    caller = require(app, Role.OPERATOR)
    tenant, _key, secret = services().tenant_service.create(body.name, body.tier, actor=caller.actor)
    return Response(201, JSON, TenantCreated(tenant=tenant, api_key=secret))


@router.get(
    "/v1/tenants",
    summary="List tenants, optionally filtered (a filtered page may be short, even empty, while next_cursor goes on)",
    tags=TAGS,
    responses=responses(200, TenantPage, "A page of tenants"),
)
def list_tenants(
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
    status: Annotated[TenantStatus | None, Query(description="only tenants with this status")] = None,
    tier: Annotated[Tier | None, Query(description="only tenants on this tier")] = None,
    q: Annotated[str | None, Query(min_length=1, max_length=200, description="only names containing this (any case)")] = None,
) -> TenantPage:
    require(app, Role.OPERATOR)
    tenants, next_cursor = services().tenant_service.list(limit, cursor, status=status, tier=tier, name_contains=q)
    return TenantPage(tenants=tenants, next_cursor=next_cursor)


@router.get("/v1/tenants/<tenant_id>", summary="Read a tenant", tags=TAGS, responses=responses(200, Tenant, "The tenant"))
def get_tenant(tenant_id: str) -> Tenant:
    require(app, Role.OPERATOR)
    return services().tenant_service.get(tenant_id)


@router.patch(
    "/v1/tenants/<tenant_id>", summary="Rename a tenant or change its tier", tags=TAGS, responses=responses(200, Tenant, "Updated")
)
def update_tenant(tenant_id: str, body: UpdateTenantRequest) -> Tenant:
    caller = require(app, Role.OPERATOR)
    service = services().tenant_service
    return service.update(tenant_id, name=body.name, tier=body.tier, annual_billing=body.annual_billing, actor=caller.actor)


@router.post(
    "/v1/tenants/<tenant_id>/suspend",
    summary="Suspend a tenant (its keys are refused) for the operator's reason; only the operator's resume lifts it",
    tags=TAGS,
    responses=responses(200, Tenant, "Suspended", 409),
)
def suspend_tenant(tenant_id: str) -> Tenant:
    caller = require(app, Role.OPERATOR)
    return services().tenant_service.suspend(tenant_id, actor=caller.actor)


@router.post(
    "/v1/tenants/<tenant_id>/resume",
    summary="Lift one suspension reason (default: the operator's); the tenant is active again when none is left",
    tags=TAGS,
    responses=responses(200, Tenant, "The reason is lifted (`suspension_reasons` shows any that remain)", 409),
)
def resume_tenant(tenant_id: str, body: ResumeTenantRequest | None = None) -> Tenant:
    caller = require(app, Role.OPERATOR)
    reason = body.reason if body else SuspensionReason.OPERATOR
    return services().tenant_service.resume(tenant_id, actor=caller.actor, reason=reason)


@router.delete(
    "/v1/tenants/<tenant_id>",
    summary="Delete a tenant and all its data (202: the deletion runs; GET shows its progress and receipt)",
    tags=TAGS,
    responses=responses(202, Tenant, "Deletion started"),
)
def delete_tenant(tenant_id: str, body: DeleteTenantRequest | None = None) -> Response[Tenant]:
    caller = require(app, Role.OPERATOR)
    export_first = body.export_first if body else False
    tenant = services().tenant_service.request_deletion(tenant_id, export_first=export_first, actor=caller.actor)
    return Response(202, JSON, tenant)


@router.get(
    "/v1/tenants/<tenant_id>/timeline",
    summary="The tenant's lifecycle and operator events, oldest first (never its data)",
    tags=TAGS,
    responses=responses(200, Timeline, "The timeline"),
)
def tenant_timeline(tenant_id: str) -> Timeline:
    require(app, Role.OPERATOR)
    return services().tenant_timeline.timeline(tenant_id)


@router.post(
    "/v1/tenants/<tenant_id>/tier-preview",
    summary="What a tier change would clamp in the tenant's configuration; changes nothing",
    tags=TAGS,
    responses=responses(200, TierPreview, "The fields the change would lower", 409),
)
def tier_preview(tenant_id: str, body: TierPreviewRequest) -> TierPreview:
    require(app, Role.OPERATOR)
    return services().config_preview.tier_preview(tenant_id, body.tier)


app = make_app()
app.include_router(router)
handler = lambda_handler(app)
