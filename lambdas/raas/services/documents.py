"""Documents: accept (inline or presigned upload), list, read, delete. Ingestion runs on the S3 event."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from raas.domain import catalog, ids
from raas.domain.catalog import Tier
from raas.domain.documents import (
    SOURCE_OBJECT_SUFFIX,
    SUPPORTED_TYPES,
    Document,
    DocumentStatus,
    MetadataValue,
    UnsupportedContentType,
    check_filename,
    check_metadata,
    content_hash,
    normalise_content_type,
)
from raas.domain.errors import BadRequest, NotFound, PayloadTooLarge, TooManyRequests, ValidationFailed
from raas.domain.extraction import ExtractionError, check_declared_type
from raas.domain.ports import AuditLog, DocumentStore, IndexedChunks, ObjectStore, QuotaExceeded, SearchIndex


def object_key(document_id: str) -> str:
    """Tenant-relative S3 key of a document's source bytes (the S3 key is `tenants/{tenant}/` + this)."""
    return f"documents/{document_id}{SOURCE_OBJECT_SUFFIX}"


def engine_ids_key(document_id: str) -> str:
    """Tenant-relative S3 key of the ids the search engine gave a document's chunks (see `EngineReceipts`)."""
    return f"documents/{document_id}/engine-ids"


MAX_RECEIPT_BYTES = 64 * 1024 * 1024


class EngineReceipts:
    """Keeps the ids a search engine gave a document's chunks, next to the document's bytes.

    An engine that searches its writes only after a refresh interval (OpenSearch Serverless) cannot find a
    chunk written a moment ago by its document id, so a delete or a replacement soon after indexing would miss
    it; with these ids it deletes it anyway. Engines whose writes are visible at once need none, and nothing is
    stored for them. S3, not the DynamoDB record: a large document has more ids than an item holds (400 KB)."""

    def __init__(self, objects: ObjectStore, search: SearchIndex):
        self.objects = objects
        self.search = search

    def keep(self, tenant_id: str, document_id: str, engine_ids: tuple[str, ...]) -> None:
        if engine_ids and not self.search.visible_at_once:
            self.objects.put(tenant_id, engine_ids_key(document_id), json.dumps(list(engine_ids)).encode(), "application/json")

    def of(self, tenant_id: str, document_id: str) -> tuple[str, ...]:
        if self.search.visible_at_once or self.objects.size(tenant_id, engine_ids_key(document_id)) is None:
            return ()
        return tuple(json.loads(self.objects.get(tenant_id, engine_ids_key(document_id), MAX_RECEIPT_BYTES)))

    def drop(self, tenant_id: str, document_id: str) -> None:
        if not self.search.visible_at_once:
            self.objects.delete(tenant_id, engine_ids_key(document_id))

    def indexed(self, document: Document) -> IndexedChunks:
        """What the index needs to remove every chunk of this document."""
        return IndexedChunks(document.document_id, document.chunk_count, self.of(document.tenant_id, document.document_id))


class DocumentRemover:
    """Deletes one document so that an ingest running at the same time cannot leave chunks behind.

    Order: tombstone the record (`mark_deleting`, conditional), then remove the chunks (what the index finds by
    document id, plus the engine ids kept in S3), then the ids, bytes and record. An ingest attempt marks the
    document `indexed` only under the condition that it still holds it, after writing its chunks and their ids:
    - it marked first: its ids were written before the tombstone, so the removal here reads them (S3 reads are
      strongly consistent: https://docs.aws.amazon.com/AmazonS3/latest/userguide/Welcome.html#ConsistencyModel);
    - the tombstone came first: its mark fails and the attempt removes the chunks it wrote itself.
    Used by DELETE and by the retirement of a source's old version."""

    def __init__(self, documents: DocumentStore, objects: ObjectStore, search: SearchIndex):
        self.documents = documents
        self.objects = objects
        self.search = search
        self.receipts = EngineReceipts(objects, search)

    def remove(self, tenant_id: str, document_id: str) -> Document | None:
        """The document as it was, or None when there was none. Repeating it after a crash finishes the job."""
        try:
            document = self.documents.mark_deleting(tenant_id, document_id)
        except NotFound:
            return None
        indexed = self.receipts.indexed(document)
        self.search.delete_document(tenant_id, document.document_id, document.chunk_count, indexed.engine_ids)
        self.receipts.drop(tenant_id, document.document_id)
        self.objects.delete(tenant_id, object_key(document.document_id))
        self.documents.delete(tenant_id, document)
        self.documents.bump_generation(tenant_id)  # after the chunks are gone: no cached answer may cite them
        return document


def document_of_object_key(key: str) -> str | None:
    parts = key.split("/")
    if len(parts) == 3 and parts[0] == "documents" and parts[2] == "source" and ids.is_document_id(parts[1]):
        return parts[1]
    return None


@dataclass(frozen=True)
class NewDocument:
    title: str
    data: bytes
    content_type: str
    metadata: dict[str, MetadataValue]
    source_uri: str | None


# Formats whose bytes are binary: inline `text` can never be one, so such a document would only fail at
# ingestion. They come as content_base64 or a presigned upload.
BINARY_KINDS = frozenset({"pdf", "docx"})


def decode_inline(text: str | None, content_base64: str | None, content_type: str | None) -> tuple[bytes, str]:
    """The bytes and content type of an inline document, refused at once (never accepted to fail later)
    when the content cannot be what its type says."""
    if (text is None) == (content_base64 is None):
        raise BadRequest("give exactly one of text or content_base64", code="invalid_document")
    if text is not None:
        kind = normalise_content_type(content_type or "text/plain")
        if SUPPORTED_TYPES[kind] in BINARY_KINDS:
            raise UnsupportedContentType(
                f"inline text cannot be {kind}; send the file as content_base64 or through an upload",
                code="content_type_mismatch",
                details=[{"field": "content_type", "message": "not a text format"}],
            )
        data = text.encode("utf-8")
        _refuse_nul(data)
        return data, kind
    if not content_type:
        raise BadRequest("content_type is required with content_base64", code="invalid_document")
    try:
        data = base64.b64decode(content_base64 or "", validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("content_base64 is not valid base64", code="invalid_base64") from None
    kind = normalise_content_type(content_type)
    try:
        check_declared_type(data, kind)
    except ExtractionError as exc:
        raise UnsupportedContentType(str(exc), code="content_type_mismatch") from None
    return data, kind


def _refuse_nul(data: bytes) -> None:
    # The text extractors read a NUL as the mark of a binary file and fail the document (domain/extraction.py).
    # Inline text only: base64 bytes declared as text that turn out binary still fail at ingestion, with a reason.
    if b"\x00" in data:
        raise ValidationFailed(
            "inline text may not contain NUL characters; send binary files as content_base64 with their content type",
            code="invalid_text",
            details=[{"field": "text", "message": "contains NUL (U+0000)"}],
        )


@dataclass(frozen=True)
class Upload:
    document: Document
    url: str
    headers: dict[str, str]
    expires_at: datetime


class DocumentService:
    def __init__(
        self,
        documents: DocumentStore,
        objects: ObjectStore,
        search: SearchIndex,
        presign_seconds: int = 900,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        audit: AuditLog | None = None,
    ):
        self.audit = audit
        self.documents = documents
        self.objects = objects
        self.search = search
        self.remover = DocumentRemover(documents, objects, search)
        self.presign_seconds = presign_seconds
        self._now = clock

    def _new(
        self, tenant_id: str, title: str, content_type: str, size: int, metadata: dict[str, MetadataValue], **extra: object
    ) -> Document:
        now = self._now()
        return Document(
            document_id=ids.new_document_id(),
            tenant_id=tenant_id,
            title=title,
            content_type=content_type,
            size_bytes=size,
            status=DocumentStatus.QUEUED,
            metadata=check_metadata(metadata),
            created_at=now,
            updated_at=now,
            **extra,
        )

    def _reserve(self, document: Document, tier: Tier, *, claim_hash: bool) -> Document:
        limits = catalog.tier_limits(tier)
        if document.size_bytes > limits.max_document_bytes:
            raise PayloadTooLarge(
                f"the document is {document.size_bytes} bytes; the {tier.value} tier accepts up to {limits.max_document_bytes}",
                code="document_too_large",
            )
        try:
            return self.documents.create(
                document, max_documents=limits.max_documents, max_bytes=limits.max_storage_bytes, claim_hash=claim_hash
            )
        except QuotaExceeded:
            raise TooManyRequests(
                f"the {tier.value} tier's quota of {limits.max_documents} documents or {limits.max_storage_bytes} bytes is used up; "
                "delete documents or move to a larger tier",
                code="quota_exceeded",
            ) from None

    def create_inline(self, tenant_id: str, tier: Tier, new: NewDocument) -> tuple[Document, bool]:
        """Stores the bytes under the tenant prefix; the S3 event starts ingestion. (doc, created)."""
        document = self._new(
            tenant_id,
            new.title,
            new.content_type,
            len(new.data),
            new.metadata,
            content_hash=content_hash(new.data),
            source_uri=new.source_uri,
        )
        stored = self._reserve(document, tier, claim_hash=True)
        if stored.document_id != document.document_id:
            return stored, False  # the same content is already here
        try:
            self.objects.put(tenant_id, object_key(document.document_id), new.data, new.content_type)
        except Exception:
            self.documents.delete(tenant_id, document)  # nothing half written: record, hash and quota go
            raise
        return document, True

    def create_upload(
        self,
        tenant_id: str,
        tier: Tier,
        *,
        filename: str,
        content_type: str,
        size: int,
        title: str | None,
        metadata: dict,
        source_uri: str | None,
    ) -> Upload:
        kind = normalise_content_type(content_type)
        document = self._new(
            tenant_id, title or check_filename(filename), kind, size, metadata, filename=check_filename(filename), source_uri=source_uri
        )
        self._reserve(document, tier, claim_hash=False)
        url, headers = self.objects.presign_put(tenant_id, object_key(document.document_id), kind, self.presign_seconds)
        return Upload(document, url, headers, self._now() + timedelta(seconds=self.presign_seconds))

    def get(self, tenant_id: str, document_id: str) -> Document:
        document = self.documents.get(tenant_id, document_id) if ids.is_document_id(document_id) else None
        if document is None:
            raise NotFound(f"document {document_id} not found", code="document_not_found")
        return document

    def list(self, tenant_id: str, status: DocumentStatus | None, limit: int, cursor: str | None) -> tuple[list[Document], str | None]:
        return self.documents.list(tenant_id, status.value if status else None, limit, cursor)

    def delete(self, tenant_id: str, document_id: str, actor: str = "tenant") -> Document:
        document = self.remover.remove(tenant_id, document_id) if ids.is_document_id(document_id) else None
        if document is None:
            raise NotFound(f"document {document_id} not found", code="document_not_found")
        if self.audit is not None:
            self.audit.record(tenant_id, actor, "document.deleted", document.document_id, {"title": document.title})
        return document
