"""Typed models of the raas API's requests and answers.

Each model is named after the schema of the served OpenAPI document (`GET /v1/openapi.json`) it
mirrors; `tests/e2e/test_sdk.py` checks every field here against the served document, so
the client cannot drift from the server unnoticed. Answers keep fields a newer server adds
(`extra="allow"`, read them with `model.model_extra`), and enumerations are plain strings, so a
new status or tier does not break an older client. Requests refuse unknown fields
(`extra="forbid"`), as the server does.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Tier = Literal["free", "smb", "midmarket", "enterprise"]
Role = Literal["admin", "editor", "reader"]
Rating = Literal["up", "down"]


class Model(BaseModel):
    """An answer of the API."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class RequestModel(BaseModel):
    """A request body: only the fields the server accepts."""

    model_config = ConfigDict(extra="forbid")


# --- tenants and keys ------------------------------------------------------------------------------


class DeletionStep(Model):
    step: str
    count: int
    completed_at: datetime
    detail: str = ""


class DeletionReceipt(Model):
    tenant_id: str
    requested_at: datetime
    completed_at: datetime
    steps: list[DeletionStep]
    export_key: str | None = None
    notes: list[str] = []


class Tenant(Model):
    tenant_id: str
    name: str
    tier: str
    status: str
    created_at: datetime
    updated_at: datetime
    annual_billing: bool = False
    suspension_reasons: list[str] = []
    deletion_requested_at: datetime | None = None
    deletion_receipt: DeletionReceipt | None = None


class TenantCreated(Model):
    tenant: Tenant
    api_key: str


class CreateTenantRequest(RequestModel):
    name: str
    tier: Tier = "smb"


class UpdateTenantRequest(RequestModel):
    name: str | None = None
    tier: Tier | None = None
    annual_billing: bool | None = None


class ResumeTenantRequest(RequestModel):
    reason: Literal["operator", "payment"] = "operator"


class DeleteTenantRequest(RequestModel):
    export_first: bool = False


class ApiKey(Model):
    key_id: str
    name: str
    role: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


class KeyCreated(Model):
    key: ApiKey
    api_key: str


class CreateKeyRequest(RequestModel):
    name: str
    role: Role = "reader"


# --- configuration ---------------------------------------------------------------------------------


class TenantConfig(Model):
    model: str
    temperature: float
    top_k: int
    alpha: float
    max_tokens: int
    enable_reranking: bool
    prompt_template: str
    prompt_variables: dict[str, str] = {}
    branding: dict[str, Any] = {}
    chunking: dict[str, Any] = {}
    limits: dict[str, Any] = {}


class ConfigView(Model):
    tenant_id: str
    version: int
    config: TenantConfig
    updated_at: datetime
    updated_by: str


class ConfigPatch(RequestModel):
    model: str | None = None
    temperature: float | None = None
    top_k: int | None = None
    alpha: float | None = None
    max_tokens: int | None = None
    enable_reranking: bool | None = None
    prompt_template: str | None = None
    prompt_variables: dict[str, str] | None = None
    branding: dict[str, Any] | None = None
    chunking: dict[str, Any] | None = None
    limits: dict[str, Any] | None = None


class VersionSummary(Model):
    version: int
    created_at: datetime
    created_by: str
    mode: str
    changed_fields: list[str]
    rolled_back_from: int | None = None


class VersionDetail(VersionSummary):
    """One version with its whole configuration."""

    config: TenantConfig


class RollbackRequest(RequestModel):
    version: int


# --- documents -------------------------------------------------------------------------------------


class Document(Model):
    document_id: str
    tenant_id: str
    title: str
    content_type: str
    size_bytes: int
    status: str
    metadata: dict[str, Any] = {}
    source_uri: str | None = None
    filename: str | None = None
    chunk_count: int = 0
    error: str | None = None
    duplicate_of: str | None = None
    created_at: datetime
    updated_at: datetime
    indexed_at: datetime | None = None


class DocumentAccepted(Model):
    document_id: str
    status: str
    duplicate: bool


class InlineDocumentRequest(RequestModel):
    title: str
    text: str | None = None
    content_base64: str | None = None
    content_type: str | None = None
    metadata: dict[str, Any] = {}
    source_uri: str | None = None


class UploadRequest(RequestModel):
    filename: str
    content_type: str
    size: int
    title: str | None = None
    metadata: dict[str, Any] = {}
    source_uri: str | None = None


class UploadTicket(Model):
    document_id: str
    status: str
    upload_url: str
    method: str = "PUT"
    headers: dict[str, str]
    expires_at: datetime


# --- query, search, history ------------------------------------------------------------------------


class Citation(Model):
    document_id: str
    chunk_id: str
    title: str
    score: float
    snippet: str


class Usage(Model):
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float


class RetrievalInfo(Model):
    top_k: int
    alpha: float
    reranked: bool
    screened_out: int


class Timings(Model):
    embedding_ms: float = 0.0
    generation_ms: float = 0.0


class QueryRequest(RequestModel):
    query: str
    top_k: int | None = None
    alpha: float | None = None
    filters: dict[str, Any] | None = None
    rerank: bool | None = None


class QueryResponse(Model):
    query_id: str
    answer: str
    citations: list[Citation]
    model: str
    offline: bool
    config_version: int
    usage: Usage
    retrieval: RetrievalInfo
    cached: bool
    latency_ms: float
    timings: Timings = Timings()


class SearchResult(Model):
    document_id: str
    chunk_id: str
    title: str
    score: float
    snippet: str
    metadata: dict[str, Any] = {}


class SearchResponse(Model):
    results: list[SearchResult]
    config_version: int


class QueryHistoryEntry(Model):
    query_id: str
    at: datetime
    query: str
    answer: str
    model: str
    citations: list[str]
    usage: Usage
    latency_ms: float
    cached: bool


# --- conversations and feedback --------------------------------------------------------------------


class Conversation(Model):
    conversation_id: str
    title: str | None = None
    created_at: datetime
    updated_at: datetime
    messages: int
    created_by: str


class CreateConversationRequest(RequestModel):
    title: str | None = None


class ConversationMessage(Model):
    message_id: str
    role: str
    content: str
    at: datetime
    query_id: str | None = None
    rewritten_query: str | None = None
    rewrite: str | None = None
    citations: list[Citation] = []
    model: str | None = None
    config_version: int | None = None
    usage: Usage | None = None


class ConversationAnswer(Model):
    conversation_id: str
    rewritten_query: str
    rewrite: str
    rewrite_usage: Usage
    answer: QueryResponse
    messages: list[ConversationMessage]


class FeedbackRequest(RequestModel):
    rating: Rating
    comment: str | None = None


class Feedback(Model):
    query_id: str
    rating: str
    comment: str | None = None
    config_version: int
    actor: str
    created_at: datetime
    updated_at: datetime


class VersionFeedback(Model):
    config_version: int
    answers: int
    up: int
    down: int
    ratio: float | None = None


class FeedbackSummary(Model):
    versions: list[VersionFeedback]


# --- usage, billing, audit, export -----------------------------------------------------------------


class UsageReport(Model):
    period: str
    queries: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    bytes_ingested: int
    storage_gb: str
    api_calls: int
    searches: int
    documents_indexed: int


class TenantUsage(UsageReport):
    stored_bytes: int
    export_bytes: int
    exports: int


class OperatorUsageRow(Model):
    tenant_id: str
    name: str
    tier: str
    status: str
    usage: UsageReport


class Line(Model):
    description: str
    quantity: str
    unit_price_millicents: int
    amount_cents: int


class Invoice(Model):
    tenant_id: str
    period: str
    tier: str
    annual: bool
    currency: str
    lines: list[Line]
    subtotal_cents: int
    discount_cents: int
    total_cents: int
    issued_at: datetime
    status: str = "open"
    paid_at: datetime | None = None
    payment_reference: str | None = None


class AuditEntry(Model):
    entry_id: str
    at: datetime
    actor: str
    action: str
    target: str = ""
    details: dict[str, Any] = {}


class ExportManifest(Model):
    tenant_id: str
    exported_at: datetime
    documents: int
    originals: int
    originals_missing: list[str]
    config_versions: int
    audit_entries: int


class ExportResult(Model):
    key: str
    url: str
    expires_in: int
    manifest: ExportManifest


class EstimateRequest(RequestModel):
    tier: Tier
    queries: int = 0
    storage_gb: float | str = 0
    api_calls: int = 0
    annual: bool = False


class Quote(Model):
    tier: str
    currency: str
    annual: bool
    lines: list[Line]
    subtotal_cents: int
    discount_cents: int
    total_cents: int
    custom_contract: bool


class Health(Model):
    status: str
    version: str
    stage: str


# --- webhooks --------------------------------------------------------------------------------------


class WebhookEndpoint(Model):
    endpoint_id: str
    url: str
    events: list[str]
    description: str = ""
    enabled: bool = True
    disabled_reason: str | None = None
    created_at: datetime
    updated_at: datetime
    secret_rotated_at: datetime | None = None
    previous_secret_expires_at: datetime | None = None
    consecutive_failures: int = 0
    failing_since: datetime | None = None


class EndpointCreated(Model):
    endpoint: WebhookEndpoint
    secret: str


class SecretRotated(Model):
    endpoint: WebhookEndpoint
    secret: str
    previous_secret_expires_at: datetime


class CreateWebhookRequest(RequestModel):
    url: str
    events: list[str]
    description: str = ""


class UpdateWebhookRequest(RequestModel):
    url: str | None = None
    events: list[str] | None = None
    description: str | None = None
    enabled: bool | None = None


class DeliveryAttempt(Model):
    attempt: int
    at: datetime
    status_code: int | None = None
    latency_ms: float
    response_snippet: str = ""
    error: str | None = None


class WebhookDelivery(Model):
    delivery_id: str
    endpoint_id: str
    event_id: str
    event_type: str
    status: str
    created_at: datetime
    next_attempt_at: datetime | None = None
    attempts: list[DeliveryAttempt] = []
    replay_of: str | None = None


class EventTypeInfo(Model):
    type: str
    version: int
    description: str
    json_schema: dict[str, Any]


# --- identity, console views, previews -------------------------------------------------------------


class Me(Model):
    """Who the calling key is."""

    role: str
    tenant_id: str | None = None
    tenant_name: str | None = None
    tier: str | None = None
    key_id: str
    key_name: str | None = None
    branding: dict[str, Any] | None = None


class UsageDay(Model):
    date: str
    queries: int
    searches: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    api_calls: int
    bytes_ingested: int


class DailyUsage(Model):
    period: str
    days: list[UsageDay]


class ConfigSchema(Model):
    """The JSON schema of the configuration with the bounds of the tenant's tier."""

    tier: str
    json_schema: dict[str, Any] = Field(alias="schema")  # `schema` would shadow a BaseModel attribute


class ConfigValidation(Model):
    valid: bool
    config: TenantConfig
    prompt_preview: str


class ChunkView(Model):
    chunk_id: str
    ordinal: int
    text: str


class TimelineEvent(Model):
    at: datetime
    kind: str
    actor: str | None = None
    detail: str | None = None


class Timeline(Model):
    events: list[TimelineEvent]


class ClampedField(Model):
    field: str
    from_: Any = Field(alias="from")
    to: Any


class TierPreview(Model):
    """What a tier change would clamp in the tenant's configuration."""

    tier: str
    clamped: list[ClampedField]


class TierPreviewRequest(RequestModel):
    tier: Tier


class Loose(Model):
    """An answer whose schema this client does not pin yet (a route not served when it was written);
    every field is in `raw()`."""

    def raw(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


# --- streamed answers (Server-Sent Events; not in the OpenAPI document) ----------------------------


class RetrievalEvent(Model):
    """First event: what was retrieved, before any text."""

    event: Literal["retrieval"] = "retrieval"
    query_id: str
    citations: list[Citation]
    retrieval: RetrievalInfo
    rewritten_query: str | None = None
    rewrite: str | None = None


class DeltaEvent(Model):
    """A piece of the answer's text, in order."""

    event: Literal["delta"] = "delta"
    text: str


class DoneEvent(Model):
    """Last event of a successful answer: usage, cost, config version, timings (and the conversation's ids)."""

    event: Literal["done"] = "done"
    query_id: str
    model: str
    offline: bool
    cached: bool
    config_version: int
    usage: Usage
    cost_usd: float = 0.0
    rewrite_usage: Usage | None = None
    latency_ms: float = 0.0
    timings: Timings = Timings()
    conversation_id: str | None = None
    message_ids: list[str] = []


StreamEvent = RetrievalEvent | DeltaEvent | DoneEvent
