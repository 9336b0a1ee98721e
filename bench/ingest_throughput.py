"""Ingest throughput through the whole path, beside the raw embedder on the same texts.

    python bench/ingest_throughput.py ../shared/eval/scifact [--documents 500] [--threads N]

The whole path is API service -> S3 (moto) -> S3 event -> SQS -> ingest handler -> extract ->
chunk -> embed (offline MiniLM) -> embedded index -> DynamoDB status and usage. It runs twice in
one process, into two tenants: one document at a time (the queue drained in this thread, as one
Lambda container), and with the pump's ingest workers, as `raas local` runs. The baseline embeds
the very chunk texts that ingestion produced, with the torch thread count the platform uses (one
core less than the machine, so the platform's own Python keeps a core, unless --threads says
otherwise), so the difference is the platform's own overhead. The raw embedder is timed two ways,
in batches of 128 and one call per document as ingestion makes them (on some machines the short
per-document batches are the faster: less padding), each twice (between the two whole-path runs
and after them), and the fastest of the four is the baseline: neither a drifting machine nor a
batch size can flatter the whole path. The same texts on every core are printed beside it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Platform, ingest_corpus, load_beir, platform


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--documents", type=int, default=500)
    parser.add_argument("--threads", type=int, default=None, help="the embedder's torch threads (default: RAAS_EMBEDDER_THREADS)")
    args = parser.parse_args()

    from raas.adapters.embedders import LocalMiniLMEmbedder
    from raas.bootstrap import services
    from raas.domain.catalog import Tier

    corpus = load_beir(args.dataset)
    documents = dict(list(corpus.documents.items())[: args.documents])
    model = LocalMiniLMEmbedder(threads=args.threads)  # the platform's thread count unless --threads (Settings.embedder_threads)
    model.embed(["warm up the model before timing"])
    import torch

    threads = torch.get_num_threads()
    with platform(embedder=model) as bench:
        one_at_a_time, chunks = ingest_corpus(bench, documents)
        by_document: dict[str, list[str]] = {}
        for chunk in services().search_index.export_chunks(bench.tenant_id):  # type: ignore[attr-defined]
            by_document.setdefault(chunk.document_id, []).append(f"{chunk.title}\n{chunk.text}")
        groupings = {
            "batches of 128": _batches([text for texts in by_document.values() for text in texts], 128),
            "one call per document": list(by_document.values()),
        }
        raw_runs: dict[str, list[float]] = {name: [_time_raw(model, batches)] for name, batches in groupings.items()}
        other, _key, _secret = services().tenant_service.create("bench workers", Tier(bench.tier))
        with_workers, chunks_again = ingest_corpus(Platform(other.tenant_id, bench.tier, bench.pump), documents, workers=True)
        if chunks_again != chunks:
            raise RuntimeError(f"the two runs indexed {chunks} and {chunks_again} chunks")
        for name, batches in groupings.items():
            raw_runs[name].append(_time_raw(model, batches))
        raw = min(min(runs) for runs in raw_runs.values())
        every_core = _time_raw(LocalMiniLMEmbedder(threads=os.cpu_count() or 1), groupings["batches of 128"])
        model.embed(["back to the platform's thread count"])
    texts = sum(len(t) for t in by_document.values())
    print(f"documents: {len(documents)}, chunks: {chunks} (the baseline embeds the same {texts} chunk texts)")
    print(f"{'':<48}{'seconds':>9}{'docs/s':>9}{'chunks/s':>10}{'x raw':>8}")
    rows = [
        ("whole path, one document at a time", one_at_a_time),
        ("whole path, raas local's ingest workers", with_workers),
    ]
    for label, seconds in rows:
        print(f"{label:<48}{seconds:>9.1f}{len(documents) / seconds:>9.1f}{chunks / seconds:>10.1f}{raw / seconds:>8.2f}")
    print(f"{'raw embedder, fastest run (baseline)':<48}{raw:>9.1f}{'':>9}{texts / raw:>10.1f}{1:>8.2f}")
    for name, runs in raw_runs.items():
        label = f"  raw, {name} ({', '.join(f'{r:.1f}' for r in runs)} s)"
        print(f"{label:<48}{min(runs):>9.1f}{'':>9}{texts / min(runs):>10.1f}")
    label = "raw embedder on every core (for comparison)"
    print(f"{label:<48}{every_core:>9.1f}{'':>9}{texts / every_core:>10.1f}{raw / every_core:>8.2f}")
    print(f"(the platform's embedder uses {threads} torch thread(s) of {os.cpu_count()} cores: RAAS_EMBEDDER_THREADS)")
    print("target: the whole path at 0.80x the raw embedder's chunks/s or better")


def _batches(texts: list[str], size: int) -> list[list[str]]:
    return [texts[start : start + size] for start in range(0, len(texts), size)]


def _time_raw(model: Any, batches: list[list[str]]) -> float:
    model.embed(["warm up at this thread count"])
    started = time.perf_counter()
    for batch in batches:
        model.embed(batch)
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
