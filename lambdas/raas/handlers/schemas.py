"""Request and response bodies of the HTTP API (pydantic models shared by the handlers)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import ConfigDict, Field, StrictBool, StrictFloat, StrictInt

from raas.domain.answers import QueryHistoryEntry
from raas.domain.audit import AuditEntry
from raas.domain.billing import Invoice
from raas.domain.catalog import Tier
from raas.domain.config import ConfigVersion, TenantConfig
from raas.domain.documents import DOCUMENT_STATUS, Document
from raas.domain.model import Model
from raas.domain.tenants import ApiKey, Role, Tenant
from raas.domain.usage import UsageReport


class _Strict(Model):
    """A request body: unknown fields refused, and numbers and booleans never coerced into each other
    (`top_k: true` is a 422, not 1). Floats still take JSON integers (`temperature: 1`)."""

    model_config = ConfigDict(extra="forbid")


class CreateTenantRequest(_Strict):
    name: str = Field(min_length=1, max_length=200)
    tier: Tier = Tier.FREE


class UpdateTenantRequest(_Strict):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    tier: Tier | None = None
    annual_billing: StrictBool | None = None


class TenantCreated(Model):
    tenant: Tenant
    api_key: str = Field(description="the first admin key; shown once, store it now")


class TenantPage(Model):
    tenants: list[Tenant]
    next_cursor: str | None


class CreateKeyRequest(_Strict):
    name: str = Field(min_length=1, max_length=100)
    role: Role = Role.READER


class KeyCreated(Model):
    key: ApiKey
    api_key: str = Field(description="the key itself; shown once, store it now")


class KeyList(Model):
    keys: list[ApiKey]


class ConfigPatch(_Strict):
    """A merge update: fields not named keep their values; branding/chunking/limits merge by field."""

    model: str | None = None
    temperature: StrictFloat | None = None
    top_k: StrictInt | None = None
    alpha: StrictFloat | None = None
    max_tokens: StrictInt | None = None
    enable_reranking: StrictBool | None = None
    prompt_template: str | None = Field(default=None, max_length=20000)
    prompt_variables: dict[str, str] | None = None
    branding: dict[str, Any] | None = None
    chunking: dict[str, Any] | None = None
    limits: dict[str, Any] | None = None


class ConfigView(Model):
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


class VersionSummary(Model):
    version: int
    created_at: datetime
    created_by: str
    mode: str
    changed_fields: list[str]
    rolled_back_from: int | None = None


class VersionPage(Model):
    versions: list[VersionSummary]
    next_cursor: str | None


class VersionDetail(VersionSummary):
    """One version with its whole configuration (the list carries only the changed field names)."""

    config: TenantConfig


class RollbackRequest(_Strict):
    version: StrictInt = Field(ge=0)


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
    size: StrictInt = Field(ge=1, description="bytes; the upload may not exceed it")
    title: str | None = Field(default=None, max_length=500)
    metadata: dict[str, Any] = Field(default_factory=dict)
    source_uri: str | None = Field(default=None, max_length=2048)


class DocumentAccepted(Model):
    document_id: str
    status: str = Field(description=DOCUMENT_STATUS)
    duplicate: bool = Field(description="true when the same content was already here; this is the existing document")


class UploadTicket(Model):
    document_id: str
    status: str = Field(description=DOCUMENT_STATUS)
    upload_url: str
    method: str = "PUT"
    headers: dict[str, str] = Field(description="send these headers with the PUT (they carry the tenant's encryption key)")
    expires_at: datetime


class DocumentPage(Model):
    documents: list[Document] = Field(description=f"each with its status: {DOCUMENT_STATUS}")
    next_cursor: str | None


# --- query -------------------------------------------------------------------------------------
# Answers, search results and history entries are the query service's own models (raas.domain.answers).


class QueryHistoryPage(Model):
    queries: list[QueryHistoryEntry]
    next_cursor: str | None


class DeleteTenantRequest(_Strict):
    export_first: StrictBool = Field(default=False, description="write an export bundle that outlives the tenant before deleting")


class OperatorUsageRow(Model):
    tenant_id: str
    name: str
    tier: Tier
    status: str
    usage: UsageReport


class OperatorUsagePage(Model):
    period: str
    tenants: list[OperatorUsageRow]
    next_cursor: str | None


class InvoicePage(Model):
    invoices: list[Invoice]
    next_cursor: str | None


class AuditPage(Model):
    entries: list[AuditEntry]
    next_cursor: str | None


class EstimateRequest(_Strict):
    tier: Tier
    queries: StrictInt = Field(default=0, ge=0, le=10**12)
    storage_gb: Decimal = Field(default=Decimal(0), ge=0, le=10**9)
    api_calls: StrictInt = Field(default=0, ge=0, le=10**13)
    annual: StrictBool = False


class WebhookAck(Model):
    received: bool
    outcome: str
