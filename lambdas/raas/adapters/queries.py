"""Query history (retention by tier) and the per-tenant response cache, both on DynamoDB with TTL."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger
from pydantic import ValidationError

from raas.adapters.dynamo import from_item, query_partition, storage_errors, to_item
from raas.adapters.registry import tenant_pk
from raas.domain.answers import QueryHistoryEntry, QueryResponse
from raas.security.credentials import as_source

logger = Logger(service="raas")


class DynamoQueryLog:
    def __init__(self, dynamodb: Any, table_name: str):
        self.clients = as_source("dynamodb", dynamodb)
        self.table = table_name

    def append(self, tenant_id: str, entry: QueryHistoryEntry, retention_days: int) -> None:
        now = datetime.now(UTC)
        item = {
            "PK": tenant_pk(tenant_id),
            "SK": f"Q#{now.isoformat()}#{entry.query_id}",
            "entry": entry.model_dump_json(),
            "expires_at": int(time.time()) + retention_days * 86400,
        }
        with storage_errors("the query history"):
            self.clients(tenant_id).put_item(TableName=self.table, Item=to_item(item))

    def list(self, tenant_id: str, limit: int, cursor: str | None) -> tuple[list[QueryHistoryEntry], str | None]:
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
        return [QueryHistoryEntry.model_validate_json(i["entry"]) for i in items], next_cursor


class DynamoResponseCache:
    def __init__(self, dynamodb: Any, table_name: str, ttl_seconds: int):
        self.clients = as_source("dynamodb", dynamodb)
        self.table = table_name
        self.ttl = ttl_seconds

    def get(self, tenant_id: str, key: str) -> QueryResponse | None:
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
        try:
            return QueryResponse.model_validate_json(values["response"])
        except ValidationError:
            # Written by a release whose answer had another shape: a miss (answered afresh and
            # overwritten) rather than a failed query.
            logger.warning("cached answer no longer fits the model; ignoring it", extra={"tenant_id": tenant_id})
            return None

    def put(self, tenant_id: str, key: str, response: QueryResponse) -> None:
        if self.ttl <= 0:
            return
        item = {
            "PK": tenant_pk(tenant_id),
            "SK": f"CACHE#{key}",
            "response": response.model_dump_json(),
            "expires_at": int(time.time()) + self.ttl,
        }
        with storage_errors("the response cache"):
            self.clients(tenant_id).put_item(TableName=self.table, Item=to_item(item))
