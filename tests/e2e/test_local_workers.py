"""`raas local` with worker processes (raas.local.workers): the API functions run in processes of their own, as
Lambda's execution environments do, and nothing a process keeps makes another serve stale or foreign state."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from raas.local.workers import child_processes
from tests.conftest import TenantHandle, create_tenant
from tests.e2e.conftest import LocalServer, start_local
from tests.helpers import HttpClient, expect

pytestmark = pytest.mark.e2e

WORKERS = 2
CLIENTS = 8


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    # One tenant sends CLIENTS requests at once here: it may hold every container, and a request waits for one as
    # long as a loaded CI machine needs (by default a tenant holds half and a request is throttled after 10 s).
    overlap = {"RAAS_LOCAL_TENANT_CONCURRENCY": "4", "RAAS_LOCAL_THROTTLE_WAIT_SECONDS": "120"}
    server = start_local(tmp_path_factory.mktemp("workers-state"), extra_env={"RAAS_LOCAL_WORKERS": str(WORKERS), **overlap})
    yield server
    server.stop()


@pytest.fixture(scope="module")
def api_and_tenant(server: LocalServer) -> tuple[HttpClient, TenantHandle]:
    api = HttpClient(server.url)
    return api, create_tenant(api, "workers", "enterprise")


def spawned_children(server: LocalServer) -> dict[int, str]:
    """The server's child processes that multiprocessing spawned, each as "embedder" (it has torch loaded) or "worker"."""
    found: dict[int, str] = {}
    for child in child_processes(server.process.pid):
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes()
            if b"spawn_main" not in command:
                continue  # multiprocessing's resource tracker
            found[child] = "embedder" if "libtorch" in Path(f"/proc/{child}/maps").read_text() else "worker"
        except FileNotFoundError:  # ended meanwhile
            continue
    return found


def workers_of(server: LocalServer) -> list[int]:
    return [pid for pid, kind in spawned_children(server).items() if kind == "worker"]


def at_once(call: Callable[[int], Any], times: int = CLIENTS) -> list[Any]:
    with ThreadPoolExecutor(times) as pool:
        return list(pool.map(call, range(times)))


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def test_one_worker_starts_with_the_server_and_another_only_when_requests_overlap(
    server: LocalServer, api_and_tenant: tuple[HttpClient, TenantHandle]
) -> None:
    api, tenant = api_and_tenant
    wait_for(lambda: "embedder" in spawned_children(server).values(), "the embedding process never started")
    assert len(workers_of(server)) == 1  # one environment is warm at start; none more before any overlap

    def config(_: int) -> int:
        return api.request("GET", "/v1/config", key=tenant.admin_key).status

    for _ in range(20):  # until the overlap has started the second one
        assert set(at_once(config)) == {200}
        if len(workers_of(server)) == WORKERS:
            break
    assert len(workers_of(server)) == WORKERS
    assert set(at_once(config)) == {200}
    assert len(workers_of(server)) == WORKERS  # at most RAAS_LOCAL_WORKERS, whatever the load


def test_a_config_written_through_one_worker_is_what_every_worker_reads_next(
    server: LocalServer, api_and_tenant: tuple[HttpClient, TenantHandle]
) -> None:
    api, tenant = api_and_tenant

    def version(_: int) -> int:
        """The config version a search was served with. Searches take long enough (the query's embedding) to overlap,
        so that each worker serves some and keeps the config it read (for 300 s, RAAS_CONFIG_CACHE_TTL_SECONDS)."""
        searched = api.request("POST", "/v1/search", key=tenant.admin_key, json_body={"query": "shipping times"})
        return int(expect(searched, 200)["config_version"])

    wait_for(lambda: len(set(at_once(version))) == 1 and len(workers_of(server)) == WORKERS, "the second worker never started")
    before = set(at_once(version))
    assert len(before) == 1
    written = expect(api.request("PATCH", "/v1/config", key=tenant.admin_key, json_body={"temperature": 0.42}), 200)
    assert written["version"] == max(before) + 1
    for _ in range(5):  # whichever worker serves, it reads the version written, never the one it had kept
        assert set(at_once(version)) == {written["version"]}


def test_a_worker_that_dies_is_replaced_and_no_request_is_sent_to_it(
    server: LocalServer, api_and_tenant: tuple[HttpClient, TenantHandle]
) -> None:
    api, tenant = api_and_tenant
    victims = workers_of(server)
    assert victims
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not set(victims) & set(workers_of(server)), "the killed workers are still there")

    statuses = at_once(lambda _: api.request("GET", "/v1/config", key=tenant.admin_key).status)
    assert set(statuses) == {200}
    assert workers_of(server)
    assert not set(victims) & set(workers_of(server))
    assert "handler raised" not in "".join(server.output)
