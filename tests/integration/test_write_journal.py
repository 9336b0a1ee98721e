"""raas.local.journal: what it records is each touched item's final state, so a replay on top of an older
state reproduces exactly what a client could read; cancelled transactions and failed conditional writes
leave no line; snapshots bound it (rotate/discard); a torn last line is skipped."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from raas.local import moto_patches
from raas.local.journal import WriteJournal

TABLE = "journalled"


def make_table(dynamodb: Any) -> None:
    dynamodb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"}, {"AttributeName": "SK", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


def key(pk: str, sk: str = "1") -> dict[str, Any]:
    return {"PK": {"S": pk}, "SK": {"S": sk}}


def everything(dynamodb: Any) -> list[dict[str, Any]]:
    return sorted(dynamodb.scan(TableName=TABLE, ConsistentRead=True)["Items"], key=lambda i: (i["PK"]["S"], i["SK"]["S"]))


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    moto_patches.install()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        make_table(client)
        yield client


def lines(journal_dir: Path) -> int:
    return sum(len(path.read_bytes().splitlines()) for path in journal_dir.iterdir())


def test_a_replay_reproduces_the_final_state_of_every_kind_of_write(dynamodb: Any, tmp_path: Path) -> None:
    journal = WriteJournal(tmp_path)
    journal.open()
    try:
        dynamodb.put_item(TableName=TABLE, Item={**key("a"), "blob": {"B": b"\x00\xff"}, "nested": {"M": {"bs": {"BS": [b"x"]}}}})
        dynamodb.put_item(TableName=TABLE, Item={**key("a", "2"), "n": {"N": "1"}})
        one = {":one": {"N": "1"}}
        dynamodb.update_item(TableName=TABLE, Key=key("a", "2"), UpdateExpression="ADD n :one", ExpressionAttributeValues=one)
        dynamodb.delete_item(TableName=TABLE, Key=key("a"))
        dynamodb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": TABLE, "Item": {**key("t"), "v": {"S": "committed"}}}},
                {
                    "Update": {
                        "TableName": TABLE,
                        "Key": key("a", "2"),
                        "UpdateExpression": "SET tag = :t",
                        "ExpressionAttributeValues": {":t": {"S": "x"}},
                    }
                },
            ]
        )
        dynamodb.batch_write_item(RequestItems={TABLE: [{"PutRequest": {"Item": key("b")}}, {"DeleteRequest": {"Key": key("t")}}]})
        expected = everything(dynamodb)
    finally:
        journal.close()

    dynamodb.delete_table(TableName=TABLE)  # an empty table: what the journal alone rebuilds
    make_table(dynamodb)
    assert WriteJournal(tmp_path).replay() == lines(tmp_path)
    assert everything(dynamodb) == expected
    updated = next(item for item in expected if item["SK"]["S"] == "2")  # the updates' results, not their requests
    assert updated["tag"] == {"S": "x"}
    assert updated["n"] == {"N": "2"}


def test_cancelled_transactions_and_failed_conditions_leave_no_line(dynamodb: Any, tmp_path: Path) -> None:
    journal = WriteJournal(tmp_path)
    journal.open()
    try:
        with pytest.raises(ClientError, match="TransactionCanceled"):
            dynamodb.transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": TABLE, "Item": key("never")}},  # applied by moto, then rolled back
                    {"ConditionCheck": {"TableName": TABLE, "Key": key("absent"), "ConditionExpression": "attribute_exists(PK)"}},
                ]
            )
        with pytest.raises(ClientError, match="ConditionalCheckFailed"):
            dynamodb.put_item(TableName=TABLE, Item=key("c"), ConditionExpression="attribute_exists(PK)")
    finally:
        journal.close()
    assert lines(tmp_path) == 0


def test_a_snapshot_bounds_the_journal_and_a_torn_last_line_is_skipped(dynamodb: Any, tmp_path: Path) -> None:
    journal = WriteJournal(tmp_path)
    journal.open()
    try:
        dynamodb.put_item(TableName=TABLE, Item={**key("before"), "v": {"S": "1"}})
        covered = journal.rotate()  # a snapshot starts: it will hold "before"
        dynamodb.put_item(TableName=TABLE, Item={**key("after"), "v": {"S": "2"}})
        journal.discard(covered)  # the snapshot is written
    finally:
        journal.close()
    assert lines(tmp_path) == 1
    (newest,) = tmp_path.iterdir()
    with newest.open("ab") as torn:  # what a power cut in the middle of an append can leave
        torn.write(b'{"account": "1234')

    dynamodb.delete_item(TableName=TABLE, Key=key("after"))
    assert WriteJournal(tmp_path).replay() == 1
    assert [item["PK"]["S"] for item in everything(dynamodb)] == ["after", "before"]


def _poll(condition: Any, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.02)


def test_the_state_dir_saves_changed_objects_each_turn_and_snapshots_tables_only_after_enough_writes(aws: Any, tmp_path: Path) -> None:
    from raas.adapters.aws import client
    from raas.local.aws import StateDir, table_names

    bucket = aws.settings.documents_bucket
    s3, dynamodb = client("s3"), client("dynamodb")
    s3.put_object(Bucket=bucket, Key="t-0/before-start", Body=b"old")
    state = StateDir(tmp_path / "state", flush_interval_seconds=0.05, snapshot_after_writes=30)
    state.restore()
    state.save()  # what the platform does at start
    state.start()
    index = state.objects_dir / "index.json"

    def saved() -> dict[str, bytes]:
        entries = json.loads(index.read_text(encoding="utf-8")) if index.exists() else []
        return {e["key"]: (state.objects_dir / e["file"]).read_bytes() for e in entries if (state.objects_dir / e["file"]).exists()}

    try:
        assert (state.snapshots, saved()) == (1, {"t-0/before-start": b"old"})
        s3.put_object(Bucket=bucket, Key="t-1/a b.txt", Body=b"alpha")
        s3.put_object(Bucket=bucket, Key="t-0/before-start", Body=b"new")
        state.mark_dirty()
        _poll(lambda: saved() == {"t-0/before-start": b"new", "t-1/a b.txt": b"alpha"}, "the changed objects are saved")
        s3.delete_object(Bucket=bucket, Key="t-1/a b.txt")
        state.mark_dirty()
        _poll(lambda: saved() == {"t-0/before-start": b"new"}, "the deleted object is gone from the state dir")
        assert len(list(state.objects_dir.iterdir())) == 2  # its file too: index.json and the one object
        assert state.snapshots == 1, "objects alone take no table snapshot"

        table = next(iter(table_names()))
        first_key = dynamodb.describe_table(TableName=table)["Table"]["KeySchema"]
        names = {k["KeyType"]: k["AttributeName"] for k in first_key}

        def probe(name: str) -> dict[str, Any]:
            return {names["HASH"]: {"S": f"probe#{name}"}} | ({names["RANGE"]: {"S": "x"}} if "RANGE" in names else {})

        for i in range(29):
            dynamodb.put_item(TableName=table, Item=probe(str(i)))
        state.mark_dirty()
        _poll(lambda: state.journal.lines_since_rotation == 29, "the writes are journalled")
        time.sleep(0.3)  # several turns of the saver
        assert state.snapshots == 1, "29 writes are below the threshold of 30"
        dynamodb.put_item(TableName=table, Item=probe("last"))
        _poll(lambda: state.snapshots == 2, "the 30th write brings a snapshot, even with nothing marked dirty")
        snapshot = (state.tables_dir / f"{table}.json").read_text(encoding="utf-8")
        assert "probe#last" in snapshot
        assert state.journal.lines_since_rotation == 0
    finally:
        state.stop()


def test_a_line_is_written_after_moto_lets_its_write_lock_go_and_before_the_write_returns(
    dynamodb: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A `write(2)` lets the interpreter lock go; made under moto's write lock, the thread could wait a switch interval
    to take the interpreter lock back while every other write of the platform waited for moto's lock."""
    import os
    import threading

    journal = WriteJournal(tmp_path)
    journal.open()
    others_could_write: list[bool] = []
    write = os.write

    def watched_write(fd: int, data: bytes) -> int:
        if not os.readlink(f"/proc/self/fd/{fd}").startswith(str(tmp_path)):  # not this journal's file: another
            return write(fd, data)  # journal an earlier test of this worker left listening, a socket, a log

        def try_to_write() -> None:
            acquired = moto_patches.hold_writes().acquire(timeout=2)  # type: ignore[attr-defined]
            others_could_write.append(acquired)
            if acquired:
                moto_patches.hold_writes().release()  # type: ignore[attr-defined]

        other = threading.Thread(target=try_to_write)
        other.start()
        other.join()
        return write(fd, data)

    try:
        monkeypatch.setattr(os, "write", watched_write)
        dynamodb.put_item(TableName=TABLE, Item={**key("a"), "v": {"S": "1"}})
        monkeypatch.setattr(os, "write", write)
        assert others_could_write == [True]
        assert lines(tmp_path) == 1  # in the file (not yet synced) when the write returned
    finally:
        journal.close()


def test_writes_from_many_threads_are_journalled_in_the_order_moto_applied_them(dynamodb: Any, tmp_path: Path) -> None:
    """Lines are composed under moto's write lock and queued in that order; whichever thread writes the queue out, the
    file keeps it. Every line holds its item's final state, so one line out of order would replay a stale counter."""
    import threading

    journal = WriteJournal(tmp_path)
    journal.open()
    one = {":one": {"N": "1"}}

    def add(times: int, own: str) -> None:
        for n in range(times):
            dynamodb.update_item(TableName=TABLE, Key=key("counter"), UpdateExpression="ADD n :one", ExpressionAttributeValues=one)
            dynamodb.put_item(TableName=TABLE, Item={**key(own, str(n)), "v": {"N": str(n)}})

    try:
        threads = [threading.Thread(target=add, args=(40, f"thread{i}")) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        expected = everything(dynamodb)
    finally:
        journal.close()
    assert next(item for item in expected if item["PK"]["S"] == "counter")["n"] == {"N": "320"}

    dynamodb.delete_table(TableName=TABLE)
    make_table(dynamodb)
    assert WriteJournal(tmp_path).replay() == lines(tmp_path) == 640
    assert everything(dynamodb) == expected
