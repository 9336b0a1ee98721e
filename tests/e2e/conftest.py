"""Starts `raas local` as a real subprocess on a free loopback port and talks HTTP to it."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import OPERATOR_KEY, TenantHandle, create_tenant
from tests.helpers import HttpClient

pytestmark = pytest.mark.e2e


@dataclass
class LocalServer:
    process: subprocess.Popen[str]
    url: str
    operator_key: str
    output: list[str]

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_local(
    state_dir: Path | None = None, operator_key: str | None = OPERATOR_KEY, timeout: float = 60, extra_env: dict[str, str] | None = None
) -> LocalServer:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(extra_env or {})
    env.update({"RAAS_LOCAL_ACCESS_LOG": "0", "POWERTOOLS_METRICS_DISABLED": "true", "POWERTOOLS_LOG_LEVEL": "WARNING"})
    # A profile that does not exist: if anything tried real AWS credentials it would fail loudly.
    env["AWS_PROFILE"] = "raas-e2e-must-not-be-used"
    env.pop("RAAS_OPERATOR_KEY", None)
    if operator_key:
        env["RAAS_OPERATOR_KEY"] = operator_key
    command = [sys.executable, "-m", "raas.cli", "local", "--port", "0"]
    if state_dir:
        command += ["--state-dir", str(state_dir)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue[str] = queue.Queue()
    output: list[str] = []

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    url = key = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not (url and key):
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            if process.poll() is not None:
                break
            continue
        if "listening on " in line:
            url = line.rsplit(" ", 1)[-1].strip()
        if line.startswith("operator key: "):
            key = line.split(": ", 1)[1].strip()
    if not (url and key):
        process.kill()
        raise RuntimeError("raas local did not start:\n" + "".join(output))
    httpx.get(f"{url}/v1/health", timeout=10).raise_for_status()
    return LocalServer(process, url, key, output)


@pytest.fixture(scope="session")
def local_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    """One `raas local` (with a state directory) per xdist worker, shared by the modules that talk to a running
    platform. Per module, xdist's distribution started it up to twice a module, each start spending about 10 s of
    CPU loading the embedder; every test makes its own tenants, so tests sharing a platform see none of each
    other's data (which the isolation tests check over HTTP)."""
    server = start_local(tmp_path_factory.mktemp("state"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def http_api(local_server: LocalServer) -> HttpClient:
    return HttpClient(local_server.url)


@pytest.fixture
def http_tenant_a(http_api: HttpClient) -> TenantHandle:
    return create_tenant(http_api, "tenant A", "enterprise")


@pytest.fixture
def http_tenant_b(http_api: HttpClient) -> TenantHandle:
    return create_tenant(http_api, "tenant B", "enterprise")
