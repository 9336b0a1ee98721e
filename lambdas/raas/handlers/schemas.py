"""Request and response bodies of the HTTP API (pydantic models shared by the handlers)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from raas.domain.audit import AuditEntry
from raas.domain.billing import Invoice
from raas.domain.catalog import Tier
from raas.domain.config import ConfigVersion, TenantConfig
from raas.domain.documents import DOCUMENT_STATUS, Document
from raas.domain.tenants import ApiKey, Role, Tenant
from raas.domain.usage import UsageReport


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateTenantRequest(_Strict):
    name: str = Field(min_length=1, max_length=200)
    tier: Tier = Tier.FREE


class UpdateTenantRequest(_Strict):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    tier: Tier | None = None
    annual_billing: bool | None = None


class TenantCreated(BaseModel):
    tenant: Tenant
    api_key: str = Field(description="the first admin key; shown once, store it now")


class TenantPage(BaseModel):
    tenants: list[Tenant]
    next_cursor: str | None


class CreateKeyRequest(_Strict):
    name: str = Field(min_length=1, max_length=100)
    role: Role = Role.READER


class KeyCreated(BaseModel):
    key: ApiKey
    api_key: str = Field(description="the key itself; shown once, store it now")


class KeyList(BaseModel):
    keys: list[ApiKey]


class ConfigPatch(_Strict):
    """A merge update: fields not named keep their values; branding/chunking/limits merge by field."""

    model: str | None = None
    temperature: float | None = None
    top_k: int | None = None
    alpha: float | None = None
    max_tokens: int | None = None
    enable_reranking: bool | None = None
    prompt_template: str | None = Field(default=None, max_length=20000)
    prompt_variables: dict[str, str] | None = None
    branding: dict[str, Any] | None = None
    chunking: dict[str, Any] | None = None
    limits: dict[str, Any] | None = None


class ConfigView(BaseModel):
    tenant_id: str
    version: int
    config: TenantConfig
    updated_at: datetime
    updated_by: str

    @classmethod
    def of(cls, tenant_id: str, version: ConfigVersion) -> ConfigView:
        return cls(
            tenant_id=tenant_id,
            version=version.version,
            config=version.config,
            updated_at=version.created_at,
            updated_by=version.created_by,
        )


class VersionSummary(BaseModel):
    version: int
    created_at: datetime
    created_by: str
    mode: str
    changed_fields: list[str]
    rolled_back_from: int | None = None


class VersionPage(BaseModel):
    versions: list[VersionSummary]
    next_cursor: str | None


class RollbackRequest(_Strict):
    version: int = Field(ge=0)


# --- documents ---------------------------------------------------------------------------------


class InlineDocumentRequest(_Strict):
    title: str = Field(min_length=1, max_length=500)
    text: str | None = Field(default=None, description="the document as text (content type text/plain unless given)")
    content_base64: str | None = Field(default=None, description="the document's bytes, base64; needs content_type")
    content_type: str | None = Field(default=None, max_length=200)
    metadata: dict[str, Any] = Field(default_factory=dict)
    source_uri: str | None = Field(
        default=None, max_length=2048, description="a new document with the same source_uri replaces the old one"
    )


class UploadRequest(_Strict):
    filename: str = Field(min_length=1, max_length=200)
    content_type: str = Field(min_length=1, max_length=200)
    size: int = Field(ge=1, description="bytes; the upload may not exceed it")
    title: str | None = Field(default=None, max_length=500)
    metadata: dict[str, Any] = Field(default_factory=dict)
    source_uri: str | None = Field(default=None, max_length=2048)


class DocumentAccepted(BaseModel):
    document_id: str
    status: str = Field(description=DOCUMENT_STATUS)
    duplicate: bool = Field(description="true when the same content was already here; this is the existing document")


class UploadTicket(BaseModel):
    document_id: str
    status: str = Field(description=DOCUMENT_STATUS)
    upload_url: str
    method: str = "PUT"
    headers: dict[str, str] = Field(description="send these headers with the PUT (they carry the tenant's encryption key)")
    expires_at: datetime


class DocumentPage(BaseModel):
    documents: list[Document] = Field(description=f"each with its status: {DOCUMENT_STATUS}")
    next_cursor: str | None


# --- query -------------------------------------------------------------------------------------


class Citation(BaseModel):
    document_id: str
    chunk_id: str
    title: str
    score: float
    snippet: str


class SearchResult(Citation):
    metadata: dict[str, Any]


class SearchResponse(BaseModel):
    results: list[SearchResult]
    config_version: int


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float


class RetrievalInfo(BaseModel):
    top_k: int
    alpha: float
    reranked: bool
    screened_out: int = Field(description="retrieved chunks left out of the prompt for instruction-like text")


class QueryResponse(BaseModel):
    query_id: str
    answer: str
    citations: list[Citation]
    model: str
    offline: bool = Field(description="true when answered by the offline extractive answerer (no LLM key configured)")
    config_version: int
    usage: Usage
    retrieval: RetrievalInfo
    cached: bool
    latency_ms: float
    timings: dict[str, float] = Field(
        default_factory=dict, description="embedding_ms and generation_ms: the part of latency_ms spent in the embedder and the LLM"
    )


class QueryHistoryPage(BaseModel):
    queries: list[dict[str, Any]]
    next_cursor: str | None


class DeleteTenantRequest(_Strict):
    export_first: bool = Field(default=False, description="write an export bundle that outlives the tenant before deleting")


class OperatorUsageRow(BaseModel):
    tenant_id: str
    name: str
    tier: Tier
    status: str
    usage: UsageReport


class OperatorUsagePage(BaseModel):
    period: str
    tenants: list[OperatorUsageRow]
    next_cursor: str | None


class InvoicePage(BaseModel):
    invoices: list[Invoice]
    next_cursor: str | None


class AuditPage(BaseModel):
    entries: list[AuditEntry]
    next_cursor: str | None


class ExportResult(BaseModel):
    key: str
    url: str = Field(description="presigned GET link to the zip")
    expires_in: int
    manifest: dict[str, Any]


class EstimateRequest(_Strict):
    tier: Tier
    queries: int = Field(default=0, ge=0, le=10**12)
    storage_gb: Decimal = Field(default=Decimal(0), ge=0, le=10**9)
    api_calls: int = Field(default=0, ge=0, le=10**13)
    annual: bool = False


class WebhookAck(BaseModel):
    received: bool
    outcome: str
