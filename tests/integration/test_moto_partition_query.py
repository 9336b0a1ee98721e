"""raas.local.moto_patches: a table query reads only its partition, and answers exactly what moto's own
query (which lists and sorts the whole table) answers: items, order, paging keys, counts, filters."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from moto.dynamodb.models.table import Table

from raas.local import moto_patches
from tests.helpers import patched_dynamodb


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    with patched_dynamodb() as client:
        client.create_table(
            TableName="pairs",
            KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"}, {"AttributeName": "SK", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        client.create_table(
            TableName="singles",
            KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        for tenant in ("T#a", "T#b", "T#c"):
            for i in range(40):
                kind = "DOC" if i % 3 else "EVENT"
                client.put_item(
                    TableName="pairs",
                    Item={"PK": {"S": tenant}, "SK": {"S": f"{kind}#{i:03d}"}, "n": {"N": str(i)}, "blob": {"S": "x" * (i * 10)}},
                )
            client.put_item(TableName="singles", Item={"PK": {"S": tenant}, "n": {"N": "1"}})
        yield client


def _pages(client: Any, **query: Any) -> list[dict[str, Any]]:
    pages = []
    while True:
        page = client.query(**query)
        page.pop("ResponseMetadata", None)
        pages.append(page)
        if "LastEvaluatedKey" not in page:
            return pages
        query = {**query, "ExclusiveStartKey": page["LastEvaluatedKey"]}


QUERIES: list[dict[str, Any]] = [
    {"TableName": "pairs", "KeyConditionExpression": "PK = :p", "ExpressionAttributeValues": {":p": {"S": "T#b"}}},
    {"TableName": "pairs", "KeyConditionExpression": "PK = :p", "ExpressionAttributeValues": {":p": {"S": "T#b"}}, "Limit": 7},
    {
        "TableName": "pairs",
        "KeyConditionExpression": "PK = :p AND begins_with(SK, :k)",
        "ExpressionAttributeValues": {":p": {"S": "T#a"}, ":k": {"S": "DOC#"}},
        "ScanIndexForward": False,
        "Limit": 5,
    },
    {
        "TableName": "pairs",
        "KeyConditionExpression": "PK = :p AND SK BETWEEN :lo AND :hi",
        "ExpressionAttributeValues": {":p": {"S": "T#c"}, ":lo": {"S": "DOC#010"}, ":hi": {"S": "EVENT#030"}, ":n": {"N": "20"}},
        "FilterExpression": "n > :n",
        "Limit": 4,
    },
    {"TableName": "pairs", "KeyConditionExpression": "PK = :p", "ExpressionAttributeValues": {":p": {"S": "T#none"}}},
    {"TableName": "pairs", "KeyConditionExpression": "PK = :p", "ExpressionAttributeValues": {":p": {"S": "T#a"}}, "Select": "COUNT"},
    {
        "TableName": "pairs",
        "KeyConditionExpression": "PK = :p AND SK < :k",
        "ExpressionAttributeValues": {":p": {"S": "T#a"}, ":k": {"S": "DOC#020"}},
        "Limit": 6,
    },
    {
        "TableName": "pairs",
        "KeyConditionExpression": "PK = :p AND SK >= :k",
        "ExpressionAttributeValues": {":p": {"S": "T#b"}, ":k": {"S": "EVENT#009"}},
        "ScanIndexForward": False,
    },
    {
        "TableName": "pairs",
        "KeyConditionExpression": "PK = :p AND SK = :k",
        "ExpressionAttributeValues": {":p": {"S": "T#b"}, ":k": {"S": "DOC#004"}},
    },
    {
        "TableName": "pairs",
        "KeyConditions": {
            "PK": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "T#c"}]},
            "SK": {"ComparisonOperator": "BEGINS_WITH", "AttributeValueList": [{"S": "EVENT#"}]},
        },
        "Limit": 3,
    },
    {  # a page that starts after a key no item has
        "TableName": "pairs",
        "KeyConditionExpression": "PK = :p",
        "ExpressionAttributeValues": {":p": {"S": "T#b"}},
        "ExclusiveStartKey": {"PK": {"S": "T#b"}, "SK": {"S": "DOC#0055"}},
        "Limit": 5,
    },
    {  # backwards from a key
        "TableName": "pairs",
        "KeyConditionExpression": "PK = :p AND begins_with(SK, :k)",
        "ExpressionAttributeValues": {":p": {"S": "T#b"}, ":k": {"S": "DOC#"}},
        "ExclusiveStartKey": {"PK": {"S": "T#b"}, "SK": {"S": "DOC#031"}},
        "ScanIndexForward": False,
        "Limit": 4,
    },
    {  # a start key of another partition
        "TableName": "pairs",
        "KeyConditionExpression": "PK = :p",
        "ExpressionAttributeValues": {":p": {"S": "T#b"}},
        "ExclusiveStartKey": {"PK": {"S": "T#a"}, "SK": {"S": "DOC#005"}},
        "Limit": 5,
    },
    {"TableName": "singles", "KeyConditionExpression": "PK = :p", "ExpressionAttributeValues": {":p": {"S": "T#b"}}},
    {"TableName": "singles", "KeyConditionExpression": "PK = :p", "ExpressionAttributeValues": {":p": {"S": "T#none"}}},
]


@pytest.mark.parametrize("query", QUERIES, ids=[str(i) for i in range(len(QUERIES))])
def test_a_partition_query_answers_as_motos_whole_table_query(
    dynamodb: Any, query: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert Table.query is moto_patches._partition_query  # the patch is what answers first
    patched = _pages(dynamodb, **query)
    monkeypatch.setattr(Table, "query", moto_patches._moto_originals["Table.query"])
    assert patched == _pages(dynamodb, **query)


def test_a_partition_query_does_not_list_the_table_and_a_page_skips_nothing_item_by_item(
    dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_full_listing(self: Table) -> list[Any]:
        raise AssertionError("the whole table was listed for one partition")

    skipped: list[Any] = []
    comes_before = Table._item_comes_before_dct

    def counting(self: Table, item: Any, *args: Any) -> bool:
        before = comes_before(self, item, *args)
        if before:
            skipped.append(item)
        return before

    monkeypatch.setattr(Table, "all_items", no_full_listing)
    monkeypatch.setattr(Table, "_item_comes_before_dct", counting)
    pages = _pages(dynamodb, TableName="pairs", KeyConditionExpression="PK = :p", ExpressionAttributeValues={":p": {"S": "T#a"}}, Limit=10)
    assert [page["Count"] for page in pages] == [10, 10, 10, 10]
    assert skipped == []  # each page starts past its key: moto's loop has nothing to skip
