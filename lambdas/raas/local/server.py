"""`raas local`: moto on loopback + the gateway emulator behind a threaded HTTP server."""

from __future__ import annotations

import gc
import logging
import os
import signal
import sys
import tempfile
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from raas.bootstrap import Services, bootstrap, install
from raas.domain.streaming import ClientGone
from raas.local.authorizer_cache import AuthorizerCache
from raas.local.aws import StateDir, ensure_resources, isolate_from_real_aws, start_moto_server
from raas.local.bus import LocalEventBus
from raas.local.console import ConsoleSite, is_console_path
from raas.local.events import QueuePump
from raas.local.gateway import GatewayResponse, LocalGateway, gateway_error, payload_too_large
from raas.local.reconcile import finished_uploads, reconcile_at_start
from raas.local.schedules import LocalScheduler
from raas.local.workers import WORKERS_ENV, EmbeddingProcess, WorkerPool, default_worker_count
from raas.settings import Settings

logger = logging.getLogger(__name__)

SHUTDOWN_POLL_SECONDS = 0.05
MUTATING = {"POST", "PUT", "PATCH", "DELETE"}

# A client that stops sending for this long, mid-request or between requests, loses its connection
# (mid-request with a 408); without it a slow client would hold a server thread forever.
READ_TIMEOUT_SECONDS = float(os.environ.get("RAAS_LOCAL_READ_TIMEOUT_SECONDS", "30"))

# In AWS, API Gateway frames requests before the API sees them; locally this server does, and it refuses
# what it cannot frame in the platform's JSON error shape (never http.server's HTML page) with a
# stable code per status.
FRAMING_ERROR_CODES = {
    400: "malformed_request",
    408: "request_timeout",
    411: "length_required",
    413: "payload_too_large",
    414: "uri_too_long",
    431: "headers_too_large",
    501: "not_implemented",
    505: "http_version_not_supported",
}
_DIGITS = frozenset("0123456789")

# How long a shutdown waits for requests already being served before it persists and exits anyway.
DRAIN_SECONDS = float(os.environ.get("RAAS_LOCAL_DRAIN_SECONDS", "30"))


class Admission:
    """Which requests the server still serves, and how many are in flight.

    Until shutdown begins every request is admitted; after `close`, none is (the handler answers 503
    `shutting_down` and closes the connection, also on a kept-alive one), and `drain` waits for the
    admitted ones to finish, so that everything acknowledged is in the state persisted after it.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._closed = False
        self._in_flight = 0

    @property
    def closed(self) -> bool:
        return self._closed

    def enter(self) -> bool:
        with self._changed:
            if self._closed:
                return False
            self._in_flight += 1
            return True

    def leave(self) -> None:
        with self._changed:
            self._in_flight -= 1
            self._changed.notify_all()

    def close(self) -> int:
        """Admits nothing more; returns how many requests are in flight."""
        with self._changed:
            self._closed = True
            return self._in_flight

    def drain(self, timeout: float) -> bool:
        """Waits until no admitted request is in flight; False if some still were after `timeout`."""
        with self._changed:
            return self._changed.wait_for(lambda: self._in_flight == 0, timeout)


class LocalHTTPServer(ThreadingHTTPServer):
    daemon_threads = True  # idle kept-alive connections must not hold the process after shutdown
    admission: Admission


@dataclass
class LocalPlatform:
    url: str
    operator_key: str
    http: ThreadingHTTPServer
    moto: Any
    state: StateDir | None
    pump: QueuePump
    scheduler: LocalScheduler
    scratch: tempfile.TemporaryDirectory[str] | None
    authorizer_cache: AuthorizerCache
    console: ConsoleSite | None = None
    search_index: Any = None
    workers: WorkerPool | None = None

    def serve_forever(self) -> None:
        # `shutdown` waits for the loop to look at its flag, once per poll: a short poll makes a stop prompt
        self.http.serve_forever(poll_interval=SHUTDOWN_POLL_SECONDS)

    def begin_shutdown(self) -> int:
        """Refuses every request from now on and stops accepting connections; returns how many are in flight.

        Called from a thread other than the one in `serve_forever` (`shutdown` waits for that loop)."""
        in_flight = _admission(self.http).close()
        self.http.shutdown()
        return in_flight

    def close(self, drain_seconds: float = DRAIN_SECONDS) -> None:
        """Refuses new requests, lets admitted ones finish, stops the background work, persists state."""
        admission = _admission(self.http)
        admission.close()
        self.http.server_close()  # new connections are refused by the OS from here on
        if not admission.drain(drain_seconds):
            print(f"raas local: requests still running after {drain_seconds:g} s; persisting without them", file=sys.stderr, flush=True)
        self.pump.stop()  # its ingests in flight finish first: they embed through the workers' embedding process
        self.scheduler.stop()
        if self.workers:
            self.workers.close()
        close_index = getattr(self.search_index, "close", None)  # the embedded engine's open files, before the state is persisted
        if close_index:
            close_index()
        if self.state:
            self.state.stop()
        self.authorizer_cache.unwatch()
        self.moto.stop()
        if self.scratch:
            self.scratch.cleanup()


def _make_handler(
    gateway: LocalGateway, state: StateDir | None, read_timeout: float, console: ConsoleSite | None = None
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "raas-local"
        # Headers and body go out in two writes; with Nagle on, a keep-alive client's delayed ACK
        # would hold the body back ~40 ms on every response.
        disable_nagle_algorithm = True
        # socketserver sets it on the connection: every read (request line, headers, body) is bounded.
        timeout = read_timeout

        def _framing_refusal(self) -> GatewayResponse | None:
            """Why the body cannot be framed (checked before a byte of it is read), else None.

            RFC 9112 section 6: Content-Length is 1*DIGIT, a list of differing values or one sent with
            Transfer-Encoding is an error (a smuggling vector), and chunked bodies are not read here:
            the client is asked for a length instead.
            """
            lengths = [part.strip() for value in self.headers.get_all("Content-Length") or [] for part in value.split(",")]
            if self.headers.get("Transfer-Encoding") is not None:
                if lengths:
                    return gateway_error(400, "malformed_request", "send Content-Length or Transfer-Encoding, not both")
                return gateway_error(411, "length_required", "send the body with a Content-Length (chunked bodies are not accepted)")
            if not lengths:
                return None  # no body (RFC 9112 section 6.3: neither header means a length of zero)
            if len(set(lengths)) != 1 or not lengths[0] or not set(lengths[0]) <= _DIGITS:
                return gateway_error(400, "malformed_request", "Content-Length must be one non-negative integer")
            # Compared as text first: a 5000-digit length must not reach int() (it would raise).
            if len(lengths[0]) > len(str(gateway.max_body_bytes)) or int(lengths[0]) > gateway.max_body_bytes:
                return payload_too_large(gateway.max_body_bytes)
            return None

        def handle_expect_100(self) -> bool:
            # Refuse before inviting the body: a client waiting for 100 Continue never sends it.
            refusal = self._framing_refusal()
            if refusal is not None:
                self._send(refusal, close=True)
                return False
            return super().handle_expect_100()

        def parse_request(self) -> bool:
            try:
                return super().parse_request()
            except TimeoutError:  # the headers stopped arriving
                self._send(gateway_error(408, "request_timeout", f"no complete request within {read_timeout:g} s"), close=True)
                return False

        def _serve(self) -> None:
            admission = _admission(self.server)
            if not admission.enter():
                # After SIGTERM: nothing new is acknowledged that the final snapshot might miss.
                refused = gateway_error(503, "shutting_down", "the server is shutting down; retry when it is back")
                refused.headers["Retry-After"] = "5"
                self._send(refused, close=True)
                return
            try:
                self._serve_admitted()
            finally:
                admission.leave()

        def _serve_admitted(self) -> None:
            url = urlsplit(self.path)
            refusal = self._framing_refusal()
            if refusal is not None:
                # Answer without reading the body, and close: the next request's start is unknown, and
                # draining an oversize body would cost what the limit saves.
                self._send(refusal, close=True)
                return
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = self.rfile.read(length) if length else b""
            except TimeoutError:
                body = b""
            if len(body) < length:  # the client stopped sending (timeout) or went away
                self._send(gateway_error(408, "request_timeout", f"the body stopped arriving within {read_timeout:g} s"), close=True)
                return
            headers = dict(self.headers.items())
            if console is not None and is_console_path(url.path):  # the built console, as CloudFront serves it in AWS
                page = console.handle(self.command, url.path, headers)
                self._send(GatewayResponse(page.status, page.headers, page.body), close=_admission(self.server).closed)
                return
            query = parse_qs(url.query, keep_blank_values=True)
            response = gateway.handle(self.command, url.path, query, headers, body, self.client_address[0], stream=_SocketStream(self))
            if self.command in MUTATING and state and response.status < 500:
                state.mark_dirty()
                state.sync()  # the request's DynamoDB writes are on disk before it is acknowledged
            self._send(response, close=_admission(self.server).closed)  # shutdown began meanwhile: no next request on this connection

        def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
            """http.server's own refusals (bad request line, header lines too long or too many, bad
            version) in the platform's JSON shape instead of an HTML page."""
            self.log_error("code %d, message %s", code, message)
            if self.request_version == "HTTP/0.9":  # a line that is not a request: still answer with a status line
                self.request_version = self.protocol_version
            reason = message or self.responses.get(code, ("request refused",))[0]
            self._send(gateway_error(code, FRAMING_ERROR_CODES.get(code, "malformed_request"), reason), close=True)

        def _send(self, response: GatewayResponse, close: bool = False) -> None:
            if response.streamed:  # written as it was produced (_SocketStream); its end is the connection's
                self.close_connection = True
                return
            if close:
                self.close_connection = True
                response.headers["Connection"] = "close"
            self.send_response(response.status)
            for key, value in response.headers.items():
                if key.lower() != "content-length":
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

        def __getattr__(self, name: str) -> Any:
            # Any other method (TRACE, CONNECT, made-up ones) goes to the gateway too, which
            # answers 405/404 as API Gateway does, instead of http.server's 501.
            if name.startswith("do_"):
                return self._serve
            raise AttributeError(name)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            if os.environ.get("RAAS_LOCAL_ACCESS_LOG", "1") != "0":
                sys.stderr.write(f"{self.address_string()} {format % args}\n")

    return Handler


class _SocketStream:
    """A response written as it is produced (Server-Sent Events): the status and headers first, then each
    event at once; the end of the body is the end of the connection (no Content-Length). A write that
    fails because the client has gone raises ClientGone, which stops the answer's generation."""

    def __init__(self, handler: BaseHTTPRequestHandler):
        self.handler = handler

    def start(self, status: int, headers: dict[str, str]) -> None:
        self.handler.close_connection = True
        self.handler.send_response(status)
        for key, value in headers.items():
            if key.lower() not in ("content-length", "connection"):
                self.handler.send_header(key, value)
        self.handler.send_header("Connection", "close")
        self.handler.end_headers()
        self.write(b"")

    def write(self, data: bytes) -> None:
        try:
            if data:
                self.handler.wfile.write(data)
            self.handler.wfile.flush()
        except OSError as exc:  # BrokenPipeError, ConnectionResetError, a timed-out or closed socket
            raise ClientGone(str(exc)) from exc


def make_http_server(
    gateway: LocalGateway,
    host: str = "127.0.0.1",
    port: int = 8080,
    state: StateDir | None = None,
    read_timeout: float = READ_TIMEOUT_SECONDS,
    console: ConsoleSite | None = None,
) -> ThreadingHTTPServer:
    """The HTTP front of `raas local` around a gateway (bound, not yet serving); `console` serves /console/."""
    http = LocalHTTPServer((host, port), _make_handler(gateway, state, read_timeout, console))
    http.admission = Admission()
    return http


def _admission(server: Any) -> Admission:
    admission: Admission = server.admission
    return admission


def limit_blas_threads() -> None:
    """One BLAS thread for numpy's matrix products (the embedded engine's vector scores), for the rest of the process.

    OpenBLAS splits a matrix-vector product past a few thousand elements (a tenant past a few dozen chunks) over
    every core, and its threads busy-wait for the next call: each semantic search then took two cores for the time
    of one, and searches on several request threads at once queued for OpenBLAS's threads while spinning
    (`python bench/search_concurrency.py ../shared/eval/scifact`, 2,000 abstracts: with 8 threads at once 5.7-6.8 ms
    and 11-13 ms of CPU a query; with one BLAS thread 1.3-1.5 ms and 1.6-2.0 ms; alone, the CPU a query halves).
    Requests, not one product, are what run in parallel here.
    torch keeps its own threads (raas.adapters.embedders)."""
    import numpy  # noqa: F401 - loads OpenBLAS now: threadpoolctl limits the libraries already loaded, and nothing else
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")  # called, not entered: the limit stays


def start(host: str = "127.0.0.1", port: int = 8080, state_dir: Path | None = None) -> LocalPlatform:
    """Starts moto, the tables, the operator key and the HTTP server (not yet serving)."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's own access log is noise here
    limit_blas_threads()
    worker_count = default_worker_count()
    # With workers, the local model embeds in a process of its own, for them and for ingestion; started first, so
    # that torch loads while the rest starts.
    settings = Settings.from_env()
    embedding = EmbeddingProcess(settings.embedder_threads) if worker_count and settings.embedder == "local" else None
    moto, endpoint = start_moto_server(host="127.0.0.1")
    isolate_from_real_aws(endpoint, moto.credentials)  # made for this start; never printed or logged
    os.environ.setdefault("RAAS_STAGE", "local")
    state = StateDir(state_dir, snapshot_after_writes=Settings.from_env().local_snapshot_after_writes) if state_dir else None
    scratch = None if state else tempfile.TemporaryDirectory(prefix="raas-local-")
    os.environ["RAAS_SEARCH_DIR"] = str(state.search_dir if state else scratch.name)  # type: ignore[union-attr]
    os.environ["RAAS_INGEST_QUEUE_URL"] = ensure_resources()
    embedder = embedding.embedder() if embedding else None
    services = install(bootstrap(Settings.from_env(), event_publisher=LocalEventBus(), **({"embedder": embedder} if embedder else {})))
    workers = None
    if worker_count:  # started now, with the environment complete: they import and warm up while the state is restored
        workers = WorkerPool(
            worker_count,
            endpoint,
            moto.transport.answer,
            services.settings.tenants_table,
            on_registry_write=services.config_service.cache.forget,
            embedding=embedding,
        )
    if state:
        state.restore(quiet=lambda: finished_uploads(services))  # finished documents' objects come back without events
        _reprovision_tenants(services)
        reconcile_at_start(services, redeliver=state.redeliver_object)  # crash consistency: the search index against the registry
    operator_key = _operator_key(state_dir)
    services.key_service.create_operator_key("local operator", secret=operator_key)
    # API Gateway's authorizer cache, with the deployed TTL; any write to the tenants table forgets it
    authorizer_cache = AuthorizerCache(services.settings.local_authorizer_cache_seconds, services.settings.tenants_table)
    authorizer_cache.watch()
    gateway = LocalGateway(rate_limits=services.settings.local_rate_limits, authorizer_cache=authorizer_cache, workers=workers)
    from raas.handlers import ingest

    pump = QueuePump(os.environ["RAAS_INGEST_QUEUE_URL"], ingest.handler)
    pump.start()
    scheduler = LocalScheduler()
    scheduler.start()
    warm_embedder(services)
    warm_search_indexes(services)
    # The SPA PUTs presigned uploads to the S3 stand-in: its CSP names that bucket, as CloudFront's names S3's.
    upload_prefix = f"{os.environ['AWS_ENDPOINT_URL']}/{services.settings.documents_bucket}/"
    console = ConsoleSite.from_settings(services.settings.console_dir, upload_prefix)
    http = make_http_server(gateway, host, port, state, console=console)
    if state:
        state.save()
        state.start()
    if workers and not workers.wait_ready():
        raise SystemExit(f"raas local: the worker processes did not start ({WORKERS_ENV}=0 runs every function in this process)")
    bound_port = http.server_address[1]
    url = f"http://{host}:{bound_port}"
    return LocalPlatform(
        url, operator_key, http, moto, state, pump, scheduler, scratch, authorizer_cache, console, services.search_index, workers
    )


def warm_embedder(services: Services) -> threading.Thread | None:
    """Loads the local embedding model in the background now, rather than on the first upload or query.

    Only the local model has anything to load: a provider's embedder (`RAAS_EMBEDDER=openai`) would make a
    billed call to the provider at every start (and, without a key, print a traceback), so it is left alone."""
    if services.settings.embedder != "local":
        return None
    thread = threading.Thread(target=lambda: services.embedder.embed(["warm up"]), name="raas-warm-up", daemon=True)
    thread.start()
    return thread


WARM_INDEX_MIN_CHUNKS = 1000  # below this FTS5 answers a first query in milliseconds anyway


def warm_search_indexes(services: Services) -> threading.Thread | None:
    """Reads the larger restored indexes' vectors and BM25 postings in the background now, one tenant at a time,
    rather than beside their first queries: at 10,000 SciFact abstracts (18,000 chunks) the reading takes about
    2.5 s of a core, and the queries of those seconds answered from FTS5 at a p99 of 154 ms (bench/load.py)."""
    search = services.search_index
    warm, count = getattr(search, "warm", None), getattr(search, "count", None)
    if warm is None or count is None:  # an engine with nothing to read ahead (OpenSearch)
        return None

    def read_ahead() -> None:
        from raas.services.metering import all_tenants

        try:
            for tenant in all_tenants(services.tenant_store):
                if not tenant.status.gone and count(tenant.tenant_id) >= WARM_INDEX_MIN_CHUNKS:
                    warm(tenant.tenant_id)
        except Exception:  # the queries read what they need themselves
            logger.exception("reading the search indexes ahead failed")

    thread = threading.Thread(target=read_ahead, name="raas-warm-indexes", daemon=True)
    thread.start()
    return thread


def _reprovision_tenants(services: Services) -> None:
    """moto keeps no KMS state across restarts: give every restored tenant its key alias again."""
    from raas.services.metering import all_tenants

    for tenant in all_tenants(services.tenant_store):
        if not tenant.status.gone:  # shredded keys stay shredded
            services.keyring.ensure(tenant.tenant_id)


def _operator_key(state_dir: Path | None) -> str:
    """RAAS_OPERATOR_KEY if set; else the key saved in the state dir; else a new one (saved there)."""
    from_env = os.environ.get("RAAS_OPERATOR_KEY")
    if from_env:
        if len(from_env) < 20:
            raise SystemExit("RAAS_OPERATOR_KEY must be at least 20 characters")
        return from_env
    from raas.domain.tenants import generate_secret

    saved = state_dir / "operator_key" if state_dir else None
    if saved and saved.exists():
        return saved.read_text(encoding="utf-8").strip()
    key = generate_secret(operator=True)
    if saved:
        saved.parent.mkdir(parents=True, exist_ok=True)
        saved.write_text(key, encoding="utf-8")
        saved.chmod(0o600)
    return key


def run(host: str, port: int, state_dir: Path | None) -> None:
    platform = start(host, port, state_dir)
    print(f"raas local platform listening on {platform.url}", flush=True)
    print(f"operator key: {platform.operator_key}", flush=True)
    print(f"try: curl -s {platform.url}/v1/health", flush=True)
    if platform.console:
        print(platform.console.describe(platform.url), flush=True)
    if state_dir:
        print(f"state directory: {state_dir} (data survives restarts)", flush=True)

    def _shut_down() -> None:
        in_flight = platform.begin_shutdown()
        print(f"raas local platform shutting down: refusing new requests, finishing {in_flight} in flight", flush=True)

    def _stop(_signum: int, _frame: Any) -> None:
        # shutdown() waits for serve_forever, which runs in this (the main) thread: call it from another.
        threading.Thread(target=_shut_down, name="raas-shutdown", daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        platform.serve_forever()
    finally:
        platform.close()
        print("raas local platform stopped", flush=True)
        # Everything is persisted. The interpreter's last garbage collection would walk the whole heap
        # (moto's backends, the embedder's model): 1.5 s of exit spent freeing memory the OS reclaims anyway.
        gc.freeze()
