"""Tenant configuration API: read, merge (PATCH), replace (PUT), versions and rollback."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Header, Path, Query
from aws_lambda_powertools.event_handler.router import Router

from raas.bootstrap import services
from raas.domain.config import TenantConfig
from raas.domain.console import ConfigSchema, ConfigValidation
from raas.domain.errors import BadRequest
from raas.domain.tenants import Role
from raas.handlers.api import TenantCaller, lambda_handler, make_app, metrics, require_tenant, responses
from raas.handlers.schemas import ConfigPatch, ConfigView, RollbackRequest, VersionDetail, VersionPage, VersionSummary

router = Router()
TAGS = ["config"]
IfMatch = Annotated[str | None, Header(alias="If-Match", description="expected current version; 409 if it moved")]


def _expected_version(if_match: str | None) -> int | None:
    if if_match is None:
        return None
    value = if_match.strip().strip('"')
    if not value.isdigit():
        raise BadRequest("If-Match must be a configuration version number", code="invalid_if_match")
    return int(value)


def _update(caller: TenantCaller, update: dict[str, Any], *, merge: bool, if_match: str | None) -> ConfigView:
    new = services().config_service.update(
        caller.tenant_id, caller.tier, update, merge=merge, actor=caller.actor, expected_version=_expected_version(if_match)
    )
    return ConfigView.of(caller.tenant_id, new)


@router.get("/v1/config", summary="The tenant's current configuration", tags=TAGS, responses=responses(200, ConfigView, "Current config"))
def get_config() -> ConfigView:
    caller = require_tenant(app, Role.READER)
    service = services().config_service
    hits_before = service.cache.stats.hits
    current = service.get(caller.tenant_id)
    metrics.add_metric(name="ConfigCacheHit" if service.cache.stats.hits > hits_before else "ConfigCacheMiss", unit="Count", value=1)
    return ConfigView.of(caller.tenant_id, current)


@router.patch(
    "/v1/config",
    summary="Merge update: named fields change, others keep",
    tags=TAGS,
    responses=responses(200, ConfigView, "New version", 409),
)
def patch_config(body: ConfigPatch, if_match: IfMatch = None) -> ConfigView:
    caller = require_tenant(app, Role.ADMIN)
    return _update(caller, body.model_dump(exclude_unset=True), merge=True, if_match=if_match)


@router.put(
    "/v1/config", summary="Replace: fields not given reset to defaults", tags=TAGS, responses=responses(200, ConfigView, "New version", 409)
)
def put_config(body: TenantConfig, if_match: IfMatch = None) -> ConfigView:
    caller = require_tenant(app, Role.ADMIN)
    return _update(caller, body.model_dump(mode="json", exclude_unset=True), merge=False, if_match=if_match)


@router.get(
    "/v1/config/versions", summary="Configuration history, newest first", tags=TAGS, responses=responses(200, VersionPage, "Versions")
)
def list_versions(
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> VersionPage:
    caller = require_tenant(app, Role.READER)
    versions, next_cursor = services().config_service.versions(caller.tenant_id, limit, cursor)
    summaries = [VersionSummary.model_validate(v.model_dump(exclude={"config"})) for v in versions]
    return VersionPage(versions=summaries, next_cursor=next_cursor)


@router.get(
    "/v1/config/versions/<version>",
    summary="One version with its whole configuration (0 = the defaults)",
    tags=TAGS,
    responses=responses(200, VersionDetail, "The version"),
)
def get_version(version: Annotated[int, Path(ge=0, le=2**31 - 1)]) -> VersionDetail:
    caller = require_tenant(app, Role.READER)
    found = services().config_service.version(caller.tenant_id, version)
    return VersionDetail.model_validate(found.model_dump())


@router.post(
    "/v1/config/rollback",
    summary="Restore an earlier version as a new version",
    tags=TAGS,
    responses=responses(200, ConfigView, "New version", 409),
)
def rollback_config(body: RollbackRequest) -> ConfigView:
    caller = require_tenant(app, Role.ADMIN)
    new = services().config_service.rollback(caller.tenant_id, caller.tier, body.version, actor=caller.actor)
    return ConfigView.of(caller.tenant_id, new)


@router.get(
    "/v1/config/schema",
    summary="JSON Schema of the configuration with the tenant's tier bounds (for forms)",
    tags=TAGS,
    responses=responses(200, ConfigSchema, "The schema"),
)
def get_config_schema() -> ConfigSchema:
    caller = require_tenant(app, Role.READER)
    return services().config_preview.schema(caller.tier)


@router.post(
    "/v1/config/validate",
    summary="Check a merge update as PATCH would (same 422s) and preview the prompt; nothing is saved",
    tags=TAGS,
    responses=responses(200, ConfigValidation, "Valid: the merged config and the rendered prompt"),
)
def validate_config(body: ConfigPatch) -> ConfigValidation:
    caller = require_tenant(app, Role.EDITOR)
    return services().config_preview.validate(caller.tenant_id, caller.tier, body.model_dump(exclude_unset=True))


app = make_app()
app.include_router(router)
handler = lambda_handler(app)
