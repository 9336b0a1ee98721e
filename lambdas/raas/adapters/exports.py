"""Tenant export bundles: written tagged for the bucket's lifecycle rule, and counted in the tenant's storage
while they live.

Where exports expire. Bundles live under the tenant's prefix (`tenants/<id>/exports/`), where the tenant role
and the tenant's KMS key reach them and a tenant deletion purges them. S3 lifecycle filters match a literal key
prefix, an object size or tags, never a pattern
(https://docs.aws.amazon.com/AmazonS3/latest/userguide/intro-lifecycle-rules.html#intro-lifecycle-rules-filter),
so `tenants/*/exports/` cannot be a filter: each bundle carries the tag EXPORT_TAG (raas.domain.export_retention),
set in the same request that writes it (so no bundle ever exists untagged), and the documents bucket's rule (stacks/data.py) expires tagged
objects EXPORT_RETENTION_DAYS after creation and their noncurrent versions NONCURRENT_EXPORT_DAYS later
(https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-lifecycle-mgmt.html,
https://docs.aws.amazon.com/AmazonS3/latest/userguide/lifecycle-expire-general-considerations.html).
S3 rounds an expiry to the next midnight UTC and stops charging at that time even if the removal runs later
(https://repost.aws/knowledge-center/s3-lifecycle-rule-delay); `export_expires_at` there computes the same instant.

How exports count. Each bundle has a record `EXPORT#<key>` (size, expiry) in the tenant's partition of the
documents table, and its bytes are added to the tenant's `STATS` counters (`bytes`, which the storage quota and
the daily billed storage snapshot read, and `export_bytes`) in the same transaction, conditioned on the storage
quota. Releasing an expired bundle removes its record and gives its bytes back, once (the delete is conditioned
on the record). Reads never count a record past its expiry, whether or not it has been released yet.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from raas.adapters.dynamo import from_item, is_condition_failure, query_partition, storage_errors, to_item, transact_write
from raas.adapters.objects import MULTIPART_PART_BYTES, S3ObjectStore, tenant_object_key
from raas.adapters.registry import tenant_pk
from raas.domain.export_retention import EXPORT_TAG
from raas.domain.ports import QuotaExceeded
from raas.security.credentials import as_source

STATS_SK = "STATS"  # the documents store's quota counters (raas.adapters.documents)
_RECORD_PREFIX = "EXPORT#"
_STORE = "the document store"


@dataclass(frozen=True)
class LiveExports:
    count: int
    bytes: int


class S3ExportObjects:
    """Writes bundles with the export tag, under the tenant's prefix and key (as S3ObjectStore.put_file does)."""

    def __init__(self, objects: S3ObjectStore):
        self.objects = objects

    def put_tagged_file(self, tenant_id: str, key: str, path: str, content_type: str) -> int:
        """Uploads the file (in parts when large) tagged EXPORT_TAG; returns its size in bytes."""
        store = self.objects
        full_key = tenant_object_key(tenant_id, key)
        # The tag goes with PutObject / CreateMultipartUpload themselves (x-amz-tagging), so no bundle is ever
        # stored untagged (https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutObject.html). AWS then also
        # checks s3:PutObjectTagging on the object (https://docs.aws.amazon.com/AmazonS3/latest/userguide/tagging-managing.html):
        # the tenant data role must grant it on tenants/<id>/exports/* (raas.security.tenant_policy).
        extra: dict[str, Any] = {"ContentType": content_type, "Tagging": EXPORT_TAG, **store._encryption(tenant_id)}
        s3 = store.clients(tenant_id)
        size = os.path.getsize(path)
        with open(path, "rb") as source, storage_errors(_STORE):
            if size <= MULTIPART_PART_BYTES:
                s3.put_object(Bucket=store.bucket, Key=full_key, Body=source, **extra)
                return size
            upload_id = s3.create_multipart_upload(Bucket=store.bucket, Key=full_key, **extra)["UploadId"]
            try:
                parts = []
                for number in range(1, math.ceil(size / MULTIPART_PART_BYTES) + 1):
                    chunk = source.read(MULTIPART_PART_BYTES)
                    etag = s3.upload_part(Bucket=store.bucket, Key=full_key, UploadId=upload_id, PartNumber=number, Body=chunk)["ETag"]
                    parts.append({"ETag": etag, "PartNumber": number})
                s3.complete_multipart_upload(Bucket=store.bucket, Key=full_key, UploadId=upload_id, MultipartUpload={"Parts": parts})
            except Exception:
                s3.abort_multipart_upload(Bucket=store.bucket, Key=full_key, UploadId=upload_id)
                raise
        return size

    def expire(self, tenant_id: str, key: str) -> None:
        """What the lifecycle rule's Expiration does: a delete marker on a current bundle, nothing when the
        current version is already a delete marker (a second marker would only pile up)."""
        if self.objects.size(tenant_id, key) is not None:
            self.objects.delete(tenant_id, key)


class DynamoExportLedger:
    """The `EXPORT#` records and their share of the tenant's storage counters, in the documents table."""

    def __init__(self, dynamodb: Any, table_name: str):
        self.clients = as_source("dynamodb", dynamodb)
        self.table = table_name

    def reserve(self, tenant_id: str, key: str, size: int, expires_at: datetime, *, max_bytes: int) -> None:
        """Records the bundle and adds its bytes to the tenant's storage, or raises QuotaExceeded."""
        if size > max_bytes:
            raise QuotaExceeded("storage")
        pk = tenant_pk(tenant_id)
        record = {"PK": pk, "SK": _RECORD_PREFIX + key, "key": key, "size_bytes": size, "expires_at": int(expires_at.timestamp())}
        items = [
            {"Put": {"TableName": self.table, "Item": to_item(record), "ConditionExpression": "attribute_not_exists(PK)"}},
            {
                "Update": {
                    "TableName": self.table,
                    "Key": to_item({"PK": pk, "SK": STATS_SK}),
                    "UpdateExpression": "ADD #bytes :size, export_bytes :size",
                    "ConditionExpression": "attribute_not_exists(#bytes) OR #bytes <= :room",
                    "ExpressionAttributeNames": {"#bytes": "bytes"},
                    "ExpressionAttributeValues": to_item({":size": size, ":room": max_bytes - size}),
                }
            },
        ]
        try:
            transact_write(self.clients(tenant_id), items, _STORE)
        except ClientError as exc:
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons") or []]
            if is_condition_failure(exc) and len(reasons) > 1 and reasons[1] == "ConditionalCheckFailed":
                raise QuotaExceeded("storage") from None
            raise

    def release(self, tenant_id: str, key: str) -> bool:
        """Removes the bundle's record and gives its bytes back; False if it was already released."""
        pk = tenant_pk(tenant_id)
        with storage_errors(_STORE):
            item = (
                self.clients(tenant_id)
                .get_item(TableName=self.table, Key=to_item({"PK": pk, "SK": _RECORD_PREFIX + key}), ConsistentRead=True)
                .get("Item")
            )
        if not item:
            return False
        size = int(from_item(item)["size_bytes"])
        items = [
            {
                "Delete": {
                    "TableName": self.table,
                    "Key": to_item({"PK": pk, "SK": _RECORD_PREFIX + key}),
                    "ConditionExpression": "attribute_exists(PK)",
                }
            },
            {
                "Update": {
                    "TableName": self.table,
                    "Key": to_item({"PK": pk, "SK": STATS_SK}),
                    "UpdateExpression": "ADD #bytes :minus, export_bytes :minus",
                    "ExpressionAttributeNames": {"#bytes": "bytes"},
                    "ExpressionAttributeValues": to_item({":minus": -size}),
                }
            },
        ]
        try:
            transact_write(self.clients(tenant_id), items, _STORE)
        except ClientError as exc:
            if is_condition_failure(exc):
                return False  # released meanwhile by another sweep
            raise
        return True

    def stored_bytes(self, tenant_id: str) -> int:
        """The tenant's `STATS.bytes`: its documents' bytes and the bundles reserved and not yet released."""
        with storage_errors(_STORE):
            item = (
                self.clients(tenant_id)
                .get_item(TableName=self.table, Key=to_item({"PK": tenant_pk(tenant_id), "SK": STATS_SK}), ConsistentRead=True)
                .get("Item")
            )
        return int(from_item(item).get("bytes", 0)) if item else 0

    def records(self, tenant_id: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            page, cursor = query_partition(
                self.clients(tenant_id), self.table, tenant_pk(tenant_id), _RECORD_PREFIX, limit=100, cursor=cursor, what=_STORE
            )
            found.extend(page)
            if not cursor:
                return found

    def live(self, tenant_id: str, now: datetime) -> LiveExports:
        """Bundles not yet expired (an expired one no longer counts, even before it is released)."""
        cutoff = int(now.timestamp())
        alive = [r for r in self.records(tenant_id) if int(r["expires_at"]) > cutoff]
        return LiveExports(len(alive), sum(int(r["size_bytes"]) for r in alive))

    def expired_keys(self, tenant_id: str, now: datetime) -> list[str]:
        cutoff = int(now.timestamp())
        return [str(r["key"]) for r in self.records(tenant_id) if int(r["expires_at"]) <= cutoff]
