"""Fair share between tenants: one tenant's burst or large documents must not hold up another tenant.

A noisy tenant may hold at most its share of a function's containers (half, by default), so the
other half stays free for everyone else; the ingest pump takes tenants in turn and gives one
tenant at most its share of the workers (docs/performance.md, "Fairness between tenants")."""

from __future__ import annotations

import os
import threading
import time

import pytest

from raas.handlers import ingest
from raas.local.events import QueuePump, tenant_of_message
from tests.conftest import TenantHandle
from tests.helpers import ApiClient, HashingEmbedder, Reply, expect

SLOW = "slowpoke-walrus"
WAIT = 10.0
QUIET_TENANT_BOUND_SECONDS = 3.0


class HeldEmbedder(HashingEmbedder):
    """Holds every text with SLOW in it until `release` is set (a large document, a slow model);
    counts how many are being held."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.held = 0
        self._count = threading.Lock()

    def embed(self, texts: list[str]) -> list[list[float]]:
        if any(SLOW in text for text in texts):
            with self._count:
                self.held += 1
            try:
                self.release.wait(WAIT)
            finally:
                with self._count:
                    self.held -= 1
        return super().embed(texts)


@pytest.fixture
def embedder() -> HeldEmbedder:
    return HeldEmbedder()


def wait_until(condition: object, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return True
        time.sleep(0.02)
    return False


def test_a_noisy_tenants_burst_does_not_hold_up_another_tenants_request(
    api: ApiClient, tenant_a: TenantHandle, tenant_b: TenantHandle, embedder: HeldEmbedder
) -> None:
    noisy: list[Reply] = []

    def noisy_search() -> None:
        noisy.append(api.request("POST", "/v1/search", key=tenant_a.admin_key, json_body={"query": f"{SLOW} burst"}))

    burst = [threading.Thread(target=noisy_search) for _ in range(8)]
    quiet: list[tuple[float, Reply]] = []

    def quiet_search() -> None:
        started = time.monotonic()
        reply = api.request("POST", "/v1/search", key=tenant_b.admin_key, json_body={"query": "harbour"})
        quiet.append((time.monotonic() - started, reply))

    try:
        for thread in burst:
            thread.start()
        assert wait_until(lambda: embedder.held >= 1, WAIT)
        time.sleep(0.3)  # the rest of the burst is in line by now
        quiet_thread = threading.Thread(target=quiet_search)
        quiet_thread.start()
        quiet_thread.join(QUIET_TENANT_BOUND_SECONDS)
        assert quiet, f"tenant B's search waited more than {QUIET_TENANT_BOUND_SECONDS} s behind tenant A's burst"
        seconds, reply = quiet[0]
        assert reply.status == 200, reply.text
        assert seconds < QUIET_TENANT_BOUND_SECONDS
        assert embedder.held <= 2  # A holds its share of the query function's containers, no more
    finally:
        embedder.release.set()
        for thread in burst:
            thread.join(WAIT * 2)
    assert sorted(reply.status for reply in noisy) == [200] * 8  # the burst is served, in turn, not refused


def test_a_tenants_slow_documents_do_not_delay_another_tenants_small_one(
    api: ApiClient, tenant_a: TenantHandle, tenant_b: TenantHandle, embedder: HeldEmbedder
) -> None:
    slow = [
        expect(
            api.request("POST", "/v1/documents", key=tenant_a.admin_key, json_body={"title": f"big {n}", "text": f"{SLOW} volume {n}."}),
            202,
        )["document_id"]
        for n in range(6)
    ]
    small = expect(api.request("POST", "/v1/documents", key=tenant_b.admin_key, json_body={"title": "tiny", "text": "A short note."}), 202)[
        "document_id"
    ]

    def status(tenant: TenantHandle, document_id: str) -> str:
        return str(expect(api.request("GET", f"/v1/documents/{document_id}", key=tenant.admin_key), 200)["status"])

    pump = QueuePump(os.environ["RAAS_INGEST_QUEUE_URL"], ingest.handler, wait_seconds=0)  # as `raas local` starts it
    pump.start()
    try:
        assert wait_until(lambda: status(tenant_b, small) == "indexed", WAIT), "tenant B's small document waited behind tenant A's"
        assert embedder.held >= 1, "tenant A's documents should still be in the embedder"
        assert all(status(tenant_a, document_id) != "indexed" for document_id in slow)
        embedder.release.set()
        assert wait_until(lambda: all(status(tenant_a, document_id) == "indexed" for document_id in slow), WAIT * 2)
    finally:
        embedder.release.set()
        pump.stop()


def test_the_pump_reads_the_tenant_from_the_s3_notification() -> None:
    body = '{"Records": [{"eventName": "ObjectCreated:Put", "s3": {"object": {"key": "tenants/t0123456789abcde/documents/d1/source"}}}]}'
    assert tenant_of_message(body) == "t0123456789abcde"
    assert tenant_of_message('{"Event": "s3:TestEvent"}') is None
    assert tenant_of_message("not json") is None
