"""Answers and the feedback on them, in the tenant's partition of the queries table (TTL like history).

Items (PK = TENANT#<id>#):
- `ANSWER#<query id>`: the config version that produced an answer (written when the answer is logged);
- `FBSTATS#v<version>`: per config version, the counters `answers`, `up`, `down`;
- `FBKEY#<query id>#<caller hash>`: one per caller and answer (what makes feedback idempotent), pointing at
- `FB#<created at>#<query id>#<caller hash>`: the feedback record, listed newest first.

Every item carries `expires_at` (the tier's query-history retention): DynamoDB deletes expired items
within days, not at once, so every read filters them out
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ttl-expired-items.html).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from raas.adapters.dynamo import from_item, is_condition_failure, query_all, query_partition, storage_errors, to_item, transact_write
from raas.adapters.registry import tenant_pk
from raas.domain.answers import QueryResponse
from raas.domain.feedback import Feedback, Rating, VersionFeedback
from raas.domain.ports import VersionConflict
from raas.security.credentials import as_source

DAY = 86400


def _caller(actor: str) -> str:
    """A fixed-width key part for the caller (an actor may hold any character a JWT subject does)."""
    return hashlib.sha256(actor.encode()).hexdigest()[:24]


def _stats_sk(version: int) -> str:
    return f"FBSTATS#v{version:010d}"


class DynamoFeedbackStore:
    def __init__(self, dynamodb: Any, table_name: str, clock: Any = time.time):
        self.clients = as_source("dynamodb", dynamodb)
        self.table = table_name
        self._now = clock

    # --- answers (written by the query service when it logs an answer) --------------------------
    def record(self, tenant_id: str, response: QueryResponse, retention_days: int, *, also_put: Sequence[dict[str, Any]] = ()) -> None:
        """Remembers which config version produced the answer `response.query_id` and counts it; `also_put` are more
        items of this table written in the same transaction (DynamoAnswerJournal: the history line, the cached answer)."""
        expires = int(self._now()) + retention_days * DAY
        pk = tenant_pk(tenant_id)
        answer = {
            "PK": pk,
            "SK": f"ANSWER#{response.query_id}",
            "config_version": response.config_version,
            "at": datetime.now(UTC).isoformat(),
            "expires_at": expires,
        }
        transact_write(
            self.clients(tenant_id),
            [
                {"Put": {"TableName": self.table, "Item": to_item(answer), "ConditionExpression": "attribute_not_exists(PK)"}},
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": to_item({"PK": pk, "SK": _stats_sk(response.config_version)}),
                        "UpdateExpression": "ADD answers :one SET config_version = :v, expires_at = :exp",
                        "ExpressionAttributeValues": to_item({":one": 1, ":v": response.config_version, ":exp": expires}),
                    }
                },
                *({"Put": {"TableName": self.table, "Item": item}} for item in also_put),
            ],
            "the answer log",
        )

    def answer_version(self, tenant_id: str, query_id: str) -> int | None:
        """The config version of a live answer of this tenant's, or None (unknown, expired or another tenant's)."""
        with storage_errors("the answer log"):
            item = (
                self.clients(tenant_id)
                .get_item(TableName=self.table, Key=to_item({"PK": tenant_pk(tenant_id), "SK": f"ANSWER#{query_id}"}), ConsistentRead=True)
                .get("Item")
            )
        if not item:
            return None
        values = from_item(item)
        if int(values.get("expires_at", 0)) <= self._now():
            return None
        return int(values["config_version"])

    # --- feedback -------------------------------------------------------------------------------
    def get(self, tenant_id: str, query_id: str, actor: str) -> Feedback | None:
        key = self._get_key(tenant_id, query_id, actor)
        if key is None:
            return None
        with storage_errors("the feedback"):
            item = (
                self.clients(tenant_id)
                .get_item(TableName=self.table, Key=to_item({"PK": tenant_pk(tenant_id), "SK": key["record_sk"]}), ConsistentRead=True)
                .get("Item")
            )
        return _feedback(from_item(item)) if item else None

    def create(self, tenant_id: str, feedback: Feedback, retention_days: int) -> None:
        """Writes the caller's first feedback on the answer and counts it, in one transaction;
        VersionConflict when the caller's feedback on it exists already (a concurrent twin)."""
        pk = tenant_pk(tenant_id)
        expires = int(self._now()) + retention_days * DAY
        caller = _caller(feedback.actor)
        record_sk = f"FB#{feedback.created_at}#{feedback.query_id}#{caller}"
        key_item = {"PK": pk, "SK": f"FBKEY#{feedback.query_id}#{caller}", "record_sk": record_sk, "expires_at": expires}
        record = {"PK": pk, "SK": record_sk, **feedback.model_dump(mode="json"), "expires_at": expires}
        # No two actions of one transaction may touch the same item; these four are four items
        # (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html).
        items = [
            {
                "ConditionCheck": {
                    "TableName": self.table,
                    "Key": to_item({"PK": pk, "SK": f"ANSWER#{feedback.query_id}"}),
                    "ConditionExpression": "attribute_exists(PK)",
                }
            },
            {"Put": {"TableName": self.table, "Item": to_item(key_item), "ConditionExpression": "attribute_not_exists(PK)"}},
            {"Put": {"TableName": self.table, "Item": to_item(record), "ConditionExpression": "attribute_not_exists(PK)"}},
            self._count(pk, feedback.config_version, {feedback.rating: 1}, expires),
        ]
        self._transact(tenant_id, items)

    def change(self, tenant_id: str, before: Feedback, after: Feedback, retention_days: int) -> None:
        """Replaces the caller's feedback, moving the counters when the rating changed; VersionConflict
        when somebody changed it since `before` was read."""
        pk = tenant_pk(tenant_id)
        expires = int(self._now()) + retention_days * DAY
        caller = _caller(before.actor)
        record_sk = f"FB#{before.created_at}#{before.query_id}#{caller}"
        items: list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": self.table,
                    "Key": to_item({"PK": pk, "SK": record_sk}),
                    "UpdateExpression": "SET #rating = :r, #comment = :c, updated_at = :u, expires_at = :exp",
                    "ConditionExpression": "#rating = :before_r AND updated_at = :before_u",
                    "ExpressionAttributeNames": {"#comment": "comment", "#rating": "rating"},
                    "ExpressionAttributeValues": to_item(
                        {
                            ":r": after.rating.value,
                            ":c": after.comment,
                            ":u": after.updated_at,
                            ":exp": expires,
                            ":before_r": before.rating.value,
                            ":before_u": before.updated_at,
                        }
                    )
                    | ({":c": {"NULL": True}} if after.comment is None else {}),
                }
            },
            {
                "Update": {
                    "TableName": self.table,
                    "Key": to_item({"PK": pk, "SK": f"FBKEY#{before.query_id}#{caller}"}),
                    "UpdateExpression": "SET expires_at = :exp",
                    "ConditionExpression": "attribute_exists(PK)",
                    "ExpressionAttributeValues": to_item({":exp": expires}),
                }
            },
        ]
        if after.rating is not before.rating:
            items.append(self._count(pk, before.config_version, {after.rating: 1, before.rating: -1}, expires))
        self._transact(tenant_id, items)

    def summary(self, tenant_id: str) -> list[VersionFeedback]:
        items = query_all(
            self.clients(tenant_id),
            "the feedback summary",
            TableName=self.table,
            KeyConditionExpression="PK = :pk AND begins_with(SK, :prefix)",
            FilterExpression="expires_at > :now",
            ExpressionAttributeValues=to_item({":pk": tenant_pk(tenant_id), ":prefix": "FBSTATS#", ":now": int(self._now())}),
            ScanIndexForward=False,
        )
        rows = [from_item(i) for i in items]
        return [
            VersionFeedback.of(int(r["config_version"]), int(r.get("answers", 0)), int(r.get("up", 0)), int(r.get("down", 0))) for r in rows
        ]

    # --- helpers ----------------------------------------------------------------------------------
    def _get_key(self, tenant_id: str, query_id: str, actor: str) -> dict[str, Any] | None:
        with storage_errors("the feedback"):
            item = (
                self.clients(tenant_id)
                .get_item(
                    TableName=self.table,
                    Key=to_item({"PK": tenant_pk(tenant_id), "SK": f"FBKEY#{query_id}#{_caller(actor)}"}),
                    ConsistentRead=True,
                )
                .get("Item")
            )
        if not item:
            return None
        values = from_item(item)
        return values if int(values.get("expires_at", 0)) > self._now() else None

    def _count(self, pk: str, version: int, deltas: dict[Rating, int], expires: int) -> dict[str, Any]:
        names = {f"#{rating.value}": rating.value for rating in deltas}
        adds = ", ".join(f"#{rating.value} :{rating.value}" for rating in deltas)
        return {
            "Update": {
                "TableName": self.table,
                "Key": to_item({"PK": pk, "SK": _stats_sk(version)}),
                "UpdateExpression": f"ADD {adds} SET config_version = :v, expires_at = :exp",
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": to_item(
                    {**{f":{rating.value}": delta for rating, delta in deltas.items()}, ":v": version, ":exp": expires}
                ),
            }
        }

    def _transact(self, tenant_id: str, items: list[dict[str, Any]]) -> None:
        try:
            transact_write(self.clients(tenant_id), items, "the feedback")
        except ClientError as exc:
            if is_condition_failure(exc):
                raise VersionConflict(tenant_id) from None
            raise

    def list(self, tenant_id: str, rating: Rating | None, limit: int, cursor: str | None) -> tuple[list[Feedback], str | None]:
        # With a filter, DynamoDB reads `limit` items and returns those that match, so a page may hold
        # fewer (even none) while next_cursor says there is more
        # (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Query.Other.html).
        condition = "expires_at > :now" + (" AND #rating = :rating" if rating else "")
        values: dict[str, Any] = {":now": int(self._now())}
        if rating:
            values[":rating"] = rating.value
        items, next_cursor = query_partition(
            self.clients(tenant_id),
            self.table,
            tenant_pk(tenant_id),
            "FB#",
            limit=limit,
            cursor=cursor,
            what="the feedback",
            newest_first=True,
            filter_expression=condition,
            names={"#rating": "rating"} if rating else None,
            values=values,
        )
        return [_feedback(i) for i in items], next_cursor


def _feedback(values: dict[str, Any]) -> Feedback:
    return Feedback(
        query_id=values["query_id"],
        rating=Rating(values["rating"]),
        comment=values.get("comment"),
        config_version=int(values["config_version"]),
        actor=values["actor"],
        created_at=values["created_at"],
        updated_at=values["updated_at"],
    )
