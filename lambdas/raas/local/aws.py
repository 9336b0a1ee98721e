"""AWS stand-in for the local platform: moto's server on loopback, the tables, and state snapshots."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

from raas.adapters.aws import client, reset_clients
from raas.adapters.dynamo_schema import ALL_TABLES, TableSpec
from raas.settings import get_settings

LOCAL_REGION = "us-east-1"


def release_moto_tracking() -> None:
    """Drops moto's dashboard references to every model instance it ever made.

    moto keeps each instance (every DynamoDB item it ever built, including the copies each
    write and transaction takes) for its /moto-api dashboard, so a long-running local platform
    would grow without bound. The references serve nothing else; state lives in the backends
    and is untouched.
    """
    from moto.core.model_instances import reset_model_data

    reset_model_data()


USAGE_BUFFER_QUEUE = "raas-usage-buffer"


def isolate_from_real_aws(endpoint_url: str | None = None) -> None:
    """Dummy credentials, no profile, no instance metadata: nothing can reach real AWS.

    With `endpoint_url`, every boto3 client goes there (the local platform's moto server);
    without, clients stay unresolved so moto's in-process mock can intercept them (tests, benchmarks).
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
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
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


def start_moto_server(host: str = "127.0.0.1") -> tuple[Any, str]:
    from moto.server import ThreadedMotoServer  # local-only dependency

    from raas.local import moto_patches

    moto_patches.install()  # transactions that cost what they touch, and atomic writes
    server = ThreadedMotoServer(ip_address=host, port=0, verbose=False)
    server.start()
    bound_host, port = server.get_host_and_port()
    return server, f"http://{bound_host}:{port}"


def table_names() -> dict[str, TableSpec]:
    physical = get_settings().table_names()
    return {physical[spec.logical_name]: spec for spec in ALL_TABLES}


def ensure_resources() -> str:
    """Tables, the document bucket and the ingest queue it notifies; returns the queue URL."""
    from raas.local.events import ensure_ingest_queue

    ensure_tables()
    # usage events wait here while the usage table is unavailable (BufferedUsageRecorder)
    os.environ["RAAS_USAGE_BUFFER_QUEUE_URL"] = client("sqs").create_queue(QueueName=USAGE_BUFFER_QUEUE)["QueueUrl"]
    bucket = get_settings().documents_bucket
    s3 = client("s3")
    if bucket not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})  # as the deployed bucket
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


class StateDir:
    """Persists the local platform's data between restarts as JSON snapshots of each table.

    moto keeps state in memory only; we scan every table into `<dir>/dynamodb/<table>.json`
    (written atomically) shortly after each change and at shutdown, and load them at start.
    """

    def __init__(self, path: Path, flush_interval_seconds: float = 1.0):
        self.path = path
        self.flush_interval = flush_interval_seconds
        self._dirty = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def tables_dir(self) -> Path:
        return self.path / "dynamodb"

    @property
    def objects_dir(self) -> Path:
        return self.path / "s3"

    @property
    def search_dir(self) -> Path:
        return self.path / "search"

    def restore(self) -> int:
        dynamodb = client("dynamodb")
        restored = 0
        for name in table_names():
            snapshot = self.tables_dir / f"{name}.json"
            if not snapshot.exists():
                continue
            items = [_decode(item) for item in json.loads(snapshot.read_text(encoding="utf-8"))]
            for start in range(0, len(items), 25):
                batch = [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
                unprocessed: dict[str, Any] = {name: batch}
                while unprocessed:
                    unprocessed = dynamodb.batch_write_item(RequestItems=unprocessed).get("UnprocessedItems") or {}
            restored += len(items)
        restored += self._restore_objects()
        return restored

    def _restore_objects(self) -> int:
        """Puts saved objects back (their S3 events re-deliver; ingest skips documents already indexed)."""
        index = self.objects_dir / "index.json"
        if not index.exists():
            return 0
        s3 = client("s3")
        bucket = get_settings().documents_bucket
        entries = json.loads(index.read_text(encoding="utf-8"))
        for entry in entries:
            body = (self.objects_dir / entry["file"]).read_bytes()
            s3.put_object(Bucket=bucket, Key=entry["key"], Body=body, ContentType=entry["content_type"])
        return len(entries)

    def _save_objects(self) -> None:
        s3 = client("s3")
        bucket = get_settings().documents_bucket
        self.objects_dir.mkdir(parents=True, exist_ok=True)
        entries = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for obj in page.get("Contents", []):
                response = s3.get_object(Bucket=bucket, Key=obj["Key"])
                name = hashlib.sha256(obj["Key"].encode()).hexdigest()
                (self.objects_dir / name).write_bytes(response["Body"].read())
                entries.append({"key": obj["Key"], "file": name, "content_type": response.get("ContentType", "application/octet-stream")})
        keep = {e["file"] for e in entries} | {"index.json", "index.json.tmp"}
        for stale in self.objects_dir.iterdir():
            if stale.name not in keep:
                stale.unlink()
        tmp = self.objects_dir / "index.json.tmp"
        tmp.write_text(json.dumps(entries), encoding="utf-8")
        tmp.replace(self.objects_dir / "index.json")

    def save(self) -> None:
        with self._lock:
            self._dirty.clear()
            self.tables_dir.mkdir(parents=True, exist_ok=True)
            dynamodb = client("dynamodb")
            for name in table_names():
                items: list[dict[str, Any]] = []
                for page in dynamodb.get_paginator("scan").paginate(TableName=name, ConsistentRead=True):
                    items.extend(page.get("Items", []))
                target = self.tables_dir / f"{name}.json"
                tmp = target.with_suffix(".json.tmp")
                tmp.write_text(json.dumps([_encode(i) for i in items]), encoding="utf-8")
                tmp.replace(target)
            self._save_objects()

    def mark_dirty(self) -> None:
        self._dirty.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="raas-state", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._dirty.wait(timeout=0.5) and not self._stop.wait(self.flush_interval):
                self.save()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        self.save()
