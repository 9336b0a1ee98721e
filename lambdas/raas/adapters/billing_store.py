"""Invoices and the Stripe events already acted on (in the usage table, under the tenant's
partition), and the billing outbox."""

from __future__ import annotations

import time
from typing import Any

from botocore.exceptions import ClientError

from raas.adapters.dynamo import from_item, is_condition_failure, query_all, query_partition, storage_errors, to_item
from raas.adapters.dynamo_schema import OUTBOX_PENDING_INDEX
from raas.adapters.registry import tenant_pk
from raas.adapters.usage import OUTBOX_PENDING
from raas.domain.billing import Invoice, OutboxEntry
from raas.security.credentials import as_source

# Stripe retries an undelivered event for up to three days (https://docs.stripe.com/webhooks#retries);
# its id is remembered for longer, so a late retry or a replayed delivery never acts twice.
WEBHOOK_EVENT_RETENTION_SECONDS = 7 * 24 * 3600
# A claim whose handler died (timeout, crash) is taken over after this long; API Gateway ends a
# request after 29 seconds, so a live handler never holds a claim this long.
WEBHOOK_CLAIM_STALE_SECONDS = 300


class DynamoInvoiceStore:
    def __init__(self, dynamodb: Any, usage_table: str):
        self.clients = as_source("dynamodb", dynamodb)
        self.table = usage_table

    def put_if_absent(self, invoice: Invoice) -> Invoice:
        """Writes the period's invoice once; a second run returns the first one unchanged."""
        item = {"PK": tenant_pk(invoice.tenant_id), "SK": f"INVOICE#{invoice.period}", "invoice": invoice.model_dump_json()}
        try:
            with storage_errors("the invoice store"):
                self.clients(invoice.tenant_id).put_item(
                    TableName=self.table, Item=to_item(item), ConditionExpression="attribute_not_exists(PK)"
                )
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise
            existing = self.get(invoice.tenant_id, invoice.period)
            if existing is not None:
                return existing
            raise
        return invoice

    def get(self, tenant_id: str, period: str) -> Invoice | None:
        with storage_errors("the invoice store"):
            item = (
                self.clients(tenant_id)
                .get_item(TableName=self.table, Key=to_item({"PK": tenant_pk(tenant_id), "SK": f"INVOICE#{period}"}), ConsistentRead=True)
                .get("Item")
            )
        return Invoice.model_validate_json(from_item(item)["invoice"]) if item else None

    def list(self, tenant_id: str, limit: int, cursor: str | None) -> tuple[list[Invoice], str | None]:
        items, next_cursor = query_partition(
            self.clients(tenant_id),
            self.table,
            tenant_pk(tenant_id),
            "INVOICE#",
            limit=limit,
            cursor=cursor,
            what="the invoice store",
            newest_first=True,
        )
        return [Invoice.model_validate_json(i["invoice"]) for i in items], next_cursor

    def mark_paid(self, tenant_id: str, period: str, paid_at: str, reference: str) -> Invoice | None:
        invoice = self.get(tenant_id, period)
        if invoice is None:
            return None
        paid = Invoice.model_validate({**invoice.model_dump(), "status": "paid", "paid_at": paid_at, "payment_reference": reference})
        with storage_errors("the invoice store"):
            self.clients(tenant_id).put_item(
                TableName=self.table,
                Item=to_item({"PK": tenant_pk(tenant_id), "SK": f"INVOICE#{period}", "invoice": paid.model_dump_json()}),
                ConditionExpression="attribute_exists(PK)",
            )
        return paid

    # --- Stripe events acted on ----------------------------------------------------------------
    def _event_key(self, tenant_id: str, event_id: str) -> dict[str, Any]:
        return to_item({"PK": tenant_pk(tenant_id), "SK": f"STRIPE_EVENT#{event_id}"})

    def claim_webhook_event(self, tenant_id: str, event_id: str) -> bool:
        """A conditional put: exactly one delivery of an event wins, even when two arrive at once
        (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ConditionExpressions.html)."""
        now = int(time.time())
        item = {
            **from_item(self._event_key(tenant_id, event_id)),
            "state": "in_progress",
            "claimed_at": now,
            "expires_at": now + WEBHOOK_EVENT_RETENTION_SECONDS,
        }
        try:
            with storage_errors("the billing event log"):
                self.clients(tenant_id).put_item(
                    TableName=self.table,
                    Item=to_item(item),
                    ConditionExpression="attribute_not_exists(PK) OR (#state = :in_progress AND claimed_at < :stale)",
                    ExpressionAttributeNames={"#state": "state"},
                    ExpressionAttributeValues=to_item({":in_progress": "in_progress", ":stale": now - WEBHOOK_CLAIM_STALE_SECONDS}),
                )
        except ClientError as exc:
            if is_condition_failure(exc):
                return False
            raise
        return True

    def finish_webhook_event(self, tenant_id: str, event_id: str) -> None:
        with storage_errors("the billing event log"):
            self.clients(tenant_id).update_item(
                TableName=self.table,
                Key=self._event_key(tenant_id, event_id),
                UpdateExpression="SET #state = :done",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues=to_item({":done": "done"}),
            )

    def release_webhook_event(self, tenant_id: str, event_id: str) -> None:
        try:
            with storage_errors("the billing event log"):
                self.clients(tenant_id).delete_item(
                    TableName=self.table,
                    Key=self._event_key(tenant_id, event_id),
                    ConditionExpression="#state = :in_progress",  # never forgets an event that was handled
                    ExpressionAttributeNames={"#state": "state"},
                    ExpressionAttributeValues=to_item({":in_progress": "in_progress"}),
                )
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise


class DynamoOutbox:
    """Usage to report to the payment provider. Entries are written with the usage counters
    (DynamoUsageRecorder) and stay `pending` until the provider has accepted them."""

    def __init__(self, dynamodb: Any, table_name: str):
        self.dynamodb = dynamodb  # platform credentials: the drain reads every tenant's entries
        self.table = table_name

    def pending(self, limit: int) -> list[OutboxEntry]:
        with storage_errors("the billing outbox"):
            page = self.dynamodb.query(
                TableName=self.table,
                IndexName=OUTBOX_PENDING_INDEX,
                KeyConditionExpression="pending = :p",
                ExpressionAttributeValues=to_item({":p": OUTBOX_PENDING}),
                Limit=limit,
            )
        return [OutboxEntry.model_validate(from_item(i)) for i in page.get("Items", [])]

    def pending_for(self, tenant_id: str) -> list[OutboxEntry]:
        """The tenant's unsent entries (read from its own partition, consistently)."""
        items = query_all(
            self.dynamodb,
            "the billing outbox",
            TableName=self.table,
            KeyConditionExpression="PK = :pk",
            FilterExpression="attribute_exists(pending)",
            ExpressionAttributeValues=to_item({":pk": tenant_pk(tenant_id)}),
            ConsistentRead=True,
        )
        return [OutboxEntry.model_validate(from_item(i)) for i in items]

    def mark_sent(self, entry: OutboxEntry) -> None:
        with storage_errors("the billing outbox"):
            self.dynamodb.update_item(
                TableName=self.table,
                Key=to_item({"PK": tenant_pk(entry.tenant_id), "SK": f"EVENT#{entry.event_id}"}),
                UpdateExpression="REMOVE pending SET sent_at = :now, expires_at = :expires",
                ExpressionAttributeValues=to_item({":now": int(time.time()), ":expires": int(time.time()) + 35 * 24 * 3600}),
            )

    def mark_failed(self, entry: OutboxEntry, error: str) -> None:
        with storage_errors("the billing outbox"):
            self.dynamodb.update_item(
                TableName=self.table,
                Key=to_item({"PK": tenant_pk(entry.tenant_id), "SK": f"EVENT#{entry.event_id}"}),
                UpdateExpression="ADD attempts :one SET last_error = :error",
                ExpressionAttributeValues=to_item({":one": 1, ":error": error[:500]}),
            )
