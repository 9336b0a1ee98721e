"""Removes a tenant's data for deletion: every S3 object version under its prefix and every
DynamoDB item in its partition of every table. Uses the platform's credentials; the lifecycle
service calls it only once the tenant is `deleting`, so no request can write new data behind it."""

from __future__ import annotations

import time
from typing import Any

from raas.adapters.dynamo import query_all, storage_errors, to_item
from raas.adapters.objects import tenant_prefix
from raas.adapters.registry import tenant_pk

S3_DELETE_BATCH = 1000
DYNAMO_WRITE_BATCH = 25


class AwsTenantPurger:
    def __init__(self, s3: Any, bucket: str, dynamodb: Any, tables: list[str]):
        self.s3 = s3
        self.bucket = bucket
        self.dynamodb = dynamodb
        self.tables = tables

    def delete_objects(self, tenant_id: str) -> int:
        prefix = tenant_prefix(tenant_id)
        deleted = 0
        paginator = self.s3.get_paginator("list_object_versions")
        with storage_errors("the document store"):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                versions = [
                    {"Key": v["Key"], "VersionId": v["VersionId"]}
                    for v in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
                    if v["Key"].startswith(prefix)
                ]
                for start in range(0, len(versions), S3_DELETE_BATCH):
                    batch = versions[start : start + S3_DELETE_BATCH]
                    result = self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
                    if result.get("Errors"):
                        raise RuntimeError(f"S3 refused to delete {len(result['Errors'])} object versions of {tenant_id}")
                    deleted += len(batch)
        return deleted

    def delete_items(self, tenant_id: str, keep: tuple[tuple[str, str], ...]) -> dict[str, int]:
        pk = tenant_pk(tenant_id)
        counts: dict[str, int] = {}
        for table in self.tables:
            keys = [k for k in self._keys(table, pk) if (table, k["SK"]) not in keep]
            for start in range(0, len(keys), DYNAMO_WRITE_BATCH):
                self._delete_batch(table, keys[start : start + DYNAMO_WRITE_BATCH])
            counts[table] = len(keys)
        return counts

    def _keys(self, table: str, pk: str) -> list[dict[str, str]]:
        items = query_all(
            self.dynamodb,
            "the tenant's tables",
            TableName=table,
            KeyConditionExpression="PK = :pk",
            ExpressionAttributeValues=to_item({":pk": pk}),
            ProjectionExpression="PK, SK",
            ConsistentRead=True,
        )
        return [{"PK": i["PK"]["S"], "SK": i["SK"]["S"]} for i in items]

    def _delete_batch(self, table: str, keys: list[dict[str, str]]) -> None:
        requests: dict[str, Any] = {table: [{"DeleteRequest": {"Key": to_item(k)}} for k in keys]}
        with storage_errors("the tenant's tables"):
            for attempt in range(8):
                if attempt:
                    time.sleep(min(2.0, 0.05 * 2**attempt))
                unprocessed = self.dynamodb.batch_write_item(RequestItems=requests).get("UnprocessedItems") or {}
                if not unprocessed:
                    return
                requests = unprocessed
        raise RuntimeError(f"DynamoDB left {len(requests.get(table, []))} items of {table} unprocessed")
