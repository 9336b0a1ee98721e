"""Query history (retention by tier) and the per-tenant response cache, both on DynamoDB with TTL."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from raas.adapters.dynamo import decode_cursor, encode_cursor, from_item, storage_errors, to_item
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
        pk = tenant_pk(tenant_id)
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "PK = :pk AND begins_with(SK, :q)",
            # Items past their TTL may linger until DynamoDB removes them; never show them.
            "FilterExpression": "expires_at > :now",
            "ExpressionAttributeValues": to_item({":pk": pk, ":q": "Q#", ":now": int(time.time())}),
            "ScanIndexForward": False,
            "Limit": limit,
        }
        start = decode_cursor(cursor, ("SK",), fixed={"PK": pk})
        if start:
            kwargs["ExclusiveStartKey"] = start
        with storage_errors("the query history"):
            page = self.clients(tenant_id).query(**kwargs)
        entries = [json.loads(from_item(i)["entry"]) for i in page.get("Items", [])]
        return entries, encode_cursor(page.get("LastEvaluatedKey"), ("SK",))


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
