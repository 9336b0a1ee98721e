"""raas.local.moto_reads: the snapshots', restore's and TTL sweeper's whole-table access, read from moto's backend.

What must hold: a snapshot written through it and restored through it gives back exactly what a client reads,
for every attribute type, and so does a snapshot written before it (boto3's Scan output, which kept state
directories hold); it reads while other threads write without failing or losing an untouched item; and the
requests a snapshot or a sweep makes do not grow with the table (through the API they grew with its pages, and
each page cost moto a sort of the whole table).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from raas.local import moto_patches, moto_reads
from raas.local.aws import _decode, _encode, _json_array, _write_durably

TABLE = "reads"
HASH_ONLY = "reads-hash-only"


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    moto_patches.install()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"}, {"AttributeName": "SK", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        client.create_table(
            TableName=HASH_ONLY,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "N"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


EVERY_TYPE = {
    "PK": {"S": "t#1"},
    "SK": {"S": "doc#1"},
    "s": {"S": "ünïcode ✓"},
    "n": {"N": "-12.5"},
    "b": {"B": b"\x00\xffbinary"},
    "ss": {"SS": ["a", "b"]},
    "ns": {"NS": ["1", "2.5"]},
    "bs": {"BS": [b"\x01", b"\x02"]},
    "m": {"M": {"inner": {"S": "x"}, "blob": {"B": b"\xfe"}, "deeper": {"M": {"l": {"L": [{"N": "1"}, {"BS": [b"y"]}]}}}}},
    "l": {"L": [{"S": "one"}, {"BOOL": True}, {"NULL": True}, {"M": {"k": {"N": "3"}}}]},
    "t": {"BOOL": False},
    "z": {"NULL": True},
}


def scan_all(dynamodb: Any, table: str) -> list[dict[str, Any]]:
    pages = dynamodb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True)
    return sorted((item for page in pages for item in page["Items"]), key=repr)


def recreate(dynamodb: Any, table: str) -> None:
    description = dynamodb.describe_table(TableName=table)["Table"]
    dynamodb.delete_table(TableName=table)
    dynamodb.create_table(
        TableName=table,
        KeySchema=description["KeySchema"],
        AttributeDefinitions=description["AttributeDefinitions"],
        BillingMode="PAY_PER_REQUEST",
    )


def through_disk(slices: Iterable[list[dict[str, Any]]], path: Path) -> list[dict[str, Any]]:
    """What StateDir.save writes and StateDir.restore reads back."""
    _write_durably(path, _json_array(slices))
    return [_decode(item) for item in json.loads(path.read_text(encoding="utf-8"))]


def test_a_snapshot_and_its_restore_give_back_every_attribute_type(dynamodb: Any, tmp_path: Path) -> None:
    dynamodb.put_item(TableName=TABLE, Item=EVERY_TYPE)
    dynamodb.put_item(TableName=TABLE, Item={"PK": {"S": "t#1"}, "SK": {"S": "doc#2"}, "n": {"N": "7"}})
    dynamodb.put_item(TableName=HASH_ONLY, Item={"id": {"N": "42"}, "b": {"B": b"\x00"}})
    before = {table: scan_all(dynamodb, table) for table in (TABLE, HASH_ONLY)}

    for table in (TABLE, HASH_ONLY):
        saved = through_disk(moto_reads.item_slices(table), tmp_path / f"{table}.json")
        recreate(dynamodb, table)
        assert moto_reads.put_items(table, saved) == len(before[table])

    assert {table: scan_all(dynamodb, table) for table in (TABLE, HASH_ONLY)} == before


def test_a_snapshot_written_from_a_scan_still_restores(dynamodb: Any, tmp_path: Path) -> None:
    # state directories kept from before hold boto3's Scan output (binary values as bytes)
    dynamodb.put_item(TableName=TABLE, Item=EVERY_TYPE)
    before = scan_all(dynamodb, TABLE)
    (tmp_path / "old.json").write_bytes(json.dumps([_encode(item) for item in before]).encode())  # as it was written
    saved = [_decode(item) for item in json.loads((tmp_path / "old.json").read_text(encoding="utf-8"))]
    recreate(dynamodb, TABLE)
    moto_reads.put_items(TABLE, saved)
    assert scan_all(dynamodb, TABLE) == before


def test_an_empty_table_and_many_slices_make_valid_snapshots(dynamodb: Any, tmp_path: Path) -> None:
    assert through_disk(moto_reads.item_slices(TABLE), tmp_path / "empty.json") == []
    for i in range(moto_reads.SLICE * 2 + 1):
        dynamodb.put_item(TableName=HASH_ONLY, Item={"id": {"N": str(i)}})
    saved = through_disk(moto_reads.item_slices(HASH_ONLY), tmp_path / "many.json")
    assert sorted(int(item["id"]["N"]) for item in saved) == list(range(moto_reads.SLICE * 2 + 1))


def test_the_object_listing_is_what_list_objects_v2_lists(dynamodb: Any) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="versioned")
    s3.put_bucket_versioning(Bucket="versioned", VersioningConfiguration={"Status": "Enabled"})  # as the documents bucket
    s3.put_object(Bucket="versioned", Key="kept", Body=b"one")
    s3.put_object(Bucket="versioned", Key="overwritten", Body=b"old")
    s3.put_object(Bucket="versioned", Key="overwritten", Body=b"new")
    s3.put_object(Bucket="versioned", Key="deleted", Body=b"gone")
    s3.delete_object(Bucket="versioned", Key="deleted")  # a delete marker is now its latest version
    s3.put_object(Bucket="versioned", Key="a/b c.txt", Body=b"")
    listed = {obj["Key"]: obj["ETag"] for obj in s3.list_objects_v2(Bucket="versioned")["Contents"]}
    assert set(listed) == {"kept", "overwritten", "a/b c.txt"}
    assert moto_reads.object_etags("versioned") == listed


def test_object_versions_are_what_list_object_versions_lists(dynamodb: Any) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="versioned")
    s3.put_bucket_versioning(Bucket="versioned", VersioningConfiguration={"Status": "Enabled"})
    for body in (b"1", b"2", b"3"):
        s3.put_object(Bucket="versioned", Key="tenants/t-1/exports/a.zip", Body=body)
    s3.put_object(Bucket="versioned", Key="tenants/t-1/exports/b.zip", Body=b"b")
    s3.delete_object(Bucket="versioned", Key="tenants/t-1/exports/b.zip")
    s3.put_object(Bucket="versioned", Key="elsewhere", Body=b"x")

    listed = s3.list_object_versions(Bucket="versioned", Prefix="tenants/")
    expected: dict[str, list[dict[str, Any]]] = {}
    for entry in listed.get("Versions", []):
        expected.setdefault(entry["Key"], []).append({k: entry[k] for k in ("Key", "VersionId", "LastModified", "IsLatest")})
    for marker in listed.get("DeleteMarkers", []):
        fields = {k: marker[k] for k in ("Key", "VersionId", "LastModified", "IsLatest")}
        expected.setdefault(marker["Key"], []).append({**fields, "IsDeleteMarker": True})

    found = moto_reads.object_versions("versioned", prefix="tenants/")
    assert set(found) == set(expected) == {"tenants/t-1/exports/a.zip", "tenants/t-1/exports/b.zip"}
    for key, entries in found.items():
        assert sorted(entries, key=lambda e: e["VersionId"]) == sorted(expected[key], key=lambda e: e["VersionId"])
        assert [e["IsLatest"] for e in entries] == [True] + [False] * (len(entries) - 1)  # newest first
    assert found["tenants/t-1/exports/b.zip"][0].get("IsDeleteMarker") is True
    a_versions = s3.list_object_versions(Bucket="versioned", Prefix="tenants/t-1/exports/a.zip")["Versions"]
    newest = next(v for v in a_versions if v["IsLatest"])
    assert s3.get_object(Bucket="versioned", Key="tenants/t-1/exports/a.zip", VersionId=newest["VersionId"])["Body"].read() == b"3"


def _version_pages(s3: Any, **kwargs: Any) -> list[dict[str, Any]]:
    fields = ("Versions", "DeleteMarkers", "CommonPrefixes", "NextKeyMarker", "NextVersionIdMarker", "IsTruncated")
    pages = s3.get_paginator("list_object_versions").paginate(Bucket="listed", PaginationConfig={"PageSize": 2}, **kwargs)
    return [{field: page.get(field) for field in fields} for page in pages]


def test_a_version_listing_under_a_prefix_pages_as_moto_does(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.s3.models import FakeKey, S3Backend

    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="listed")
    s3.put_bucket_versioning(Bucket="listed", VersioningConfiguration={"Status": "Enabled"})
    for key in ("a/1", "tenants/t-1/x", "tenants/t-1/y", "tenants/t-1/sub/z", "tenants/t-10/x", "tenants/t-2/x", "u"):
        for body in (b"first", b"second"):
            s3.put_object(Bucket="listed", Key=key, Body=body)
    s3.delete_object(Bucket="listed", Key="tenants/t-1/y")
    queries: list[dict[str, Any]] = [
        {"Prefix": "tenants/t-1/"},
        {"Prefix": "tenants/t-1"},
        {"Prefix": "tenants/t-1/", "Delimiter": "/"},
        {},
    ]
    copied: list[str] = []
    getstate = FakeKey.__getstate__  # moto's deep copy of a key goes through it

    def counting(self: Any) -> Any:
        copied.append(self.name)
        return getstate(self)

    monkeypatch.setattr(FakeKey, "__getstate__", counting)
    s3.list_object_versions(Bucket="listed", Prefix="tenants/t-2/")
    assert set(copied) == {"tenants/t-2/x"}  # only what the prefix names (moto copied all seven keys)

    patched = [_version_pages(s3, **query) for query in queries]
    monkeypatch.setattr(S3Backend, "list_object_versions", moto_patches.original("S3Backend.list_object_versions"))
    monkeypatch.setattr(S3Backend, "get_bucket", moto_patches.original("S3Backend.get_bucket"))
    assert patched == [_version_pages(s3, **query) for query in queries]  # moto's own pages, page by page


def test_moto_keeps_no_list_of_every_instance_it_made(dynamodb: Any) -> None:
    # what raas local used to drop after every write, freeing thousands of copies at once on a request thread
    from moto.dynamodb.models.dynamo_type import Item
    from moto.s3.models import FakeKey

    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="plain")
    for i in range(20):
        s3.put_object(Bucket="plain", Key=f"k{i}", Body=b"x")
        dynamodb.put_item(TableName=TABLE, Item={"PK": {"S": "t"}, "SK": {"S": str(i)}})
    s3.list_object_versions(Bucket="plain")  # deep-copies every key
    assert (len(FakeKey.instances_tracked), len(Item.instances_tracked)) == (0, 0)  # type: ignore[attr-defined]


def test_a_paced_reader_rests_three_times_what_each_step_took() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    pacer = moto_reads.Pacer(busy_share=0.25, sleep=sleep, clock=lambda: now[0])
    for step in (0.002, 0.010):
        now[0] += step  # the work of one slice
        pacer.rest()
    assert slept == pytest.approx([0.006, 0.030])
    unpaced = moto_reads.Pacer(busy_share=1, sleep=sleep, clock=lambda: now[0])
    now[0] += 1.0
    unpaced.rest()
    assert len(slept) == 2


def test_only_the_named_attributes_are_read(dynamodb: Any) -> None:
    dynamodb.put_item(TableName=TABLE, Item=EVERY_TYPE)
    dynamodb.put_item(TableName=TABLE, Item={"PK": {"S": "t#1"}, "SK": {"S": "doc#2"}})
    projected = sorted(moto_reads.items(TABLE, attributes=["PK", "SK", "n"]), key=repr)
    assert projected == [{"PK": {"S": "t#1"}, "SK": {"S": "doc#1"}, "n": {"N": "-12.5"}}, {"PK": {"S": "t#1"}, "SK": {"S": "doc#2"}}]


def test_a_read_beside_writers_fails_nothing_and_returns_every_untouched_item(dynamodb: Any) -> None:
    settled = {f"settled#{i:04d}" for i in range(1200)}  # more than two slices of the lock
    for sk in settled:
        dynamodb.put_item(TableName=TABLE, Item={"PK": {"S": "t#settled"}, "SK": {"S": sk}})
    stop = threading.Event()
    failures: list[BaseException] = []

    def churn() -> None:
        writer = boto3.client("dynamodb", region_name="us-east-1")
        number = 0
        try:
            while not stop.is_set():
                number += 1
                item_key = {"PK": {"S": f"t#churn{number % 7}"}, "SK": {"S": str(number % 50)}}
                writer.put_item(TableName=TABLE, Item={**item_key, "v": {"N": str(number)}})
                writer.update_item(
                    TableName=TABLE,
                    Key=item_key,
                    UpdateExpression="SET w = :w, #n = :w",  # attributes come and go: the item's dict changes size
                    ExpressionAttributeNames={"#n": f"a{number % 3}"},
                    ExpressionAttributeValues={":w": {"S": "x" * (number % 40)}},
                )
                if number % 3 == 0:
                    writer.delete_item(TableName=TABLE, Key=item_key)
        except BaseException as exc:  # reported by the assertion below
            failures.append(exc)

    writers = [threading.Thread(target=churn) for _ in range(2)]
    for thread in writers:
        thread.start()
    try:
        for _ in range(5):
            read = [item["SK"]["S"] for item in moto_reads.items(TABLE) if item["PK"]["S"] == "t#settled"]
            assert sorted(read) == sorted(settled)
    finally:
        stop.set()
        for thread in writers:
            thread.join()
    assert failures == []


def test_a_snapshot_and_a_sweep_make_as_many_requests_for_a_large_table_as_for_a_small_one(aws: Any, tmp_path: Path) -> None:
    from raas.adapters.aws import client
    from raas.local.aws import StateDir, table_names
    from raas.local.ttl_sweeper import TtlSweeper

    dynamodb = client("dynamodb")
    calls: list[str] = []
    dynamodb.meta.events.register("before-call.dynamodb.*", lambda model, **_: calls.append(model.name))
    state = StateDir(tmp_path / "state")
    sweeper = TtlSweeper(lambda: list(table_names()), clock=lambda: 1_000.0)  # nothing has expired yet
    usage = aws.settings.usage_table

    def requests_made() -> list[str]:
        calls.clear()
        state.save()
        sweeper.sweep()
        return sorted(calls)

    def add(count: int, start: int) -> None:
        padding = "p" * 600  # 3,000 of these are two pages of a Scan (1 MB each)
        for i in range(start, start + count):
            item = {"PK": {"S": "TENANT#t-big#"}, "SK": {"S": f"EVENT#{i:05d}"}, "expires_at": {"N": "2000"}, "pad": {"S": padding}}
            dynamodb.put_item(TableName=usage, Item=item)

    add(10, 0)
    small = requests_made()
    add(3000, 10)
    large = requests_made()
    assert large == small
    assert "Scan" not in large
    assert len(json.loads((state.tables_dir / f"{usage}.json").read_text(encoding="utf-8"))) >= 3010
