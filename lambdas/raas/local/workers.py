"""Worker processes for `raas local`: the API functions run in execution environments of their own, as in Lambda.

A Lambda execution environment is a process of its own that serves one invocation at a time; concurrent
invocations are served by further environments (https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html,
https://docs.aws.amazon.com/lambda/latest/dg/lambda-concurrency.html). In one process the platform's Python shares one
interpreter lock, so 8 clients got no more done than one on 2 cores (docs/performance.md, "8 clients against 1").
With workers, the server process keeps what API Gateway and AWS do (the HTTP front, routing, the authorizer and its
cache, rate limits, moto behind the SigV4 check, the ingest queue's consumer, the schedules), and each API request's
function runs in one of `RAAS_LOCAL_WORKERS` processes, each importing the handlers as a container does.

Two channels join a worker to the server, both on Unix sockets in a private directory (0700), with
`multiprocessing.connection`'s HMAC handshake on a key made at each start:
- invocations: the server sends a proxy event, the worker answers with the function's result (or, for a streamed
  answer, its status line and each event first, each acknowledged, so that a client that went away stops the
  generation as it does in one process);
- AWS: each of the worker's SDK calls, signed by botocore as for AWS, is answered by the server's
  `InProcessTransport`, which checks the signature as AWS does; moto's state stays in the server.

Caches a worker keeps that another process's write can make stale: the tenants' configs (`ConfigCache`), of which
a worker forgets the invocation's tenant's when that tenant's items in the tenants table were written since it last
looked (each invocation carries the counts of those writes: `RegistryWrites`, `KeptConfigs`); the search engine's
memory, which checks the index file's version on every read.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import queue
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing import AuthenticationError
from multiprocessing.connection import Client, Connection, answer_challenge, deliver_challenge
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn

from raas.domain.streaming import ClientGone
from raas.handlers.streaming import ResponseStream, current_stream, response_stream
from raas.local.authorizer_cache import RegistryWatch
from raas.local.containers import env_int
from raas.local.signing_front import LocalEndpointTransport

if TYPE_CHECKING:
    from raas.services.config import ConfigCache

logger = logging.getLogger(__name__)

WORKERS_ENV = "RAAS_LOCAL_WORKERS"
START_TIMEOUT_SECONDS = 120.0  # a worker's imports and bootstrap, on a busy 2-core machine
SOCKET_DIR_PREFIX = "raas-workers-"

_INTERNAL_FAILURE = b'{"__type": "InternalFailure", "message": "internal error"}'
Headers = list[tuple[str, str]]
AnswerAws = Callable[[str, str, Headers, bytes], tuple[int, Headers, bytes]]  # (method, url, headers, body) -> (status, headers, body)


MAX_DEFAULT_WORKERS = 8


def default_worker_count() -> int:
    """RAAS_LOCAL_WORKERS if set (0: every function in the server process); else two a core (at most 8), when there
    are two cores or more. A worker spends most of an invocation waiting for the server (its AWS calls) and the
    embedding process, so more workers than cores keep the cores busy: 8 clients on 2 cores got 46-54 requests/s
    through 2 or 4 workers and 56-58 through 8 (bench/load.py); each idle worker holds about 80 MB."""
    configured = env_int(WORKERS_ENV, -1)
    if configured >= 0:
        return configured
    cores = os.cpu_count() or 1
    return min(MAX_DEFAULT_WORKERS, 2 * cores) if cores >= 2 else 0


def child_processes(pid: int) -> set[int]:
    """The processes `pid` started (Linux /proc; tests and benchmarks). They are listed per thread that started them
    (the server starts a worker on the request thread that needed it), and a thread may end while they are read."""
    children: set[int] = set()
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return children
    for task in tasks:
        try:
            children.update(int(child) for child in (task / "children").read_text().split())
        except OSError:
            continue
    return children


class WorkerFailure(Exception):
    """The function raised in its worker, or the worker died during the invocation (the gateway answers 502)."""


class _NotDelivered(Exception):
    """The invocation could not be sent: the worker had died. Nothing ran, so another worker may take it."""


@dataclass(frozen=True)
class _Address:
    path: str
    authkey: bytes


class _SocketDir:
    def __init__(self) -> None:
        self.path = tempfile.mkdtemp(prefix=SOCKET_DIR_PREFIX)  # mode 0700: only this user reaches the sockets
        self.authkey = secrets.token_bytes(32)

    def address(self, name: str) -> _Address:
        return _Address(os.path.join(self.path, f"{name}.sock"), self.authkey)

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


class _Acceptor:
    """Accepts connections on a Unix socket and serves each, once it has passed `multiprocessing.connection`'s HMAC
    handshake on the key, on a thread of its own. The handshake runs on that thread too, so a peer that connects and
    never answers holds up nothing else; `close` wakes the accepting thread by shutting the socket down."""

    def __init__(self, address: _Address, serve: Callable[[Connection], None], name: str):
        self.name = name
        self.address = address
        self._serve = serve
        self._closed = False
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._socket.bind(address.path)
        self._socket.listen(64)
        self._thread = threading.Thread(target=self._accept, name=name, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                peer, _ = self._socket.accept()
            except OSError:
                if self._closed:
                    return
                logger.warning("accepting on %s failed", self.address.path, exc_info=True)
                continue
            threading.Thread(target=self._serve_closing, args=(Connection(peer.detach()),), name=f"{self.name}-conn", daemon=True).start()

    def _serve_closing(self, connection: Connection) -> None:
        try:
            deliver_challenge(connection, self.address.authkey)
            answer_challenge(connection, self.address.authkey)
            self._serve(connection)
        except AuthenticationError:
            logger.warning("a connection to %s was refused: it does not have the key", self.address.path)
        except (EOFError, OSError):  # the peer ended
            pass
        finally:
            connection.close()

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._socket.shutdown(socket.SHUT_RDWR)  # accept() returns (EINVAL) on a listening socket shut down
        self._socket.close()
        self._thread.join(timeout=5)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.address.path)


class _Answering:
    """Answers calls on a Unix socket: each message is a tuple of arguments for `answer`, and its reply
    ("ok", result) or ("error", a description)."""

    def __init__(self, address: _Address, answer: Callable[..., Any], name: str):
        self._answer = answer
        self._acceptor = _Acceptor(address, self._serve, name)
        self.address = address

    def _serve(self, connection: Connection) -> None:
        while True:
            arguments = connection.recv()
            try:
                reply = ("ok", self._answer(*arguments))
            except Exception as exc:  # never leave a worker waiting; the worker raises it in the caller
                logger.exception("answering a worker's call failed (%s)", self._acceptor.name)
                reply = ("error", f"{type(exc).__name__}: {exc}")
            connection.send(reply)

    def close(self) -> None:
        self._acceptor.close()


class _Calls:
    """A worker's side of an `_Answering` channel. One connection per thread: a worker's request thread and its
    background threads (the bus's queued deliveries, the postings reader) call at the same time."""

    def __init__(self, address: _Address, connect_timeout: float = START_TIMEOUT_SECONDS):
        self._address = address
        self._local = threading.local()
        self._connect_timeout = connect_timeout
        self._reached = False

    def _connect(self) -> Connection:
        """A connection to the answering side, waiting for it while it starts (its socket missing or not listening
        yet); once it has answered a connection, a refusal means it has gone, and fails at once."""
        deadline = time.monotonic() + self._connect_timeout
        while True:
            try:
                connection = Client(self._address.path, family="AF_UNIX", authkey=self._address.authkey)
            except (FileNotFoundError, ConnectionRefusedError):
                if self._reached or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
                continue
            self._reached = True
            return connection

    def call(self, *arguments: Any) -> Any:
        connection: Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = self._connect()
        try:
            connection.send(arguments)
            outcome, result = connection.recv()
        except BaseException:
            self._local.connection = None  # in an unknown state: the next call opens another
            connection.close()
            raise
        if outcome != "ok":
            raise WorkerFailure(f"the server could not answer: {result}")
        return result


class ChannelTransport(LocalEndpointTransport):
    """A worker's botocore `before-send` handler: calls to the local endpoint go to the server, already signed, and
    come back as the HTTP answer botocore parses, as `InProcessTransport` answers them in one process."""

    def __init__(self, endpoint: str, calls: _Calls):
        super().__init__(endpoint)
        self._calls = calls

    def answer(self, method: str, url: str, header_pairs: Headers, body: bytes) -> tuple[int, Headers, bytes]:
        status, headers, payload = self._calls.call(method, url, header_pairs, body)
        return status, headers, payload


class ChannelEmbedder:
    """The local model as the server and its workers see it: one copy of MiniLM, in a process of its own
    (`EmbeddingProcess`), embeds for every process, as a provider's endpoint serves every Lambda. A worker then starts
    without torch, the model's memory is not multiplied, and the model's computing does not compete for the
    server's interpreter lock: with the model in the server, 8 clients got 37-48 requests/s through 2 workers
    against 52-57 with a model in each worker (bench/load.py)."""

    def __init__(self, name: str, dimension: int, address: _Address):
        self.name = name
        self.dimension = dimension
        self.address = address
        self._calls = _Calls(address)

    def embed(self, texts: list[str]) -> list[list[float]]:
        vectors: list[list[float]] = self._calls.call(texts)
        return vectors


class EmbeddingProcess:
    """The local embedding model in a process of its own, answering `ChannelEmbedder`s on `address`; it ends when
    `stop` is called or the server goes away."""

    def __init__(self, threads: int | None):
        self._sockets = _SocketDir()
        self.address = self._sockets.address("embed")
        context = multiprocessing.get_context("spawn")
        self._parent_end, child_end = context.Pipe()
        self.process = context.Process(target=embedder_main, args=(self.address, threads, child_end), name="raas-embedder", daemon=True)
        self.process.start()
        child_end.close()

    def embedder(self) -> ChannelEmbedder:
        from raas.adapters.embedders import LocalMiniLMEmbedder  # its name and size, without loading torch

        return ChannelEmbedder(LocalMiniLMEmbedder.name, LocalMiniLMEmbedder.dimension, self.address)

    def stop(self, timeout: float = 5.0) -> None:
        self._parent_end.close()  # the process's wait on its end of the pipe ends
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(1)
        self._sockets.remove()


SMALL_REQUEST_TEXTS = 4  # a query's texts: batched with other small requests. Larger ones (ingestion's chunks) go alone.
MAX_BATCH_TEXTS = 64


@dataclass
class _Waiting:
    texts: list[str]
    done: threading.Event
    vectors: list[list[float]] | None = None
    error: BaseException | None = None


class MicroBatcher:
    """Embeds the small requests that arrive together in one call of the model, as model servers batch dynamically:
    while one batch is computed the next requests wait, and go in the next batch together. A forward pass over a few
    short texts costs little more than over one (the model's per-layer overhead dominates at that size), so under
    concurrent queries the model does a fraction of the work. Large requests (ingestion) are embedded on the caller's
    thread: padded beside them, short texts would cost as much as long ones."""

    def __init__(self, embed: Callable[[list[str]], list[list[float]]]):
        self._embed = embed
        self._queue: queue.SimpleQueue[_Waiting] = queue.SimpleQueue()
        self.batches = 0  # for tests and benchmarks: calls of the model for small requests
        threading.Thread(target=self._run, name="raas-embed-batcher", daemon=True).start()

    def embed(self, texts: list[str]) -> list[list[float]]:
        if len(texts) > SMALL_REQUEST_TEXTS:
            return self._embed(texts)
        waiting = _Waiting(texts, threading.Event())
        self._queue.put(waiting)
        waiting.done.wait()
        if waiting.error is not None:
            raise waiting.error
        assert waiting.vectors is not None  # noqa: S101 - set with `done` when there was no error
        return waiting.vectors

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            count = len(batch[0].texts)
            while count < MAX_BATCH_TEXTS:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                batch.append(more)
                count += len(more.texts)
            self.batches += 1
            try:
                vectors = self._embed([text for waiting in batch for text in waiting.texts])
            except BaseException as exc:  # noqa: BLE001 - every caller of the batch gets the error
                for waiting in batch:
                    waiting.error = exc
                    waiting.done.set()
                continue
            offset = 0
            for waiting in batch:
                waiting.vectors = vectors[offset : offset + len(waiting.texts)]
                offset += len(waiting.texts)
                waiting.done.set()


def embedder_main(address: _Address, threads: int | None, parent: Connection) -> None:
    """The embedding process: loads the model (warm before the first query), answers on `address` until the server
    closes its end of `parent` or goes away."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server stops it
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    serving, server_gone = threading.Event(), threading.Event()
    threading.Thread(target=_wait_for_end, args=(parent, serving, server_gone), name="raas-embed-parent", daemon=True).start()
    from raas.adapters.embedders import LocalMiniLMEmbedder
    from raas.local.server import limit_blas_threads

    limit_blas_threads()
    embedder = LocalMiniLMEmbedder(threads=threads)
    embedder.embed(["warm up"])
    _Answering(address, MicroBatcher(embedder.embed).embed, "raas-embed-channel")
    serving.set()
    server_gone.wait()  # answers on its threads meanwhile
    _exit_now()  # nothing to persist; the interpreter's teardown of torch and the model took 1.2 s of every stop


def _exit_now() -> NoReturn:
    """Ends this process without the interpreter's teardown (freeing every object one by one, memory the OS takes
    back anyway), once what it printed is out."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(0)


def _wait_for_end(parent: Connection, serving: threading.Event, server_gone: threading.Event) -> None:
    """When the server closes its end of `parent` or ends: sets `server_gone`, or, while the model is still loading
    (a server stopped right after its start), ends the process at once rather than wait for the load."""
    with contextlib.suppress(EOFError, OSError):
        parent.recv()
    if not serving.is_set():
        _exit_now()
    server_gone.set()


# --- configs kept right across processes ---------------------------------------------------------------


class WriteStamp(NamedTuple):
    """The tenants table's writes as an invocation leaves the server: outside every tenant's partition, in all, and
    to the invocation's tenant (none for the operator's requests)."""

    shared: int
    every: int
    tenant_id: str | None
    tenant: int


class RegistryWrites:
    """Counts the tenants table's writes (`RegistryWatch`), in all, outside every tenant's partition and per tenant."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._shared = self._every = 0
        self._tenants: dict[str, int] = {}

    def count(self, tenants: set[str | None]) -> None:
        with self._lock:
            self._every += 1
            for tenant_id in tenants:
                if tenant_id is None:
                    self._shared += 1
                else:
                    self._tenants[tenant_id] = self._tenants.get(tenant_id, 0) + 1

    def stamp(self, tenant_id: str | None) -> WriteStamp:
        with self._lock:
            return WriteStamp(self._shared, self._every, tenant_id, self._tenants.get(tenant_id, 0) if tenant_id else 0)


class KeptConfigs:
    """A worker's config cache, kept right: before an invocation it forgets what the writes made since its last look
    may have changed. That is the invocation's tenant's config when that tenant was written (a tenant's request reads
    its own config only); every config after a write outside every tenant's partition, or before an operator's
    request once anything was written. One tenant's config change no longer empties every worker's cache for all."""

    def __init__(self, cache: ConfigCache):
        self.cache = cache
        self._shared = self._every = 0
        self._tenants: dict[str, int] = {}

    def before_invocation(self, stamp: WriteStamp) -> None:
        if stamp.shared != self._shared or (stamp.tenant_id is None and stamp.every != self._every):
            self.cache.clear()
            self._tenants.clear()
            self._shared, self._every = stamp.shared, stamp.every
        elif stamp.tenant_id is not None and self._tenants.get(stamp.tenant_id, 0) != stamp.tenant:
            self.cache.invalidate(stamp.tenant_id)
            self._tenants[stamp.tenant_id] = stamp.tenant


# --- one worker, seen from the server -----------------------------------------------------------------


class _Worker:
    def __init__(self, index: int, process: multiprocessing.process.BaseProcess):
        self.index = index
        self.process = process
        self.connection: Connection | None = None  # set when the worker has connected (it is ready)

    def invoke(self, group: str, event: dict[str, Any], request_id: str, timeout_seconds: float, generation: WriteStamp) -> Any:
        """The function's result; a streamed answer is written to this thread's response stream as the worker sends it."""
        connection = self.connection
        assert connection is not None  # noqa: S101 - only ready workers are handed out
        stream = current_stream()
        try:
            connection.send(("invoke", group, event, request_id, timeout_seconds, generation, stream is not None))
        except OSError as exc:  # the worker's end is closed: it died before this invocation reached it
            raise _NotDelivered(str(exc)) from exc
        first = True
        while True:
            try:
                message = connection.recv()
            except ConnectionResetError as exc:
                if first:  # the worker's socket closed with the invocation unread in it (a clean end after reading is EOF)
                    raise _NotDelivered(str(exc)) from exc
                raise
            first = False
            kind = message[0]
            if kind == "result":
                return message[1]
            if kind == "raised":
                raise WorkerFailure(message[1])
            connection.send(("ack", _relay(stream, kind, message)))

    def alive(self) -> bool:
        return self.connection is not None and self.process.is_alive()


def _relay(stream: ResponseStream | None, kind: str, message: tuple[Any, ...]) -> bool:
    """A streamed answer's status line or event, written to the client; False when the client has gone."""
    if stream is None:
        return False
    try:
        if kind == "start":
            stream.start(message[1], message[2])
        else:
            stream.write(message[1])
    except ClientGone:
        return False
    return True


class WorkerPool:
    """Up to `count` worker processes, each serving one invocation at a time; an invocation takes a free one.

    As Lambda starts an execution environment only when invocations overlap, one worker starts with the pool and
    another only when an invocation finds every started one busy; it then takes whichever is free first, the new one
    or one that finished meanwhile. Started workers stay warm. A worker that dies is replaced at the next need; its
    invocation in flight, if any, answers 502 as a Lambda that crashed does."""

    def __init__(
        self,
        count: int,
        endpoint: str,
        answer_aws: AnswerAws,
        registry_table: str,
        on_registry_write: Callable[[set[str | None]], None] | None = None,
        embedding: EmbeddingProcess | None = None,
    ):
        """`answer_aws`: the signing front's `InProcessTransport.answer`. `registry_table`: the tenants table, whose
        writes make the workers forget the configs they hold of the tenants written (and call `on_registry_write`
        with them in this process, for the server's own config cache). `embedding`: the process that embeds with the
        local model for the server, which the workers then use too; the pool stops it when it closes."""
        self._embedding = embedding
        self.count = max(1, count)
        self._on_registry_write = on_registry_write
        self.writes = RegistryWrites()
        self._registry_watch = RegistryWatch(registry_table, self._on_written)
        self._context = multiprocessing.get_context("spawn")  # a fresh interpreter, as a container: no fork of a threaded server
        self._sockets = _SocketDir()
        self._endpoint = endpoint
        self._channels = {name: self._sockets.address(name) for name in ("invoke", "aws")}
        self._aws = _Answering(self._channels["aws"], _aws_or_internal_error(answer_aws), "raas-aws-channel")
        self._embedder = None
        if embedding is not None:
            model = embedding.embedder()
            self._embedder = (model.name, model.dimension)
            self._channels["embed"] = embedding.address
        self._pending: dict[int, _Worker] = {}  # started, not yet connected
        self._idle: list[_Worker] = []
        self._busy = 0
        self._changed = threading.Condition()
        self._closed = False
        self._serials = iter(range(1, 1 << 62))
        self._acceptor = _Acceptor(self._channels["invoke"], self._connected, "raas-worker-channel")
        self._registry_watch.start()
        with self._changed:
            self._spawn()

    def _on_written(self, tenants: set[str | None]) -> None:
        self.writes.count(tenants)
        if self._on_registry_write is not None:
            self._on_registry_write(tenants)

    def _spawn(self) -> None:
        """Starts one more worker; called with the lock held."""
        index = next(self._serials)
        process = self._context.Process(
            target=worker_main,
            args=(index, self._endpoint, self._channels, self._embedder),
            name=f"raas-worker-{index}",
            daemon=True,  # ends with the server, whatever the way it ends
        )
        self._pending[index] = _Worker(index, process)
        process.start()

    def _connected(self, connection: Connection) -> None:
        """A worker has started and connected: it says which one it is, then serves invocations on this connection."""
        kind, index = connection.recv()
        with self._changed:
            worker = self._pending.pop(index, None) if kind == "ready" else None
            if worker is None or self._closed:
                return
            worker.connection = connection
            self._idle.append(worker)
            self._changed.notify_all()
            # The connection now belongs to the worker's invocations; this thread waits for the pool to let it go.
            self._changed.wait_for(lambda: self._closed or worker.connection is None)

    def wait_ready(self, timeout: float = START_TIMEOUT_SECONDS) -> bool:
        """Whether the workers started so far are ready within `timeout` seconds."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._pending or self._closed, timeout)

    def _scale_out(self) -> None:
        """Starts another worker when every started one is busy (or gone) and the limit allows, as Lambda starts
        another environment; called with the lock held."""
        if not self._idle and self._busy + len(self._pending) < self.count:
            self._spawn()

    @contextmanager
    def worker(self) -> Iterator[_Worker]:
        with self._changed:
            self._scale_out()
            worker = self._take()
            self._busy += 1
        healthy = False
        try:
            yield worker
            healthy = True
        except WorkerFailure:
            healthy = worker.process.is_alive()  # the function raised (alive) or the worker died
            raise
        except _NotDelivered:
            raise
        except (EOFError, OSError) as exc:
            raise WorkerFailure(f"worker {worker.index} ended during the invocation: {exc}") from exc
        finally:
            self._return(worker, healthy)

    def _take(self) -> _Worker:
        """A live idle worker, waiting for one if need be (called with the lock held). A worker that died while idle
        (killed, out of memory) is let go here, so that no invocation is sent to it."""
        while True:
            self._changed.wait_for(lambda: self._idle or self._closed)
            if self._closed:
                raise WorkerFailure("the platform is shutting down")
            worker = self._idle.pop()  # the most recently used: warm reuse, as Lambda prefers
            if worker.process.is_alive():
                return worker
            logger.warning("worker %s ended while idle; another starts", worker.index)
            worker.connection = None
            self._changed.notify_all()
            self._scale_out()

    def _return(self, worker: _Worker, healthy: bool) -> None:
        with self._changed:
            self._busy -= 1
            if healthy and worker.alive():
                self._idle.append(worker)
                self._changed.notify_all()
                return
        logger.warning("worker %s ended; another starts at the next need", worker.index)
        self._retire(worker)

    def _retire(self, worker: _Worker) -> None:
        with self._changed:
            worker.connection = None  # the thread that accepted it closes it (`_connected` returns): one owner, no double close
            self._changed.notify_all()
        worker.process.join(timeout=1)
        if worker.process.is_alive():
            worker.process.kill()

    def invoke(self, group: str, event: dict[str, Any], request_id: str, timeout_seconds: float) -> Any:
        """Runs `group`'s function in a free worker. The counts of registry writes are read first: every write made
        before this request arrived reaches the worker's config cache."""
        tenant_id = ((event.get("requestContext") or {}).get("authorizer") or {}).get("tenant_id") or None
        generation = self.writes.stamp(tenant_id)
        for _ in range(self.count + 1):
            try:
                with self.worker() as worker:
                    return worker.invoke(group, event, request_id, timeout_seconds, generation)
            except _NotDelivered:
                continue  # that worker had died and nothing ran: another takes the invocation
        raise WorkerFailure("no worker could take the invocation")

    def close(self, timeout: float = 5.0) -> None:
        """Stops the workers (the server has drained its requests first) and the channels."""
        self._registry_watch.stop()
        with self._changed:
            self._closed = True
            workers, self._idle = self._idle, []
            pending, self._pending = list(self._pending.values()), {}
            self._changed.notify_all()
        for worker in workers:
            with contextlib.suppress(OSError):
                if worker.connection is not None:
                    worker.connection.send(("stop",))
        for worker in pending:  # still starting: nothing to finish
            worker.process.kill()
        deadline = time.monotonic() + timeout
        for worker in [*workers, *pending]:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(1)
        self._acceptor.close()
        self._aws.close()
        self._sockets.remove()
        if self._embedding is not None:
            self._embedding.stop()


def _aws_or_internal_error(answer: AnswerAws) -> AnswerAws:
    def answer_or_500(method: str, url: str, header_pairs: Headers, body: bytes) -> tuple[int, Headers, bytes]:
        try:
            return answer(method, url, header_pairs, body)
        except Exception:  # AWS's own shape for an internal error, which botocore retries
            logger.exception("answering a worker's AWS call failed")
            return 500, [("Content-Type", "application/x-amz-json-1.0")], _INTERNAL_FAILURE

    return answer_or_500


# --- one worker, inside its process -------------------------------------------------------------------


class _StreamProxy:
    """The client's response stream as the function in a worker sees it: each piece goes to the server, which writes
    it and says whether the client is still there."""

    def __init__(self, connection: Connection):
        self.connection = connection

    def start(self, status: int, headers: dict[str, str]) -> None:
        self._send(("start", status, headers))

    def write(self, data: bytes) -> None:
        self._send(("write", data))

    def _send(self, message: tuple[Any, ...]) -> None:
        self.connection.send(message)
        _, still_there = self.connection.recv()
        if not still_there:
            raise ClientGone("the client closed the connection")


def worker_main(index: int, endpoint: str, channels: dict[str, _Address], embedder: tuple[str, int] | None) -> None:
    """A worker process: the platform's services built once (its cold start), then one invocation at a time until
    the server says stop or goes away. `embedder`: (name, dimension) of the server's model, when it embeds for the workers."""
    # The server handles Ctrl-C and SIGTERM: it drains its requests, then stops the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    from botocore import handlers

    from raas.bootstrap import bootstrap, install
    from raas.handlers.registry import API_HANDLERS, load
    from raas.local.bus import LocalEventBus
    from raas.local.invocation import LocalLambdaContext
    from raas.local.server import limit_blas_threads, warm_search_indexes
    from raas.settings import Settings

    limit_blas_threads()
    handlers.BUILTIN_HANDLERS.append(("before-send", ChannelTransport(endpoint, _Calls(channels["aws"]))))  # before any client is made
    overrides: dict[str, Any] = {"event_publisher": LocalEventBus()}
    if embedder is not None:
        overrides["embedder"] = ChannelEmbedder(*embedder, channels["embed"])
    services = install(bootstrap(Settings.from_env(), **overrides))
    modules = {group: load(group) for group in API_HANDLERS}
    warm_search_indexes(services)
    connection = Client(channels["invoke"].path, family="AF_UNIX", authkey=channels["invoke"].authkey)
    connection.send(("ready", index))
    configs = KeptConfigs(services.config_service.cache)
    while True:
        try:
            message = connection.recv()
        except (EOFError, OSError):
            return  # the server has gone
        if message[0] == "stop":
            close_index = getattr(services.search_index, "close", None)  # the embedded engine: its WAL checkpointed
            if close_index:
                close_index()
            logging.shutdown()
            _exit_now()  # a worker's teardown took 0.3 s of every stop
        _, group, event, request_id, timeout_seconds, generation, streamed = message
        configs.before_invocation(generation)
        context = LocalLambdaContext(f"raas-{group}", request_id, timeout_seconds)
        try:
            with response_stream(_StreamProxy(connection) if streamed else None):
                result = modules[group].handler(event, context)
        except Exception as exc:  # reported to the gateway, which answers 502 and logs it too
            logging.getLogger("raas").exception("handler raised in worker %s", index)
            connection.send(("raised", f"{type(exc).__name__}: {exc}"))
            continue
        connection.send(("result", result))
