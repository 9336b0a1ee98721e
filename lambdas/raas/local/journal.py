"""An append-only journal of the local platform's DynamoDB writes, replayed at start on top of the snapshot.

The snapshots (`StateDir.save`) are taken about a second after a change; a process killed in between would
lose what the last second wrote: a revoked key would work again, a deleted document come back. The journal
closes that gap. After every write moto applies (hooked in `moto_patches.add_write_listener`, under moto's
write lock, so lines are in the order the writes were applied) it composes one line per item the write
touched, holding the item's *final* state (or its absence): a transaction's conditions, update expressions
and rollbacks are then already resolved, and replaying a line is idempotent. The lines are queued in that
order and written once the write lock is released, before the write returns (`moto_patches.add_after_write`):
a `write(2)` lets the interpreter lock go, and a thread holding moto's lock that waits to take it back held up
every other write of the platform. The HTTP server fsyncs the
journal before it answers a mutating request (`sync`), so an acknowledged write survives `kill -9` and a
power cut alike. Each append is one `write(2)` on an O_APPEND descriptor, so a killed process leaves whole
lines, except possibly a torn last one after a power cut, which replay skips.

Snapshots bound the journal: `rotate` starts a new file before a snapshot scans the tables, and the files
before it are deleted once the snapshot is written (`discard`). Every write the snapshot might have missed
came after the rotation and is in a kept file; replaying a write the snapshot already holds changes nothing.
"""

from __future__ import annotations

import base64
import inspect
import json
import logging
import os
import threading
from collections import deque
from pathlib import Path
from typing import Any

from raas.local import moto_patches

logger = logging.getLogger(__name__)
_PREFIX = "journal-"
_SUFFIX = ".jsonl"
_TRACKED = ("put_item", "update_item", "delete_item", "transact_write_items")  # batch writes arrive as put/delete_item


class WriteJournal:
    def __init__(self, directory: Path):
        self.directory = directory
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._sequence = 0
        self.lines_since_rotation = 0  # how much a restart would replay; bounds the time between snapshots
        self._signatures: dict[str, inspect.Signature] = {}
        # Composed under moto's write lock, in the order the writes were applied; written under `_lock` by `_write_queued`.
        self._queued: deque[bytes] = deque()

    # --- files --------------------------------------------------------------------------------
    def _files(self) -> list[tuple[int, Path]]:
        if not self.directory.exists():
            return []
        found = []
        for path in self.directory.iterdir():
            number = path.name.removeprefix(_PREFIX).removesuffix(_SUFFIX)
            if path.name.startswith(_PREFIX) and path.name.endswith(_SUFFIX) and number.isdigit():
                found.append((int(number), path))
        return sorted(found)

    def _open_next(self) -> None:
        self._sequence += 1
        path = self.directory / f"{_PREFIX}{self._sequence:010d}{_SUFFIX}"
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        _fsync_directory(self.directory)  # the new name itself must survive a power cut

    def open(self) -> None:
        """Starts recording writes (call after `replay`: replayed writes need no second line)."""
        with self._lock:
            if self._fd is not None:
                return
            self.directory.mkdir(parents=True, exist_ok=True)
            files = self._files()
            self._sequence = files[-1][0] if files else 0
            self._open_next()
        moto_patches.add_write_listener(self._on_write)
        moto_patches.add_after_write(self._write_queued)

    def close(self) -> None:
        moto_patches.remove_write_listener(self._on_write)
        moto_patches.remove_after_write(self._write_queued)
        with self._lock:
            self._drain()
            if self._fd is not None:
                os.fsync(self._fd)
                os.close(self._fd)
                self._fd = None

    def sync(self) -> None:
        """Makes every write recorded so far durable (before the server acknowledges a mutating request).

        The fsync runs on a duplicate of the descriptor, outside the lock: writes of other requests and of
        ingestion go on appending meanwhile instead of queueing behind the disk (a duplicate shares the
        open file, so the fsync covers every write made before it; `rotate` may close the original)."""
        with self._lock:
            self._drain()
            if self._fd is None:
                return
            fd = os.dup(self._fd)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def rotate(self) -> int | None:
        """Starts a new file; returns the number of the last file a snapshot begun after this call covers."""
        with self._lock:
            self._drain()  # writes applied before the rotation go to the file the snapshot will cover
            if self._fd is None:
                return None
            os.fsync(self._fd)
            os.close(self._fd)
            covered = self._sequence
            self._open_next()
            self.lines_since_rotation = 0
            return covered

    def discard(self, covered: int | None) -> None:
        """Deletes the files a written snapshot covers (`covered` from `rotate`)."""
        if covered is None:
            return
        for number, path in self._files():
            if number <= covered:
                path.unlink(missing_ok=True)

    # --- recording ------------------------------------------------------------------------------
    def _on_write(self, backend: Any, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if method not in _TRACKED:
            return
        lines = []
        for table_name, key in self._touched(backend, method, args, kwargs):
            table = backend.get_table(table_name)
            hash_value, range_value = backend.get_keys_value(table, key)
            item = _peek(table, hash_value, range_value)
            entry = {
                "account": backend.account_id,
                "region": backend.region_name,
                "table": table.name,
                "key": key,
                "item": item.to_json()["Attributes"] if item is not None else None,
            }
            lines.append(json.dumps(entry, separators=(",", ":"), default=_encode_bytes) + "\n")
        if not lines:
            return
        self._queued.append("".join(lines).encode())  # deque.append is atomic: no lock that a writer could be holding
        self.lines_since_rotation += len(lines)

    def _write_queued(self) -> None:
        """Writes every queued line, oldest first (after each write, on the writing thread). A thread that finds the
        queue written by another meanwhile returns once that one has finished: its lines are in the file either way."""
        with self._lock:
            self._drain()

    def _drain(self) -> None:
        """Called with `_lock` held: one `write(2)` for all that is queued (one O_APPEND write keeps lines whole)."""
        pieces = []
        while self._queued:
            pieces.append(self._queued.popleft())
        if pieces and self._fd is not None:
            os.write(self._fd, b"".join(pieces))

    def _bind(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        signature = self._signatures.get(method)
        if signature is None:
            signature = self._signatures[method] = inspect.signature(moto_patches.original(method))
        return dict(signature.bind(None, *args, **kwargs).arguments)

    def _touched(self, backend: Any, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        arguments = self._bind(method, args, kwargs)
        if method == "put_item":
            return [(arguments["table_name"], _key_of(backend, arguments["table_name"], arguments["item_attrs"]))]
        if method in ("update_item", "delete_item"):
            return [(arguments["table_name"], arguments["key"])]
        touched = []
        for operation in arguments["transact_items"]:
            kind, body = next(iter(operation.items()))
            if kind == "Put":
                touched.append((body["TableName"], _key_of(backend, body["TableName"], body["Item"])))
            elif kind in ("Update", "Delete"):
                touched.append((body["TableName"], body["Key"]))
        return touched

    # --- replay ---------------------------------------------------------------------------------
    def replay(self) -> int:
        """Applies every journalled write, oldest first, to moto's backends; returns how many lines."""
        from moto.dynamodb.models import dynamodb_backends

        applied = 0
        for _, path in self._files():
            for number, line in enumerate(path.read_bytes().splitlines(), 1):
                try:
                    entry = json.loads(line, object_hook=_decode_bytes)
                except ValueError:
                    logger.warning("skipping a torn journal line %s:%d", path.name, number)
                    continue
                backend = dynamodb_backends[entry["account"]][entry["region"]]
                if entry["item"] is not None:
                    backend.put_item(entry["table"], entry["item"])
                else:
                    backend.delete_item(entry["table"], entry["key"])
                applied += 1
        return applied


def _encode_bytes(value: Any) -> Any:
    """moto keeps binary attributes (B, BS) as bytes."""
    if isinstance(value, bytes | bytearray):
        return {"__b64__": base64.b64encode(value).decode()}
    raise TypeError(f"cannot journal a {type(value).__name__}")


def _decode_bytes(value: dict[str, Any]) -> Any:
    if set(value) == {"__b64__"}:
        return base64.b64decode(value["__b64__"])
    return value


def _key_of(backend: Any, table_name: str, item: dict[str, Any]) -> dict[str, Any]:
    table = backend.get_table(table_name)
    key = {table.hash_key_attr: item[table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = item[table.range_key_attr]
    return key


def _peek(table: Any, hash_value: Any, range_value: Any) -> Any:
    """The item at a key, read without creating an empty hash bucket (`Table.items` is a defaultdict)."""
    items: Any = table.items
    if table.range_key_attr is None:
        return items.get(hash_value)
    bucket = items.get(hash_value)
    return bucket.get(range_value) if bucket is not None else None


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
