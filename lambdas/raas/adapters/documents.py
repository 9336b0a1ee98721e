"""DynamoDB document store: records, content-hash claims, source pointers, quota counters.

Ingestion and deletion of a document run in different Lambdas at the same time; they are ordered by
conditional writes on the document's record (a condition is checked and the write applied as one step,
or the write fails: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ConditionExpressions.html).
An ingest attempt `claim`s the record (`processing`, with its own attempt token) and may only `mark_indexed`
or `mark_failed` it while the record still carries that token; a deletion first `mark_deleting`s it, which
makes every later mark of an attempt fail, so the attempt knows its chunks are its own to remove.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from botocore.exceptions import ClientError

from raas.adapters.dynamo import from_item, is_condition_failure, query_partition, storage_errors, to_item, transact_write
from raas.adapters.registry import tenant_pk
from raas.domain.documents import Document, DocumentStatus
from raas.domain.errors import NotFound
from raas.domain.ports import QuotaExceeded, VersionConflict
from raas.domain.usage import UsageEvent
from raas.security.credentials import as_source

if TYPE_CHECKING:
    from raas.adapters.usage import DynamoUsageRecorder

STATS_SK = "STATS"
# On a document's record once its quota share has been given back (it failed): its deletion gives none.
QUOTA_RELEASED = "quota_released"
# On a document's record: how many deliveries of its ingest event found its tenant suspended.
SUSPENDED_DELIVERIES = "suspended_deliveries"
_STORE = "the document store"


def _doc_sk(document_id: str) -> str:
    return f"DOC#{document_id}"


def _hash_sk(content_hash: str) -> str:
    return f"HASH#{content_hash}"


def _source_sk(source_uri: str) -> str:
    return "SOURCE#" + hashlib.sha256(source_uri.encode()).hexdigest()


def _to_record(document: Document) -> dict[str, Any]:
    data = document.model_dump(mode="json")
    data["metadata"] = json.dumps(data["metadata"])
    return {"PK": tenant_pk(document.tenant_id), "SK": _doc_sk(document.document_id), **data}


def _from_record(item: dict[str, Any]) -> Document:
    data = {k: v for k, v in item.items() if k not in ("PK", "SK")}
    data["metadata"] = json.loads(data.get("metadata") or "{}")
    return Document.model_validate(data)


def _indexed(chunk_count: int, content_hash: str | None, indexed_at: datetime, duplicate_of: str | None) -> dict[str, Any]:
    return {
        "status": DocumentStatus.INDEXED.value,
        "chunk_count": chunk_count,
        "content_hash": content_hash,
        "indexed_at": indexed_at,
        "error": None,
        "duplicate_of": duplicate_of,
    }


class _Condition(NamedTuple):
    """A condition on the document's record: its expression, values and names (`#status` is always named)."""

    expression: str
    values: dict[str, Any]
    names: dict[str, str] | None = None


def _held_by(attempt: str) -> _Condition:
    """The condition of a mark: the record is still `processing` by this attempt."""
    return _Condition(
        "#status = :processing AND #attempt = :attempt",
        {":processing": DocumentStatus.PROCESSING.value, ":attempt": attempt},
        {"#attempt": "attempt"},
    )


class DynamoDocumentStore:
    def __init__(self, dynamodb: Any, table_name: str, usage: DynamoUsageRecorder):
        self.clients = as_source("dynamodb", dynamodb)
        self.table = table_name
        self.usage = usage  # a document's ingest usage is counted in the transaction that marks it indexed

    def _get(self, tenant_id: str, sk: str) -> dict[str, Any] | None:
        with storage_errors(_STORE):
            item = (
                self.clients(tenant_id)
                .get_item(TableName=self.table, Key=to_item({"PK": tenant_pk(tenant_id), "SK": sk}), ConsistentRead=True)
                .get("Item")
            )
        return from_item(item) if item else None

    def create(self, document: Document, *, max_documents: int, max_bytes: int, claim_hash: bool) -> Document:
        pk = tenant_pk(document.tenant_id)
        reserve = {
            "Update": {
                "TableName": self.table,
                "Key": to_item({"PK": pk, "SK": STATS_SK}),
                "UpdateExpression": "ADD documents :one, bytes :size",
                "ConditionExpression": "(attribute_not_exists(documents) OR documents < :max_docs) AND "
                "(attribute_not_exists(bytes) OR bytes <= :max_bytes_less_size)",
                "ExpressionAttributeValues": to_item(
                    {
                        ":one": 1,
                        ":size": document.size_bytes,
                        ":max_docs": max_documents,
                        ":max_bytes_less_size": max_bytes - document.size_bytes,
                    }
                ),
            }
        }
        items: list[dict[str, Any]] = [
            {"Put": {"TableName": self.table, "Item": to_item(_to_record(document)), "ConditionExpression": "attribute_not_exists(PK)"}},
            reserve,
        ]
        if claim_hash and document.content_hash:
            items.append(
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": to_item({"PK": pk, "SK": _hash_sk(document.content_hash), "document_id": document.document_id}),
                        "ConditionExpression": "attribute_not_exists(PK)",
                    }
                }
            )
        if document.size_bytes > max_bytes:
            raise QuotaExceeded("storage")
        try:
            transact_write(self.clients(document.tenant_id), items, _STORE)
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons") or []]
            if claim_hash and len(reasons) > 2 and reasons[2] == "ConditionalCheckFailed" and document.content_hash:
                holder = self._get(document.tenant_id, _hash_sk(document.content_hash))
                existing = self.get(document.tenant_id, holder["document_id"]) if holder else None
                if existing:
                    return existing
            if len(reasons) > 1 and reasons[1] == "ConditionalCheckFailed":
                raise QuotaExceeded("documents or storage") from None
            raise
        return document

    def get(self, tenant_id: str, document_id: str) -> Document | None:
        item = self._get(tenant_id, _doc_sk(document_id))
        return _from_record(item) if item else None

    def list(self, tenant_id: str, status: str | None, limit: int, cursor: str | None) -> tuple[list[Document], str | None]:
        items, next_cursor = query_partition(
            self.clients(tenant_id),
            self.table,
            tenant_pk(tenant_id),
            "DOC#",
            limit=limit,
            cursor=cursor,
            what=_STORE,
            filter_expression="#status = :status" if status else None,
            names={"#status": "status"} if status else None,
            values={":status": status} if status else None,
        )
        return [_from_record(i) for i in items], next_cursor

    def update(self, tenant_id: str, document_id: str, **fields: Any) -> Document:
        fields["updated_at"] = datetime.now(UTC)
        values = {
            f":{k}": (json.dumps(v) if k == "metadata" else (v.isoformat() if isinstance(v, datetime) else v)) for k, v in fields.items()
        }
        sets = ", ".join(f"#{k} = :{k}" for k in fields)
        try:
            with storage_errors(_STORE):
                result = self.clients(tenant_id).update_item(
                    TableName=self.table,
                    Key=to_item({"PK": tenant_pk(tenant_id), "SK": _doc_sk(document_id)}),
                    UpdateExpression=f"SET {sets}",
                    ConditionExpression="attribute_exists(PK)",
                    ExpressionAttributeNames={f"#{k}": k for k in fields},
                    ExpressionAttributeValues={k: _serialise(v) for k, v in values.items()},
                    ReturnValues="ALL_NEW",
                )
        except ClientError as exc:
            if is_condition_failure(exc):
                raise NotFound(f"document {document_id} not found", code="document_not_found") from None
            raise
        return _from_record(from_item(result["Attributes"]))

    def claim(self, tenant_id: str, document_id: str, attempt: str) -> Document:
        """Marks the document `processing` by this ingest attempt, if it is `queued` or `processing` (an earlier
        attempt that crashed or failed transiently). VersionConflict when it is gone, finished or being deleted."""
        return self._conditional_set(
            tenant_id,
            document_id,
            {"status": DocumentStatus.PROCESSING.value, "attempt": attempt},
            _Condition(
                "attribute_exists(PK) AND #status IN (:queued, :processing)",
                {":queued": DocumentStatus.QUEUED.value, ":processing": DocumentStatus.PROCESSING.value},
            ),
        )

    def mark_indexed(
        self,
        tenant_id: str,
        document_id: str,
        attempt: str,
        *,
        chunk_count: int,
        content_hash: str | None,
        indexed_at: datetime,
        duplicate_of: str | None = None,
    ) -> Document:
        """`indexed`, only while this attempt still holds the document; VersionConflict otherwise."""
        return self._finish(tenant_id, document_id, attempt, _indexed(chunk_count, content_hash, indexed_at, duplicate_of))

    def mark_indexed_and_count(
        self, claimed: Document, attempt: str, *, chunk_count: int, content_hash: str | None, indexed_at: datetime, counted: UsageEvent
    ) -> Document:
        """`indexed`, only while this attempt still holds the document (VersionConflict otherwise), with `counted` counted
        in the same transaction: both happen or neither does, so a crash can no longer fall between a document's mark and
        its usage (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html), and it is
        one request instead of two. An event counted before (its marker is there) does not stop the mark and is not
        counted again. A transaction returns no item, so the result is `claimed` (the record as the claim returned it)
        with the mark's fields."""
        tenant_id, document_id = claimed.tenant_id, claimed.document_id
        fields = _indexed(chunk_count, content_hash, indexed_at, None)
        update, written = self._conditional_update(tenant_id, document_id, fields, _held_by(attempt))
        try:
            transact_write(self.clients(tenant_id), [{"Update": update}, *self.usage.counting_items(counted)], _STORE)
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise
            # Each cancelled action has its reason, in order; the mark is the first:
            # https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html#API_TransactWriteItems_Errors
            reasons = exc.response.get("CancellationReasons") or [{}]
            if reasons[0].get("Code") == "ConditionalCheckFailed":
                raise VersionConflict(f"document {document_id} is not in the state this write expects") from None
            return self._finish(tenant_id, document_id, attempt, fields)  # counted before: the mark alone
        return Document.model_validate({**claimed.model_dump(), **written})

    def mark_failed(self, tenant_id: str, document_id: str, attempt: str, error: str) -> Document:
        """`failed` with a reason, only while this attempt still holds the document; VersionConflict otherwise.

        A failed document holds no chunks, so it gives its share of the tenant's document and byte quota
        back, in the same transaction as the status: both happen or neither does
        (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html). The
        record's condition (still `processing` by this attempt, quota not yet given back) makes a repeated
        call a VersionConflict, never a second give-back; `QUOTA_RELEASED` tells `delete` not to give it again.
        """
        current = self._get(tenant_id, _doc_sk(document_id))
        if current is None:
            raise VersionConflict(f"document {document_id} is not in the state this write expects")
        size = int(current.get("size_bytes", 0))  # set at creation and never changed
        pk = tenant_pk(tenant_id)
        now = datetime.now(UTC).isoformat()
        items: list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": self.table,
                    "Key": to_item({"PK": pk, "SK": _doc_sk(document_id)}),
                    "UpdateExpression": "SET #status = :failed, #error = :error, #updated_at = :now, #released = :true",
                    "ConditionExpression": "#status = :processing AND #attempt = :attempt AND attribute_not_exists(#released)",
                    "ExpressionAttributeNames": {
                        "#status": "status",
                        "#error": "error",
                        "#updated_at": "updated_at",
                        "#attempt": "attempt",
                        "#released": QUOTA_RELEASED,
                    },
                    "ExpressionAttributeValues": to_item(
                        {
                            ":failed": DocumentStatus.FAILED.value,
                            ":error": error,
                            ":now": now,
                            ":true": True,
                            ":processing": DocumentStatus.PROCESSING.value,
                            ":attempt": attempt,
                        }
                    ),
                }
            },
            self._give_back(pk, size),
        ]
        try:
            transact_write(self.clients(tenant_id), items, _STORE)
        except ClientError as exc:
            if is_condition_failure(exc):
                raise VersionConflict(f"document {document_id} is not in the state this write expects") from None
            raise
        failed = self.get(tenant_id, document_id)
        if failed is None:  # deleted in the instant since: its deletion gave nothing back a second time
            raise VersionConflict(f"document {document_id} is not in the state this write expects")
        return failed

    def _give_back(self, pk: str, size: int) -> dict[str, Any]:
        return {
            "Update": {
                "TableName": self.table,
                "Key": to_item({"PK": pk, "SK": STATS_SK}),
                "UpdateExpression": "ADD documents :minus_one, bytes :minus_size",
                "ExpressionAttributeValues": to_item({":minus_one": -1, ":minus_size": -size}),
            }
        }

    def wait_for_resume(self, tenant_id: str, document_id: str, reason: str) -> int:
        """Leaves the document `queued`, with `reason` as its error, while its tenant is suspended; returns how
        many deliveries it has waited through so far. VersionConflict once it is finished, being deleted or gone.
        An attempt that held it (`processing`) loses it: it could only mark it for a tenant that is suspended."""
        try:
            with storage_errors(_STORE):
                result = self.clients(tenant_id).update_item(
                    TableName=self.table,
                    Key=to_item({"PK": tenant_pk(tenant_id), "SK": _doc_sk(document_id)}),
                    UpdateExpression="SET #status = :queued, #error = :reason, #updated_at = :now REMOVE #attempt ADD #waited :one",
                    ConditionExpression="attribute_exists(PK) AND #status IN (:queued, :processing)",
                    ExpressionAttributeNames={
                        "#status": "status",
                        "#error": "error",
                        "#updated_at": "updated_at",
                        "#attempt": "attempt",
                        "#waited": SUSPENDED_DELIVERIES,
                    },
                    ExpressionAttributeValues=to_item(
                        {
                            ":queued": DocumentStatus.QUEUED.value,
                            ":processing": DocumentStatus.PROCESSING.value,
                            ":reason": reason,
                            ":now": datetime.now(UTC).isoformat(),
                            ":one": 1,
                        }
                    ),
                    ReturnValues="UPDATED_NEW",
                )
        except ClientError as exc:
            if is_condition_failure(exc):
                raise VersionConflict(f"document {document_id} is not in the state this write expects") from None
            raise
        return int(from_item(result["Attributes"])[SUSPENDED_DELIVERIES])

    def mark_deleting(self, tenant_id: str, document_id: str) -> Document:
        """The first write of a deletion: from here on no ingest attempt can mark the document. NotFound if absent."""
        try:
            deleting = {"status": DocumentStatus.DELETING.value}
            return self._conditional_set(tenant_id, document_id, deleting, _Condition("attribute_exists(PK)", {}))
        except VersionConflict:
            raise NotFound(f"document {document_id} not found", code="document_not_found") from None

    def _finish(self, tenant_id: str, document_id: str, attempt: str, fields: dict[str, Any]) -> Document:
        return self._conditional_set(tenant_id, document_id, fields, _held_by(attempt))

    def _conditional_update(
        self, tenant_id: str, document_id: str, fields: dict[str, Any], condition: _Condition
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """An update of the record that sets `fields` (and `updated_at`) only if `condition` holds, as UpdateItem's
        parameters (and a transaction's Update action's), and the fields it writes."""
        fields = {**fields, "updated_at": datetime.now(UTC)}  # every caller sets `status`, so `#status` is always used
        values = {f":set_{k}": v.isoformat() if isinstance(v, datetime) else v for k, v in fields.items()}
        names = {f"#{k}": k for k in fields} | (condition.names or {})
        update = {
            "TableName": self.table,
            "Key": to_item({"PK": tenant_pk(tenant_id), "SK": _doc_sk(document_id)}),
            "UpdateExpression": "SET " + ", ".join(f"#{k} = :set_{k}" for k in fields),
            "ConditionExpression": condition.expression,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": {k: _serialise(v) for k, v in {**values, **condition.values}.items()},
        }
        return update, fields

    def _conditional_set(self, tenant_id: str, document_id: str, fields: dict[str, Any], condition: _Condition) -> Document:
        update, _written = self._conditional_update(tenant_id, document_id, fields, condition)
        try:
            with storage_errors(_STORE):
                result = self.clients(tenant_id).update_item(**update, ReturnValues="ALL_NEW")
        except ClientError as exc:
            if is_condition_failure(exc):
                raise VersionConflict(f"document {document_id} is not in the state this write expects") from None
            raise
        return _from_record(from_item(result["Attributes"]))

    def claim_hash(self, tenant_id: str, content_hash: str, document_id: str) -> str:
        try:
            with storage_errors(_STORE):
                self.clients(tenant_id).put_item(
                    TableName=self.table,
                    Item=to_item({"PK": tenant_pk(tenant_id), "SK": _hash_sk(content_hash), "document_id": document_id}),
                    ConditionExpression="attribute_not_exists(PK) OR document_id = :me",
                    ExpressionAttributeValues=to_item({":me": document_id}),
                )
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise
            holder = self._get(tenant_id, _hash_sk(content_hash))
            return str(holder["document_id"]) if holder else document_id
        return document_id

    def release_hash(self, tenant_id: str, content_hash: str, document_id: str) -> None:
        try:
            with storage_errors(_STORE):
                self.clients(tenant_id).delete_item(
                    TableName=self.table,
                    Key=to_item({"PK": tenant_pk(tenant_id), "SK": _hash_sk(content_hash)}),
                    ConditionExpression="document_id = :me",
                    ExpressionAttributeValues=to_item({":me": document_id}),
                )
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise

    def current_for_source(self, tenant_id: str, source_uri: str) -> str | None:
        item = self._get(tenant_id, _source_sk(source_uri))
        return str(item["document_id"]) if item else None

    def set_current_for_source(self, tenant_id: str, source_uri: str, document_id: str) -> None:
        with storage_errors(_STORE):
            self.clients(tenant_id).put_item(
                TableName=self.table,
                Item=to_item(
                    {"PK": tenant_pk(tenant_id), "SK": _source_sk(source_uri), "document_id": document_id, "source_uri": source_uri}
                ),
            )

    def delete(self, tenant_id: str, document: Document) -> None:
        if not self._delete_record(tenant_id, document):
            return  # already deleted: deleting is idempotent
        pk = tenant_pk(tenant_id)
        if document.content_hash:
            self.release_hash(tenant_id, document.content_hash, document.document_id)
        if document.source_uri:
            # Only while it still names this document: a newer version may have taken the pointer meanwhile.
            try:
                with storage_errors(_STORE):
                    self.clients(tenant_id).delete_item(
                        TableName=self.table,
                        Key=to_item({"PK": pk, "SK": _source_sk(document.source_uri)}),
                        ConditionExpression="document_id = :me",
                        ExpressionAttributeValues=to_item({":me": document.document_id}),
                    )
            except ClientError as exc:
                if not is_condition_failure(exc):
                    raise

    def _delete_record(self, tenant_id: str, document: Document) -> bool:
        """Deletes the record and gives its quota share back, unless `mark_failed` gave it already.
        False when there was no record. The delete is conditioned on what was read, so a record that
        changed in between is read again rather than given back on a stale view."""
        pk = tenant_pk(tenant_id)
        key = to_item({"PK": pk, "SK": _doc_sk(document.document_id)})
        for _ in range(3):
            current = self._get(tenant_id, _doc_sk(document.document_id))
            if current is None:
                return False
            released = bool(current.get(QUOTA_RELEASED))
            unchanged = "attribute_exists(#released)" if released else "attribute_exists(PK) AND attribute_not_exists(#released)"
            delete: dict[str, Any] = {
                "TableName": self.table,
                "Key": key,
                "ConditionExpression": unchanged,
                "ExpressionAttributeNames": {"#released": QUOTA_RELEASED},
            }
            items: list[dict[str, Any]] = [{"Delete": delete}]
            if not released:
                items.append(self._give_back(pk, int(current.get("size_bytes", document.size_bytes))))
            try:
                transact_write(self.clients(tenant_id), items, _STORE)
            except ClientError as exc:
                if not is_condition_failure(exc):
                    raise
                continue  # deleted or marked failed meanwhile: look again
            return True
        raise VersionConflict(f"document {document.document_id} kept changing while it was being deleted")

    def stats(self, tenant_id: str) -> dict[str, int]:
        item = self._get(tenant_id, STATS_SK) or {}
        return {
            "documents": int(item.get("documents", 0)),
            "bytes": int(item.get("bytes", 0)),
            "generation": int(item.get("generation", 0)),
        }

    def generation(self, tenant_id: str) -> int:
        return self.stats(tenant_id)["generation"]

    def bump_generation(self, tenant_id: str) -> None:
        with storage_errors(_STORE):
            self.clients(tenant_id).update_item(
                TableName=self.table,
                Key=to_item({"PK": tenant_pk(tenant_id), "SK": STATS_SK}),
                UpdateExpression="ADD generation :one",
                ExpressionAttributeValues=to_item({":one": 1}),
            )


def _serialise(value: Any) -> dict[str, Any]:
    return to_item({"v": value})["v"] if value is not None else {"NULL": True}
