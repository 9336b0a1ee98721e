"""Ingest throughput through the whole path, beside the raw embedder on the same texts.

    python bench/ingest_throughput.py ../shared/eval/scifact [--documents 500] [--threads N]

The whole path is API service -> S3 (moto) -> S3 event -> SQS -> ingest handler -> extract ->
chunk -> embed (offline MiniLM) -> embedded index -> DynamoDB status and usage. It runs twice in
one process, into two tenants: one batch at a time (the queue drained in this thread, as one
Lambda container takes the event source's batches of INGEST_BATCH_SIZE messages), and with the
pump's ingest workers, as `raas local` runs. The platform's embedder uses its own torch thread
count (one core less than the machine, unless --threads says otherwise) and runs as many
inferences at once as the cores hold.

The baseline is the raw embedder at its fastest on this machine, on the very chunk texts that
ingestion produced, so the difference is the platform's own cost: every core in one call at a
time, grouped three ways (batches of 128, one call per document, one call per INGEST_BATCH_SIZE
documents as ingestion makes them), and one single-thread stream per core side by side, each
timed twice (between the two whole-path runs and after them); the fastest of the eight is the
baseline, so neither a drifting machine, a batch size nor a thread layout flatters the whole path.

The workers' run is also shown as CPU: how many of the cores were busy, how much of the CPU went into
the model and how much was the platform's, the AWS requests a document made (with moto in process,
botocore and moto's emulation are most of the platform's CPU), and the ratio the same CPU would give
with every core busy: the ceiling of the whole path on this machine until the platform costs less.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import AwsRequests, Platform, ingest_corpus, load_beir, platform

T = TypeVar("T")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--documents", type=int, default=500)
    parser.add_argument("--threads", type=int, default=None, help="the embedder's torch threads (default: RAAS_EMBEDDER_THREADS)")
    args = parser.parse_args()

    from raas.adapters.embedders import LocalMiniLMEmbedder
    from raas.bootstrap import services
    from raas.domain.catalog import Tier
    from raas.services.ingest import INGEST_BATCH_SIZE

    corpus = load_beir(args.dataset)
    documents = dict(list(corpus.documents.items())[: args.documents])
    model = LocalMiniLMEmbedder(threads=args.threads)  # the platform's thread count unless --threads (Settings.embedder_threads)
    model.embed(["warm up the model before timing"])
    import torch

    threads = torch.get_num_threads()
    timed = _TimedEmbedder(model)
    with platform(embedder=timed) as bench:
        one_at_a_time, chunks = ingest_corpus(bench, documents)
        embedding_inside = timed.seconds
        by_document: dict[str, list[str]] = {}
        for chunk in services().search_index.export_chunks(bench.tenant_id):  # type: ignore[attr-defined]
            by_document.setdefault(chunk.document_id, []).append(f"{chunk.title}\n{chunk.text}")
        per_batch = [[text for texts in group for text in texts] for group in _batches(list(by_document.values()), INGEST_BATCH_SIZE)]
        every_core = LocalMiniLMEmbedder(threads=os.cpu_count() or 1)
        single_thread, streams = LocalMiniLMEmbedder(threads=1), os.cpu_count() or 1
        raw_ways: dict[str, Callable[[], float]] = {
            "every core, batches of 128": lambda: _time_raw(every_core, _batches([t for ts in by_document.values() for t in ts], 128)),
            "every core, one call per document": lambda: _time_raw(every_core, list(by_document.values())),
            f"every core, one call per {INGEST_BATCH_SIZE} documents": lambda: _time_raw(every_core, per_batch),
            f"{streams} single-thread streams side by side": lambda: _time_side_by_side(single_thread, per_batch, streams),
        }
        raw_runs: dict[str, list[float]] = {name: [way()] for name, way in raw_ways.items()}
        other, _key, _secret = services().tenant_service.create("bench workers", Tier(bench.tier))
        requests, cpu_before, model_cpu_before = AwsRequests(), time.process_time(), timed.cpu_seconds
        with requests.counting():
            with_workers, chunks_again = ingest_corpus(
                Platform(other.tenant_id, bench.tier, bench.pump), documents, workers=True, expect_chunks=chunks
            )
        workers_cpu, workers_model_cpu = time.process_time() - cpu_before, timed.cpu_seconds - model_cpu_before
        if chunks_again != chunks:
            raise RuntimeError(f"the two runs indexed {chunks} and {chunks_again} chunks")
        for name, way in raw_ways.items():
            raw_runs[name].append(way())
        raw = min(min(runs) for runs in raw_runs.values())
    texts = sum(len(t) for t in by_document.values())
    print(f"documents: {len(documents)}, chunks: {chunks} (the baseline embeds the same {texts} chunk texts)")
    print(f"{'':<48}{'seconds':>9}{'docs/s':>9}{'chunks/s':>10}{'x raw':>8}")
    rows = [
        (f"whole path, one batch ({INGEST_BATCH_SIZE}) at a time", one_at_a_time),
        ("whole path, raas local's ingest workers", with_workers),
    ]
    for label, seconds in rows:
        print(f"{label:<48}{seconds:>9.1f}{len(documents) / seconds:>9.1f}{chunks / seconds:>10.1f}{raw / seconds:>8.2f}")
    platform_ms = (one_at_a_time - embedding_inside) / len(documents) * 1000
    print(f"  (one batch at a time: {embedding_inside:.1f} s embedding, the platform's own time {platform_ms:.1f} ms a document)")
    model_cpu = workers_model_cpu if threads == 1 else None
    _print_where_the_workers_time_went(len(documents), with_workers, workers_cpu, model_cpu, requests, raw)
    print(f"{'raw embedder, fastest run (baseline)':<48}{raw:>9.1f}{'':>9}{texts / raw:>10.1f}{1:>8.2f}")
    for name, runs in raw_runs.items():
        label = f"  raw, {name} ({', '.join(f'{r:.1f}' for r in runs)} s)"
        print(f"{label:<48}{min(runs):>9.1f}{'':>9}{texts / min(runs):>10.1f}")
    print(f"(the platform's embedder: {threads} torch thread(s) a call, {os.cpu_count()} cores; RAAS_EMBEDDER_THREADS)")
    print("target: the whole path at 0.80x the raw embedder's chunks/s or better")


def _print_where_the_workers_time_went(
    documents: int, seconds: float, cpu: float, model_cpu: float | None, requests: AwsRequests, raw: float
) -> None:
    """The workers' run as CPU: how full the cores were, the model's share, the platform's (most of it its AWS
    requests, botocore and moto's emulation in this process), and the ratio the whole path would reach with
    every core busy for the same CPU, which no scheduling can beat."""
    cores = os.cpu_count() or 1
    made = sum(requests.count.values())
    print(f"  (ingest workers: {cpu / seconds:.2f} of {cores} cores busy, {cpu:.1f} s of CPU", end="")
    if model_cpu is not None:
        platform_cpu = cpu - model_cpu
        per_document_ms = platform_cpu / documents * 1000
        print(f": {model_cpu:.1f} s inside the embedder, {platform_cpu:.1f} s the platform's, {per_document_ms:.0f} ms a document", end="")
    print(f"; at every core busy for that CPU the whole path would reach {raw / (cpu / cores):.2f}x)")
    per_document = ", ".join(f"{name} {count / documents:.2f}" for name, count in requests.count.most_common())
    each_ms = requests.cpu_seconds / max(made, 1) * 1000
    print(f"  ({made / documents:.1f} AWS requests a document, {each_ms:.1f} ms of CPU each: {per_document})")


class _TimedEmbedder:
    """The model, with the time spent in it added up: the whole path's time less this is the platform's own.
    `cpu_seconds` is the calling threads' CPU inside the model, which is all of the model's with one torch
    thread a call (more threads run in OpenMP's own threads, which it does not see)."""

    def __init__(self, model: Any):
        self.model = model
        self.name = model.name
        self.dimension = model.dimension
        self.seconds = 0.0
        self.cpu_seconds = 0.0
        self._lock = threading.Lock()

    def embed(self, texts: list[str]) -> list[list[float]]:
        started, cpu_started = time.perf_counter(), time.thread_time()
        try:
            return self.model.embed(texts)
        finally:
            with self._lock:
                self.seconds += time.perf_counter() - started
                self.cpu_seconds += time.thread_time() - cpu_started


def _batches(items: list[T], size: int) -> list[list[T]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


def _time_side_by_side(model: Any, batches: list[list[str]], streams: int) -> float:
    """`streams` threads embedding their share of the batches at once (each call single-threaded)."""
    model.embed(["warm up at this thread count"])
    workers = [threading.Thread(target=lambda share=batches[i::streams]: [model.embed(b) for b in share]) for i in range(streams)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return time.perf_counter() - started


def _time_raw(model: Any, batches: list[list[str]]) -> float:
    model.embed(["warm up at this thread count"])
    started = time.perf_counter()
    for batch in batches:
        model.embed(batch)
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
