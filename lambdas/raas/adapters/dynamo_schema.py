"""DynamoDB table layouts: one description used by the local platform, the tests and the CDK stacks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class IndexSpec:
    name: str
    partition_key: str
    sort_key: str | None = None


@dataclass(frozen=True)
class TableSpec:
    logical_name: str
    partition_key: str = "PK"
    sort_key: str | None = "SK"
    indexes: tuple[IndexSpec, ...] = field(default_factory=tuple)
    ttl_attribute: str | None = None

    def create_table_kwargs(self, table_name: str) -> dict[str, Any]:
        attributes = {self.partition_key} | ({self.sort_key} if self.sort_key else set())
        for index in self.indexes:
            attributes |= {index.partition_key} | ({index.sort_key} if index.sort_key else set())
        kwargs: dict[str, Any] = {
            "TableName": table_name,
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [{"AttributeName": a, "AttributeType": "S"} for a in sorted(attributes)],
            "KeySchema": _key_schema(self.partition_key, self.sort_key),
        }
        if self.indexes:
            kwargs["GlobalSecondaryIndexes"] = [
                {"IndexName": i.name, "KeySchema": _key_schema(i.partition_key, i.sort_key), "Projection": {"ProjectionType": "ALL"}}
                for i in self.indexes
            ]
        return kwargs


def _key_schema(partition_key: str, sort_key: str | None) -> list[dict[str, str]]:
    schema = [{"AttributeName": partition_key, "KeyType": "HASH"}]
    if sort_key:
        schema.append({"AttributeName": sort_key, "KeyType": "RANGE"})
    return schema


KEY_HASH_INDEX = "by_key_hash"
OUTBOX_PENDING_INDEX = "pending"
TENANT_LIST_INDEX = "tenants_by_created"

# Tenant registry: profile, API keys and configuration versions under PK=TENANT#{id};
# operator keys under PK=OPERATOR. Only the authorizer reads the key-hash index.
TENANTS = TableSpec(
    logical_name="tenants",
    indexes=(
        IndexSpec(KEY_HASH_INDEX, "key_hash"),
        IndexSpec(TENANT_LIST_INDEX, "list_pk", "list_sk"),
    ),
)

# Documents: records (DOC#), content-hash claims (HASH#), source pointers (SOURCE#) and
# the quota/generation counters (STATS), all under the tenant's partition.
DOCUMENTS = TableSpec(logical_name="documents")

# Usage: per-period counters (PERIOD#yyyy-mm), per-day counters (DAY#yyyy-mm-dd, written in the same
# transaction) and exactly-once markers (EVENT#id, with TTL).
USAGE = TableSpec(logical_name="usage", ttl_attribute="expires_at")

# Query history (Q#...) with retention by tier, and the response cache (CACHE#...), both by TTL.
# Webhook delivery logs (WHDLV#<endpoint>#<delivery>, kept by the tier's webhook_log_days) live here too;
# the sparse `webhook_due` index lists the deliveries waiting for a retry, across tenants, by time
# (the delivery function's platform role only; adapters/webhooks.py).
WEBHOOK_DUE_INDEX = "webhook_due"
QUERIES = TableSpec(logical_name="queries", ttl_attribute="expires_at", indexes=(IndexSpec(WEBHOOK_DUE_INDEX, "due_shard", "due_at"),))

# Audit log (AUDIT#<time>#<id>), append-only: the tenant role may put and read, never change.
AUDIT = TableSpec(logical_name="audit")

# Billing outbox: usage to report to Stripe (EVENT#id). The sparse `pending` index lists what
# is still unsent across tenants (the drain's platform role only; it is not tenant keyed).
OUTBOX = TableSpec(logical_name="outbox", indexes=(IndexSpec(OUTBOX_PENDING_INDEX, "pending", "occurred_at"),), ttl_attribute="expires_at")

# Powertools idempotency records of the event functions (keys include the tenant id).
IDEMPOTENCY = TableSpec(logical_name="idempotency", partition_key="id", sort_key=None, ttl_attribute="expiration")

ALL_TABLES = (TENANTS, DOCUMENTS, USAGE, QUERIES, AUDIT, OUTBOX, IDEMPOTENCY)
# Tables holding tenant partitions (PK = TENANT#<id>#), which a deletion empties.
TENANT_TABLES = (TENANTS, DOCUMENTS, USAGE, QUERIES, AUDIT, OUTBOX)
