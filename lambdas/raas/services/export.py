"""Tenant export: one zip with the tenant's documents, their chunk metadata, configuration
versions, usage and audit log. Built in a temporary file (never all in memory) and stored in S3.

A tenant's bundle is kept EXPORT_RETENTION_DAYS (then S3's lifecycle rule removes it, see
raas.adapters.exports) and, while it lives, its bytes count in the tenant's stored bytes: the
storage quota (a bundle that does not fit is refused, and documents cannot use the room it takes)
and the daily billed storage snapshot. Expired bundles give their bytes back when the tenant next
exports or reads its usage, and in the local platform's sweep (raas.local.export_expiry).
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from aws_lambda_powertools import Logger

from raas.domain import catalog
from raas.domain.catalog import Tier
from raas.domain.documents import EXTENSIONS, DocumentStatus
from raas.domain.errors import TooManyRequests
from raas.domain.events import ExportReady
from raas.domain.export_retention import export_expires_at
from raas.domain.exports import ExportManifest, ExportResult
from raas.domain.paging import all_items
from raas.domain.ports import AuditLog, DocumentStore, EventPublisher, QuotaExceeded
from raas.services.config import ConfigService
from raas.services.documents import object_key
from raas.services.notify import announce

if TYPE_CHECKING:
    from raas.adapters.exports import DynamoExportLedger, S3ExportObjects

logger = Logger(service="raas")

T = TypeVar("T")
MAX_OBJECT_BYTES = 200 * 1024 * 1024


class ExportObjects(Protocol):
    def get(self, tenant_id: str, key: str, max_bytes: int) -> bytes: ...

    def put_file(self, tenant_id: str, key: str, path: str, content_type: str) -> None: ...

    def put_retained_file(self, tenant_id: str, name: str, path: str) -> str: ...

    def presign_get(self, tenant_id: str, key: str, expires_seconds: int) -> str: ...


class ConversationExport(Protocol):
    def export(self, tenant_id: str) -> list[Any]:
        """Every live conversation of the tenant with its messages (pydantic models)."""


class UsageHistory(Protocol):
    def periods(self, tenant_id: str) -> dict[str, dict[str, int]]: ...


@dataclass(frozen=True)
class StoredBytes:
    """What the tenant stores now: documents and live export bundles (`bytes` is both: what is billed)."""

    bytes: int
    export_bytes: int
    exports: int


_EXTENSION_OF = {content_type: ext for ext, content_type in reversed(list(EXTENSIONS.items()))}


class ExportService:
    def __init__(
        self,
        documents: DocumentStore,
        objects: ExportObjects,
        configs: ConfigService,
        usage: UsageHistory,
        audit: AuditLog,
        link_seconds: int = 3600,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        bundles: S3ExportObjects | None = None,
        ledger: DynamoExportLedger | None = None,
        events: EventPublisher | None = None,
        conversations: ConversationExport | None = None,
    ):
        self.conversations = conversations  # conversations.jsonl in the bundle (services/conversations.py)
        self.events = events  # export.ready for tenants' webhooks (best effort)
        self.documents = documents
        self.objects = objects
        self.configs = configs
        self.usage = usage
        self.audit = audit
        self.link_seconds = link_seconds
        self._now = clock
        # Built from the stores given when the composition root passes none (it predates them): the tagged
        # writer needs the S3 store, the ledger the documents table the quota counters live in.
        if bundles is None or ledger is None:
            from raas.adapters.exports import DynamoExportLedger, S3ExportObjects

            bundles = bundles or S3ExportObjects(objects)  # type: ignore[arg-type]
            ledger = ledger or DynamoExportLedger(documents.clients, documents.table)  # type: ignore[attr-defined]
        self.bundles = bundles
        self.ledger = ledger

    def export(self, tenant_id: str, actor: str, tier: Tier) -> ExportResult:
        """Writes the bundle under the tenant's prefix, counted in its storage; returns its key and a presigned link."""
        self.release_expired(tenant_id)
        created = self._now()
        # the suffix keeps two exports in one second apart (the ledger refuses a second record for a key)
        name = f"exports/{created:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}.zip"
        limit = catalog.tier_limits(tier).max_storage_bytes
        with tempfile.TemporaryDirectory(prefix="raas-export-") as scratch:
            path, manifest = self._build(tenant_id, Path(scratch))
            size = os.path.getsize(path)
            try:
                self.ledger.reserve(tenant_id, name, size, export_expires_at(created), max_bytes=limit)
            except QuotaExceeded:
                raise TooManyRequests(
                    f"the bundle is {size} bytes and the {tier.value} tier's storage of {limit} bytes (documents and "
                    "exports kept for their retention) has no room for it; delete documents or wait for older exports to expire",
                    code="quota_exceeded",
                ) from None
            try:
                self.bundles.put_tagged_file(tenant_id, name, str(path), "application/zip")
            except Exception:
                self.ledger.release(tenant_id, name)  # never stored: its bytes are not the tenant's to pay for
                raise
        self.audit.record(tenant_id, actor, "tenant.exported", name, {"documents": manifest.documents, "bytes": size})
        url = self.objects.presign_get(tenant_id, name, self.link_seconds)
        announce(
            self.events,
            ExportReady(
                event_id=f"export-ready-{tenant_id}-{name.removeprefix('exports/').removesuffix('.zip')}",
                tenant_id=tenant_id,
                actor=actor,
                key=name,
                url=url,
                expires_in=self.link_seconds,
                documents=manifest.documents,
            ),
        )
        return ExportResult(key=name, url=url, expires_in=self.link_seconds, manifest=manifest)

    def release_expired(self, tenant_id: str, now: datetime | None = None, *, remove_objects: bool = True) -> list[str]:
        """Gives back the storage of the tenant's expired bundles and, with `remove_objects`, removes any the
        lifecycle rule has not removed yet (S3 runs it once a day; locally nothing else does). The daily
        metering run releases without touching S3 (the rule does that). Returns the released keys."""
        released = []
        for key in self.ledger.expired_keys(tenant_id, now or self._now()):
            if remove_objects:
                self.bundles.expire(tenant_id, key)
            if self.ledger.release(tenant_id, key):
                released.append(key)
        if released:
            logger.info("expired exports released", extra={"tenant_id": tenant_id, "count": len(released)})
        return released

    def stored_bytes(self, tenant_id: str) -> StoredBytes:
        """The tenant's stored bytes now, after giving back expired bundles."""
        self.release_expired(tenant_id)
        live = self.ledger.live(tenant_id, self._now())
        return StoredBytes(bytes=self.ledger.stored_bytes(tenant_id), export_bytes=live.bytes, exports=live.count)

    def export_for_deletion(self, tenant_id: str) -> str:
        with tempfile.TemporaryDirectory(prefix="raas-export-") as scratch:
            path, _manifest = self._build(tenant_id, Path(scratch))
            return self.objects.put_retained_file(tenant_id, f"export-{self._now():%Y%m%dT%H%M%SZ}.zip", str(path))

    def _build(self, tenant_id: str, scratch: Path) -> tuple[Path, ExportManifest]:
        path = scratch / "export.zip"
        # A document being deleted is on its way out: exporting it would race the removal of its bytes.
        listed = all_items(lambda c: self.documents.list(tenant_id, None, 100, c))
        documents = [d for d in listed if d.status is not DocumentStatus.DELETING]
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
            bundle.writestr("documents.jsonl", "".join(d.model_dump_json() + "\n" for d in documents))
            originals = 0
            missing: list[str] = []
            for document in documents:
                try:
                    data = self.objects.get(tenant_id, object_key(document.document_id), MAX_OBJECT_BYTES)
                except Exception:  # noqa: BLE001 - a missing original is listed, not fatal
                    missing.append(document.document_id)
                    continue
                extension = _EXTENSION_OF.get(document.content_type, ".bin")
                bundle.writestr(f"documents/{document.document_id}{extension}", data)
                originals += 1
            versions = list(all_items(lambda c: self.configs.versions(tenant_id, 50, c)))
            bundle.writestr("config_versions.json", json.dumps([v.model_dump(mode="json") for v in versions], indent=2))
            bundle.writestr("usage.json", json.dumps(self.usage.periods(tenant_id), indent=2, sort_keys=True))
            entries = list(all_items(lambda c: self.audit.list(tenant_id, 100, c)))
            bundle.writestr("audit.jsonl", "".join(e.model_dump_json() + "\n" for e in entries))
            if self.conversations is not None:
                conversations = self.conversations.export(tenant_id)
                bundle.writestr("conversations.jsonl", "".join(c.model_dump_json() + "\n" for c in conversations))
            manifest = ExportManifest(
                tenant_id=tenant_id,
                exported_at=self._now().isoformat(),
                documents=len(documents),
                originals=originals,
                originals_missing=missing,
                config_versions=len(versions),
                audit_entries=len(entries),
            )
            bundle.writestr("manifest.json", json.dumps(manifest.model_dump(mode="json"), indent=2))
        return path, manifest
