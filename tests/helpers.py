"""Test helpers: an API client over the in-process gateway or real HTTP, and in-memory fakes."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

from raas.domain.config import ConfigVersion
from raas.domain.ports import VersionConflict

if TYPE_CHECKING:
    from raas.bootstrap import Services
    from raas.local.bus import LocalEventBus

T = TypeVar("T")


def rebuild_services(**overrides: Any) -> Services:
    """A new container from the environment as it is now, keeping the current one's overrides
    (the fake embedder, the local bus) plus `overrides`; installed for the handlers."""
    from raas.bootstrap import install, services
    from raas.settings import Settings

    return install(services().replaced(Settings.from_env(), **overrides))


@contextlib.contextmanager
def services_replaced(**overrides: Any) -> Iterator[Services]:
    """The container rebuilt with `overrides` inside the block, and the previous one back after it."""
    from raas.bootstrap import install, services

    previous = services()
    try:
        yield rebuild_services(**overrides)
    finally:
        install(previous)


def local_bus() -> LocalEventBus:
    """The local event bus the test container publishes on (the `aws` fixture passes one in)."""
    from raas.bootstrap import services

    return cast("LocalEventBus", services().event_publisher)


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    text: str

    def json(self) -> Any:
        return json.loads(self.text) if self.text else None

    @property
    def error_code(self) -> str | None:
        body = self.json()
        return body.get("error", {}).get("code") if isinstance(body, dict) else None


class ApiClient(Protocol):
    def request(
        self, method: str, path: str, *, key: str | None = None, json_body: Any = None, headers: dict[str, str] | None = None
    ) -> Reply: ...


def _headers(key: str | None, json_body: Any, headers: dict[str, str] | None) -> dict[str, str]:
    out = {"Content-Type": "application/json"} if json_body is not None else {}
    if key:
        out["Authorization"] = f"Bearer {key}"
    out.update(headers or {})
    return out


class GatewayClient:
    """Calls the local gateway emulator in-process (authorizer + handlers, no sockets)."""

    def __init__(self, gateway: Any):
        self.gateway = gateway

    def request(
        self, method: str, path: str, *, key: str | None = None, json_body: Any = None, headers: dict[str, str] | None = None
    ) -> Reply:
        from urllib.parse import parse_qs, urlsplit

        url = urlsplit(path)
        body = json.dumps(json_body).encode() if json_body is not None else b""
        response = self.gateway.handle(method, url.path, parse_qs(url.query), _headers(key, json_body, headers), body)
        return Reply(response.status, response.headers, response.body.decode())


class HttpClient:
    """Talks HTTP to a running `raas local`."""

    def __init__(self, base_url: str):
        import httpx

        self.http = httpx.Client(base_url=base_url, timeout=30)

    def request(
        self, method: str, path: str, *, key: str | None = None, json_body: Any = None, headers: dict[str, str] | None = None
    ) -> Reply:
        content = json.dumps(json_body).encode() if json_body is not None else None
        response = self.http.request(method, path, content=content, headers=_headers(key, json_body, headers))
        return Reply(response.status_code, dict(response.headers), response.text)


def expect(reply: Reply, status: int) -> Any:
    assert reply.status == status, f"expected {status}, got {reply.status}: {reply.text}"
    return reply.json()


class FakeClock:
    """A monotonic clock that moves only when a test moves `now`."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class InMemoryConfigStore:
    """A ConfigStore with the same conditional-write contract as the DynamoDB one."""

    versions: dict[str, dict[int, ConfigVersion]] = field(default_factory=dict)
    fail_reads: bool = False
    conflicts_to_inject: int = 0
    writes: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def current(self, tenant_id: str) -> ConfigVersion | None:
        if self.fail_reads:
            raise ConnectionError("storage down")
        with self._lock:
            versions = self.versions.get(tenant_id) or {}
            return versions[max(versions)] if versions else None

    def write(self, tenant_id: str, version: ConfigVersion, expected_current: int) -> None:
        with self._lock:
            if self.conflicts_to_inject:
                self.conflicts_to_inject -= 1
                raise VersionConflict(tenant_id)
            versions = self.versions.setdefault(tenant_id, {})
            current = max(versions) if versions else 0
            if current != expected_current or version.version in versions:
                raise VersionConflict(tenant_id)
            versions[version.version] = version
            self.writes += 1

    def get_version(self, tenant_id: str, version: int) -> ConfigVersion | None:
        return (self.versions.get(tenant_id) or {}).get(version)

    def list_versions(self, tenant_id: str, limit: int, cursor: str | None) -> tuple[list[ConfigVersion], str | None]:
        ordered = sorted((self.versions.get(tenant_id) or {}).values(), key=lambda v: -v.version)
        start = int(cursor) if cursor else 0
        page = ordered[start : start + limit]
        return page, str(start + limit) if start + limit < len(ordered) else None


class HashingEmbedder:
    """A small deterministic embedder for tests: hashed word counts, L2-normalised.

    Texts that share words get similar vectors, which is enough to test retrieval plumbing
    without loading a neural model. The e2e tests and benchmarks use the real MiniLM model.
    """

    name = "test-hashing"

    def __init__(self, dimension: int = 384):
        self.dimension = dimension
        self.calls = 0

    def embed(self, texts: list[str]) -> list[list[float]]:
        import hashlib
        import math
        import re

        self.calls += 1
        vectors = []
        for text in texts:
            vector = [0.0] * self.dimension
            for word in re.findall(r"\w+", text.lower()):
                bucket = int(hashlib.md5(word.encode(), usedforsecurity=False).hexdigest(), 16) % self.dimension
                vector[bucket] += 1.0
            norm = math.sqrt(sum(v * v for v in vector)) or 1.0
            vectors.append([v / norm for v in vector])
        return vectors


class RecordingChat:
    """A chat model that records the requests it gets and answers with a fixed text."""

    def __init__(self, text: str = "recorded answer [1]", prompt_tokens: int = 100, completion_tokens: int = 20):
        self.requests: list[Any] = []
        self.text = text
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = completion_tokens
        self.fail_with: Exception | None = None

    def generate(self, request: Any) -> Any:
        from raas.domain.generation import Generation

        self.requests.append(request)
        if self.fail_with is not None:
            raise self.fail_with
        return Generation(
            text=self.text, prompt_tokens=self.prompt_tokens, completion_tokens=self.completion_tokens, model=request.model_name
        )


class FailingSearch:
    """Wraps a SearchIndex and fails `replace` after writing, like a bulk request that half applied."""

    def __init__(self, inner: Any, error: Exception):
        self.inner = inner
        self.error = error
        self.failures = 0

    def replace(self, tenant_id: str, chunks: list[Any], vectors: list[list[float]], remove: list[tuple[str, int]]) -> None:
        half = len(chunks) // 2 or len(chunks)
        self.inner.replace(tenant_id, chunks[:half], vectors[:half], [])
        self.failures += 1
        raise self.error

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@dataclass
class ScriptedReply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_seconds: float = 0.0


def serve_on_loopback(handler: type[BaseHTTPRequestHandler]) -> tuple[ThreadingHTTPServer, str]:
    """A threaded HTTP server on a free loopback port, serving in the background; (server, url)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


class FakeProviderServer:
    """A loopback HTTP server that plays an LLM/billing provider: scripted replies per path,
    every request recorded. SDKs reach it through their `base_url`, over real HTTP."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler

        self.scripts: dict[str, list[ScriptedReply]] = {}
        self.defaults: dict[str, ScriptedReply] = {}
        self.requests: list[dict[str, Any]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _reply(self) -> None:
                import time

                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                path = self.path.split("?")[0]
                fake.requests.append(
                    {"method": self.command, "path": path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": raw}
                )
                queue = fake.scripts.get(path) or []
                reply = (
                    queue.pop(0) if queue else fake.defaults.get(path, ScriptedReply(404, {"error": {"message": f"no script for {path}"}}))
                )
                if reply.delay_seconds:
                    time.sleep(reply.delay_seconds)
                body = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client timed out first
                    self.wfile.write(body)

            do_GET = do_POST = do_DELETE = _reply

            def log_message(self, *args: Any) -> None:
                pass

        self.server, self.url = serve_on_loopback(Handler)

    def script(self, path: str, *replies: ScriptedReply) -> None:
        self.scripts.setdefault(path, []).extend(replies)

    def json_bodies(self, path: str) -> list[Any]:
        return [json.loads(r["body"]) for r in self.requests if r["path"] == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def run_coroutine(coroutine: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run` on a thread of its own. Playwright's sync API (tests/e2e/console) keeps an event loop running
    on the main thread of an xdist worker for the rest of its session, and `asyncio.run` refuses to start inside
    a running loop; a fresh thread has none."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


@contextlib.contextmanager
def patched_dynamodb(region: str = "eu-west-1") -> Iterator[Any]:
    """moto in this process with raas.local.moto_patches installed (as `raas local` runs it): a DynamoDB client."""
    import boto3
    from moto import mock_aws

    from raas.local import moto_patches

    moto_patches.install()
    with mock_aws():
        yield boto3.client("dynamodb", region_name=region)


@contextlib.contextmanager
def transaction_conflicts(times: int, table: str) -> Iterator[list[int]]:
    """DynamoDB cancels a TransactWriteItems that meets another transaction on one of its items, with the reason
    `TransactionConflict` for that item and `None` for the others
    (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html#API_TransactWriteItems_Errors);
    moto runs one write at a time and never does. Here the next `times` transactions that write to `table` are
    cancelled so, before moto applies anything, as a concurrent writer of the same item would make AWS cancel them.
    Yields the sizes of the transactions it cancelled."""
    from moto.dynamodb.exceptions import TransactionCanceledException
    from moto.dynamodb.models import DynamoDBBackend

    applies = DynamoDBBackend.transact_write_items
    cancelled: list[int] = []

    def conflicting(backend: Any, transact_items: list[dict[str, Any]]) -> Any:
        tables = {next(iter(item.values()))["TableName"] for item in transact_items}
        if table in tables and len(cancelled) < times:
            cancelled.append(len(transact_items))
            conflict = ("TransactionConflict", "Transaction is ongoing for the item", None)
            raise TransactionCanceledException([conflict] + [(None, None, None)] * (len(transact_items) - 1))
        return applies(backend, transact_items)

    DynamoDBBackend.transact_write_items = conflicting  # type: ignore[method-assign,assignment]
    try:
        yield cancelled
    finally:
        DynamoDBBackend.transact_write_items = applies  # type: ignore[method-assign]
