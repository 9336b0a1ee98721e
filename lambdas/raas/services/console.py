"""The console's read-mostly views: who is calling, a tenant's lifecycle timeline, what a tier change would
clamp, the config schema, a dry-run config check, and a document's chunks. None of them writes anything."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import Any, Protocol

from raas.domain import ids
from raas.domain.audit import AuditEntry
from raas.domain.catalog import Tier
from raas.domain.config import Branding, apply_update, check_tier, clamp_with_changes
from raas.domain.console import (
    SAMPLE_CONTEXT_TEXT,
    SAMPLE_CONTEXT_TITLE,
    SAMPLE_QUESTION,
    ChunkPage,
    ChunkView,
    ConfigSchema,
    ConfigValidation,
    Me,
    TierPreview,
    Timeline,
    TimelineEvent,
    config_schema,
)
from raas.domain.context import build_context
from raas.domain.documents import Chunk, DocumentStatus
from raas.domain.errors import BadRequest, Conflict, NotFound
from raas.domain.ports import DocumentStore, KeyStore, TenantStore
from raas.domain.prompts import render_prompt
from raas.domain.retrieval import Hit
from raas.domain.tenants import Principal, Tenant
from raas.services.config import ConfigService
from raas.services.tenants import TenantService

# --- GET /v1/me ---------------------------------------------------------------------------------


class IdentityService:
    def __init__(self, tenants: TenantStore, keys: KeyStore, configs: ConfigService):
        self.tenants = tenants
        self.keys = keys
        self.configs = configs

    def describe(self, caller: Principal) -> Me:
        """The caller's role, key and (for a tenant key) tenant name, tier and branding."""
        key = self.keys.get_key(caller.tenant_id, caller.key_id) if ids.is_key_id(caller.key_id) else None  # None for a JWT
        if caller.is_operator or caller.tenant_id is None:
            return Me(
                role=caller.role,
                tenant_id=None,
                tenant_name=None,
                tier=None,
                key_id=caller.key_id,
                key_name=key and key.name,
                branding=None,
            )
        tenant = self.tenants.get_tenant(caller.tenant_id)
        branding: Branding = self.configs.get(caller.tenant_id).config.branding
        return Me(
            role=caller.role,
            tenant_id=caller.tenant_id,
            tenant_name=tenant.name if tenant else None,
            tier=tenant.tier if tenant else caller.tier,
            key_id=caller.key_id,
            key_name=key.name if key else None,
            branding=branding,
        )


# --- tier preview, config schema, dry-run validation --------------------------------------------


class ConfigPreview:
    """What a configuration change would do, computed by the same functions the change uses, and never saved."""

    def __init__(self, configs: ConfigService, tenants: TenantService):
        self.configs = configs
        self.tenants = tenants

    def tier_preview(self, tenant_id: str, tier: Tier) -> TierPreview:
        """What moving the tenant to `tier` would clamp: the lifecycle function's clamp (clamp_to_tier) is
        clamp_with_changes too, so the preview and the change cannot disagree."""
        tenant = self.tenants.get(tenant_id)  # 404 tenant_not_found
        if tenant.status.gone:
            raise Conflict(f"tenant is {tenant.status.value}", code="invalid_status_transition")
        _clamped, changes = clamp_with_changes(self.configs.get(tenant_id).config, tier)
        return TierPreview(tier=tier, clamped=changes)

    @staticmethod
    def schema(tier: Tier) -> ConfigSchema:
        return ConfigSchema.model_validate({"tier": tier, "schema": config_schema(tier)})

    def validate(self, tenant_id: str, tier: Tier, update: dict[str, Any]) -> ConfigValidation:
        """A merge as PATCH /v1/config applies it (apply_update, then check_tier), on the current version, with the
        same 422s (`validation_error`, `invalid_prompt_template`, `tier_limit_exceeded`); nothing is written."""
        merged = apply_update(self.configs.get(tenant_id).config, update, merge=True)
        check_tier(merged, tier)
        # The sample context goes through the query path's own fencing, so the preview shows what a model reads.
        sample = Hit("preview:00000", "preview", SAMPLE_CONTEXT_TITLE, SAMPLE_CONTEXT_TEXT, 0, 1.0)
        context = build_context([sample], budget_tokens=10_000).text
        preview = render_prompt(merged.prompt_template, query=SAMPLE_QUESTION, context=context, variables=merged.prompt_variables)
        return ConfigValidation(valid=True, config=merged, prompt_preview=preview)


# --- GET /v1/tenants/{id}/timeline --------------------------------------------------------------


class LifecycleEntries(Protocol):
    def lifecycle_entries(self, tenant_id: str) -> Sequence[AuditEntry]:
        """The tenant's lifecycle and operator audit entries, oldest first (never entries about its data)."""


def _arrow(details: dict[str, Any], before: str, after: str) -> str | None:
    if before in details and after in details:
        return f"{details[before]} -> {details[after]}"
    return None


def _timeline_event(entry: AuditEntry) -> TimelineEvent | None:
    details = entry.details
    action = entry.action
    kind: str
    detail: str | None = None
    if action == "lifecycle.TenantCreated":
        kind, detail = "created", f"tier {details['tier']}" if "tier" in details else None
    elif action == "lifecycle.TenantProvisioned":
        kind = "provisioned"
    elif action == "lifecycle.TenantSuspended":
        kind, detail = "suspended", f"reason: {details.get('reason', 'operator')}"
    elif action == "lifecycle.TenantResumed":
        kind = "resumed"
    elif action == "lifecycle.TenantTierChanged":
        kind, detail = "tier_changed", _arrow(details, "previous_tier", "tier")
    elif action == "tenant.renamed":
        kind, detail = "renamed", _arrow(details, "from", "to")
    elif action == "tenant.billing_cycle":
        kind, detail = "billing_cycle_changed", "annual" if details.get("annual") else "monthly"
    elif action == "config.tier_clamp":
        # Field names only: which settings the tier change lowered, never their values.
        fields = ", ".join(details.get("changed_fields") or [])
        kind, detail = "config_clamped", f"changed: {fields}" if fields else None
    else:
        return None
    return TimelineEvent(at=entry.at, kind=kind, actor=entry.actor or None, detail=detail)


class TenantTimeline:
    def __init__(self, tenants: TenantService, audit: LifecycleEntries):
        self.tenants = tenants
        self.audit = audit

    def timeline(self, tenant_id: str) -> Timeline:
        """Lifecycle events and the operator's audit entries, oldest first. What the audit log cannot hold is taken
        from the profile: the audit log refuses writes once a deletion starts and the deletion empties it, so the
        deletion request, its end (and, for a deleted tenant, the creation) come from the tombstone."""
        tenant = self.tenants.get(tenant_id)  # 404 tenant_not_found
        entries = () if tenant.status.gone and tenant.deletion_receipt else self.audit.lifecycle_entries(tenant_id)
        events = [event for event in map(_timeline_event, entries) if event is not None]
        # The profile's creation time, not the audit entry's: the audit function may record TenantCreated after
        # TenantProvisioned (EventBridge does not order deliveries), and the profile is what was created.
        events = [e.model_copy(update={"at": tenant.created_at}) if e.kind == "created" else e for e in events]
        events.extend(_from_profile(tenant, has_created=any(e.kind == "created" for e in events)))
        return Timeline(events=sorted(events, key=lambda e: e.at))


def _from_profile(tenant: Tenant, *, has_created: bool) -> list[TimelineEvent]:
    events = []
    if not has_created:
        events.append(TimelineEvent(at=tenant.created_at, kind="created", actor=None, detail=None))
    if tenant.deletion_requested_at is not None:
        events.append(TimelineEvent(at=tenant.deletion_requested_at, kind="deletion_requested", actor=None, detail=None))
    receipt = tenant.deletion_receipt
    if receipt is not None:
        steps = ", ".join(f"{step.step} {step.count}" for step in receipt.steps)
        events.append(TimelineEvent(at=receipt.completed_at, kind="deleted", actor=None, detail=f"removed: {steps}" if steps else None))
    return events


# --- GET /v1/documents/{id}/chunks --------------------------------------------------------------


class ChunkReader(Protocol):
    def document_chunks(self, tenant_id: str, document_id: str, after_position: int | None, limit: int) -> list[Chunk]:
        """Up to `limit` of the document's chunks with a position above `after_position`, in position order."""


def _decode_after(cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        plain = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadRequest("cursor is not valid", code="invalid_cursor") from None
    after = plain.get("after") if isinstance(plain, dict) else None
    if not isinstance(after, int) or isinstance(after, bool) or not 0 <= after < 10**9:
        raise BadRequest("cursor is not valid", code="invalid_cursor")
    return after


def _encode_after(position: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": position}).encode()).decode().rstrip("=")


class DocumentChunks:
    def __init__(self, documents: DocumentStore, search: ChunkReader):
        self.documents = documents
        self.search = search

    def page(self, tenant_id: str, document_id: str, limit: int, cursor: str | None) -> ChunkPage:
        """One page of the document's chunks in order. The document is looked up in the caller's own partition
        first (another tenant's id is `404 document_not_found`), and the chunks are read from the caller's own
        index only. Keyset paging (position above the cursor's), not from/size: no depth limit, nothing kept
        open on the engine. Only an `indexed` document has a complete set; any other answers an empty page."""
        after = _decode_after(cursor)
        document = self.documents.get(tenant_id, document_id) if ids.is_document_id(document_id) else None
        if document is None:
            raise NotFound(f"document {document_id} not found", code="document_not_found")
        if document.status is not DocumentStatus.INDEXED:
            return ChunkPage(chunks=[], next_cursor=None)
        found = self.search.document_chunks(tenant_id, document_id, after, limit)
        chunks = _unique(found)
        next_cursor = _encode_after(found[-1].position) if len(found) == limit else None
        return ChunkPage(chunks=[ChunkView(chunk_id=c.chunk_id, ordinal=c.position, text=c.text) for c in chunks], next_cursor=next_cursor)


def _unique(chunks: Sequence[Chunk]) -> list[Chunk]:
    """One of each chunk id: an engine that generates ids can briefly hold two copies of a chunk (a re-run that
    wrote the document again before the sweep removed the first)."""
    seen: dict[str, Chunk] = {}
    for chunk in chunks:
        seen.setdefault(chunk.chunk_id, chunk)
    return list(seen.values())


__all__ = ["ConfigPreview", "DocumentChunks", "IdentityService", "TenantTimeline"]
