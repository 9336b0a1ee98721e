"""What a tenant export returns: the bundle's manifest and where to download it (defined once)."""

from __future__ import annotations

from pydantic import Field

from raas.domain.model import Model

EXPORT_FORMAT = 1


class ExportManifest(Model):
    """manifest.json inside the bundle, and the manifest in the API's answer."""

    tenant_id: str
    exported_at: str = Field(description="when the bundle was built, ISO 8601 UTC")
    documents: int
    originals: int = Field(description="documents whose original file is in the bundle")
    originals_missing: list[str] = Field(description="ids of documents whose original could not be read")
    config_versions: int
    audit_entries: int
    format: int = Field(default=EXPORT_FORMAT, description="the bundle layout's version")


class ExportResult(Model):
    key: str
    url: str = Field(description="presigned GET link to the zip")
    expires_in: int
    manifest: ExportManifest
