"""raas.local.moto_patches: transactions that journal touched items roll back exactly as moto's own
whole-table copies do, commit exactly what moto commits, and cost what they touch, not the table.

Every scenario runs through boto3 against moto twice: once with the patch (as installed by
conftest) and once, in another region, with moto's original `transact_write_items`. The
observed state is everything a client can read: full scans, queries on every GSI, item counts,
and the table's stream records.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID as ACCOUNT_ID
from moto.dynamodb.models import DynamoDBBackend, dynamodb_backends
from moto.dynamodb.models.dynamo_type import Item

from raas.local import moto_patches, moto_sqs

PAIRS = "pairs"  # hash + range key, a GSI, a stream
SINGLES = "singles"  # hash key only, a GSI
OWNERS = ("ann", "bob", "cid")
COLOURS = ("red", "blue", "green")


def s(value: str) -> dict[str, str]:
    return {"S": value}


def n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def create_tables(dynamodb: Any) -> None:
    dynamodb.create_table(
        TableName=PAIRS,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in ("PK", "SK", "owner", "rank")],
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by_owner",
                "KeySchema": [{"AttributeName": "owner", "KeyType": "HASH"}, {"AttributeName": "rank", "KeyType": "RANGE"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    dynamodb.create_table(
        TableName=SINGLES,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in ("id", "colour")],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by_colour",
                "KeySchema": [{"AttributeName": "colour", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )


def seed(dynamodb: Any) -> None:
    for pk, sk, owner, rank in (("A", "1", "ann", "b"), ("A", "2", "bob", "a"), ("B", "1", "ann", "a"), ("C", "1", "cid", "c")):
        dynamodb.put_item(TableName=PAIRS, Item={"PK": s(pk), "SK": s(sk), "owner": s(owner), "rank": s(rank), "count": n(1)})
    for item_id, colour in (("x", "red"), ("y", "blue"), ("z", "red")):
        dynamodb.put_item(TableName=SINGLES, Item={"id": s(item_id), "colour": s(colour), "count": n(10), "tags": {"SS": ["a", "b"]}})


def observe(dynamodb: Any, *, stable_stream_fields_only: bool = False) -> str:
    """Everything a client can read back, as one JSON text."""
    state: dict[str, Any] = {}
    for table in (PAIRS, SINGLES):
        pages = dynamodb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True, PaginationConfig={"PageSize": 2})
        state[f"{table} scan"] = [item for page in pages for item in page["Items"]]
        state[f"{table} count"] = dynamodb.describe_table(TableName=table)["Table"]["ItemCount"]
    for owner in OWNERS:
        state[f"by_owner {owner}"] = dynamodb.query(
            TableName=PAIRS,
            IndexName="by_owner",
            KeyConditionExpression="#o = :o",
            ExpressionAttributeNames={"#o": "owner"},
            ExpressionAttributeValues={":o": s(owner)},
        )["Items"]
    for colour in COLOURS:
        state[f"by_colour {colour}"] = dynamodb.query(
            TableName=SINGLES, IndexName="by_colour", KeyConditionExpression="colour = :c", ExpressionAttributeValues={":c": s(colour)}
        )["Items"]
    for key in ("A", "B", "C", "D"):
        state[f"{PAIRS} query {key}"] = dynamodb.query(
            TableName=PAIRS, KeyConditionExpression="PK = :k", ExpressionAttributeValues={":k": s(key)}
        )["Items"]
    # moto 5.2.5 answers DynamoDB Streams' DescribeStream with "Not yet implemented": read the shard
    shard = dynamodb_backends[ACCOUNT_ID][dynamodb.meta.region_name].get_table(PAIRS).stream_shard
    assert shard is not None
    records = [record.to_json() for record in shard.items]
    if stable_stream_fields_only:  # event ids are random and times move on; the rest must match
        records = [
            {
                "eventName": r["eventName"],
                **{k: v for k, v in r["dynamodb"].items() if k in ("Keys", "NewImage", "OldImage", "SequenceNumber")},
            }
            for r in records
        ]
    state["stream"] = records
    return json.dumps(state, default=str)


# Each scenario: a transaction against the seeded tables, and whether it must be cancelled.
Scenario = list[dict[str, Any]]

CANCELLED: dict[str, Scenario] = {
    "put, update, delete across both tables, then a failed condition check": [
        {"Put": {"TableName": PAIRS, "Item": {"PK": s("A"), "SK": s("3"), "owner": s("bob"), "rank": s("z")}}},
        {
            "Update": {
                "TableName": SINGLES,
                "Key": {"id": s("x")},
                "UpdateExpression": "SET colour = :c ADD #n :one",
                "ExpressionAttributeNames": {"#n": "count"},
                "ExpressionAttributeValues": {":c": s("blue"), ":one": n(1)},
            }
        },
        {"Delete": {"TableName": PAIRS, "Key": {"PK": s("A"), "SK": s("1")}}},
        {
            "ConditionCheck": {
                "TableName": SINGLES,
                "Key": {"id": s("y")},
                "ConditionExpression": "colour = :c",
                "ExpressionAttributeValues": {":c": s("green")},
            }
        },
    ],
    "items under new hash keys, then a check on a missing item": [
        {
            "Update": {
                "TableName": PAIRS,
                "Key": {"PK": s("D"), "SK": s("1")},
                "UpdateExpression": "SET #o = :o, #r = :r",
                "ExpressionAttributeNames": {"#o": "owner", "#r": "rank"},
                "ExpressionAttributeValues": {":o": s("cid"), ":r": s("a")},
            }
        },
        {"Put": {"TableName": PAIRS, "Item": {"PK": s("D"), "SK": s("2"), "owner": s("ann"), "rank": s("q")}}},
        {"Put": {"TableName": SINGLES, "Item": {"id": s("w"), "colour": s("green")}}},
        {"ConditionCheck": {"TableName": PAIRS, "Key": {"PK": s("E"), "SK": s("1")}, "ConditionExpression": "attribute_exists(PK)"}},
    ],
    "a hash key's last item deleted, a counter added, then a put over an existing item": [
        {"Delete": {"TableName": PAIRS, "Key": {"PK": s("B"), "SK": s("1")}}},
        {
            "Update": {
                "TableName": SINGLES,
                "Key": {"id": s("z")},
                "UpdateExpression": "ADD #n :five DELETE tags :a",
                "ExpressionAttributeNames": {"#n": "count"},
                "ExpressionAttributeValues": {":five": n(5), ":a": {"SS": ["a"]}},
            }
        },
        {"Delete": {"TableName": SINGLES, "Key": {"id": s("y")}}},
        {
            "Put": {
                "TableName": PAIRS,
                "Item": {"PK": s("C"), "SK": s("1"), "owner": s("bob")},
                "ConditionExpression": "attribute_not_exists(PK)",
            }
        },
    ],
    "the failing item comes first": [
        {"ConditionCheck": {"TableName": SINGLES, "Key": {"id": s("x")}, "ConditionExpression": "attribute_not_exists(id)"}},
        {"Delete": {"TableName": PAIRS, "Key": {"PK": s("A"), "SK": s("2")}}},
        {"Put": {"TableName": SINGLES, "Item": {"id": s("v"), "colour": s("green")}}},
    ],
    "an update condition fails after earlier writes": [
        {"Put": {"TableName": SINGLES, "Item": {"id": s("x"), "colour": s("green"), "count": n(99)}}},
        {
            "Update": {
                "TableName": PAIRS,
                "Key": {"PK": s("A"), "SK": s("2")},
                "UpdateExpression": "SET #r = :r",
                "ConditionExpression": "#o = :who",
                "ExpressionAttributeNames": {"#r": "rank", "#o": "owner"},
                "ExpressionAttributeValues": {":r": s("zz"), ":who": s("ann")},
            }
        },
    ],
}

# Errors that moto raises as they are (not a cancellation) after rolling back what was written.
REJECTED: dict[str, tuple[Scenario, str]] = {
    "the same item twice, after writes": (
        [
            {"Put": {"TableName": PAIRS, "Item": {"PK": s("F"), "SK": s("1"), "owner": s("ann"), "rank": s("x")}}},
            {"Delete": {"TableName": SINGLES, "Key": {"id": s("z")}}},
            {
                "Update": {
                    "TableName": PAIRS,
                    "Key": {"PK": s("F"), "SK": s("1")},
                    "UpdateExpression": "SET #r = :r",
                    "ExpressionAttributeNames": {"#r": "rank"},
                    "ExpressionAttributeValues": {":r": s("y")},
                }
            },
        ],
        "ValidationException",
    ),
    "a key without its range key, after writes": (
        [
            {
                "Update": {
                    "TableName": SINGLES,
                    "Key": {"id": s("y")},
                    "UpdateExpression": "SET colour = :c",
                    "ExpressionAttributeValues": {":c": s("green")},
                }
            },
            {"Delete": {"TableName": PAIRS, "Key": {"PK": s("A"), "SK": s("1")}}},
            {"ConditionCheck": {"TableName": PAIRS, "Key": {"PK": s("A")}, "ConditionExpression": "attribute_exists(PK)"}},
        ],
        "ValidationException",
    ),
}

COMMITTED: dict[str, Scenario] = {
    "put, update, delete and a passing check across both tables": [
        {"Put": {"TableName": PAIRS, "Item": {"PK": s("A"), "SK": s("3"), "owner": s("bob"), "rank": s("z")}}},
        {
            "Update": {
                "TableName": SINGLES,
                "Key": {"id": s("x")},
                "UpdateExpression": "SET colour = :c ADD #n :one",
                "ExpressionAttributeNames": {"#n": "count"},
                "ExpressionAttributeValues": {":c": s("blue"), ":one": n(1)},
            }
        },
        {"Delete": {"TableName": PAIRS, "Key": {"PK": s("B"), "SK": s("1")}}},
        {
            "ConditionCheck": {
                "TableName": SINGLES,
                "Key": {"id": s("y")},
                "ConditionExpression": "colour = :c",
                "ExpressionAttributeValues": {":c": s("blue")},
            }
        },
    ],
    "new hash keys and a conditional put": [
        {
            "Update": {
                "TableName": PAIRS,
                "Key": {"PK": s("D"), "SK": s("1")},
                "UpdateExpression": "SET #o = :o, #r = :r",
                "ExpressionAttributeNames": {"#o": "owner", "#r": "rank"},
                "ExpressionAttributeValues": {":o": s("cid"), ":r": s("a")},
            }
        },
        {"Put": {"TableName": SINGLES, "Item": {"id": s("w"), "colour": s("green")}, "ConditionExpression": "attribute_not_exists(id)"}},
        {"ConditionCheck": {"TableName": PAIRS, "Key": {"PK": s("E"), "SK": s("1")}, "ConditionExpression": "attribute_not_exists(PK)"}},
    ],
}


@pytest.fixture
def regions() -> Iterator[Callable[[str], Any]]:
    """moto in-process; `regions(name)` gives a DynamoDB client on seeded tables in a region of its own."""
    with mock_aws():

        def make(region: str) -> Any:
            dynamodb = boto3.client("dynamodb", region_name=region)
            create_tables(dynamodb)
            seed(dynamodb)
            return dynamodb

        yield make


@pytest.fixture
def moto_as_is(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Call to put moto's own transact_write_items back (until the test ends)."""
    return lambda: monkeypatch.setattr(DynamoDBBackend, "transact_write_items", moto_patches.original("transact_write_items"))


def run(dynamodb: Any, scenario: Scenario) -> str | None:
    """Runs the transaction; returns the error code, or None if it committed."""
    try:
        dynamodb.transact_write_items(TransactItems=copy.deepcopy(scenario))
    except ClientError as exc:
        return str(exc.response["Error"]["Code"])
    return None


def test_the_patch_is_installed_by_the_test_session() -> None:
    assert getattr(DynamoDBBackend, "_raas_patched", False)


@pytest.mark.parametrize("name", list(CANCELLED))
def test_a_cancelled_transaction_leaves_every_table_as_it_was(name: str, regions: Any, moto_as_is: Callable[[], None]) -> None:
    # Given the seeded tables
    dynamodb = regions("us-east-1")
    before = observe(dynamodb)
    # When a transaction is cancelled part-way
    assert run(dynamodb, CANCELLED[name]) == "TransactionCanceledException"
    # Then everything reads back byte for byte as before
    assert observe(dynamodb) == before
    # and moto's own rollback agrees (the scenario does write before it fails: see the guard test below)
    moto_as_is()
    reference = regions("eu-west-1")
    assert run(reference, CANCELLED[name]) == "TransactionCanceledException"
    assert observe(reference, stable_stream_fields_only=True) == observe(dynamodb, stable_stream_fields_only=True)


@pytest.mark.parametrize("name", list(REJECTED))
def test_a_transaction_rejected_midway_leaves_every_table_as_it_was(name: str, regions: Any, moto_as_is: Callable[[], None]) -> None:
    scenario, code = REJECTED[name]
    dynamodb = regions("us-east-1")
    before = observe(dynamodb)
    assert run(dynamodb, scenario) == code
    assert observe(dynamodb) == before
    moto_as_is()
    reference = regions("eu-west-1")
    assert run(reference, scenario) == code
    assert observe(reference, stable_stream_fields_only=True) == observe(dynamodb, stable_stream_fields_only=True)


@pytest.mark.parametrize("name", list(COMMITTED))
def test_a_committed_transaction_writes_what_moto_writes(name: str, regions: Any, moto_as_is: Callable[[], None]) -> None:
    dynamodb = regions("us-east-1")
    before = observe(dynamodb, stable_stream_fields_only=True)
    assert run(dynamodb, COMMITTED[name]) is None
    after = observe(dynamodb, stable_stream_fields_only=True)
    assert after != before
    moto_as_is()
    reference = regions("eu-west-1")
    assert run(reference, COMMITTED[name]) is None
    assert observe(reference, stable_stream_fields_only=True) == after


@pytest.mark.parametrize("name", list(CANCELLED))
def test_each_cancelled_scenario_would_change_the_tables_without_its_failing_item(name: str, regions: Any) -> None:
    """Guards the rollback tests above: they roll back real writes, not nothing."""
    dynamodb = regions("us-east-1")
    before = observe(dynamodb)
    writes = [item for item in CANCELLED[name] if "ConditionExpression" not in next(iter(item.values()))]
    assert run(dynamodb, writes) is None
    assert observe(dynamodb) != before


def add_items(dynamodb: Any, count: int) -> None:
    for start in range(0, count, 25):
        batch = [
            {"PutRequest": {"Item": {"id": s(f"filler-{i:05d}"), "colour": s("grey"), "body": s("x" * 200)}}}
            for i in range(start, min(count, start + 25))
        ]
        dynamodb.batch_write_item(RequestItems={SINGLES: batch})
        batch = [
            {"PutRequest": {"Item": {"PK": s(f"filler-{i:05d}"), "SK": s("0"), "owner": s("zed"), "rank": s("0")}}}
            for i in range(start, min(count, start + 25))
        ]
        dynamodb.batch_write_item(RequestItems={PAIRS: batch})


def item_copies_per_transaction(dynamodb: Any, monkeypatch: pytest.MonkeyPatch, attempt: int) -> int:
    """Counts the items moto deep-copies while running one small transaction on the tables."""
    copies = 0
    uncounted = Item.__deepcopy__

    def counting(self: Item, memo: dict[int, Any]) -> Item:
        nonlocal copies
        copies += 1
        return uncounted(self, memo)

    transaction = [
        {"Put": {"TableName": PAIRS, "Item": {"PK": s(f"new-{attempt}"), "SK": s("1"), "owner": s("ann"), "rank": s("n")}}},
        {
            "Update": {
                "TableName": SINGLES,
                "Key": {"id": s("x")},
                "UpdateExpression": "ADD #n :one",
                "ExpressionAttributeNames": {"#n": "count"},
                "ExpressionAttributeValues": {":one": n(1)},
            }
        },
        {"ConditionCheck": {"TableName": PAIRS, "Key": {"PK": s("A"), "SK": s("1")}, "ConditionExpression": "attribute_exists(PK)"}},
    ]
    with monkeypatch.context() as patch:
        patch.setattr(Item, "__deepcopy__", counting)
        assert run(dynamodb, transaction) is None
    return copies


def test_a_transaction_copies_the_items_it_touches_whatever_the_size_of_the_tables(
    regions: Any, monkeypatch: pytest.MonkeyPatch, moto_as_is: Callable[[], None]
) -> None:
    # Given small tables, then the same tables 300 items bigger
    dynamodb = regions("us-east-1")
    small = item_copies_per_transaction(dynamodb, monkeypatch, 1)
    add_items(dynamodb, 300)
    large = item_copies_per_transaction(dynamodb, monkeypatch, 2)
    # Then the same transaction copies the same few items: the two it reads before writing
    # (the Put's target is absent) and the one update_item copies for its stream record
    assert small == large == 3
    # while moto as is copies both whole tables once per transaction item
    moto_as_is()
    assert item_copies_per_transaction(dynamodb, monkeypatch, 3) > 3 * 300


def test_install_is_idempotent() -> None:
    methods = {name: getattr(DynamoDBBackend, name) for name in ("put_item", "transact_write_items")}
    moto_patches.install()
    assert {name: getattr(DynamoDBBackend, name) for name in methods} == methods


def test_install_refuses_a_moto_version_it_was_not_written_for(monkeypatch: pytest.MonkeyPatch) -> None:
    import moto

    monkeypatch.setattr(moto, "__version__", "5.3.0")
    monkeypatch.setattr(DynamoDBBackend, "_raas_patched", False)
    with pytest.raises(moto_patches.UnsupportedMotoVersion, match=r"written for moto 5\.2\.5; moto 5\.3\.0 is installed"):
        moto_patches.install()


def test_the_faster_sqs_clock_reads_the_same_milliseconds_as_moto_and_keeps_visibility_working() -> None:
    """moto's SQS checks every queued message's visibility with two datetimes per call; the patch reads
    time.time() instead. Same value, and messages still hide and reappear as SQS promises."""
    import datetime
    import time

    from moto.core.utils import unix_time_millis
    from moto.sqs import models as sqs_models

    moto_patches.install()
    assert sqs_models.unix_time_millis is moto_sqs.fast_unix_time_millis
    assert abs(sqs_models.unix_time_millis() - unix_time_millis()) < 1000
    when = datetime.datetime(2026, 12, 2, 12, 0, 0)
    assert sqs_models.unix_time_millis(when) == unix_time_millis(when)
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="clock")["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody="one")
        [message] = sqs.receive_message(QueueUrl=url, VisibilityTimeout=1)["Messages"]
        assert "Messages" not in sqs.receive_message(QueueUrl=url)  # in flight: hidden
        time.sleep(1.1)
        [again] = sqs.receive_message(QueueUrl=url)["Messages"]  # the timeout lapsed: visible again
        assert again["MessageId"] == message["MessageId"]
        sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=1)
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=again["ReceiptHandle"], VisibilityTimeout=30)
        assert "Messages" not in sqs.receive_message(QueueUrl=url)  # the delayed one is not yet due
