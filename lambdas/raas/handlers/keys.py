"""Tenant admin API: create, list and revoke the tenant's API keys."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import Router

from raas.bootstrap import services
from raas.domain.console import Me
from raas.domain.tenants import Role
from raas.handlers.api import JSON, lambda_handler, make_app, principal, require_tenant, responses
from raas.handlers.schemas import CreateKeyRequest, KeyCreated, KeyList

router = Router()
TAGS = ["keys"]


@router.post("/v1/keys", summary="Create an API key (shown once)", tags=TAGS, responses=responses(201, KeyCreated, "Created", 409))
def create_key(body: CreateKeyRequest) -> Response[KeyCreated]:
    caller = require_tenant(app, Role.ADMIN)
    key, secret = services().key_service.create(caller.principal, body.name, body.role)
    return Response(201, JSON, KeyCreated(key=key, api_key=secret))


@router.get("/v1/keys", summary="List the tenant's API keys", tags=TAGS, responses=responses(200, KeyList, "Keys (never the secrets)"))
def list_keys() -> KeyList:
    caller = require_tenant(app, Role.ADMIN)
    return KeyList(keys=services().key_service.list(caller.principal))


@router.delete(
    "/v1/keys/<key_id>", summary="Revoke an API key, effective at once", tags=TAGS, responses=responses(204, None, "Revoked", 409)
)
def revoke_key(key_id: str) -> Response[None]:
    caller = require_tenant(app, Role.ADMIN)
    services().key_service.revoke(caller.principal, key_id)
    return Response(204)


@router.get(
    "/v1/me",
    summary="Who is calling: role, key, and for a tenant key its tenant, tier and branding (any valid key)",
    tags=["identity"],
    responses=responses(200, Me, "The caller"),
)
def get_me() -> Me:
    return services().identity_service.describe(principal(app))


app = make_app()
app.include_router(router)
handler = lambda_handler(app)
