"""Usage recorder on DynamoDB: a dedupe marker and the period counters in one transaction."""

from __future__ import annotations

import time
from typing import Any

from botocore.exceptions import ClientError

from raas.adapters.dynamo import from_item, is_condition_failure, storage_errors, to_item
from raas.adapters.registry import tenant_pk
from raas.domain.usage import METRICS, UsageEvent
from raas.security.credentials import as_source

MARKER_RETENTION_SECONDS = 35 * 24 * 3600  # longer than any retry or replay window


class DynamoUsageRecorder:
    def __init__(self, dynamodb: Any, table_name: str):
        self.clients = as_source("dynamodb", dynamodb)
        self.table = table_name

    def record(self, event: UsageEvent) -> bool:
        counters = {k: v for k, v in event.counters.items() if k in METRICS and v}
        if not counters:
            return True
        pk = tenant_pk(event.tenant_id)
        names = {f"#{k}": k for k in counters}
        values = {f":{k}": v for k, v in counters.items()}
        try:
            with storage_errors("the usage store"):
                self.clients(event.tenant_id).transact_write_items(
                    TransactItems=[
                        {
                            "Put": {
                                "TableName": self.table,
                                "Item": to_item(
                                    {"PK": pk, "SK": f"EVENT#{event.event_id}", "expires_at": int(time.time()) + MARKER_RETENTION_SECONDS}
                                ),
                                "ConditionExpression": "attribute_not_exists(PK)",
                            }
                        },
                        {
                            "Update": {
                                "TableName": self.table,
                                "Key": to_item({"PK": pk, "SK": f"PERIOD#{event.period}"}),
                                "UpdateExpression": "ADD " + ", ".join(f"#{k} :{k}" for k in counters),
                                "ExpressionAttributeNames": names,
                                "ExpressionAttributeValues": to_item(values),
                            }
                        },
                    ]
                )
        except ClientError as exc:
            if is_condition_failure(exc):
                return False  # this event was counted before
            raise
        return True

    def totals(self, tenant_id: str, period: str) -> dict[str, int]:
        with storage_errors("the usage store"):
            item = (
                self.clients(tenant_id)
                .get_item(TableName=self.table, Key=to_item({"PK": tenant_pk(tenant_id), "SK": f"PERIOD#{period}"}), ConsistentRead=True)
                .get("Item")
            )
        values = from_item(item) if item else {}
        return {metric: int(values.get(metric, 0)) for metric in METRICS}
