"""Tenant admin API for webhooks: endpoints, secrets, test events, the delivery log and replays."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import Router
from pydantic import ConfigDict, Field, StrictBool

from raas.bootstrap import services
from raas.domain import webhooks as wh
from raas.domain.model import Model
from raas.domain.tenants import Role
from raas.domain.webhooks import WebhookDelivery, WebhookEndpoint
from raas.handlers.api import JSON, lambda_handler, make_app, require_tenant, responses
from raas.services.webhooks import DeliveryPage, EndpointCreated, EndpointList, EventTypeInfo, SecretRotated

router = Router()
TAGS = ["webhooks"]
Limit = Annotated[int, Query(ge=1, le=100)]
Cursor = Annotated[str | None, Query(max_length=2048)]

EventName = Annotated[str, Field(max_length=64, json_schema_extra={"enum": sorted(wh.SUBSCRIBABLE)})]


class CreateWebhookRequest(Model):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=wh.MAX_URL, description="https:// only (http://127.0.0.1 locally when allowed)")
    events: list[EventName] = Field(min_length=1, max_length=len(wh.SUBSCRIBABLE))
    description: str = Field(default="", max_length=wh.MAX_DESCRIPTION)


class UpdateWebhookRequest(Model):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, min_length=1, max_length=wh.MAX_URL)
    events: list[EventName] | None = Field(default=None, min_length=1, max_length=len(wh.SUBSCRIBABLE))
    description: str | None = Field(default=None, max_length=wh.MAX_DESCRIPTION)
    enabled: StrictBool | None = None


class EventTypeList(Model):
    event_types: list[EventTypeInfo]


@router.get(
    "/v1/webhook-event-types",
    summary="The webhook event types, each with its JSON schema and version",
    tags=TAGS,
    responses=responses(200, EventTypeList, "Event types"),
)
def list_event_types() -> EventTypeList:
    require_tenant(app, Role.ADMIN)
    return EventTypeList(event_types=services().webhook_service.event_types())


@router.post(
    "/v1/webhooks",
    summary="Create a webhook endpoint (the signing secret is shown once)",
    tags=TAGS,
    responses=responses(201, EndpointCreated, "Created", 409),
)
def create_webhook(body: CreateWebhookRequest) -> Response[EndpointCreated]:
    caller = require_tenant(app, Role.ADMIN)
    created = services().webhook_service.create(caller.tenant_id, caller.tier, caller.actor, body.url, body.events, body.description)
    return Response(201, JSON, created)


@router.get("/v1/webhooks", summary="List the tenant's webhook endpoints", tags=TAGS, responses=responses(200, EndpointList, "Endpoints"))
def list_webhooks() -> EndpointList:
    caller = require_tenant(app, Role.ADMIN)
    return services().webhook_service.list_endpoints(caller.tenant_id)


@router.get(
    "/v1/webhooks/<endpoint_id>", summary="Read a webhook endpoint", tags=TAGS, responses=responses(200, WebhookEndpoint, "Endpoint")
)
def get_webhook(endpoint_id: str) -> WebhookEndpoint:
    caller = require_tenant(app, Role.ADMIN)
    return services().webhook_service.get(caller.tenant_id, endpoint_id)


@router.patch(
    "/v1/webhooks/<endpoint_id>",
    summary="Change the URL, events or description, or enable/disable the endpoint",
    tags=TAGS,
    responses=responses(200, WebhookEndpoint, "Updated"),
)
def update_webhook(endpoint_id: str, body: UpdateWebhookRequest) -> WebhookEndpoint:
    caller = require_tenant(app, Role.ADMIN)
    return services().webhook_service.update(
        caller.tenant_id,
        caller.actor,
        endpoint_id,
        url=body.url,
        events=body.events,
        description=body.description,
        enabled=body.enabled,
    )


@router.delete("/v1/webhooks/<endpoint_id>", summary="Delete a webhook endpoint", tags=TAGS, responses=responses(204, None, "Deleted"))
def delete_webhook(endpoint_id: str) -> Response[None]:
    caller = require_tenant(app, Role.ADMIN)
    services().webhook_service.delete(caller.tenant_id, caller.actor, endpoint_id)
    return Response(204)


@router.post(
    "/v1/webhooks/<endpoint_id>/rotate-secret",
    summary="Rotate the signing secret (the new one is shown once; the old one signs too for 24 h)",
    tags=TAGS,
    responses=responses(200, SecretRotated, "Rotated"),
)
def rotate_secret(endpoint_id: str) -> SecretRotated:
    caller = require_tenant(app, Role.ADMIN)
    return services().webhook_service.rotate_secret(caller.tenant_id, caller.actor, endpoint_id)


@router.post(
    "/v1/webhooks/<endpoint_id>/test",
    summary="Send a webhook.test event now; answers with the delivery and its first attempt",
    tags=TAGS,
    responses=responses(201, WebhookDelivery, "Sent (see the attempt for the receiver's answer)"),
)
def send_test(endpoint_id: str) -> Response[WebhookDelivery]:
    caller = require_tenant(app, Role.ADMIN)
    return Response(201, JSON, services().webhook_service.send_test(caller.tenant_id, caller.tier, endpoint_id))


@router.get(
    "/v1/webhooks/<endpoint_id>/deliveries",
    summary="The endpoint's delivery log, newest first (kept for the tier's webhook_log_days)",
    tags=TAGS,
    responses=responses(200, DeliveryPage, "Deliveries"),
)
def list_deliveries(endpoint_id: str, limit: Limit = 50, cursor: Cursor = None) -> DeliveryPage:
    caller = require_tenant(app, Role.ADMIN)
    return services().webhook_service.deliveries(caller.tenant_id, endpoint_id, limit, cursor)


@router.get(
    "/v1/webhooks/<endpoint_id>/deliveries/<delivery_id>",
    summary="One delivery with its attempts",
    tags=TAGS,
    responses=responses(200, WebhookDelivery, "Delivery"),
)
def get_delivery(endpoint_id: str, delivery_id: str) -> WebhookDelivery:
    caller = require_tenant(app, Role.ADMIN)
    return services().webhook_service.delivery(caller.tenant_id, endpoint_id, delivery_id)


@router.post(
    "/v1/webhooks/<endpoint_id>/deliveries/<delivery_id>/replay",
    summary="Send a delivery's event again (same event id) as a new delivery",
    tags=TAGS,
    responses=responses(201, WebhookDelivery, "Replayed", 409),
)
def replay_delivery(endpoint_id: str, delivery_id: str) -> Response[WebhookDelivery]:
    caller = require_tenant(app, Role.ADMIN)
    replayed = services().webhook_service.replay(caller.tenant_id, caller.tier, caller.actor, endpoint_id, delivery_id)
    return Response(201, JSON, replayed)


app = make_app()
app.include_router(router)
handler = lambda_handler(app)
