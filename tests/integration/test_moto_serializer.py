"""raas.local.moto_patches' faster moto: the same answers, byte for byte, for less work.

- DynamoDB responses written straight to JSON (raas.local.moto_serializer) are the bytes moto's own serializer
  writes: every response of a workload over every attribute type and every operation raas makes is serialized
  both ways (`verify`), and what boto3 reads back is what was written.
- An UpdateExpression parsed once and copied from its pickle gives the tree moto's deep copy of a fresh parse
  gives, and the same text with other values updates each item with its own values.
- moto's S3 URL table is read again only when its setting changes.
"""

from __future__ import annotations

import copy
import importlib
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from raas.local import moto_patches, moto_serializer
from tests.helpers import patched_dynamodb

TABLE = "things"


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    with patched_dynamodb() as client:
        client.create_table(
            TableName=TABLE,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in ("PK", "SK", "colour")],
            KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "by_colour",
                    "KeySchema": [{"AttributeName": "colour", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
        )
        yield client


@pytest.fixture
def fast_path(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every response serialized both ways (a difference raises); the operations the fast path wrote."""
    written: list[str] = []
    serialize_result = moto_serializer.serialize_result

    def recording(serializer: Any, result: Any) -> str | None:
        body = serialize_result(serializer, result)
        if body is not None:
            written.append(serializer.operation_name)
        return body

    monkeypatch.setattr(moto_serializer, "serialize_result", recording)
    moto_serializer.verify()
    try:
        yield written
    finally:
        moto_serializer.verify(False)


def every_type(i: int) -> dict[str, Any]:
    return {
        "PK": {"S": "T#1"},
        "SK": {"S": f"DOC#{i:03}"},
        "colour": {"S": "red" if i % 2 else "blue"},
        "title": {"S": f"Größe ✓ {i}"},
        "count": {"N": str(i)},
        "ratio": {"N": "0.125"},
        "big": {"N": "12345678901234567890.5"},
        "blob": {"B": bytes([i, 0, 255, 10])},
        "flag": {"BOOL": bool(i % 2)},
        "nothing": {"NULL": True},
        "tags": {"SS": ["a", "b"]},
        "scores": {"NS": ["1", "2.5"]},
        "blobs": {"BS": [b"\x00\x01", b"\xff"]},
        "nested": {"M": {"list": {"L": [{"S": "x"}, {"N": "1"}, {"M": {"deep": {"B": b"\x01"}}}, {"L": []}]}, "empty": {"M": {}}}},
        "empty_text": {"S": ""},
    }


def test_every_dynamodb_response_raas_reads_is_the_bytes_moto_writes(dynamodb: Any, fast_path: list[str]) -> None:
    for i in range(6):
        dynamodb.put_item(TableName=TABLE, Item=every_type(i), ReturnConsumedCapacity="TOTAL")
    got = dynamodb.get_item(TableName=TABLE, Key={"PK": {"S": "T#1"}, "SK": {"S": "DOC#003"}}, ConsistentRead=True)["Item"]
    assert got == every_type(3)  # what boto3 reads back is what was written, bytes and all
    assert "Item" not in dynamodb.get_item(TableName=TABLE, Key={"PK": {"S": "T#1"}, "SK": {"S": "missing"}})
    projected = dynamodb.get_item(
        TableName=TABLE,
        Key={"PK": {"S": "T#1"}, "SK": {"S": "DOC#001"}},
        ProjectionExpression="#n, blobs",
        ExpressionAttributeNames={"#n": "nested"},
    )
    assert projected["Item"]["nested"] == every_type(1)["nested"]
    assert sorted(projected["Item"]["blobs"]["BS"]) == sorted(every_type(1)["blobs"]["BS"])  # a set: no order

    key = {"PK": {"S": "T#1"}, "SK": {"S": "DOC#002"}}
    for returns in ("ALL_NEW", "ALL_OLD", "UPDATED_NEW", "UPDATED_OLD", "NONE"):
        dynamodb.update_item(
            TableName=TABLE,
            Key=key,
            UpdateExpression="SET #c = #c + :one, #b = :blob REMOVE #nothing ADD #tags :tag",
            ExpressionAttributeNames={"#c": "count", "#b": "blob", "#nothing": "nothing", "#tags": "tags"},
            ExpressionAttributeValues={":one": {"N": "1"}, ":blob": {"B": b"new"}, ":tag": {"SS": [returns]}},
            ReturnValues=returns,
            ReturnConsumedCapacity="INDEXES",
            ReturnItemCollectionMetrics="SIZE",
        )
    page = dynamodb.query(
        TableName=TABLE,
        KeyConditionExpression="PK = :pk",
        ExpressionAttributeValues={":pk": {"S": "T#1"}},
        Limit=2,
        ReturnConsumedCapacity="TOTAL",
    )
    assert len(page["Items"]) == 2
    assert page["LastEvaluatedKey"] == {"PK": {"S": "T#1"}, "SK": {"S": "DOC#001"}}
    dynamodb.query(TableName=TABLE, KeyConditionExpression="PK = :pk", ExpressionAttributeValues={":pk": {"S": "T#1"}}, Select="COUNT")
    dynamodb.query(
        TableName=TABLE, IndexName="by_colour", KeyConditionExpression="colour = :c", ExpressionAttributeValues={":c": {"S": "red"}}
    )
    dynamodb.scan(
        TableName=TABLE,
        FilterExpression="#f = :t",
        ExpressionAttributeNames={"#f": "flag"},
        ExpressionAttributeValues={":t": {"BOOL": True}},
    )
    keys = [{"PK": {"S": "T#1"}, "SK": {"S": f"DOC#{i:03}"}} for i in range(3)]
    assert len(dynamodb.batch_get_item(RequestItems={TABLE: {"Keys": keys}})["Responses"][TABLE]) == 3
    dynamodb.batch_write_item(RequestItems={TABLE: [{"PutRequest": {"Item": every_type(10)}}, {"DeleteRequest": {"Key": keys[0]}}]})
    dynamodb.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": TABLE, "Item": every_type(11), "ConditionExpression": "attribute_not_exists(PK)"}},
            {
                "Update": {
                    "TableName": TABLE,
                    "Key": keys[1],
                    "UpdateExpression": "ADD #c :n",
                    "ExpressionAttributeNames": {"#c": "count"},
                    "ExpressionAttributeValues": {":n": {"N": "5"}},
                }
            },
        ]
    )
    assert len(dynamodb.transact_get_items(TransactItems=[{"Get": {"TableName": TABLE, "Key": k}} for k in keys])["Responses"]) == 3
    dynamodb.delete_item(TableName=TABLE, Key=keys[2], ReturnValues="ALL_OLD")
    with pytest.raises(ClientError) as refused:  # an error goes to moto's serializer, as every error does
        dynamodb.put_item(
            TableName=TABLE,
            Item=every_type(11),
            ConditionExpression="attribute_not_exists(PK)",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    old: Any = refused.value.response
    assert old["Item"]["blob"] == {"B": bytes([11, 0, 255, 10])}
    dynamodb.describe_table(TableName=TABLE)  # a creation time: moto's own serializer writes it
    dynamodb.list_tables()

    assert set(fast_path) >= {
        "GetItem",
        "PutItem",
        "UpdateItem",
        "Query",
        "Scan",
        "BatchGetItem",
        "BatchWriteItem",
        "TransactWriteItems",
        "TransactGetItems",
        "ListTables",
    }
    assert "DescribeTable" not in fast_path
    assert "DeleteItem" not in fast_path  # moto adds a `ConsumedCapacityUnits` that is no member: its serializer decides


def test_a_value_only_moto_can_write_falls_back_to_moto() -> None:
    """Anything but plain data (here a member moto would reach through an alias) is handed back: None."""

    class Serializer:
        class service_model:
            service_name = "dynamodb"

        pretty_print = False
        _value_picker = None

        def __init__(self) -> None:
            import botocore.session

            model = botocore.session.get_session().get_service_model("dynamodb")
            self.operation_model = model.operation_model("GetItem")

    assert moto_serializer.serialize_result(Serializer(), {"Item": {"a": {"S": "x"}}}) == '{"Item": {"a": {"S": "x"}}}'
    assert moto_serializer.serialize_result(Serializer(), {"item": {"a": {"S": "x"}}}) is None  # not a member name
    assert moto_serializer.serialize_result(Serializer(), {"Item": {"a": {"S": 5}}}) is None  # not a string
    assert moto_serializer.serialize_result(Serializer(), {"Item": {"a": {"N": Decimal(1)}}}) is None


EXPRESSIONS = [
    "SET #a = :a",
    "SET #status = :set_status, #chunk_count = :set_chunk_count, #indexed_at = :set_indexed_at REMOVE #attempt",
    "SET #l = list_append(if_not_exists(#l, :empty), :more), #m.#k = :v ADD #n :one DELETE #s :gone",
    "REMOVE #l[1], #l[3] SET #c = #c - :one",
    "ADD documents :one, bytes :size",
]


def _shape(node: Any, seen: dict[int, int] | None = None) -> Any:
    """A node tree as plain data: types, attributes and where each parent link points (by visit order)."""
    seen = {} if seen is None else seen
    if isinstance(node, list):
        return [_shape(child, seen) for child in node]
    if not hasattr(node, "__dict__"):
        return node
    if id(node) in seen:
        return ("node", seen[id(node)])
    seen[id(node)] = len(seen)
    return (type(node).__name__, {key: _shape(value, seen) for key, value in sorted(vars(node).items()) if key != "_raas_pickled"})


@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_a_parsed_update_expression_is_copied_as_moto_copies_it(expression: str) -> None:
    moto_patches.install()
    from moto.dynamodb.parsing import validators
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser  # type: ignore[attr-defined]

    fresh = moto_patches.original("UpdateExpressionParser.make")(expression)
    parsed = UpdateExpressionParser.make(expression)
    assert parsed is UpdateExpressionParser.make(expression)  # parsed once
    copied = validators.deepcopy(parsed)
    assert copied is not parsed
    assert _shape(copied) == _shape(copy.deepcopy(fresh))


def test_one_expression_text_updates_each_item_with_its_own_values(dynamodb: Any) -> None:
    expression = "SET #n = :n, #l = list_append(if_not_exists(#l, :empty), :more) ADD #c :one"
    for round_ in range(3):
        for i in range(4):
            dynamodb.update_item(
                TableName=TABLE,
                Key={"PK": {"S": "T#2"}, "SK": {"S": f"{i}"}},
                UpdateExpression=expression,
                ExpressionAttributeNames={"#n": "name", "#l": "log", "#c": "count"},
                ExpressionAttributeValues={
                    ":n": {"S": f"item {i} round {round_}"},
                    ":empty": {"L": []},
                    ":more": {"L": [{"N": str(round_)}]},
                    ":one": {"N": "1"},
                },
            )
    for i in range(4):
        item = dynamodb.get_item(TableName=TABLE, Key={"PK": {"S": "T#2"}, "SK": {"S": f"{i}"}})["Item"]
        assert item["name"] == {"S": f"item {i} round 2"}
        assert item["log"] == {"L": [{"N": "0"}, {"N": "1"}, {"N": "2"}]}
        assert item["count"] == {"N": "3"}
    with pytest.raises(ClientError, match="Invalid UpdateExpression"):  # a text that does not parse fails every time
        dynamodb.update_item(TableName=TABLE, Key={"PK": {"S": "T#2"}, "SK": {"S": "0"}}, UpdateExpression="SET SET")
    with pytest.raises(ClientError, match="Invalid UpdateExpression"):
        dynamodb.update_item(TableName=TABLE, Key={"PK": {"S": "T#2"}, "SK": {"S": "0"}}, UpdateExpression="SET SET")


def test_moto_reads_its_s3_urls_again_only_when_their_setting_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    moto_patches.install()
    import moto.s3.models as s3_models

    reloads: list[str] = []

    def counting_reload(module: Any) -> Any:
        reloads.append(module.__name__)
        return importlib.reload(module)

    monkeypatch.setattr(s3_models, "reload", counting_reload)
    monkeypatch.delenv("MOTO_S3_CUSTOM_ENDPOINTS", raising=False)
    with mock_aws():
        s3 = boto3.client("s3", region_name="eu-west-1")
        s3.create_bucket(Bucket="urls-bucket", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        backend = s3_models.s3_backends["123456789012"]["aws"]
        before = len(reloads)
        for i in range(5):
            s3.put_object(Bucket="urls-bucket", Key=f"k{i}", Body=b"x")
        assert len(reloads) == before  # nothing changed: no reload per request
        monkeypatch.setenv("MOTO_S3_CUSTOM_ENDPOINTS", "http://custom.example:9000")
        assert "http://custom.example:9000" in backend.url_bases  # the new setting is read
        assert len(reloads) == before + 1


# Updates that pass and updates moto refuses, each for its own validator: every traverser and `find_clauses` run.
UPDATES: list[tuple[str, dict[str, str], dict[str, Any]]] = [
    (
        "SET #a = :a, #b = if_not_exists(#b, :zero) ADD #n :one",
        {"#a": "a", "#b": "b", "#n": "n"},
        {":a": {"S": "x"}, ":zero": {"N": "0"}, ":one": {"N": "1"}},
    ),
    (
        "SET #l = list_append(if_not_exists(#l, :empty), :more), #m = :m",
        {"#l": "l", "#m": "m"},
        {":empty": {"L": []}, ":more": {"L": [{"S": "y"}]}, ":m": {"M": {"k": {"S": "v"}}}},
    ),
    (
        "SET #m.#k = :v REMOVE #l[0] DELETE #s :gone",
        {"#m": "m", "#k": "k", "#l": "l", "#s": "s"},
        {":v": {"N": "2"}, ":gone": {"SS": ["p"]}},
    ),
    ("SET #c = #c - :one", {"#c": "n"}, {":one": {"N": "1"}}),
    ("SET #a = :a, #a = :b", {"#a": "a"}, {":a": {"S": "1"}, ":b": {"S": "2"}}),  # overlapping paths
    ("SET #a = :a SET #b = :a", {"#a": "a", "#b": "b"}, {":a": {"S": "1"}}),  # two SET clauses
    ("SET #k = :a", {"#k": "SK"}, {":a": {"S": "other"}}),  # a key attribute
    ("ADD #a :one", {"#a": "a"}, {":one": {"N": "1"}}),  # ADD to a string
    ("SET #a = :missing", {"#a": "a"}, {":a": {"S": "1"}}),  # an undefined value
    ("SET #a = #a + :one", {"#a": "a"}, {":one": {"N": "1"}}),  # arithmetic on a string
]


def _run_updates(client: Any) -> list[Any]:
    outcomes: list[Any] = []
    key = {"PK": {"S": "T#9"}, "SK": {"S": "traversal"}}
    client.put_item(TableName=TABLE, Item={**key, "s": {"SS": ["p", "q"]}})
    for expression, names, values in UPDATES:
        try:
            client.update_item(
                TableName=TABLE, Key=key, UpdateExpression=expression, ExpressionAttributeNames=names, ExpressionAttributeValues=values
            )
            outcomes.append(client.get_item(TableName=TABLE, Key=key)["Item"])
        except ClientError as exc:
            outcomes.append(exc.response["Error"])
    client.delete_item(TableName=TABLE, Key=key)
    return outcomes


def test_the_traversal_by_node_class_validates_every_update_as_moto_does(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.dynamodb.parsing.ast_nodes import DepthFirstTraverser, Node  # type: ignore[attr-defined]

    patched = _run_updates(dynamodb)
    assert sum("Code" in outcome for outcome in patched) == 6  # each refusal above is refused
    monkeypatch.setattr(
        DepthFirstTraverser, "traverse_node_recursively", moto_patches.original("DepthFirstTraverser.traverse_node_recursively")
    )
    monkeypatch.setattr(Node, "find_clauses", moto_patches.original("Node.find_clauses"))
    assert _run_updates(dynamodb) == patched
