"""What the benchmarks share: a whole platform in-process (moto + embedded engine + real MiniLM),
BEIR loading, and the real ingest path (DocumentService -> S3 -> SQS -> ingest handler)."""

from __future__ import annotations

import csv
import json
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "lambdas"))

from raas.local.aws import isolate_from_real_aws

if TYPE_CHECKING:
    from raas.bootstrap import Services

isolate_from_real_aws()
os.environ.update({"POWERTOOLS_LOG_LEVEL": "ERROR", "POWERTOOLS_METRICS_DISABLED": "true"})


@dataclass
class Corpus:
    documents: dict[str, tuple[str, str]]  # id -> (title, text)
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


def load_beir(directory: Path, max_documents: int | None = None) -> Corpus:
    documents: dict[str, tuple[str, str]] = {}
    with (directory / "corpus.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line)
            documents[row["_id"]] = (row.get("title") or row["_id"], row["text"])
    queries = {}
    with (directory / "queries.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line)
            queries[row["_id"]] = row["text"]
    qrels: dict[str, dict[str, int]] = {}
    for path in sorted((directory / "qrels").glob("*.tsv")):
        with path.open(encoding="utf-8") as rows:
            for row in csv.DictReader(rows, delimiter="\t"):
                qrels.setdefault(row["query-id"], {})[row["corpus-id"]] = int(row["score"])
    if max_documents is not None:
        # keep every judged document, then fill up to the limit
        judged = {d for rel in qrels.values() for d in rel}
        keep = [d for d in documents if d in judged] + [d for d in documents if d not in judged]
        documents = {d: documents[d] for d in keep[:max_documents]}
        qrels = {q: rel for q, rel in qrels.items() if set(rel) <= set(documents)}
    queries = {q: t for q, t in queries.items() if q in qrels}
    return Corpus(documents, queries, qrels)


class MemoEmbedder:
    """Remembers vectors by text so repeated texts (the same query at five alphas) embed once."""

    def __init__(self, inner: Any):
        self.inner = inner
        self.name = inner.name
        self.dimension = inner.dimension
        self.memo: dict[str, list[float]] = {}

    def embed(self, texts: list[str]) -> list[list[float]]:
        missing = list(dict.fromkeys(t for t in texts if t not in self.memo))
        if missing:
            self.memo.update(zip(missing, self.inner.embed(missing), strict=True))
        return [self.memo[t] for t in texts]


class AwsRequests:
    """The AWS requests made while it is open (every boto3 client's calls, by service and operation) and the
    CPU time spent in them by the calling threads: with moto in process, that is botocore and moto's emulation
    together, the platform's own cost of talking to AWS here."""

    def __init__(self) -> None:
        self.count: Counter[str] = Counter()
        self.cpu_seconds = 0.0
        self._lock = threading.Lock()

    @contextmanager
    def counting(self) -> Iterator[AwsRequests]:
        import botocore.client

        make_api_call = botocore.client.BaseClient._make_api_call  # type: ignore[attr-defined]

        def counted(client: Any, operation: str, params: dict[str, Any]) -> Any:
            started = time.thread_time()
            try:
                return make_api_call(client, operation, params)
            finally:
                spent = time.thread_time() - started
                with self._lock:
                    self.count[f"{client.meta.service_model.service_name}:{operation}"] += 1
                    self.cpu_seconds += spent

        botocore.client.BaseClient._make_api_call = counted  # type: ignore[attr-defined]
        try:
            yield self
        finally:
            botocore.client.BaseClient._make_api_call = make_api_call  # type: ignore[attr-defined]


@dataclass
class Platform:
    tenant_id: str
    tier: Any
    pump: Any


@contextmanager
def local_aws(prefix: str, *, patched: bool = True, **overrides: Any) -> Iterator[Services]:
    """moto in process with the platform's tables, bucket and queues, a scratch search directory and no
    answer cache, and a container of services installed (the local bus and `overrides` passed in);
    `patched` installs raas.local.moto_patches as `raas local` does (transactions cost what they
    touch), `patched=False` shows moto as it is."""
    from moto import mock_aws

    from raas.bootstrap import bootstrap, install, uninstall
    from raas.local.aws import ensure_resources
    from raas.local.bus import LocalEventBus
    from raas.settings import Settings

    if patched:
        from raas.local import moto_patches

        moto_patches.install()
    with tempfile.TemporaryDirectory(prefix=prefix) as scratch, mock_aws():
        os.environ["RAAS_SEARCH_DIR"] = scratch
        os.environ["RAAS_RESPONSE_CACHE_TTL_SECONDS"] = "0"
        os.environ["RAAS_INGEST_QUEUE_URL"] = ensure_resources()
        yield install(bootstrap(Settings.from_env(), event_publisher=LocalEventBus(), **overrides))
        uninstall()


@contextmanager
def platform(tier: str = "enterprise", **overrides: Any) -> Iterator[Platform]:
    from raas.domain.catalog import Tier
    from raas.handlers import ingest
    from raas.local.events import QueuePump

    with local_aws("raas-bench-", **overrides) as services:
        tenant, _key, _secret = services.tenant_service.create("bench", Tier(tier))
        pump = QueuePump(os.environ["RAAS_INGEST_QUEUE_URL"], ingest.handler, wait_seconds=0)
        yield Platform(tenant.tenant_id, Tier(tier), pump)


def _unfinished(service: Any, tenant_id: str, statuses: tuple[Any, ...]) -> bool:
    """Whether any document has one of `statuses`. Every page is read: a filtered DynamoDB query can
    return an empty page and a cursor while matches remain further on."""
    for status in statuses:
        cursor = None
        while True:
            page, cursor = service.list(tenant_id, status, 100, cursor)
            if page:
                return True
            if not cursor:
                break
    return False


def ingest_corpus(
    bench: Platform, documents: dict[str, tuple[str, str]], batch: int = 50, *, workers: bool = False, expect_chunks: int = 0
) -> tuple[float, int]:
    """Sends every document through the real ingest path; returns (seconds, chunks indexed).

    By default the queue is drained in this thread after every `batch` documents (one batch at a
    time, as one Lambda container). With `workers`, the pump runs as `raas local` runs it: its ingest
    workers take documents while they are still being accepted; `expect_chunks`, when known (from an
    earlier run of the same documents), lets the wait for the last of them cost next to nothing."""
    from raas.bootstrap import services
    from raas.domain.documents import DocumentStatus
    from raas.handlers import ingest
    from raas.local.events import QueuePump
    from raas.services.documents import NewDocument

    service = services().document_service
    already = services().document_store.stats(bench.tenant_id)["documents"]  # from earlier calls on the same tenant
    pump = QueuePump(bench.pump.queue_url, ingest.handler, wait_seconds=1) if workers else None
    started = time.perf_counter()
    if pump:
        pump.start()
    pending = ingested = 0
    for beir_id, (title, text) in documents.items():
        service.create_inline(bench.tenant_id, bench.tier, NewDocument(title, text.encode(), "text/plain", {"beir_id": beir_id}, None))
        pending += 1
        if pending >= batch:
            if not pump:
                bench.pump.drain()
            pending = 0
            ingested += batch
            elapsed = time.perf_counter() - started
            left = elapsed / ingested * (len(documents) - ingested)
            sys.stderr.write(f"\r  accepted: {ingested}/{len(documents)} documents, {elapsed:.0f} s, ~{left:.0f} s left ")
    if pump:
        # The benchmark's own polling takes the platform's cores: listing documents by status reads the
        # tenant's whole partition through moto (about 70 ms at 300 documents) and moto's
        # GetQueueAttributes walks every message (about 6 ms). So the index's chunk count (one SQLite
        # count) is watched until it reaches `expect_chunks`, then the queue, and the statuses only once
        # the queue holds nothing, visible or in flight.
        working, polls = (DocumentStatus.QUEUED, DocumentStatus.PROCESSING), 0
        while True:
            chunks_so_far = services().search_index.count(bench.tenant_id)  # type: ignore[attr-defined]
            settled = chunks_so_far >= expect_chunks and not bench.pump.holds_messages(in_flight=True)
            if settled and not _unfinished(service, bench.tenant_id, working):
                break
            polls += 1
            if polls % 10 == 0:
                sys.stderr.write(f"\r  indexing: {chunks_so_far} chunks so far, {time.perf_counter() - started:.0f} s ")
            # Once the expected chunks are in, only the last batch's marks remain (tens of ms): a coarse
            # sleep here would add up to its length to the measured time (0.5 s did, 2-3 % of a 300-document run).
            time.sleep(0.1 if chunks_so_far < expect_chunks else 0.02 if expect_chunks else 0.5)
        seconds = time.perf_counter() - started
        pump.stop()  # not timed: its read-ahead thread may be in a long poll of up to a second
    else:
        bench.pump.drain()
        seconds = time.perf_counter() - started
    sys.stderr.write("\n")
    stats = services().document_store.stats(bench.tenant_id)
    chunks = services().search_index.count(bench.tenant_id)  # type: ignore[attr-defined]
    if stats["documents"] != already + len(documents):
        raise RuntimeError(f"expected {already + len(documents)} documents, have {stats['documents']}")
    return seconds, chunks
