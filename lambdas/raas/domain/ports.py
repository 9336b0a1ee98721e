"""Interfaces the services need from storage and identity providers.

Adapters (DynamoDB, JWKS) implement them; tests and the local platform swap them.
Every method that touches tenant data takes the tenant id explicitly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from raas.domain.audit import AuditEntry
from raas.domain.catalog import Tier
from raas.domain.config import ConfigVersion
from raas.domain.documents import Chunk, Document
from raas.domain.events import PlatformEvent
from raas.domain.generation import Generation, GenerationRequest
from raas.domain.retrieval import Condition, Hit
from raas.domain.tenants import ApiKey, DeletionStep, Tenant, TenantStatus
from raas.domain.usage import UsageEvent


class VersionConflict(Exception):
    """A conditional write lost a race: somebody else wrote first."""


class TenantStore(Protocol):
    def create_tenant(self, tenant: Tenant, admin_key: ApiKey, key_hash: str) -> None:
        """Writes the tenant and its first admin key atomically."""

    def get_tenant(self, tenant_id: str) -> Tenant | None: ...

    def tenant_status(self, tenant_id: str) -> TenantStatus | None:
        """Only the status, strongly consistent (None: no such tenant)."""

    def list_tenants(
        self,
        limit: int,
        cursor: str | None,
        *,
        status: TenantStatus | None = None,
        tier: Tier | None = None,
        name_contains: str | None = None,
    ) -> tuple[list[Tenant], str | None]:
        """A page in creation order; filtered pages may be short (even empty) with a cursor that goes on."""

    def update_tenant(
        self,
        tenant_id: str,
        *,
        name: str | None = None,
        tier: Tier | None = None,
        status: TenantStatus | None = None,
        expected_status: tuple[TenantStatus, ...] | None = None,
        usage_key: tuple[str, str] | None = None,
        fields: dict[str, Any] | None = None,
        remove: tuple[str, ...] = (),
    ) -> Tenant:
        """Raises NotFound for an unknown tenant, VersionConflict when the status is not the expected one.

        `fields` sets further profile attributes (Stripe customer, deletion state); `remove` drops some."""

    def record_deletion_step(self, tenant_id: str, step: DeletionStep) -> None: ...


class KeyStore(Protocol):
    def put_key(self, key: ApiKey, key_hash: str) -> None: ...

    def get_key(self, owner: str | None, key_id: str) -> ApiKey | None:
        """owner is the tenant id, or None for operator keys."""

    def list_keys(self, owner: str | None) -> list[ApiKey]: ...

    def revoke_key(self, owner: str | None, key_id: str) -> ApiKey:
        """Raises NotFound when the owner has no such key."""

    def find_by_hash(self, key_hash: str) -> ApiKey | None:
        """The key with this hash, read consistently so a revocation is seen at once."""

    def find_with_tenant(self, key_hash: str) -> tuple[ApiKey, Tenant | None] | None:
        """`find_by_hash` and, for a tenant's key, its tenant, both read consistently in one round trip
        (the authorizer's path); the tenant is None when it does not exist (any more)."""

    def touch(self, key: ApiKey) -> None:
        """Records use of a key (best effort, rate limited by the adapter)."""


class ConfigStore(Protocol):
    def current(self, tenant_id: str) -> ConfigVersion | None: ...

    def write(self, tenant_id: str, version: ConfigVersion, expected_current: int) -> None:
        """Writes a new version iff the current version is still `expected_current`; else VersionConflict."""

    def get_version(self, tenant_id: str, version: int) -> ConfigVersion | None: ...

    def list_versions(self, tenant_id: str, limit: int, cursor: str | None) -> tuple[list[ConfigVersion], str | None]: ...


class TokenVerifier(Protocol):
    def verify(self, token: str) -> dict[str, Any]:
        """Claims of a valid token; raises Unauthorized otherwise."""


# --- documents, search, models, usage (ingestion and query) -------------------------------------


class QuotaExceeded(Exception):
    """A conditional reservation against a tier limit failed."""


class DocumentStore(Protocol):
    def create(self, document: Document, *, max_documents: int, max_bytes: int, claim_hash: bool) -> Document:
        """Writes a queued document and reserves its quota in one transaction.

        With `claim_hash`, also claims the content hash: if another document already holds it,
        returns that document instead and writes nothing. Raises QuotaExceeded when over quota.
        """

    def get(self, tenant_id: str, document_id: str) -> Document | None: ...

    def list(self, tenant_id: str, status: str | None, limit: int, cursor: str | None) -> tuple[list[Document], str | None]: ...

    def update(self, tenant_id: str, document_id: str, **fields: Any) -> Document: ...

    def claim_hash(self, tenant_id: str, content_hash: str, document_id: str) -> str:
        """Claims a content hash for a document; returns the id of the document that holds it."""

    def release_hash(self, tenant_id: str, content_hash: str, document_id: str) -> None: ...

    def current_for_source(self, tenant_id: str, source_uri: str) -> str | None: ...

    def set_current_for_source(self, tenant_id: str, source_uri: str, document_id: str) -> None: ...

    def delete(self, tenant_id: str, document: Document) -> None:
        """Removes the record, its hash claim and its quota reservation."""

    def generation(self, tenant_id: str) -> int:
        """A counter that moves whenever the tenant's searchable documents change."""

    def bump_generation(self, tenant_id: str) -> None: ...

    # The conditional writes that order ingestion and deletion of one document (see adapters/documents.py).
    def claim(self, tenant_id: str, document_id: str, attempt: str) -> Document:
        """`processing` by this attempt if queued or processing; VersionConflict if gone, finished or deleting."""

    def mark_indexed(
        self,
        tenant_id: str,
        document_id: str,
        attempt: str,
        *,
        chunk_count: int,
        content_hash: str | None,
        indexed_at: datetime,
        duplicate_of: str | None = None,
    ) -> Document:
        """Only while this attempt holds the document; VersionConflict otherwise."""

    def mark_indexed_and_count(
        self, claimed: Document, attempt: str, *, chunk_count: int, content_hash: str | None, indexed_at: datetime, counted: UsageEvent
    ) -> Document:
        """`mark_indexed`, with the usage event counted in the same atomic write (both or neither); an event counted
        before does not stop the mark and is not counted again."""

    def mark_failed(self, tenant_id: str, document_id: str, attempt: str, error: str) -> Document:
        """Only while this attempt holds the document; VersionConflict otherwise."""

    def mark_deleting(self, tenant_id: str, document_id: str) -> Document:
        """Tombstones the record so no attempt can mark it any more; NotFound if absent."""


class ObjectStore(Protocol):
    def put(self, tenant_id: str, key: str, data: bytes, content_type: str) -> None: ...

    def get(self, tenant_id: str, key: str, max_bytes: int) -> bytes: ...

    def read_upload(self, tenant_id: str, key: str, max_bytes: int) -> bytes | None:
        """An upload for ingestion: `get`, or None when there is no such object (one request: no HEAD first), without
        the data gate's own status read: ingestion has just read the tenant's status itself (strongly consistent) and
        reads it again before it writes anything the bytes become (services/ingest.py)."""

    def size(self, tenant_id: str, key: str) -> int | None: ...

    def delete(self, tenant_id: str, key: str) -> None: ...

    def presign_put(self, tenant_id: str, key: str, content_type: str, expires_seconds: int) -> tuple[str, dict[str, str]]: ...


@dataclass(frozen=True)
class IndexedChunks:
    """A document's chunks as a search index holds them.

    `engine_ids` are the ids the engine gave the chunks when they were written (`replace`'s answer). An
    engine that searches its writes only after a refresh interval cannot find a just-written chunk by its
    document id, so removing it needs these; an engine whose writes are visible at once needs none."""

    document_id: str
    chunk_count: int = 0
    engine_ids: tuple[str, ...] = ()


class SearchIndex(Protocol):
    visible_at_once: bool
    """True when what `replace` and `delete_document` did is searchable as soon as they return."""

    def ensure_index(self, tenant_id: str) -> None: ...

    def replace(self, tenant_id: str, chunks: list[Chunk], vectors: list[list[float]], remove: Sequence[IndexedChunks]) -> tuple[str, ...]:
        """Indexes `chunks`, then removes every other chunk of the documents in `remove` and of the chunks' own
        document (leftovers of an earlier attempt); returns the ids the engine gave the new chunks. When it
        raises, none of the new chunks is left in the index."""

    def delete_document(self, tenant_id: str, document_id: str, chunk_count: int, engine_ids: Sequence[str] = ()) -> None:
        """Removes every chunk of the document: those it can find by document id and those named in `engine_ids`."""

    def lexical(self, tenant_id: str, query: str, k: int, conditions: list[Condition]) -> list[Hit]: ...

    def semantic(self, tenant_id: str, vector: list[float], k: int, conditions: list[Condition]) -> list[Hit]: ...

    def drop_index(self, tenant_id: str) -> None: ...

    def document_chunks(self, tenant_id: str, document_id: str, after_position: int | None, limit: int) -> list[Chunk]:
        """Up to `limit` of the document's chunks with a position above `after_position`, in position order."""


class Embedder(Protocol):
    name: str
    dimension: int

    def embed(self, texts: list[str]) -> list[list[float]]: ...


class ChatModel(Protocol):
    def generate(self, request: GenerationRequest) -> Generation: ...


class Reranker(Protocol):
    name: str

    def rerank(self, query: str, hits: list[Hit], top_n: int) -> list[Hit]: ...


class UsageRecorder(Protocol):
    def record(self, event: UsageEvent) -> bool:
        """Counts the event once; a replay of the same event id is ignored (returns False)."""


# --- lifecycle, audit, metering and billing ----------------------------------------------------


class EventPublisher(Protocol):
    def publish(self, event: PlatformEvent) -> None:
        """Puts the event on the platform bus (EventBridge in AWS, the local dispatcher locally)."""


class AuditLog(Protocol):
    def record(self, tenant_id: str, actor: str, action: str, target: str = "", details: dict[str, Any] | None = None) -> None:
        """Appends an immutable entry; writes nothing once the tenant is being deleted."""

    def list(self, tenant_id: str, limit: int, cursor: str | None) -> tuple[list[AuditEntry], str | None]: ...


class UsagePlans(Protocol):
    def create(self, tenant_id: str, tier: str) -> tuple[str, str]: ...

    def move(self, key_id: str, from_tier: str, to_tier: str) -> None: ...

    def set_enabled(self, key_id: str, enabled: bool) -> None: ...

    def delete(self, key_id: str) -> bool:
        """Deletes the key; False when it was already gone."""


class BillingProvider(Protocol):
    def ensure_customer(self, tenant_id: str, name: str) -> str:
        """The tenant's customer id, created once (idempotent on the tenant id)."""

    def archive_customer(self, customer_id: str) -> bool:
        """False when the customer was already gone."""

    def tenant_of_customer(self, customer_id: str) -> str | None:
        """The tenant a customer was made for (from its metadata), or None."""

    def send_meter_event(self, customer_id: str, metric: str, value: int, identifier: str, timestamp: int) -> None:
        """Reports usage; the provider drops a repeated `identifier`."""


class TenantPurger(Protocol):
    """Removes every trace of a tenant's data (platform credentials; runs only while `deleting`)."""

    def delete_objects(self, tenant_id: str) -> int:
        """Every object version and delete marker under the tenant's prefix; returns how many."""

    def delete_items(self, tenant_id: str, keep: tuple[tuple[str, str], ...]) -> dict[str, int]:
        """Every item in the tenant's partition of every table but `keep` ((table, SK)); counts per table."""
