"""Audit log on DynamoDB: append-only entries in the tenant's partition of the audit table.

Each entry is written in one transaction with a check that the tenant is not being deleted,
so nothing lands in a partition the deletion has already emptied. The tenant data role may
only put and read here (no update or delete), which is what makes the log immutable.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from raas.adapters.dynamo import is_condition_failure, query_partition, to_item, transact_write
from raas.adapters.registry import PROFILE_SK, tenant_pk
from raas.domain.audit import AuditEntry
from raas.domain.paging import all_items
from raas.domain.tenants import LIVE_STATUSES
from raas.security.credentials import as_source


class DynamoAuditLog:
    def __init__(self, dynamodb: Any, audit_table: str, tenants_table: str):
        self.clients = as_source("dynamodb", dynamodb)
        self.table = audit_table
        self.tenants_table = tenants_table

    def record(self, tenant_id: str, actor: str, action: str, target: str = "", details: dict[str, Any] | None = None) -> None:
        now = datetime.now(UTC)
        entry_id = uuid.uuid4().hex[:12]
        item = {
            "PK": tenant_pk(tenant_id),
            "SK": f"AUDIT#{now.isoformat()}#{entry_id}",
            "entry_id": entry_id,
            "at": now.isoformat(),
            "actor": actor,
            "action": action,
            "target": target,
            "details": json.dumps(details or {}, default=str),
        }
        statuses = {f":s{i}": s.value for i, s in enumerate(LIVE_STATUSES)}
        try:
            transact_write(
                self.clients(tenant_id),
                [
                    {
                        "ConditionCheck": {
                            "TableName": self.tenants_table,
                            "Key": to_item({"PK": tenant_pk(tenant_id), "SK": PROFILE_SK}),
                            "ConditionExpression": f"#status IN ({', '.join(statuses)})",
                            "ExpressionAttributeNames": {"#status": "status"},
                            "ExpressionAttributeValues": to_item(statuses),
                        }
                    },
                    {"Put": {"TableName": self.table, "Item": to_item(item), "ConditionExpression": "attribute_not_exists(PK)"}},
                ],
                "the audit log",
            )
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise
            # The tenant is gone or going: its deletion receipt is the record from here on.

    def list(self, tenant_id: str, limit: int, cursor: str | None) -> tuple[list[AuditEntry], str | None]:
        items, next_cursor = query_partition(
            self.clients(tenant_id),
            self.table,
            tenant_pk(tenant_id),
            "AUDIT#",
            limit=limit,
            cursor=cursor,
            what="the audit log",
            newest_first=True,
        )
        return [_entry(i) for i in items], next_cursor

    def lifecycle_entries(self, tenant_id: str) -> tuple[AuditEntry, ...]:
        """The tenant's lifecycle events and the operator's own entries, oldest first (the operator's timeline):
        never entries about the tenant's data (documents, keys, config values, exports).

        The filter runs after DynamoDB has read each page (up to 1 MB, before filtering), so this walks the whole
        partition and pages may come back empty; LastEvaluatedKey still says where to go on
        (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Query.FilterExpression.html)."""
        names = {"#action": "action"}
        values = {
            ":lifecycle": "lifecycle.Tenant",
            ":renamed": "tenant.renamed",
            ":cycle": "tenant.billing_cycle",
            ":clamp": "config.tier_clamp",
        }
        items = all_items(
            lambda cursor: query_partition(
                self.clients(tenant_id),
                self.table,
                tenant_pk(tenant_id),
                "AUDIT#",
                limit=500,
                cursor=cursor,
                what="the audit log",
                filter_expression="begins_with(#action, :lifecycle) OR #action IN (:renamed, :cycle, :clamp)",
                names=names,
                values=values,
            )
        )
        return tuple(_entry(i) for i in items)


def _entry(item: dict[str, Any]) -> AuditEntry:
    return AuditEntry(
        entry_id=item["entry_id"],
        at=item["at"],
        actor=item["actor"],
        action=item["action"],
        target=item.get("target", ""),
        details=json.loads(item["details"]),
    )
