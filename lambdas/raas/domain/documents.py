"""Documents and chunks: the model, supported types, metadata rules."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Field, field_validator

from raas.domain.errors import ValidationFailed
from raas.domain.model import Model


class DocumentStatus(StrEnum):
    QUEUED = "queued"
    PROCESSING = "processing"
    INDEXED = "indexed"
    FAILED = "failed"
    DELETING = "deleting"  # a delete has begun: no ingest may mark it any more; the record goes when its chunks have


# content type -> short kind used by the extractor
SUPPORTED_TYPES: dict[str, str] = {
    "text/plain": "txt",
    "text/markdown": "md",
    "text/x-markdown": "md",
    "text/html": "html",
    "application/pdf": "pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "text/csv": "csv",
    "application/json": "json",
}
EXTENSIONS: dict[str, str] = {
    ".txt": "text/plain",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".html": "text/html",
    ".htm": "text/html",
    ".pdf": "application/pdf",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".csv": "text/csv",
    ".json": "application/json",
}

MetadataValue = str | int | float | bool | list[str]
MAX_METADATA_KEYS = 50
MAX_METADATA_STRING = 1000
# The whole metadata, as JSON. It is stored on the document's record and copied into every chunk in the
# search index, so it stays far below DynamoDB's 400 KB item limit
# (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Constraints.html); the per-key
# rules alone would allow about 5 MB.
MAX_METADATA_BYTES = 64 * 1024
_METADATA_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")
_FILENAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._()-]{0,199}$")


class UnsupportedContentType(ValidationFailed):
    status = 415
    code = "unsupported_media_type"


def normalise_content_type(content_type: str) -> str:
    kind = content_type.split(";")[0].strip().lower()
    if kind not in SUPPORTED_TYPES:
        raise UnsupportedContentType(
            f"content type {kind or '(none)'} is not supported; use one of: {', '.join(sorted(set(SUPPORTED_TYPES)))}",
            details=[{"field": "content_type", "message": "unsupported"}],
        )
    return kind


def check_filename(filename: str) -> str:
    """A plain file name: no paths, no traversal, no control characters."""
    if not _FILENAME.fullmatch(filename) or ".." in filename:
        raise ValidationFailed(
            "filename must be a plain name (letters, digits, space, . _ - ( )), at most 200 characters, no path",
            code="invalid_filename",
            details=[{"field": "filename", "message": "not a plain file name"}],
        )
    return filename


def check_metadata(metadata: dict[str, Any]) -> dict[str, MetadataValue]:
    problems: list[dict[str, Any]] = []
    if len(metadata) > MAX_METADATA_KEYS:
        problems.append({"field": "metadata", "message": f"at most {MAX_METADATA_KEYS} keys"})
    for key, value in metadata.items():
        field = f"metadata.{key}"
        if not _METADATA_KEY.fullmatch(key):
            problems.append({"field": field, "message": "keys are identifiers (letters, digits, _ . -), at most 64 characters"})
        if isinstance(value, bool | int | float):
            continue
        if isinstance(value, str):
            if len(value) > MAX_METADATA_STRING:
                problems.append({"field": field, "message": f"strings are at most {MAX_METADATA_STRING} characters"})
            continue
        if isinstance(value, list) and all(isinstance(v, str) and len(v) <= MAX_METADATA_STRING for v in value) and len(value) <= 100:
            continue
        problems.append({"field": field, "message": "values are strings, numbers, booleans or lists of up to 100 strings"})
    if not problems and len(json.dumps(metadata, ensure_ascii=False).encode()) > MAX_METADATA_BYTES:
        problems.append({"field": "metadata", "message": f"at most {MAX_METADATA_BYTES} bytes as JSON"})
    if problems:
        raise ValidationFailed("metadata is invalid", code="invalid_metadata", details=problems)
    return metadata


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# The last segment of a document's source object key (`tenants/{tenant}/documents/{id}/source`). Bucket
# notifications filter on it, so the other objects under a tenant's prefix (the search engine's
# receipts, exports) never reach the ingest queue.
SOURCE_OBJECT_SUFFIX = "/source"

DOCUMENT_STATUS = (
    "queued | processing | indexed | failed | deleting. `deleting` means a delete has begun and has not finished (a "
    "repeated DELETE finishes it). `indexed` means every chunk is written to the tenant's index. When it "
    "is also searchable depends on the engine: embedded (local) at once; an OpenSearch managed domain at once (writes "
    "wait for its refresh); OpenSearch Serverless after the collection's refresh interval, which AWS documents as 60 "
    "seconds for Classic vector search collections and 10 seconds for NextGen ones "
    "(https://docs.aws.amazon.com/opensearch-service/latest/developerguide/serverless-vector-search.html). A deleted "
    "or replaced document leaves search results after the same delay."
)


class Document(Model):
    document_id: str
    tenant_id: str
    title: str
    content_type: str
    size_bytes: int
    content_hash: str | None = None
    status: DocumentStatus = Field(description=DOCUMENT_STATUS)
    metadata: dict[str, MetadataValue] = Field(default_factory=dict)
    source_uri: str | None = None
    filename: str | None = None
    chunk_count: int = 0
    error: str | None = None
    duplicate_of: str | None = None
    created_at: datetime
    updated_at: datetime
    indexed_at: datetime | None = None


class Chunk(Model):
    chunk_id: str
    document_id: str
    title: str
    text: str
    position: int
    metadata: dict[str, MetadataValue] = Field(default_factory=dict)

    @field_validator("chunk_id")
    @classmethod
    def _belongs_to_document(cls, value: str) -> str:
        if ":" not in value:
            raise ValueError("chunk ids are <document_id>:<position>")
        return value


def chunk_id(document_id: str, position: int) -> str:
    return f"{document_id}:{position:05d}"
