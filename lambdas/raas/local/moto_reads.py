"""Whole-table and whole-bucket access for the local platform's own housekeeping, straight from moto's backends.

The state snapshots (`StateDir.save`), the restore at start and the TTL sweeper read or write every item of
every table, and the full snapshots list every object. Through the AWS API that cost far more than the data:
moto 5.2.5's `Table.scan` sorts the whole table on every page (`all_items()`), walks it from the start to the
page's start key, and deep-copies each item it returns, so one Scan of n items in 1-MB pages is
O(n² log n / page size); a listing of the bucket renders and parses 1,000 keys a page. With 10,000 documents
(about 45,000 items) a periodic snapshot took 12.4 s of CPU and a sweep 3.3 s, and while either ran the queries
served beside it all but stopped: a query's embedding gives the interpreter lock up between the model's
operators and waited up to the 5-ms switch interval for it each time (bench/load.py measured three queries in
16 s right after a preload). None of this is the product's own data access: the handlers keep talking to the
AWS APIs.

Items travel in moto's own JSON form (`Item.to_json()`), the form the write journal (raas.local.journal) records
and replays, so a snapshot, the journal and a restore agree on every attribute type. A read takes a table's
items in slices under moto's write lock (`moto_patches.hold_writes`), so no write changes a dict while it is
walked and writes wait for one slice at most, and it rests between slices (`Pacer`), so that what it costs
is spread out rather than taken from the requests of the moment.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Iterator
from datetime import UTC
from typing import Any

from raas.adapters.aws import client
from raas.local import moto_patches

SLICE = 200  # items serialized per hold of the write lock: about 2 ms
BUSY_SHARE = 0.25  # a paced reader rests three times as long as each slice took


class Pacer:
    """Keeps a background loop's share of the interpreter at `busy_share`: `rest()` after each step sleeps in
    proportion to the time since the last rest. With `busy_share=1` it never sleeps (nothing is served yet)."""

    def __init__(
        self, busy_share: float = BUSY_SHARE, sleep: Callable[[float], object] = time.sleep, clock: Callable[[], float] = time.perf_counter
    ):
        self.busy_share = busy_share
        self._sleep, self._clock = sleep, clock
        self._since = clock()

    def rest(self) -> None:
        if self.busy_share < 1:
            self._sleep((self._clock() - self._since) * (1 - self.busy_share) / self.busy_share)
        self._since = self._clock()


UNPACED = Pacer(busy_share=1)


def _table(table_name: str) -> tuple[Any, Any]:
    """moto's DynamoDB backend that holds `table_name` (the account and region of its ARN, whatever the local
    credentials map to in moto), and the table."""
    from moto.dynamodb.models import dynamodb_backends

    arn = client("dynamodb").describe_table(TableName=table_name)["Table"]["TableArn"]
    _, _, _, region, account, _ = arn.split(":", 5)
    backend = dynamodb_backends[account][region]
    return backend, backend.get_table(table_name)


def _item_objects(table: Any) -> list[Any]:
    with moto_patches.hold_writes():
        if table.range_key_attr is None:
            return list(table.items.values())
        return [item for bucket in table.items.values() for item in bucket.values()]


def item_slices(table_name: str, attributes: Collection[str] | None = None, pacer: Pacer = UNPACED) -> Iterator[list[dict[str, Any]]]:
    """Every item of the table as moto's attribute map (`{"name": {"S": "value"}, ...}`), a slice at a time and
    in no particular order (Scan promises none either), or only the named top-level `attributes` of each.

    An item written while the read goes on may be seen before or after the write; one deleted meanwhile may
    still be returned. The snapshot relies on the journal for both (every write after its rotation is
    replayed on top of it), the TTL sweeper on its conditional deletes."""
    _, table = _table(table_name)
    objects = _item_objects(table)
    wanted = frozenset(attributes) if attributes is not None else None
    for start in range(0, len(objects), SLICE):
        with moto_patches.hold_writes():
            serialized = [item.to_json()["Attributes"] for item in objects[start : start + SLICE]]
        if wanted is not None:
            serialized = [{name: value for name, value in item.items() if name in wanted} for item in serialized]
        yield serialized
        pacer.rest()


def items(table_name: str, attributes: Collection[str] | None = None, pacer: Pacer = UNPACED) -> Iterator[dict[str, Any]]:
    """`item_slices`, one item at a time."""
    for piece in item_slices(table_name, attributes, pacer):
        yield from piece


def put_items(table_name: str, entries: Iterable[dict[str, Any]]) -> int:
    """Puts items given in moto's form (as `items` returns them, or as boto3 returns them) into the table, the
    way the journal's replay does; returns how many."""
    backend, _ = _table(table_name)
    count = 0
    for entry in entries:
        backend.put_item(table_name, entry)
        count += 1
    return count


def _bucket(bucket_name: str) -> tuple[Any, Any]:
    from moto.s3.models import s3_backends

    partition, account = s3_backends.bucket_accounts[bucket_name]
    backend = s3_backends[account][partition]
    return backend, backend.buckets[bucket_name]


def put_object_quietly(bucket_name: str, key: str, body: bytes, content_type: str) -> None:
    """Puts an object without the bucket's notifications firing (moto's `disable_notification`; S3 itself
    has no such switch, only an empty notification configuration for the whole bucket meanwhile:
    https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutBucketNotificationConfiguration.html). Nothing
    is notified, so nothing can read the object before its Content-Type is set."""
    backend, _ = _bucket(bucket_name)
    stored = backend.put_object(bucket_name, key, body, disable_notification=True)
    stored.set_metadata({"Content-Type": content_type})


def object_etags(bucket_name: str) -> dict[str, str]:
    """Every object ListObjectsV2 would list, with its ETag: the latest version of each key, unless that is a
    delete marker ("If the current version is a delete marker, Amazon S3 behaves as if the object was
    deleted": https://docs.aws.amazon.com/AmazonS3/latest/userguide/DeleteMarker.html)."""
    from moto.s3.models import FakeKey

    _, bucket = _bucket(bucket_name)
    listed = {}
    for key, value in bucket.keys.items():
        if isinstance(value, FakeKey):
            with value.lock:  # the ETag is computed from the bytes on first use; a read of them moves the same buffer
                listed[key] = value.etag
    return listed


def object_versions(bucket_name: str, prefix: str = "") -> dict[str, list[dict[str, Any]]]:
    """Every version and delete marker of the keys under `prefix`, newest first, with the fields the lifecycle
    sweep reads from ListObjectVersions: `VersionId`, `LastModified` (UTC, to the second, as the API gives
    it), `IsLatest`, and `IsDeleteMarker` on markers. moto's `list_object_versions` deep-copies every version
    under its prefix, bytes included, on every page (`moto_patches` item 7), and the export sweep's prefix,
    `tenants/`, holds every document."""
    from moto.s3.models import FakeDeleteMarker

    _, bucket = _bucket(bucket_name)
    found: dict[str, list[dict[str, Any]]] = {}
    for key, versions in bucket.keys.iterlists():
        if not key.startswith(prefix):
            continue
        newest_first = list(reversed(versions))
        found[key] = [
            {
                "Key": key,
                "VersionId": version.version_id,
                "LastModified": version.last_modified.replace(microsecond=0, tzinfo=UTC),
                "IsLatest": position == 0,
                **({"IsDeleteMarker": True} if isinstance(version, FakeDeleteMarker) else {}),
            }
            for position, version in enumerate(newest_first)
        ]
    return found
