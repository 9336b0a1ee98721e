"""Query history (retention by tier) and the per-tenant response cache, both on DynamoDB with TTL."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from pydantic import ValidationError

from raas.adapters.dynamo import from_item, query_partition, storage_errors, to_item
from raas.adapters.registry import tenant_pk
from raas.domain.answers import QueryHistoryEntry, QueryResponse
from raas.security.credentials import as_source

if TYPE_CHECKING:
    from raas.adapters.feedback import DynamoFeedbackStore

logger = Logger(service="raas")


class DynamoQueryLog:
    def __init__(self, dynamodb: Any, table_name: str):
        self.clients = as_source("dynamodb", dynamodb)
        self.table = table_name

    def append(self, tenant_id: str, entry: QueryHistoryEntry, retention_days: int) -> None:
        with storage_errors("the query history"):
            self.clients(tenant_id).put_item(TableName=self.table, Item=self.entry_item(tenant_id, entry, retention_days))

    def entry_item(self, tenant_id: str, entry: QueryHistoryEntry, retention_days: int) -> dict[str, Any]:
        """The history line's item, as `append` writes it (DynamoAnswerJournal writes it inside a transaction)."""
        item = {
            "PK": tenant_pk(tenant_id),
            "SK": f"Q#{datetime.now(UTC).isoformat()}#{entry.query_id}",
            "entry": entry.model_dump_json(),
            "expires_at": int(time.time()) + retention_days * 86400,
        }
        return to_item(item)

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
        item = self.entry_item(tenant_id, key, response)
        if item is None:
            return
        with storage_errors("the response cache"):
            self.clients(tenant_id).put_item(TableName=self.table, Item=item)

    def entry_item(self, tenant_id: str, key: str, response: QueryResponse) -> dict[str, Any] | None:
        """The cached answer's item, as `put` writes it; None when caching is off (a TTL of 0)."""
        if self.ttl <= 0:
            return None
        item = {
            "PK": tenant_pk(tenant_id),
            "SK": f"CACHE#{key}",
            "response": response.model_dump_json(),
            "expires_at": int(time.time()) + self.ttl,
        }
        return to_item(item)


class DynamoAnswerJournal:
    """What an answer leaves behind, in one TransactWriteItems on the queries table: its history line, its
    feedback record (DynamoFeedbackStore.record's answer item and version counter) and, for a fresh complete
    answer, the cached copy. One request instead of three on every query: with `raas local` each request
    through botocore and moto costs 1.5-4 ms of CPU, in AWS each is a round trip. A transaction writes
    each item at twice the write units of a plain write
    (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html, "Capacity management for transactions");
    for these few small items, at on-demand prices, that is a fraction of a cent per thousand queries."""

    def __init__(self, log: DynamoQueryLog, cache: DynamoResponseCache, answers: DynamoFeedbackStore):
        self.log = log
        self.cache = cache
        self.answers = answers

    def keep(self, tenant_id: str, entry: QueryHistoryEntry, response: QueryResponse, retention_days: int, cache_key: str | None) -> None:
        puts = [self.log.entry_item(tenant_id, entry, retention_days)]
        if cache_key is not None and (cached := self.cache.entry_item(tenant_id, cache_key, response)) is not None:
            puts.append(cached)
        self.answers.record(tenant_id, response, retention_days, also_put=puts)
