"""Conversations on DynamoDB, in the tenant's partition of the queries table (TTL like history).

Items (PK = TENANT#<id>#):
- `CONV#<conversation id>`: title, times, message count; `expires_at` moves to the last activity plus the
  tier's retention, so a conversation in use is kept;
- `CONVMSG#<conversation id>#<seq>`: one per message, expiring its retention after it was written.

Ids start with their creation time, so `CONV#` items list newest first. DynamoDB deletes expired items
within days, not at once, so every read filters them out
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ttl-expired-items.html).
"""

from __future__ import annotations

import time
from typing import Any

from botocore.exceptions import ClientError

from raas.adapters.dynamo import from_item, is_condition_failure, query_all, query_partition, storage_errors, to_item, transact_write
from raas.adapters.registry import tenant_pk
from raas.domain.conversations import Conversation, ConversationMessage
from raas.domain.ports import VersionConflict
from raas.security.credentials import as_source

DAY = 86400
# BatchWriteItem takes at most 25 requests
# (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchWriteItem.html).
WRITE_BATCH = 25


def _messages_prefix(conversation_id: str) -> str:
    return f"CONVMSG#{conversation_id}#"


class DynamoConversationStore:
    def __init__(self, dynamodb: Any, table_name: str, clock: Any = time.time):
        self.clients = as_source("dynamodb", dynamodb)
        self.table = table_name
        self._now = clock

    def create(self, tenant_id: str, conversation: Conversation, retention_days: int) -> None:
        item = {
            "PK": tenant_pk(tenant_id),
            "SK": f"CONV#{conversation.conversation_id}",
            **conversation.model_dump(mode="json"),
            "expires_at": int(self._now()) + retention_days * DAY,
        }
        with storage_errors("the conversations"):
            self.clients(tenant_id).put_item(TableName=self.table, Item=to_item(item), ConditionExpression="attribute_not_exists(PK)")

    def get(self, tenant_id: str, conversation_id: str) -> Conversation | None:
        with storage_errors("the conversations"):
            item = (
                self.clients(tenant_id)
                .get_item(
                    TableName=self.table, Key=to_item({"PK": tenant_pk(tenant_id), "SK": f"CONV#{conversation_id}"}), ConsistentRead=True
                )
                .get("Item")
            )
        if not item:
            return None
        values = from_item(item)
        return _conversation(values) if int(values.get("expires_at", 0)) > self._now() else None

    def messages(
        self, tenant_id: str, conversation_id: str, limit: int, cursor: str | None
    ) -> tuple[list[ConversationMessage], str | None]:
        """Oldest first."""
        items, next_cursor = query_partition(
            self.clients(tenant_id),
            self.table,
            tenant_pk(tenant_id),
            _messages_prefix(conversation_id),
            limit=limit,
            cursor=cursor,
            what="the conversation's messages",
            filter_expression="expires_at > :now",
            values={":now": int(self._now())},
        )
        return [ConversationMessage.model_validate_json(i["message"]) for i in items], next_cursor

    def recent(self, tenant_id: str, conversation_id: str, count: int) -> list[ConversationMessage]:
        """The last `count` live messages, oldest first."""
        items, _ = query_partition(
            self.clients(tenant_id),
            self.table,
            tenant_pk(tenant_id),
            _messages_prefix(conversation_id),
            limit=count,
            cursor=None,
            what="the conversation's messages",
            newest_first=True,
            filter_expression="expires_at > :now",
            values={":now": int(self._now())},
        )
        return [ConversationMessage.model_validate_json(i["message"]) for i in reversed(items)]

    def append(
        self, tenant_id: str, conversation: Conversation, messages: list[ConversationMessage], retention_days: int, title: str | None
    ) -> Conversation:
        """Adds the messages after the `conversation.messages` already there, in one transaction;
        VersionConflict when another message got in first or the conversation is gone."""
        pk = tenant_pk(tenant_id)
        now = int(self._now())
        expires = now + retention_days * DAY
        at = messages[-1].at
        updated = conversation.model_copy(
            update={"messages": conversation.messages + len(messages), "updated_at": at, "title": conversation.title or title}
        )
        update_values: dict[str, Any] = {":n": updated.messages, ":before": conversation.messages, ":at": at, ":exp": expires, ":now": now}
        set_title = ""
        if conversation.title is None and title is not None:
            set_title = ", title = :title"
            update_values[":title"] = title
        items: list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": self.table,
                    "Key": to_item({"PK": pk, "SK": f"CONV#{conversation.conversation_id}"}),
                    "UpdateExpression": f"SET #messages = :n, updated_at = :at, expires_at = :exp{set_title}",
                    "ConditionExpression": "#messages = :before AND expires_at > :now",
                    "ExpressionAttributeNames": {"#messages": "messages"},
                    "ExpressionAttributeValues": to_item(update_values),
                }
            }
        ]
        for message in messages:
            item = {
                "PK": pk,
                "SK": f"{_messages_prefix(conversation.conversation_id)}{message.message_id}",
                "message": message.model_dump_json(),
                "expires_at": expires,
            }
            items.append({"Put": {"TableName": self.table, "Item": to_item(item), "ConditionExpression": "attribute_not_exists(PK)"}})
        try:
            transact_write(self.clients(tenant_id), items, "the conversations")
        except ClientError as exc:
            if is_condition_failure(exc):
                raise VersionConflict(conversation.conversation_id) from None
            raise
        return updated

    def delete(self, tenant_id: str, conversation_id: str) -> bool:
        """Removes the conversation, then its messages; False when it did not exist."""
        pk = tenant_pk(tenant_id)
        client = self.clients(tenant_id)
        try:
            with storage_errors("the conversations"):
                client.delete_item(
                    TableName=self.table,
                    Key=to_item({"PK": pk, "SK": f"CONV#{conversation_id}"}),
                    ConditionExpression="attribute_exists(PK)",
                )
            existed = True
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise
            existed = False  # messages left by an interrupted delete are still removed below
        keys = [
            {"PK": i["PK"], "SK": i["SK"]}
            for i in query_all(
                client,
                "the conversation's messages",
                TableName=self.table,
                KeyConditionExpression="PK = :pk AND begins_with(SK, :prefix)",
                ExpressionAttributeValues=to_item({":pk": pk, ":prefix": _messages_prefix(conversation_id)}),
                ProjectionExpression="PK, SK",
                ConsistentRead=True,
            )
        ]
        for start in range(0, len(keys), WRITE_BATCH):
            self._delete_batch(tenant_id, [{"DeleteRequest": {"Key": k}} for k in keys[start : start + WRITE_BATCH]])
        return existed

    def _delete_batch(self, tenant_id: str, requests: list[dict[str, Any]]) -> None:
        pending: dict[str, Any] = {self.table: requests}
        with storage_errors("the conversations"):
            for attempt in range(8):
                if attempt:
                    time.sleep(min(2.0, 0.05 * 2**attempt))
                pending = self.clients(tenant_id).batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
                if not pending:
                    return
        raise RuntimeError(f"DynamoDB left {len(pending.get(self.table, []))} conversation messages unprocessed")

    def list(self, tenant_id: str, limit: int, cursor: str | None) -> tuple[list[Conversation], str | None]:
        items, next_cursor = query_partition(
            self.clients(tenant_id),
            self.table,
            tenant_pk(tenant_id),
            "CONV#",
            limit=limit,
            cursor=cursor,
            what="the conversations",
            newest_first=True,
            filter_expression="expires_at > :now",
            values={":now": int(self._now())},
        )
        return [_conversation(i) for i in items], next_cursor


def _conversation(values: dict[str, Any]) -> Conversation:
    return Conversation(
        conversation_id=values["conversation_id"],
        title=values.get("title"),
        created_at=values["created_at"],
        updated_at=values["updated_at"],
        messages=int(values.get("messages", 0)),
        created_by=values["created_by"],
    )
