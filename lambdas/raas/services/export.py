"""Tenant export: one zip with the tenant's documents, their chunk metadata, configuration
versions, usage and audit log. Built in a temporary file (never all in memory) and stored in S3."""

from __future__ import annotations

import json
import tempfile
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, TypeVar

from raas.domain.documents import EXTENSIONS, DocumentStatus
from raas.domain.exports import ExportManifest, ExportResult
from raas.domain.paging import all_items
from raas.domain.ports import AuditLog, DocumentStore
from raas.services.config import ConfigService
from raas.services.documents import object_key

T = TypeVar("T")
MAX_OBJECT_BYTES = 200 * 1024 * 1024


class ExportObjects(Protocol):
    def get(self, tenant_id: str, key: str, max_bytes: int) -> bytes: ...

    def put_file(self, tenant_id: str, key: str, path: str, content_type: str) -> None: ...

    def put_retained_file(self, tenant_id: str, name: str, path: str) -> str: ...

    def presign_get(self, tenant_id: str, key: str, expires_seconds: int) -> str: ...


class UsageHistory(Protocol):
    def periods(self, tenant_id: str) -> dict[str, dict[str, int]]: ...


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
    ):
        self.documents = documents
        self.objects = objects
        self.configs = configs
        self.usage = usage
        self.audit = audit
        self.link_seconds = link_seconds
        self._now = clock

    def export(self, tenant_id: str, actor: str) -> ExportResult:
        """Writes the bundle under the tenant's prefix; returns its key and a presigned link."""
        name = f"exports/{self._now():%Y%m%dT%H%M%SZ}.zip"
        with tempfile.TemporaryDirectory(prefix="raas-export-") as scratch:
            path, manifest = self._build(tenant_id, Path(scratch))
            self.objects.put_file(tenant_id, name, str(path), "application/zip")
        self.audit.record(tenant_id, actor, "tenant.exported", name, {"documents": manifest.documents})
        url = self.objects.presign_get(tenant_id, name, self.link_seconds)
        return ExportResult(key=name, url=url, expires_in=self.link_seconds, manifest=manifest)

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
