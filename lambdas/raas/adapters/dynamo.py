"""Helpers shared by the DynamoDB stores: (de)serialisation, cursors, error mapping."""

from __future__ import annotations

import base64
import binascii
import json
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from raas.domain.errors import BadRequest, ServiceUnavailable

if TYPE_CHECKING:
    from boto3.dynamodb.types import TypeDeserializer, TypeSerializer


@cache
def _codecs() -> tuple[TypeSerializer, TypeDeserializer]:
    # `boto3.dynamodb.types` imports the whole of boto3 (about 0.1 s): loaded by the first item a
    # function reads or writes, where its first client loads boto3 anyway, not at import.
    from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

    return TypeSerializer(), TypeDeserializer()


_UNAVAILABLE_CODES = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    # A single-item write that met an ongoing transaction on its item:
    # https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html#transaction-conflict-handling
    "TransactionConflictException",
}
# TransactWriteItems tries a cancelled-for-conflict transaction this many times in all: botocore retries
# `TransactionInProgressException` but not a cancellation (botocore/retries/standard.py, data/_retry.json).
TRANSACTION_ATTEMPTS = 4
TRANSACTION_BACKOFF_SECONDS = 0.025  # the first retry's ceiling; doubled for each one after (full jitter)


def to_item(values: dict[str, Any]) -> dict[str, Any]:
    serializer = _codecs()[0]
    return {k: serializer.serialize(v) for k, v in values.items() if v is not None}


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    deserializer = _codecs()[1]
    return {k: deserializer.deserialize(v) for k, v in item.items()}


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def is_condition_failure(exc: ClientError) -> bool:
    if error_code(exc) == "ConditionalCheckFailedException":
        return True
    if error_code(exc) == "TransactionCanceledException":
        reasons = exc.response.get("CancellationReasons") or []
        return any(r.get("Code") == "ConditionalCheckFailed" for r in reasons) or "ConditionalCheckFailed" in str(exc)
    return False


def is_transaction_conflict(exc: BaseException | None) -> bool:
    """A transaction DynamoDB cancelled because another one was writing one of its items at the time, and for no
    reason of its own (a failed condition is an answer, not a conflict). Each cancelled action has a reason, in
    order, `TransactionConflict` for this one, `None` for an action that was fine:
    https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html#API_TransactWriteItems_Errors"""
    if not isinstance(exc, ClientError) or error_code(exc) != "TransactionCanceledException":
        return False
    codes = {str(reason.get("Code")) for reason in exc.response.get("CancellationReasons") or []}
    return "TransactionConflict" in codes and codes <= {"TransactionConflict", "None"}


@contextmanager
def storage_errors(what: str) -> Iterator[None]:
    """Maps DynamoDB outages (after botocore's own retries) and write conflicts to a 503 the caller can retry."""
    try:
        yield
    except ClientError as exc:
        if error_code(exc) in _UNAVAILABLE_CODES or is_transaction_conflict(exc):
            raise ServiceUnavailable(f"{what} is temporarily unavailable; try again", code="storage_unavailable") from exc
        raise
    except BotoCoreError as exc:
        raise ServiceUnavailable(f"{what} is temporarily unavailable; try again", code="storage_unavailable") from exc


def transact_write(client: Any, items: list[dict[str, Any]], what: str) -> None:
    """TransactWriteItems, tried again after a jittered, doubling pause while DynamoDB cancels it for a conflict with
    another transaction (the tenant's usage counters and document quota are items every request of the tenant
    writes), up to `TRANSACTION_ATTEMPTS` in all; then, like any other outage, ServiceUnavailable. A condition
    failure or any other error is the caller's, at once, as a ClientError. AWS's advice for conflicts is to retry
    with exponential backoff: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html"""
    for attempt in range(1, TRANSACTION_ATTEMPTS + 1):
        try:
            with storage_errors(what):
                client.transact_write_items(TransactItems=items)
        except ServiceUnavailable as exc:
            if attempt == TRANSACTION_ATTEMPTS or not is_transaction_conflict(exc.__cause__):
                raise
            time.sleep(random.uniform(0, TRANSACTION_BACKOFF_SECONDS * 2 ** (attempt - 1)))  # noqa: S311 - jitter, not a secret
        else:
            return


def encode_cursor(last_key: dict[str, Any] | None, keep: tuple[str, ...]) -> str | None:
    """Opaque page cursor holding only the key attributes named in `keep`."""
    if not last_key:
        return None
    deserializer = _codecs()[1]
    plain = {k: deserializer.deserialize(v) for k, v in last_key.items() if k in keep}
    return base64.urlsafe_b64encode(json.dumps(plain, sort_keys=True).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, keep: tuple[str, ...], fixed: dict[str, str] | None = None) -> dict[str, Any] | None:
    """Inverse of encode_cursor; `fixed` key attributes (e.g. the caller's PK) are set by us, never by the cursor."""
    if not cursor:
        return None
    try:
        plain = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadRequest("cursor is not valid", code="invalid_cursor") from None
    if not isinstance(plain, dict) or set(plain) != set(keep) or not all(isinstance(v, str) for v in plain.values()):
        raise BadRequest("cursor is not valid", code="invalid_cursor")
    return to_item({**plain, **(fixed or {})})


def query_all(client: Any, what: str, **query: Any) -> list[dict[str, Any]]:
    """Every raw item a DynamoDB query matches, following LastEvaluatedKey to the end."""
    items: list[dict[str, Any]] = []
    with storage_errors(what):
        while True:
            page = client.query(**query)
            items.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return items
            query = {**query, "ExclusiveStartKey": page["LastEvaluatedKey"]}


def query_partition(
    client: Any,
    table: str,
    pk: str,
    sk_prefix: str,
    *,
    limit: int,
    cursor: str | None,
    what: str,
    newest_first: bool = False,
    filter_expression: str | None = None,
    names: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of a tenant partition's items whose sort key starts with `sk_prefix`.

    The cursor carries only the sort key; the partition is always `pk`, so a cursor can
    never move a query into another tenant's partition.
    """
    kwargs: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "PK = :pk AND begins_with(SK, :prefix)",
        "ExpressionAttributeValues": to_item({":pk": pk, ":prefix": sk_prefix, **(values or {})}),
        "ScanIndexForward": not newest_first,
        "Limit": limit,
    }
    if filter_expression:
        kwargs["FilterExpression"] = filter_expression
    if names:
        kwargs["ExpressionAttributeNames"] = names
    start = decode_cursor(cursor, ("SK",), fixed={"PK": pk})
    if start:
        kwargs["ExclusiveStartKey"] = start
    with storage_errors(what):
        page = client.query(**kwargs)
    return [from_item(i) for i in page.get("Items", [])], encode_cursor(page.get("LastEvaluatedKey"), ("SK",))
