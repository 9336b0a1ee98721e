"""`raas local` with a state dir, stopped by SIGTERM or killed with SIGKILL: nothing acknowledged is lost.

- SIGTERM: new requests (also on a kept-alive connection) are refused, those in flight finish, the state is
  persisted, the process exits; every document answered 202 is there after the restart, and gets indexed.
- SIGKILL right after a 2xx: the write survives (the DynamoDB write journal is fsynced before the answer).
- Chunks the registry does not know are removed at start; an `indexed` document whose chunks are gone is
  indexed again.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from raas.adapters.search_embedded import EmbeddedSearch
from raas.domain import ids
from raas.domain.documents import Chunk, chunk_id
from tests.conftest import TenantHandle, create_tenant
from tests.e2e.conftest import LocalServer, start_local
from tests.e2e.test_isolation_http import wait_indexed
from tests.helpers import HttpClient, expect

SHUTDOWN_NOTICE = "shutting down"


@pytest.fixture
def servers() -> Iterator[list[LocalServer]]:
    """Every server a test starts; whatever is still running at the end is killed."""
    started: list[LocalServer] = []
    yield started
    for server in started:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()


# The tests below that wait for "a snapshot" take one after every change, so that the write they check
# lives only in the journal on top of that snapshot; by default snapshots are rare and the journal holds more.
EVERY_CHANGE = {"RAAS_LOCAL_SNAPSHOT_AFTER_WRITES": "1"}


def launch(servers: list[LocalServer], state: Path, extra_env: dict[str, str] | None = EVERY_CHANGE) -> tuple[LocalServer, HttpClient]:
    server = start_local(state, extra_env=extra_env)
    servers.append(server)
    return server, HttpClient(server.url)


def kill_hard(server: LocalServer) -> None:
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(timeout=10)


def poll(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout} s: {what}")


def snapshotted(state: Path, *needles: str) -> bool:
    """Whether one item of the last table snapshot holds every needle (the precondition is on disk)."""
    for table in (state / "dynamodb").glob("*.json"):
        try:
            items = json.loads(table.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        if any(all(needle in json.dumps(item) for needle in needles) for item in items):
            return True
    return False


def indexed_documents(index_file: Path) -> set[str]:
    with sqlite3.connect(index_file) as db:
        return {row[0] for row in db.execute("SELECT DISTINCT document_id FROM chunks")}


def add_document(api: HttpClient, tenant: TenantHandle, text: str) -> str:
    accepted = expect(api.request("POST", "/v1/documents", key=tenant.admin_key, json_body={"title": "note", "text": text}), 202)
    document_id: str = accepted["document_id"]
    return document_id


def search_hits(api: HttpClient, tenant: TenantHandle, query: str) -> set[str]:
    results = expect(api.request("POST", "/v1/search", key=tenant.admin_key, json_body={"query": query}), 200)["results"]
    return {r["document_id"] for r in results}


# --- SIGTERM ------------------------------------------------------------------------------------


def test_sigterm_refuses_new_requests_drains_and_keeps_every_acknowledged_document(tmp_path: Path, servers: list[LocalServer]) -> None:
    server, api = launch(servers, tmp_path)
    tenant = create_tenant(api, "shutdown", "enterprise", operator_key=server.operator_key)
    kept_alive = httpx.Client(base_url=server.url, timeout=10, headers={"Authorization": f"Bearer {tenant.admin_key}"})

    def post(number: int) -> httpx.Response:
        return kept_alive.post("/v1/documents", json={"title": f"note {number}", "text": f"Shutdown note {number} about quokka{number}."})

    acknowledged = [post(number).json()["document_id"] for number in range(3)]
    signalled_at = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    first_refusal: float | None = None
    number = 3
    while first_refusal is None and time.monotonic() - signalled_at < 10:
        shutdown_began = SHUTDOWN_NOTICE in "".join(server.output)  # read before the request is sent
        try:
            response = post(number)
        except httpx.TransportError:  # the listening socket is closed: connection refused or reset
            first_refusal = time.monotonic()
            break
        if response.status_code == 202:
            assert not shutdown_began, "a document was acknowledged after the server announced its shutdown"
            acknowledged.append(response.json()["document_id"])
        else:
            assert (response.status_code, response.json()["error"]["code"]) == (503, "shutting_down"), response.text
            assert response.headers["connection"] == "close"
            first_refusal = time.monotonic()
        number += 1
    assert first_refusal is not None, "the server never refused a request after SIGTERM"
    assert first_refusal - signalled_at < 3, "the server still acknowledged requests 3 s after SIGTERM"
    # The drain finishes the ingests already taken, which right after a start includes loading the embedder (the
    # warm-up at start is still running): 6 s from SIGTERM to exit on an idle 2-core machine, 10-12 s beside the rest
    # of the suite, 15.2 s once at the suite's start (2026-12-04), 23 s once with worker processes starting beside it.
    # No speed check (that is a benchmark's job): the server says so when its drain gives up instead of finishing.
    assert server.process.wait(timeout=60) == 0
    assert "requests still running after" not in "".join(server.output), "the drain gave up on requests in flight"
    kept_alive.close()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{server.url}/v1/health", timeout=2)

    _, api = launch(servers, tmp_path)
    for document_id in acknowledged:  # restored objects re-deliver their S3 events: the unfinished ones finish
        assert wait_indexed(api, tenant, document_id, timeout=30)["status"] == "indexed"


# --- SIGKILL right after an acknowledged write ------------------------------------------------------


def test_a_revoked_key_stays_revoked_after_kill_9(tmp_path: Path, servers: list[LocalServer]) -> None:
    server, api = launch(servers, tmp_path)
    tenant = create_tenant(api, "revoker", "smb", operator_key=server.operator_key)
    created = expect(api.request("POST", "/v1/keys", key=tenant.admin_key, json_body={"name": "ci", "role": "reader"}), 201)
    secret, key_id = created["api_key"], created["key"]["key_id"]
    poll(lambda: snapshotted(tmp_path, key_id), 10, "the new key is in a snapshot")

    assert api.request("DELETE", f"/v1/keys/{key_id}", key=tenant.admin_key).status == 204
    kill_hard(server)

    _, api = launch(servers, tmp_path)
    assert api.request("GET", "/v1/config", key=secret).status == 401
    assert api.request("GET", "/v1/config", key=tenant.admin_key).status == 200


def test_with_rare_snapshots_the_journal_alone_brings_back_every_acknowledged_write(tmp_path: Path, servers: list[LocalServer]) -> None:
    """At the default, no table snapshot follows these writes: all of them come back from the journal."""
    server, api = launch(servers, tmp_path, extra_env={})
    tenant = create_tenant(api, "journalled", "smb", operator_key=server.operator_key)
    created = expect(api.request("POST", "/v1/keys", key=tenant.admin_key, json_body={"name": "ci", "role": "reader"}), 201)
    saved = expect(api.request("PUT", "/v1/config", key=tenant.admin_key, json_body={"top_k": 3}), 200)
    assert api.request("DELETE", f"/v1/keys/{created['key']['key_id']}", key=tenant.admin_key).status == 204
    time.sleep(1.5)  # a snapshot per change (the old behaviour) would have been taken by now
    assert not snapshotted(tmp_path, tenant.tenant_id), "no table snapshot is taken for a handful of writes"
    kill_hard(server)

    _, api = launch(servers, tmp_path, extra_env={})
    assert api.request("GET", "/v1/config", key=created["api_key"]).status == 401
    config = expect(api.request("GET", "/v1/config", key=tenant.admin_key), 200)
    assert (config["version"], config["config"]["top_k"]) == (saved["version"], 3)


def test_a_deleted_document_stays_deleted_after_kill_9(tmp_path: Path, servers: list[LocalServer]) -> None:
    server, api = launch(servers, tmp_path)
    tenant = create_tenant(api, "deleter", "smb", operator_key=server.operator_key)
    document_id = add_document(api, tenant, "Wombats dig burrows with their strong claws.")
    assert wait_indexed(api, tenant, document_id, timeout=30)["status"] == "indexed"
    # Ingestion is no HTTP request: the next mutation is what schedules a snapshot holding its result.
    expect(api.request("PATCH", "/v1/config", key=tenant.admin_key, json_body={"temperature": 0.5}), 200)
    poll(lambda: snapshotted(tmp_path, document_id, '"indexed"'), 10, "the indexed document is in a snapshot")

    assert api.request("DELETE", f"/v1/documents/{document_id}", key=tenant.admin_key).status == 204
    kill_hard(server)

    _, api = launch(servers, tmp_path)
    assert api.request("GET", f"/v1/documents/{document_id}", key=tenant.admin_key).status == 404
    assert document_id not in search_hits(api, tenant, "wombats burrows claws")


def test_a_config_version_survives_kill_9(tmp_path: Path, servers: list[LocalServer]) -> None:
    server, api = launch(servers, tmp_path)
    tenant = create_tenant(api, "configurer", "smb", operator_key=server.operator_key)
    poll(lambda: snapshotted(tmp_path, tenant.tenant_id), 10, "the tenant is in a snapshot")

    saved = expect(api.request("PUT", "/v1/config", key=tenant.admin_key, json_body={"top_k": 3}), 200)
    kill_hard(server)

    _, api = launch(servers, tmp_path)
    config = expect(api.request("GET", "/v1/config", key=tenant.admin_key), 200)
    assert (config["version"], config["config"]["top_k"]) == (saved["version"], 3)


# --- the search index against the registry at start ----------------------------------------------


def test_orphan_chunks_are_removed_and_missing_chunks_reindexed_at_start(tmp_path: Path, servers: list[LocalServer]) -> None:
    server, api = launch(servers, tmp_path)
    tenant = create_tenant(api, "reconciled", "smb", operator_key=server.operator_key)
    kept = add_document(api, tenant, "Platypuses lay eggs and hunt with electroreception.")
    lost = add_document(api, tenant, "Echidnas are spiny and eat ants.")
    for document_id in (kept, lost):
        assert wait_indexed(api, tenant, document_id, timeout=30)["status"] == "indexed"
    assert server.stop() == 0

    # What a crash between the index write and the registry write leaves: chunks of a document the registry
    # never saw; and the other way round, an `indexed` document whose chunks never reached the disk.
    search_dir = tmp_path / "search"
    (index_file,) = search_dir.glob("*.sqlite")
    with sqlite3.connect(index_file) as db:
        dimension = len(db.execute("SELECT vector FROM chunks LIMIT 1").fetchone()[0]) // 4
        db.execute("DELETE FROM chunks WHERE document_id = ?", (lost,))
    orphan = ids.new_document_id()
    engine = EmbeddedSearch(search_dir, dimension)
    vector = np.ones(dimension, dtype=np.float32).tolist()
    ghost = Chunk(chunk_id=chunk_id(orphan, 0), document_id=orphan, title="g", text="Ghost chunk: kookaburras.", position=0, metadata={})
    engine.replace(tenant.tenant_id, [ghost], [vector], [])
    assert indexed_documents(index_file) == {kept, orphan}

    _, api = launch(servers, tmp_path)
    assert orphan not in indexed_documents(index_file)  # reconciled before the server listened
    assert orphan not in search_hits(api, tenant, "ghost kookaburras")
    assert wait_indexed(api, tenant, lost, timeout=30)["status"] == "indexed"
    poll(lambda: lost in indexed_documents(index_file), 30, "the document whose chunks were lost is indexed again")
    assert lost in search_hits(api, tenant, "echidnas spiny ants")
