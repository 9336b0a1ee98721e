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

ALL_TABLES = (TENANTS,)
