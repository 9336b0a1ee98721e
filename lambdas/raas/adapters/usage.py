"""Usage recorder on DynamoDB: a dedupe marker and the period counters in one transaction."""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from raas.adapters.dynamo import from_item, is_condition_failure, query_partition, storage_errors, to_item, transact_write
from raas.adapters.registry import tenant_pk
from raas.domain.errors import ServiceUnavailable
from raas.domain.paging import all_items
from raas.domain.ports import QuotaExceeded
from raas.domain.usage import METRICS, UsageEvent
from raas.security.credentials import as_source

logger = Logger(service="raas")

MARKER_RETENTION_SECONDS = 35 * 24 * 3600  # longer than any retry or replay window
OUTBOX_PENDING = "pending"
DAY_PREFIX = "DAY#"  # DAY#yyyy-mm-dd: one day's counters, beside the month's PERIOD#yyyy-mm


# Counters that are billed through the payment provider (pushed from the outbox).
BILLED_METRICS = ("queries", "api_calls", "storage_byte_days")


class DynamoUsageRecorder:
    """With an outbox table, billed counters also get an outbox entry in the same transaction,
    so what the provider must be told is recorded exactly when (and only when) it is counted."""

    def __init__(self, dynamodb: Any, table_name: str, outbox_table: str | None = None):
        self.clients = as_source("dynamodb", dynamodb)
        self.table = table_name
        self.outbox_table = outbox_table

    def record(self, event: UsageEvent) -> bool:
        items = self.counting_items(event)
        if not items:
            return True
        try:
            transact_write(self.clients(event.tenant_id), items, "the usage store")
        except ClientError as exc:
            if is_condition_failure(exc):
                return False  # this event was counted before
            raise
        return True

    def counting_items(self, event: UsageEvent) -> list[dict[str, Any]]:
        """The transaction's writes that count `event` once ([] when it counts nothing): its dedupe marker, refused when
        the event was counted before, the month's and the day's counters and, for billed counters, the outbox entry.
        `record` writes them alone; a document's mark writes them with its own (DynamoDocumentStore.mark_indexed_and_count)."""
        counters = {k: v for k, v in event.counters.items() if k in METRICS and v}
        if not counters:
            return []
        pk = tenant_pk(event.tenant_id)

        def add_counters(sk: str) -> dict[str, Any]:
            return {
                "Update": {
                    "TableName": self.table,
                    "Key": to_item({"PK": pk, "SK": sk}),
                    "UpdateExpression": "ADD " + ", ".join(f"#{k} :{k}" for k in counters),
                    "ExpressionAttributeNames": {f"#{k}": k for k in counters},
                    "ExpressionAttributeValues": to_item({f":{k}": v for k, v in counters.items()}),
                }
            }

        marker = {"PK": pk, "SK": f"EVENT#{event.event_id}", "expires_at": int(time.time()) + MARKER_RETENTION_SECONDS}
        return [
            {"Put": {"TableName": self.table, "Item": to_item(marker), "ConditionExpression": "attribute_not_exists(PK)"}},
            add_counters(f"PERIOD#{event.period}"),
            # The day's counters (GET /v1/usage/daily), in the same transaction as the month's and the
            # marker, so a day and its month always agree and a replay counts in neither. ADD creates a
            # missing item or attribute (from 0) and adds to an existing number atomically:
            # https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_UpdateItem.html#DDB-UpdateItem-request-UpdateExpression
            # (two actions of one transaction may not touch one item; DAY# and PERIOD# are two items:
            # https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html).
            add_counters(f"{DAY_PREFIX}{event.day}"),
            *self._outbox(event, counters),
        ]

    def _outbox(self, event: UsageEvent, counters: dict[str, int]) -> list[dict[str, Any]]:
        billed = {k: v for k, v in counters.items() if k in BILLED_METRICS}
        if not self.outbox_table or not billed:
            return []
        item = {
            "PK": tenant_pk(event.tenant_id),
            "SK": f"EVENT#{event.event_id}",
            "tenant_id": event.tenant_id,
            "event_id": event.event_id,
            "occurred_at": event.occurred_at.isoformat(),
            "counters": billed,
            "pending": OUTBOX_PENDING,
            "attempts": 0,
        }
        return [{"Put": {"TableName": self.outbox_table, "Item": to_item(item), "ConditionExpression": "attribute_not_exists(PK)"}}]

    def totals(self, tenant_id: str, period: str) -> dict[str, int]:
        with storage_errors("the usage store"):
            item = (
                self.clients(tenant_id)
                .get_item(TableName=self.table, Key=to_item({"PK": tenant_pk(tenant_id), "SK": f"PERIOD#{period}"}), ConsistentRead=True)
                .get("Item")
            )
        values = from_item(item) if item else {}
        return {metric: int(values.get(metric, 0)) for metric in METRICS}

    def periods(self, tenant_id: str) -> dict[str, dict[str, int]]:
        """Every period's totals for the tenant (export, invoices)."""
        items = all_items(
            lambda cursor: query_partition(
                self.clients(tenant_id), self.table, tenant_pk(tenant_id), "PERIOD#", limit=100, cursor=cursor, what="the usage store"
            )
        )
        return {item["SK"].removeprefix("PERIOD#"): {m: int(item.get(m, 0)) for m in METRICS} for item in items}

    def days(self, tenant_id: str, period: str) -> dict[str, dict[str, int]]:
        """The month's per-day counters (`YYYY-MM-DD` -> totals); days with no usage have no item."""
        items = all_items(
            lambda cursor: query_partition(
                self.clients(tenant_id),
                self.table,
                tenant_pk(tenant_id),
                f"{DAY_PREFIX}{period}-",
                limit=100,
                cursor=cursor,
                what="the usage store",
            )
        )
        return {item["SK"].removeprefix(DAY_PREFIX): {m: int(item.get(m, 0)) for m in METRICS} for item in items}


class QuotaLedger:
    """Monthly reservations against tier limits: conditional, so concurrent requests can never
    take the counter past the limit; reconciled with actual cost after the call."""

    def __init__(self, dynamodb: Any, table_name: str):
        self.clients = as_source("dynamodb", dynamodb)
        self.table = table_name

    def _key(self, tenant_id: str, period: str) -> dict[str, Any]:
        return to_item({"PK": tenant_pk(tenant_id), "SK": f"QUOTA#{period}"})

    def reserve(self, tenant_id: str, period: str, *, cost_microusd: int, query_limit: int, cost_limit_microusd: int) -> tuple[int, int]:
        """Takes one query and `cost_microusd` of budget; returns the new (queries, cost) totals.

        Raises QuotaExceeded naming the metric when either would pass its limit."""
        try:
            with storage_errors("the quota store"):
                result = self.clients(tenant_id).update_item(
                    TableName=self.table,
                    Key=self._key(tenant_id, period),
                    UpdateExpression="ADD queries :one, cost_microusd :cost",
                    ConditionExpression="(attribute_not_exists(queries) OR queries < :qlimit) AND "
                    "(attribute_not_exists(cost_microusd) OR cost_microusd <= :cmax)",
                    ExpressionAttributeValues=to_item(
                        {":one": 1, ":cost": cost_microusd, ":qlimit": query_limit, ":cmax": cost_limit_microusd - cost_microusd}
                    ),
                    ReturnValues="UPDATED_NEW",
                )
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise
            queries, _spent = self.used(tenant_id, period)
            raise QuotaExceeded("queries" if queries >= query_limit else "llm_budget") from None
        values = from_item(result["Attributes"])
        return int(values.get("queries", 0)), int(values.get("cost_microusd", 0))

    def adjust(self, tenant_id: str, period: str, *, queries: int = 0, cost_microusd: int = 0) -> None:
        """Reconciles a reservation (actual minus estimate) or releases it (negative values)."""
        if not queries and not cost_microusd:
            return
        with storage_errors("the quota store"):
            self.clients(tenant_id).update_item(
                TableName=self.table,
                Key=self._key(tenant_id, period),
                UpdateExpression="ADD queries :q, cost_microusd :c",
                ExpressionAttributeValues=to_item({":q": queries, ":c": cost_microusd}),
            )

    def used(self, tenant_id: str, period: str) -> tuple[int, int]:
        with storage_errors("the quota store"):
            item = self.clients(tenant_id).get_item(TableName=self.table, Key=self._key(tenant_id, period), ConsistentRead=True).get("Item")
        values = from_item(item) if item else {}
        return int(values.get("queries", 0)), int(values.get("cost_microusd", 0))


class BufferedUsageRecorder:
    """Never loses a usage event to a DynamoDB outage: when the counters cannot be written
    (after botocore's retries), the event goes to a queue, and the metering function replays
    it later. Replays are safe because the recorder counts each event id once."""

    def __init__(self, primary: DynamoUsageRecorder, sqs: Any, queue_url: str):
        self.primary = primary
        self.sqs = sqs
        self.queue_url = queue_url

    def record(self, event: UsageEvent) -> bool:
        try:
            return self.primary.record(event)
        except ServiceUnavailable:
            logger.warning("usage store unavailable; event buffered", extra={"tenant_id": event.tenant_id, "event_id": event.event_id})
            with storage_errors("the usage buffer"):
                self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=event.model_dump_json())
            return True

    def replay(self, max_messages: int = 1000) -> int:
        """Records buffered events (each once); leaves the rest queued if the store is still down."""
        replayed = 0
        while replayed < max_messages:
            messages = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
            if not messages:
                break
            for message in messages:
                try:
                    self.primary.record(UsageEvent.model_validate_json(message["Body"]))
                except ServiceUnavailable:
                    return replayed  # still down: the message comes back after its visibility timeout
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
                replayed += 1
        return replayed

    def totals(self, tenant_id: str, period: str) -> dict[str, int]:
        return self.primary.totals(tenant_id, period)

    def periods(self, tenant_id: str) -> dict[str, dict[str, int]]:
        return self.primary.periods(tenant_id)

    def days(self, tenant_id: str, period: str) -> dict[str, dict[str, int]]:
        return self.primary.days(tenant_id, period)
