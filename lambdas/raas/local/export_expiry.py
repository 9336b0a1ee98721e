"""The documents bucket's export lifecycle rule for the local platform: moto stores a bucket's lifecycle
configuration but never runs it, so without this, local export bundles would be kept forever.

It applies the rule stacks/data.py declares (raas.domain.export_retention has the numbers), as S3 documents it
(https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-lifecycle-mgmt.html,
https://docs.aws.amazon.com/AmazonS3/latest/userguide/lifecycle-expire-general-considerations.html):

- only objects carrying the export tag (the rule's filter), looked up per version;
- Expiration: a current version past its expiry (creation + days, rounded to the next midnight UTC) gets a
  delete marker, as in a versioning-enabled bucket; the version itself becomes noncurrent;
- NoncurrentVersionExpiration: a noncurrent version is removed for good once it has been noncurrent for the
  rule's days (from when its successor was written, rounded the same way);
- S3 leaves a delete marker that is the current version alone, and so does this sweep.

Then it gives back the storage of expired bundles (raas.services.export) for every tenant.
It reads the versions from moto's bucket directly (raas.local.moto_reads says why) and tags and deletes them
through the ordinary API, so it works against moto's server and the in-process mock alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger

from raas.adapters.aws import client
from raas.adapters.objects import tenant_of_object_key
from raas.domain.export_retention import EXPORT_TAG_KEY, EXPORT_TAG_VALUE, EXPORTS_PREFIX, export_expires_at, noncurrent_expires_at
from raas.local import moto_reads

logger = Logger(service="raas")

SWEEP_INTERVAL_SECONDS = 3600  # S3 evaluates lifecycle rules once a day; hourly shows the effect sooner locally


@dataclass
class SweepResult:
    expired: int = 0  # current versions given a delete marker
    removed: int = 0  # noncurrent versions deleted for good
    released: int = 0  # bundles whose storage was given back


class ExportExpirySweeper:
    def __init__(self, bucket: Callable[[], str], tenant_ids: Callable[[], list[str]], release: Callable[[str, datetime], int]):
        self.bucket = bucket
        self.tenant_ids = tenant_ids
        self.release = release
        self.next_sweep = 0.0

    def sweep_if_due(self, monotonic_now: float | None = None) -> SweepResult | None:
        now = time.monotonic() if monotonic_now is None else monotonic_now
        if now < self.next_sweep:
            return None
        self.next_sweep = now + SWEEP_INTERVAL_SECONDS
        try:
            return self.sweep()
        except Exception:  # retried at the next turn, as S3's daily run would
            logger.exception("export expiry sweep failed")
            return None

    def sweep(self, now: datetime | None = None) -> SweepResult:
        now = now or datetime.now(UTC)
        s3 = client("s3")
        bucket = self.bucket()
        result = SweepResult()
        for key, entries in _export_keys(bucket).items():
            newest_first = sorted(entries, key=lambda e: e["LastModified"], reverse=True)
            for position, entry in enumerate(newest_first):
                if entry.get("IsDeleteMarker") or not _tagged(s3, bucket, key, entry["VersionId"]):
                    continue
                if entry["IsLatest"]:
                    if export_expires_at(entry["LastModified"]) <= now:
                        s3.delete_object(Bucket=bucket, Key=key)  # versioned bucket: a delete marker
                        result.expired += 1
                elif noncurrent_expires_at(newest_first[position - 1]["LastModified"]) <= now:
                    s3.delete_object(Bucket=bucket, Key=key, VersionId=entry["VersionId"])
                    result.removed += 1
        for tenant_id in self.tenant_ids():
            try:
                result.released += self.release(tenant_id, now)
            except Exception:  # one tenant (e.g. being deleted) must not stop the others
                logger.exception("could not release expired exports", extra={"tenant_id": tenant_id})
        return result


def _export_keys(bucket: str) -> dict[str, list[dict[str, Any]]]:
    """Every version and delete marker under `tenants/<id>/exports/`, by key, read from moto's bucket
    (raas.local.moto_reads: moto's ListObjectVersions deep-copies every version under `tenants/`, every
    tenant's documents included, on each page)."""
    return {key: entries for key, entries in moto_reads.object_versions(bucket, prefix="tenants/").items() if _is_export(key)}


def _is_export(key: str) -> bool:
    parsed = tenant_of_object_key(key)
    return parsed is not None and parsed[1].startswith(EXPORTS_PREFIX)


def _tagged(s3: Any, bucket: str, key: str, version_id: str) -> bool:
    tags = s3.get_object_tagging(Bucket=bucket, Key=key, VersionId=version_id).get("TagSet", [])
    return any(tag["Key"] == EXPORT_TAG_KEY and tag["Value"] == EXPORT_TAG_VALUE for tag in tags)
