"""Query history (retention by tier) and the per-tenant response cache, both on DynamoDB with TTL."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from raas.adapters.dynamo import from_item, query_partition, storage_errors, to_item
from raas.adapters.registry import tenant_pk
from raas.security.credentials import as_source


class DynamoQueryLog:
    def __init__(self, dynamodb: Any, table_name: str):
        self.clients = as_source("dynamodb", dynamodb)
        self.table = table_name

    def append(self, tenant_id: str, query_id: str, entry: dict[str, Any], retention_days: int) -> None:
        now = datetime.now(UTC)
        item = {
            "PK": tenant_pk(tenant_id),
            "SK": f"Q#{now.isoformat()}#{query_id}",
            "entry": json.dumps(entry),
            "expires_at": int(time.time()) + retention_days * 86400,
        }
        with storage_errors("the query history"):
            self.clients(tenant_id).put_item(TableName=self.table, Item=to_item(item))

    def list(self, tenant_id: str, limit: int, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
        items, next_cursor = query_partition(
            self.clients(tenant_id),
            self.table,
            tenant_pk(tenant_id),
            "Q#",
            limit=limit,
            cursor=cursor,
            what="the query history",
            newest_first=True,
            # Items past their TTL may linger until DynamoDB removes them; never show them.
            filter_expression="expires_at > :now",
            values={":now": int(time.time())},
        )
        return [json.loads(i["entry"]) for i in items], next_cursor


class DynamoResponseCache:
    def __init__(self, dynamodb: Any, table_name: str, ttl_seconds: int):
        self.clients = as_source("dynamodb", dynamodb)
        self.table = table_name
        self.ttl = ttl_seconds

    def get(self, tenant_id: str, key: str) -> dict[str, Any] | None:
        if self.ttl <= 0:
            return None
        with storage_errors("the response cache"):
            item = (
                self.clients(tenant_id)
                .get_item(TableName=self.table, Key=to_item({"PK": tenant_pk(tenant_id), "SK": f"CACHE#{key}"}))
                .get("Item")
            )
        if not item:
            return None
        values = from_item(item)
        if int(values.get("expires_at", 0)) <= time.time():
            return None
        cached: dict[str, Any] = json.loads(values["response"])
        return cached

    def put(self, tenant_id: str, key: str, response: dict[str, Any]) -> None:
        if self.ttl <= 0:
            return
        item = {
            "PK": tenant_pk(tenant_id),
            "SK": f"CACHE#{key}",
            "response": json.dumps(response),
            "expires_at": int(time.time()) + self.ttl,
        }
        with storage_errors("the response cache"):
            self.clients(tenant_id).put_item(TableName=self.table, Item=to_item(item))
