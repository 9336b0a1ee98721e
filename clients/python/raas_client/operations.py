"""Every operation the client calls, described once.

The sync and async clients build their requests from these entries and nothing else, so this table
is the whole surface the client depends on: `tests/e2e/test_sdk.py` checks each entry against
the served OpenAPI document (method and path, query parameters, `Idempotency-Key`, request and
answer fields) and checks that every operation of the document is here or in `NOT_IN_SDK`.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from raas_client import models as m


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    response: type[BaseModel] | None = None  # None: no body (204)
    body: type[BaseModel] | None = None
    query: tuple[str, ...] = ()
    idempotency_key: bool = False  # the route accepts `Idempotency-Key`: the client sends one, the same on every retry
    items: str | None = None  # the answer's list field: `response` is then the model of one item
    paginated: bool = False  # `limit`/`cursor` in, `next_cursor` out
    streams: bool = False  # answers Server-Sent Events with `Accept: text/event-stream`

    @property
    def safe_to_retry(self) -> bool:
        """A connection lost after sending may be retried only when the server does the work once."""
        return self.method in {"GET", "PUT", "DELETE"} or self.idempotency_key


PAGE = ("limit", "cursor")

OPERATIONS: dict[str, Operation] = {
    "health": Operation("GET", "/v1/health", m.Health),
    # operator
    "tenants.create": Operation("POST", "/v1/tenants", m.TenantCreated, m.CreateTenantRequest, idempotency_key=True),
    "tenants.list": Operation("GET", "/v1/tenants", m.Tenant, query=(*PAGE, "status", "tier", "q"), items="tenants", paginated=True),
    "tenants.get": Operation("GET", "/v1/tenants/{tenant_id}", m.Tenant),
    "tenants.update": Operation("PATCH", "/v1/tenants/{tenant_id}", m.Tenant, m.UpdateTenantRequest),
    "tenants.suspend": Operation("POST", "/v1/tenants/{tenant_id}/suspend", m.Tenant),
    "tenants.resume": Operation("POST", "/v1/tenants/{tenant_id}/resume", m.Tenant, m.ResumeTenantRequest),
    "tenants.delete": Operation("DELETE", "/v1/tenants/{tenant_id}", m.Tenant, m.DeleteTenantRequest),
    "tenants.timeline": Operation("GET", "/v1/tenants/{tenant_id}/timeline", m.TimelineEvent, items="events"),
    "tenants.tier_preview": Operation("POST", "/v1/tenants/{tenant_id}/tier-preview", m.TierPreview, m.TierPreviewRequest),
    "operator_usage.list": Operation(
        "GET", "/v1/operator/usage", m.OperatorUsageRow, query=("period", *PAGE), items="tenants", paginated=True
    ),
    # tenant: identity, keys, config
    "me": Operation("GET", "/v1/me", m.Me),
    "keys.create": Operation("POST", "/v1/keys", m.KeyCreated, m.CreateKeyRequest),
    "keys.list": Operation("GET", "/v1/keys", m.ApiKey, items="keys"),
    "keys.revoke": Operation("DELETE", "/v1/keys/{key_id}"),
    "config.get": Operation("GET", "/v1/config", m.ConfigView),
    "config.update": Operation("PATCH", "/v1/config", m.ConfigView, m.ConfigPatch),
    "config.replace": Operation("PUT", "/v1/config", m.ConfigView, m.ConfigPatch),
    "config.versions": Operation("GET", "/v1/config/versions", m.VersionSummary, query=PAGE, items="versions", paginated=True),
    "config.version": Operation("GET", "/v1/config/versions/{version}", m.VersionDetail),
    "config.rollback": Operation("POST", "/v1/config/rollback", m.ConfigView, m.RollbackRequest),
    "config.schema": Operation("GET", "/v1/config/schema", m.ConfigSchema),
    "config.validate": Operation("POST", "/v1/config/validate", m.ConfigValidation, m.ConfigPatch),
    # documents
    "documents.create": Operation("POST", "/v1/documents", m.DocumentAccepted, m.InlineDocumentRequest, idempotency_key=True),
    "documents.create_upload": Operation("POST", "/v1/documents/uploads", m.UploadTicket, m.UploadRequest, idempotency_key=True),
    "documents.list": Operation("GET", "/v1/documents", m.Document, query=("status", *PAGE), items="documents", paginated=True),
    "documents.get": Operation("GET", "/v1/documents/{document_id}", m.Document),
    "documents.delete": Operation("DELETE", "/v1/documents/{document_id}"),
    "documents.chunks": Operation("GET", "/v1/documents/{document_id}/chunks", m.ChunkView, query=PAGE, items="chunks", paginated=True),
    # answers
    "query": Operation("POST", "/v1/query", m.QueryResponse, m.QueryRequest, idempotency_key=True, streams=True),
    "search": Operation("POST", "/v1/search", m.SearchResponse, m.QueryRequest, idempotency_key=True),
    "queries.list": Operation("GET", "/v1/queries", m.QueryHistoryEntry, query=PAGE, items="queries", paginated=True),
    "conversations.create": Operation("POST", "/v1/conversations", m.Conversation, m.CreateConversationRequest),
    "conversations.list": Operation("GET", "/v1/conversations", m.Conversation, query=PAGE, items="conversations", paginated=True),
    "conversations.messages": Operation(
        "GET", "/v1/conversations/{conversation_id}", m.ConversationMessage, query=PAGE, items="messages", paginated=True
    ),
    "conversations.delete": Operation("DELETE", "/v1/conversations/{conversation_id}"),
    "conversations.ask": Operation(
        "POST", "/v1/conversations/{conversation_id}/messages", m.ConversationAnswer, m.QueryRequest, idempotency_key=True, streams=True
    ),
    "feedback.give": Operation("POST", "/v1/queries/{query_id}/feedback", m.Feedback, m.FeedbackRequest),
    "feedback.list": Operation("GET", "/v1/feedback", m.Feedback, query=("rating", *PAGE), items="feedback", paginated=True),
    "feedback.summary": Operation("GET", "/v1/feedback/summary", m.FeedbackSummary),
    # usage, billing, audit, export
    "usage.get": Operation("GET", "/v1/usage", m.TenantUsage, query=("period",)),
    "usage.daily": Operation("GET", "/v1/usage/daily", m.DailyUsage, query=("period",)),
    "invoices.list": Operation("GET", "/v1/invoices", m.Invoice, query=PAGE, items="invoices", paginated=True),
    "invoices.get": Operation("GET", "/v1/invoices/{period}", m.Invoice),
    "audit.list": Operation("GET", "/v1/audit", m.AuditEntry, query=PAGE, items="entries", paginated=True),
    "export.create": Operation("POST", "/v1/export", m.ExportResult, idempotency_key=True),
    "pricing.estimate": Operation("POST", "/v1/pricing/estimate", m.Quote, m.EstimateRequest),
    # webhooks
    "webhooks.create": Operation("POST", "/v1/webhooks", m.EndpointCreated, m.CreateWebhookRequest),
    "webhooks.list": Operation("GET", "/v1/webhooks", m.WebhookEndpoint, items="endpoints"),
    "webhooks.get": Operation("GET", "/v1/webhooks/{endpoint_id}", m.WebhookEndpoint),
    "webhooks.update": Operation("PATCH", "/v1/webhooks/{endpoint_id}", m.WebhookEndpoint, m.UpdateWebhookRequest),
    "webhooks.delete": Operation("DELETE", "/v1/webhooks/{endpoint_id}"),
    "webhooks.rotate_secret": Operation("POST", "/v1/webhooks/{endpoint_id}/rotate-secret", m.SecretRotated),
    "webhooks.test": Operation("POST", "/v1/webhooks/{endpoint_id}/test", m.WebhookDelivery),
    "webhooks.deliveries": Operation(
        "GET", "/v1/webhooks/{endpoint_id}/deliveries", m.WebhookDelivery, query=PAGE, items="deliveries", paginated=True
    ),
    "webhooks.delivery": Operation("GET", "/v1/webhooks/{endpoint_id}/deliveries/{delivery_id}", m.WebhookDelivery),
    "webhooks.replay": Operation("POST", "/v1/webhooks/{endpoint_id}/deliveries/{delivery_id}/replay", m.WebhookDelivery),
    "webhooks.event_types": Operation("GET", "/v1/webhook-event-types", m.EventTypeInfo, items="event_types"),
}

# Operations of the API the client deliberately does not offer, and why.
NOT_IN_SDK: dict[tuple[str, str], str] = {
    ("POST", "/v1/billing/stripe/webhook"): "called by Stripe, signed with the Stripe webhook secret; no raas key can call it",
}

# Routes and query parameters the client already calls that the server does not serve yet. The drift
# test checks each against the served document as soon as it is there, and only reports (does not fail
# on) those still missing. Remove an entry once the server serves it.
PENDING_ROUTES: frozenset[tuple[str, str]] = frozenset()
PENDING_QUERY_PARAMETERS: dict[tuple[str, str], frozenset[str]] = {}
