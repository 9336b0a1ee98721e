"""Load on the local platform over HTTP: many tenants at once, mixed traffic, bounded time.

    python bench/load.py [--tenants 8] [--workers 8] [--seconds 30] [--documents 10000 [--corpus DIR]] [--only KIND]
    python bench/load.py --pairs 4 [--workers 8] [--seconds 15]   # 1 client against N, on one platform

Starts `raas local` as its own process (moto, embedded search, offline MiniLM embedder and
extractive answerer), creates the tenants, then runs two phases of the same length in the
same run: a bare `GET /v1/health` baseline, and the mix (per worker, round robin over the
tenants: 60 % queries, 15 % searches, 10 % document ingests, 10 % config reads, 5 % config
writes). Prints throughput, p50/p99 latency and errors per phase and per request kind, and for
queries the platform's own overhead: client latency minus the embedder's and the LLM's share
(the `timings` each answer reports).

With `--pairs P`, the mix instead runs 2P times on the same platform, after one phase of `--workers` clients that
warms it (its worker processes started, each tenant's config and index read) and is not counted: one client, then
`--workers` clients, then the other way round, and so on (ABBA, so that a drift in the machine's speed favours neither), each phase starting
once the ingests the one before queued are indexed (one client's phase would otherwise index the documents the
8 clients sent). It prints each phase and the ratio of the means: the scaling target's baseline measured in the same
run as what it is compared with, instead of one run each, whose starts and states differ.

With `--documents N`, one more tenant first gets N short documents through the API (each one
chunk), the server's resident memory is reported as they are indexed (every 1,000) and once
all are, and two more phases have one client query that tenant alone: the overhead of a query on a
large tenant, in its first seconds (its BM25 postings are read beside the queries) and once settled.
With `--corpus DIR` (a BEIR dataset such as ../shared/eval/scifact) the documents
are the corpus's own, in order, taken again with a copy number appended when N is larger than the
corpus (SciFact has 5,183, so 10,000 takes most twice; the number keeps their content hashes
apart, else raas would dedupe them), and the queries are the dataset's.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
OPERATOR_KEY = "raasop_bench_operator_key_0123456789"
# Appended to every query: distinct across phases and across runs on a kept --state-dir, whose response cache (600 s)
# would otherwise answer a rerun's queries (each phase's clients draw the same words from the same seeds).
RUN, SERIAL = uuid.uuid4().hex[:8], itertools.count()  # next() on a count is atomic under the GIL; a generator is not
WORDS = ["otter", "river", "kelp", "tide", "estuary", "salmon", "heron", "marsh", "delta", "reed", "current", "pebble"]


# With --only KIND, the roll that picks KIND in the mix below: 60 % queries, 15 % searches, 10 % ingests, 10 % config
# reads, 5 % config writes.
ONLY_ROLL = {"query": 0.30, "search": 0.70, "ingest": 0.80, "config": 0.90, "config_w": 0.99}


@dataclass
class Samples:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    overhead_ms: list[float] = field(default_factory=list)
    overhead_at: list[float] = field(default_factory=list)  # when each overhead's request ended, seconds into the phase
    lock: threading.Lock = field(default_factory=threading.Lock)
    started: float = field(default_factory=time.monotonic)

    def count(self) -> int:
        """Requests sent, of every kind."""
        return sum(len(values) for values in self.latencies.values())

    def add(self, kind: str, seconds: float, ok: bool, overhead_ms: float | None = None) -> None:
        with self.lock:
            self.latencies[kind].append(seconds * 1000)
            if not ok:
                self.errors[kind] += 1
            if overhead_ms is not None:
                self.overhead_ms.append(overhead_ms)
                self.overhead_at.append(time.monotonic() - self.started)


def start_platform(state_dir: Path | None = None, snapshot_after_writes: int | None = None) -> tuple[subprocess.Popen[str], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    if snapshot_after_writes:
        env["RAAS_LOCAL_SNAPSHOT_AFTER_WRITES"] = str(snapshot_after_writes)
    env.update({"RAAS_OPERATOR_KEY": OPERATOR_KEY, "RAAS_LOCAL_ACCESS_LOG": "0", "POWERTOOLS_LOG_LEVEL": "ERROR"})
    env.update({"POWERTOOLS_METRICS_DISABLED": "true", "RAAS_LOCAL_RATE_LIMITS": "false"})  # load, not throttling, is measured
    state = str(state_dir) if state_dir else tempfile.mkdtemp(prefix="raas-load-")
    command = [sys.executable, "-m", "raas.cli", "local", "--port", "0", "--state-dir", state]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)  # noqa: S603
    assert process.stdout is not None
    for line in process.stdout:
        if "listening on " in line:
            url = line.rsplit(" ", 1)[-1].strip()
            threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True).start()  # type: ignore[union-attr]
            return process, url
    raise SystemExit("raas local did not start")


def resident_mib(pid: int) -> float:
    """The resident memory of `raas local` (Linux /proc), in MiB: the process and its children (the worker processes
    and the embedding process, raas.local.workers), each counted with its proportional share of the pages it shares
    with others (PSS; plain RSS would count the libraries every Python process maps once per process)."""
    return sum(_proportional_kib(each) for each in [pid, *_descendants(pid)]) / 1024


def _descendants(pid: int) -> list[int]:
    from raas.local.workers import child_processes

    found: list[int] = []
    for child in child_processes(pid):
        found += [child, *_descendants(child)]
    return found


def _proportional_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:  # ended meanwhile
        pass
    return 0


def synthetic_document(number: int) -> dict[str, str]:
    """A one-chunk document of 31 words."""
    return {"title": f"large {number}", "text": " ".join(random.Random(number).choices(WORDS, k=30)) + f" document {number}"}


def corpus_documents(corpus: dict[str, tuple[str, str]]) -> Callable[[int], dict[str, str]]:
    """The corpus's `number`th document, the corpus taken again (with a copy number) past its end."""
    rows = list(corpus.values())

    def document(number: int) -> dict[str, str]:
        title, text = rows[number % len(rows)]
        copy = number // len(rows)
        return {"title": title, "text": f"{text}\n(copy {copy + 1})" if copy else text}

    return document


def preload(
    url: str,
    key: str,
    documents: int,
    in_flight: int = 300,
    *,
    document: Callable[[int], dict[str, str]] = synthetic_document,
    pid: int = 0,
) -> tuple[float, list[tuple[int, float]]]:
    """Sends `documents` documents (`document(number)`) to a tenant with 4 client threads and waits until
    every one is indexed; returns the seconds it took and the resident memory of process `pid` (MiB) after
    every 1,000 indexed. At most `in_flight` documents wait for indexing at a time:
    accepting is far faster than indexing, and moto's SQS scans its whole queue on every call, so an
    unbounded backlog of thousands of messages slows ingestion down to a crawl (a client uploading a
    large corpus should pace itself the same way, or use raas's future bulk path)."""
    headers = {"Authorization": f"Bearer {key}"}
    started = time.monotonic()
    next_number = iter(range(documents))
    lock = threading.Lock()
    progress = {"indexed": 0, "sent": 0}

    def sender() -> None:
        with httpx.Client(base_url=url, timeout=120, headers=headers) as http:
            while True:
                number: int | None
                with lock:
                    if progress["sent"] - progress["indexed"] >= in_flight:
                        number = -1
                    else:
                        number = next(next_number, None)
                        if number is not None:
                            progress["sent"] += 1
                if number is None:
                    return
                if number < 0:
                    time.sleep(0.2)
                    continue
                http.post("/v1/documents", json=document(number)).raise_for_status()

    memory: list[tuple[int, float]] = []
    threads = [threading.Thread(target=sender) for _ in range(4)]
    for thread in threads:
        thread.start()
    with httpx.Client(base_url=url, timeout=120, headers=headers) as http:
        # Listing the queued and processing documents reads the tenant's whole document list: only once
        # everything is sent (the usage counter paces the senders meanwhile).
        while any(thread.is_alive() for thread in threads) or _pending(http):
            done = http.get("/v1/usage").json().get("documents_indexed", 0)
            with lock:
                progress["indexed"] = done
            if pid and done >= 1000 * (len(memory) + 1):
                memory.append((done, resident_mib(pid)))
            elapsed = time.monotonic() - started
            sys.stderr.write(f"\r  preloading: {done}/{documents} documents indexed, {elapsed:.0f} s ")
            time.sleep(1)
    sys.stderr.write("\n")
    return time.monotonic() - started, memory


def _pending(http: httpx.Client) -> bool:
    """Whether any document is still queued or processing. Every page is read: a filtered page can be
    empty and still carry a cursor to matches further on."""
    for status in ("queued", "processing"):
        params: dict[str, Any] = {"status": status, "limit": 100}
        while True:
            page = http.get("/v1/documents", params=params).json()
            if page["documents"]:
                return True
            if not page.get("next_cursor"):
                break
            params["cursor"] = page["next_cursor"]
    return False


LARGE_TENANT_FILE = "bench-load-large-tenant.json"


def reused_large_tenant(state_dir: Path | None, documents: int, kind: str) -> dict[str, Any] | None:
    """The large tenant an earlier run preloaded into `state_dir` with the same documents, if any."""
    kept = state_dir / LARGE_TENANT_FILE if state_dir else None
    if kept is None or not kept.exists():
        return None
    record = json.loads(kept.read_text())
    return record["tenant"] if (record["documents"], record["kind"]) == (documents, kind) else None


def keep_large_tenant(state_dir: Path | None, documents: int, kind: str, tenant: dict[str, Any]) -> None:
    if state_dir:
        (state_dir / LARGE_TENANT_FILE).write_text(json.dumps({"documents": documents, "kind": kind, "tenant": tenant}))


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_phase(seconds: float, workers: int, step: Callable[[httpx.Client, int, random.Random, Samples], None]) -> tuple[Samples, float]:
    samples = Samples()
    deadline = time.monotonic() + seconds

    def worker(index: int) -> None:
        rng = random.Random(index)
        with httpx.Client(timeout=60) as http:
            while time.monotonic() < deadline:
                step(http, index, rng, samples)

    started = time.monotonic()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return samples, time.monotonic() - started


def wait_for_ingests(url: str, keys: list[str], timeout: float = 120) -> None:
    """Until no tenant has a document queued or processing."""
    deadline = time.monotonic() + timeout
    for key in keys:
        with httpx.Client(base_url=url, timeout=60, headers={"Authorization": f"Bearer {key}"}) as http:
            while _pending(http):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"ingestion did not drain within {timeout:.0f} s")
                time.sleep(0.2)


def compare_clients(
    url: str, keys: list[str], pairs: int, seconds: float, clients: int, step: Callable[[httpx.Client, int, random.Random, Samples], None]
) -> None:
    """The mix with 1 client and with `clients`, alternating ABBA on one platform; each phase, then the ratio of the means."""
    rates: dict[int, list[float]] = {1: [], clients: []}
    # Not measured: the first overlapping requests start the worker processes beyond the first (a cold start each,
    # about a second of CPU, as Lambda starts environments), and each worker's first requests of a tenant read its
    # config and index. The pairs compare warm platforms; cold starts are bench/cold_start.py's and the README's.
    warm, warm_elapsed = run_phase(seconds, clients, step)
    errors = sum(warm.errors.values())
    print(f"  warm-up, {clients} clients: {warm.count() / warm_elapsed:.1f} requests/s", flush=True)
    for pair in range(pairs):
        for count in (1, clients) if pair % 2 == 0 else (clients, 1):
            wait_for_ingests(url, keys)
            samples, elapsed = run_phase(seconds, count, step)
            total = samples.count()
            errors += sum(samples.errors.values())
            rates[count].append(total / elapsed)
            print(f"  pair {pair + 1}, {count} client{'s' if count > 1 else ''}: {total / elapsed:.1f} requests/s", flush=True)
    one, many = statistics.fmean(rates[1]), statistics.fmean(rates[clients])
    print(f"\nmixed traffic, {seconds:.0f} s phases: 1 client {', '.join(f'{r:.1f}' for r in rates[1])} requests/s (mean {one:.1f})")
    print(f"{clients} clients: {', '.join(f'{r:.1f}' for r in rates[clients])} requests/s (mean {many:.1f})")
    print(f"{clients} clients against 1: {many / one:.2f}x on the means; errors {errors}")


def report(title: str, samples: Samples, elapsed: float) -> None:
    total = samples.count()
    errors = sum(samples.errors.values())
    print(f"\n{title}: {total} requests in {elapsed:.1f} s = {total / elapsed:.1f} req/s, errors {errors}")
    print(f"  {'kind':<10} {'count':>6} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for kind, values in sorted(samples.latencies.items()):
        print(f"  {kind:<10} {len(values):>6} {percentile(values, 0.5):>8.1f} {percentile(values, 0.99):>8.1f} {samples.errors[kind]:>7}")
    if samples.overhead_ms:
        print(
            f"  query platform overhead (latency - embedding - LLM): p50 {percentile(samples.overhead_ms, 0.5):.1f} ms, "
            f"p99 {percentile(samples.overhead_ms, 0.99):.1f} ms, mean {statistics.fmean(samples.overhead_ms):.1f} ms"
        )
        slowest = sorted(zip(samples.overhead_ms, samples.overhead_at, strict=True), reverse=True)[:5]
        print("  slowest overheads: " + ", ".join(f"{ms:.0f} ms ({at:.1f} s in)" for ms, at in slowest))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", type=int, default=8)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--documents", type=int, default=0, help="also measure one client on a tenant holding this many documents")
    parser.add_argument("--corpus", type=Path, default=None, help="a BEIR dataset whose documents and queries the large tenant gets")
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="raas local's state directory, kept: a later run with the same --documents and --corpus reuses its large tenant",
    )
    parser.add_argument(
        "--only",
        choices=sorted(ONLY_ROLL),
        default=None,
        help="the mixed phase sends this kind of request alone (how each kind scales from 1 client to 8)",
    )
    parser.add_argument(
        "--snapshot-after-writes",
        type=int,
        default=None,
        help="raas local takes a table snapshot after this many journalled writes (default: its own, 20,000): a small number "
        "puts several snapshots inside each phase, to measure what the requests served beside them pay",
    )
    parser.add_argument(
        "--pairs",
        type=int,
        default=0,
        help="run the mix with 1 client and with --workers clients this many times each, alternating, and print the ratio",
    )
    args = parser.parse_args()

    starting = time.monotonic()
    process, url = start_platform(args.state_dir, args.snapshot_after_writes)
    print(f"raas local listening {time.monotonic() - starting:.1f} s after it was started", flush=True)
    try:
        with httpx.Client(base_url=url, timeout=120) as http:
            operator = {"Authorization": f"Bearer {OPERATOR_KEY}"}
            keys = []
            for i in range(args.tenants):
                created = (
                    http.post("/v1/tenants", json={"name": f"load-{i}", "tier": "enterprise"}, headers=operator).raise_for_status().json()
                )
                keys.append(created["api_key"])
            for i, key in enumerate(keys):  # something to find, and the model warmed up
                for j in range(5):
                    text = " ".join(random.Random(i * 10 + j).choices(WORDS, k=40))
                    http.post("/v1/documents", json={"title": f"seed {j}", "text": text}, headers={"Authorization": f"Bearer {key}"})
            http.post("/v1/search", json={"query": "otter"}, headers={"Authorization": f"Bearer {keys[0]}"})
            time.sleep(5)  # let the seeded ingests drain

        def health(client: httpx.Client, _index: int, _rng: random.Random, samples: Samples) -> None:
            started = time.perf_counter()
            ok = client.get(f"{url}/v1/health").status_code == 200
            samples.add("health", time.perf_counter() - started, ok)

        def mixed(client: httpx.Client, index: int, rng: random.Random, samples: Samples) -> None:
            key = keys[(index + rng.randrange(len(keys))) % len(keys)]
            headers = {"Authorization": f"Bearer {key}"}
            roll = ONLY_ROLL[args.only] if args.only else rng.random()
            query = " ".join(rng.choices(WORDS, k=3)) + f" {RUN}-{next(SERIAL)}"  # distinct: no cache hits
            request: tuple[str, str, dict[str, Any] | None]
            if roll < 0.60:
                kind, request = "query", ("POST", "/v1/query", {"query": query})
            elif roll < 0.75:
                kind, request = "search", ("POST", "/v1/search", {"query": query})
            elif roll < 0.85:
                kind, request = "ingest", ("POST", "/v1/documents", {"title": "load", "text": " ".join(rng.choices(WORDS, k=60))})
            elif roll < 0.95:
                kind, request = "config", ("GET", "/v1/config", None)
            else:
                kind, request = "config_w", ("PATCH", "/v1/config", {"top_k": rng.randint(3, 8)})
            method, path, body = request
            started = time.perf_counter()
            response = client.request(method, f"{url}{path}", json=body, headers=headers)
            elapsed = time.perf_counter() - started
            overhead = None
            if kind == "query" and response.status_code == 200:
                timings = response.json().get("timings", {})
                overhead = elapsed * 1000 - timings.get("embedding_ms", 0.0) - timings.get("generation_ms", 0.0)
            samples.add(kind, elapsed, response.status_code < 400, overhead)

        baseline, baseline_elapsed = run_phase(args.seconds, args.workers, health)
        if args.pairs:
            compare_clients(url, keys, args.pairs, args.seconds, args.workers, mixed)
            return
        mix, mix_elapsed = run_phase(args.seconds, args.workers, mixed)
        print(f"raas local, {args.tenants} tenants (enterprise), {args.workers} client threads, {args.seconds:.0f} s per phase")
        if args.only:
            print(f"the mixed phase sends {args.only} requests only")
        report("baseline GET /v1/health", baseline, baseline_elapsed)
        report("mixed traffic", mix, mix_elapsed)
        if args.documents:
            corpus = None
            if args.corpus:
                sys.path.insert(0, str(ROOT))
                from bench.common import load_beir  # only here: it also sets the process up for in-process benchmarks

                corpus = load_beir(args.corpus)
            document = corpus_documents(corpus.documents) if corpus else synthetic_document
            kind = f"documents of {args.corpus.name}" if args.corpus else "one-chunk documents"
            large = reused_large_tenant(args.state_dir, args.documents, kind)
            if large:
                print(f"\n{args.documents} {kind} in one tenant, kept in {args.state_dir} by an earlier run")
            else:
                with httpx.Client(base_url=url, timeout=120, headers=operator) as http:
                    large = http.post("/v1/tenants", json={"name": "large", "tier": "enterprise"}).raise_for_status().json()
                seconds, memory_curve = preload(url, large["api_key"], args.documents, document=document, pid=process.pid)
                keep_large_tenant(args.state_dir, args.documents, kind, large)
                memory = resident_mib(process.pid)
                print(f"\n{args.documents} {kind} in one tenant, indexed in {seconds:.0f} s; raas local resident memory {memory:.0f} MiB")
                print("  resident memory as they were indexed: " + ", ".join(f"{n:,}: {mib:.0f} MiB" for n, mib in memory_curve))
            questions = list(corpus.queries.values()) if corpus else []

            def large_tenant_query(client: httpx.Client, _index: int, rng: random.Random, samples: Samples) -> None:
                words = rng.choice(questions) if questions else " ".join(rng.choices(WORDS, k=3))
                query = f"{words} {RUN}-{next(SERIAL)}"  # distinct: no cache hits
                started = time.perf_counter()
                response = client.post(f"{url}/v1/query", json={"query": query}, headers={"Authorization": f"Bearer {large['api_key']}"})
                elapsed = time.perf_counter() - started
                timings = response.json().get("timings", {}) if response.status_code == 200 else {}
                overhead = elapsed * 1000 - timings.get("embedding_ms", 0.0) - timings.get("generation_ms", 0.0)
                samples.add("query", elapsed, response.status_code == 200, overhead if timings else None)

            # Twice: the first phase includes the tenant's first queries since the start or the preload, while its BM25
            # postings are read beside them (FTS5 answers meanwhile); the second is the steady state.
            for phase in ("first", "second"):
                single, single_elapsed = run_phase(args.seconds, 1, large_tenant_query)
                title = f"one client querying the tenant with {args.documents} documents, {phase} {args.seconds:.0f} s"
                report(title, single, single_elapsed)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)


if __name__ == "__main__":
    main()
