"""AWS stand-in for the local platform: moto's server on loopback, the tables, and state snapshots."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import threading
from collections.abc import Callable, Collection, Iterable, Iterator
from pathlib import Path
from typing import Any

from raas.adapters.aws import client, reset_clients
from raas.adapters.dynamo_schema import ALL_TABLES, TableSpec
from raas.adapters.objects import UPLOAD_CORS_RULES
from raas.local import moto_reads
from raas.local.signing_front import PlatformCredentials, SigningFront
from raas.settings import Settings

LOCAL_REGION = "us-east-1"


def release_moto_tracking() -> None:
    """Drops moto's dashboard references to every model instance it made, for a moto without
    raas.local.moto_patches (which stops the tracking itself: `bench/ingest_scaling.py --moto-as-is`).

    moto keeps each instance (every DynamoDB item it ever built, including the copies each
    write and transaction takes) for its /moto-api dashboard, so a long-running process
    would grow without bound. The references serve nothing else; state lives in the backends.
    """
    from moto.core.model_instances import reset_model_data

    reset_model_data()


USAGE_BUFFER_QUEUE = "raas-usage-buffer"


def isolate_from_real_aws(endpoint_url: str | None = None, credentials: PlatformCredentials | None = None) -> None:
    """Local credentials, no profile, no instance metadata: nothing can reach real AWS.

    With `endpoint_url`, every boto3 client goes there (the local platform's moto server, behind the
    signing front that `start_moto_server` made) and signs with `credentials`, the ones that front
    accepts; without, clients stay unresolved so moto's in-process mock can intercept them (tests,
    benchmarks), with the fixed dummy credentials moto's mock expects.
    """
    for name in (
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ENDPOINT_URL",
    ):
        os.environ.pop(name, None)
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": credentials.access_key_id if credentials else "testing",
            "AWS_SECRET_ACCESS_KEY": credentials.secret_access_key if credentials else "testing",
            "AWS_DEFAULT_REGION": LOCAL_REGION,
            "AWS_REGION": LOCAL_REGION,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )
    if endpoint_url:
        os.environ["AWS_ENDPOINT_URL"] = endpoint_url
    reset_clients()


def start_moto_server(host: str = "127.0.0.1") -> tuple[SigningFront, str]:
    """moto, reachable only through a front that checks SigV4 as AWS does; returns (front, its endpoint).

    moto's server accepts unsigned and forged requests, and upload tickets show the endpoint, so moto
    itself listens on a Unix socket in a private directory and the front, on `host`, passes on only
    requests signed with this start's credentials (`isolate_from_real_aws(front.endpoint, front.credentials)` installs them).
    The platform's own SDK calls are verified the same way and answered in-process (`InProcessTransport`).
    `front.stop()` stops both.
    """
    from raas.local import moto_patches

    moto_patches.install()  # transactions that cost what they touch, and atomic writes
    credentials = PlatformCredentials.generate()
    front = SigningFront(credentials, LOCAL_REGION, host=host)
    front.serve_sdk_in_process()  # the platform's own calls skip the loopback hops, not the signature check
    return front, front.endpoint


def table_names() -> dict[str, TableSpec]:
    physical = Settings.from_env().table_names()
    return {physical[spec.logical_name]: spec for spec in ALL_TABLES}


def ensure_resources() -> str:
    """Tables, the document bucket and the ingest queue it notifies; returns the queue URL."""
    from raas.local.events import ensure_ingest_queue

    ensure_tables()
    # usage events wait here while the usage table is unavailable (BufferedUsageRecorder)
    os.environ["RAAS_USAGE_BUFFER_QUEUE_URL"] = client("sqs").create_queue(QueueName=USAGE_BUFFER_QUEUE)["QueueUrl"]
    bucket = Settings.from_env().documents_bucket
    s3 = client("s3")
    if bucket not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})  # as the deployed bucket
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": UPLOAD_CORS_RULES})  # as the deployed bucket
    return ensure_ingest_queue(bucket)


def ensure_tables() -> None:
    dynamodb = client("dynamodb")
    existing = set(dynamodb.list_tables().get("TableNames", []))
    for name, spec in table_names().items():
        if name not in existing:
            dynamodb.create_table(**spec.create_table_kwargs(name))
            if spec.ttl_attribute:
                dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": spec.ttl_attribute})


def _encode(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return {"__b64__": base64.b64encode(value).decode()}
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__b64__"}:
            return base64.b64decode(value["__b64__"])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


_state_log = logging.getLogger("raas.local.state")


def _json_array(slices: Iterable[list[dict[str, Any]]]) -> Iterator[bytes]:
    """A JSON array of the items, written a slice at a time (one `json.dumps` of a whole table held the
    interpreter for as long as it took)."""
    yield b"["
    first = True
    for piece in slices:
        if piece:
            yield (b"" if first else b",") + json.dumps([_encode(item) for item in piece])[1:-1].encode()
            first = False
    yield b"]"


def _write_durably(target: Path, data: bytes | Iterable[bytes]) -> None:
    """Replaces `target` atomically with `data` (or its pieces, in order), on disk before the new name is."""
    tmp = target.with_name(target.name + ".tmp")
    with tmp.open("wb") as out:
        for piece in [data] if isinstance(data, bytes) else data:
            out.write(piece)
        out.flush()
        os.fsync(out.fileno())
    tmp.replace(target)


# A restart replays the journal written since the last table snapshot; 20,000 lines replay in a few
# seconds. Snapshots scan every table, so taking one per second (as before) cost a second of interpreter
# time per second at 10,000 documents and held up every request meanwhile.
SNAPSHOT_AFTER_WRITES = 20_000


class StateDir:
    """Persists the local platform's data between restarts: table snapshots, a write journal, saved objects.

    moto keeps state in memory only. Every DynamoDB write is appended to a journal (`<dir>/journal/`, see
    raas.local.journal) that `sync` makes durable and `restore` replays on top of the last snapshot of the
    tables (`<dir>/dynamodb/<table>.json`, written atomically). A snapshot is taken at start, at shutdown,
    and whenever the journal has grown by `snapshot_after_writes` lines, which bounds the replay at start.
    Document objects are saved about a second after they change (only the keys moto reported changed).
    """

    def __init__(self, path: Path, flush_interval_seconds: float = 1.0, snapshot_after_writes: int = SNAPSHOT_AFTER_WRITES):
        from raas.local.journal import WriteJournal

        self.path = path
        self.flush_interval = flush_interval_seconds
        self.snapshot_after_writes = snapshot_after_writes
        self.journal = WriteJournal(path / "journal")
        self.snapshots = 0  # table snapshots taken by this process (tests, logs)
        self._dirty = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._objects: dict[str, dict[str, Any]] | None = None  # key -> index entry, as on disk
        self._changed_objects: set[str] = set()
        self._changes_lock = threading.Lock()
        self._bucket = ""

    @property
    def tables_dir(self) -> Path:
        return self.path / "dynamodb"

    @property
    def objects_dir(self) -> Path:
        return self.path / "s3"

    @property
    def search_dir(self) -> Path:
        return self.path / "search"

    def restore(self, quiet: Callable[[], Collection[str]] | None = None) -> int:
        """Puts the tables and the objects back. `quiet`, called once the tables are back, names the objects whose
        bucket notifications need not fire again (their documents were finished); without it, all fire."""
        restored = 0
        for name in table_names():
            snapshot = self.tables_dir / f"{name}.json"
            if snapshot.exists():
                restored += moto_reads.put_items(name, (_decode(item) for item in json.loads(snapshot.read_text(encoding="utf-8"))))
        restored += self.journal.replay()  # the writes after the last snapshot
        self.journal.open()  # from here on every write is journalled
        restored += self._restore_objects(frozenset(quiet()) if quiet else frozenset())
        return restored

    def sync(self) -> None:
        """Makes every DynamoDB write so far durable (the server calls it before acknowledging a mutation)."""
        self.journal.sync()

    def _restore_objects(self, quiet: frozenset[str] = frozenset()) -> int:
        """Puts saved objects back. The bucket notifies the ingest queue of every object created, as S3 does, and
        ingestion skips a document already indexed, but only after claiming it: with 10,000 documents a restart spent
        minutes of both cores on events that changed nothing. So the `quiet` objects are put straight into moto's
        bucket with its notifications off for them (raas.local.moto_reads), the others through the API, events
        and all."""
        index = self.objects_dir / "index.json"
        if not index.exists():
            return 0
        s3 = client("s3")
        bucket = Settings.from_env().documents_bucket
        entries = json.loads(index.read_text(encoding="utf-8"))
        for entry in entries:
            if entry["key"] in quiet:
                moto_reads.put_object_quietly(bucket, entry["key"], (self.objects_dir / entry["file"]).read_bytes(), entry["content_type"])
            else:
                self._put_saved(s3, bucket, entry)
        return len(entries)

    def redeliver_object(self, key: str) -> bool:
        """Puts a saved object again, so that its creation event fires (a document queued again at start); whether
        one was saved under `key`."""
        index = self.objects_dir / "index.json"
        entries = json.loads(index.read_text(encoding="utf-8")) if index.exists() else []
        entry = next((e for e in entries if e["key"] == key), None)
        if entry is None:
            return False
        self._put_saved(client("s3"), Settings.from_env().documents_bucket, entry)
        return True

    def _put_saved(self, s3: Any, bucket: str, entry: dict[str, Any]) -> None:
        body = (self.objects_dir / entry["file"]).read_bytes()
        s3.put_object(Bucket=bucket, Key=entry["key"], Body=body, ContentType=entry["content_type"])

    def _on_object_change(self, bucket: str, key: str) -> None:
        if bucket == self._bucket:
            with self._changes_lock:
                self._changed_objects.add(key)

    def _save_objects(self, *, everything: bool) -> None:
        """Saves the objects moto reported changed since the last save, or (`everything`) whatever differs
        from the saved index by ETag. "The ETag reflects changes only to the contents of an object":
        https://docs.aws.amazon.com/AmazonS3/latest/API/API_Object.html"""
        s3 = client("s3")
        bucket = Settings.from_env().documents_bucket
        self.objects_dir.mkdir(parents=True, exist_ok=True)
        index = self.objects_dir / "index.json"
        first = self._objects is None
        if self._objects is None:
            self._objects = {e["key"]: e for e in json.loads(index.read_text(encoding="utf-8"))} if index.exists() else {}
        with self._changes_lock:
            changed, self._changed_objects = self._changed_objects, set()
        if everything:
            listed = moto_reads.object_etags(bucket)  # what ListObjectsV2 lists, without its pages (moto_reads says why)
            for key, etag in listed.items():
                saved = self._objects.get(key)
                if not saved or saved.get("etag") != etag or not (self.objects_dir / saved["file"]).exists():
                    changed.add(key)
            changed |= set(self._objects) - set(listed)
        removed = []
        for key in changed:
            try:
                response = s3.get_object(Bucket=bucket, Key=key)
            except s3.exceptions.NoSuchKey:
                if (entry := self._objects.pop(key, None)) is not None:
                    removed.append(entry["file"])
                continue
            name = hashlib.sha256(key.encode()).hexdigest()
            _write_durably(self.objects_dir / name, response["Body"].read())
            content_type = response.get("ContentType", "application/octet-stream")
            self._objects[key] = {"key": key, "file": name, "content_type": content_type, "etag": response["ETag"]}
        if changed or first or everything:
            _write_durably(index, json.dumps(list(self._objects.values())).encode())
        # after the new index is in place: the old one may name them
        for stale in removed:
            (self.objects_dir / stale).unlink(missing_ok=True)
        if everything:
            keep = {e["file"] for e in self._objects.values()} | {"index.json"}
            for stale_path in self.objects_dir.iterdir():
                if stale_path.name not in keep:
                    stale_path.unlink()

    def save(self, *, tables: bool = True, every_object: bool = True, pacer: moto_reads.Pacer = moto_reads.UNPACED) -> None:
        """A snapshot of the tables (with `tables`) and the objects that changed, or (`every_object`) every
        object that differs from its saved copy. The periodic snapshots save only the changed ones (the object
        hooks report every put and delete), and read the tables at the `pacer`'s pace: they run beside requests."""
        with self._lock:
            self._dirty.clear()
            if not tables:
                self._save_objects(everything=every_object)
                return
            covered = self.journal.rotate()  # writes from here on may be missed by the read: keep their journal
            self.tables_dir.mkdir(parents=True, exist_ok=True)
            for name in table_names():
                # on disk before the journal it replaces is deleted
                _write_durably(self.tables_dir / f"{name}.json", _json_array(moto_reads.item_slices(name, pacer=pacer)))
            self._save_objects(everything=every_object)
            self.journal.discard(covered)
            self.snapshots += 1

    def mark_dirty(self) -> None:
        self._dirty.set()

    def start(self) -> None:
        from raas.local import moto_patches

        self._bucket = Settings.from_env().documents_bucket
        moto_patches.add_object_listener(self._on_object_change)
        self._thread = threading.Thread(target=self._run, name="raas-state", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            journal_full = self.journal.lines_since_rotation >= self.snapshot_after_writes  # ingest writes mark nothing dirty
            if (self._dirty.wait(timeout=0.5) or journal_full) and not self._stop.wait(self.flush_interval):
                try:
                    # beside requests: paced, and the rests end at a stop (whose own snapshot waits for this one)
                    pacer = moto_reads.Pacer(sleep=self._stop.wait)
                    tables = self.journal.lines_since_rotation >= self.snapshot_after_writes
                    self.save(tables=tables, every_object=False, pacer=pacer)
                except Exception:  # noqa: BLE001 - a failed snapshot keeps its journal; the next turn tries again
                    _state_log.exception("state snapshot failed; retrying")
                    self._dirty.set()

    def stop(self) -> None:
        from raas.local import moto_patches

        moto_patches.remove_object_listener(self._on_object_change)
        self._stop.set()
        self._dirty.set()  # the snapshot thread waits on this: it sees the stop at once, not after its poll
        if self._thread:
            self._thread.join(timeout=5)
        self.save()
        self.journal.close()
