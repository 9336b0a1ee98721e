"""Ingest throughput through the whole path, beside the raw embedder on the same texts.

    python bench/ingest_throughput.py ../shared/eval/scifact [--documents 500]

The whole path is API service -> S3 (moto) -> S3 event -> SQS -> ingest handler -> extract ->
chunk -> embed (offline MiniLM) -> embedded index -> DynamoDB status and usage. It runs twice in
one process, into two tenants: one document at a time (the queue drained in this thread, as one
Lambda container), and with the pump's ingest workers, as `raas local` runs. The baseline
embeds the very chunk texts that ingestion produced, in batches of 128, with the torch thread count
the platform uses (one core less than the machine, so the platform's own Python keeps a core), so the
difference is the platform's own overhead; the same texts on every core are printed beside it.
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
        other, _key, _secret = services().tenant_service.create("bench workers", Tier(bench.tier))
        with_workers, chunks_again = ingest_corpus(Platform(other.tenant_id, bench.tier, bench.pump), documents, workers=True)
        if chunks_again != chunks:
            raise RuntimeError(f"the two runs indexed {chunks} and {chunks_again} chunks")
        texts = [f"{chunk.title}\n{chunk.text}" for chunk in services().search_index.export_chunks(bench.tenant_id)]  # type: ignore[attr-defined]
        raw = _time_raw(model, texts)
        every_core = _time_raw(LocalMiniLMEmbedder(threads=os.cpu_count() or 1), texts)
        model.embed(["back to the platform's thread count"])
    print(f"documents: {len(documents)}, chunks: {chunks} (the baseline embeds the same {len(texts)} chunk texts)")
    print(f"{'':<48}{'seconds':>9}{'docs/s':>9}{'chunks/s':>10}{'x raw':>8}")
    rows = [
        ("whole path, one document at a time", one_at_a_time),
        ("whole path, raas local's ingest workers", with_workers),
    ]
    for label, seconds in rows:
        print(f"{label:<48}{seconds:>9.1f}{len(documents) / seconds:>9.1f}{chunks / seconds:>10.1f}{raw / seconds:>8.2f}")
    print(f"{'raw embedder, batches of 128 (baseline)':<48}{raw:>9.1f}{'':>9}{len(texts) / raw:>10.1f}{1:>8.2f}")
    label = "raw embedder on every core (for comparison)"
    print(f"{label:<48}{every_core:>9.1f}{'':>9}{len(texts) / every_core:>10.1f}{raw / every_core:>8.2f}")
    print(f"(the platform's embedder uses {threads} torch thread(s) of {os.cpu_count()} cores: RAAS_EMBEDDER_THREADS)")
    print("target: the whole path at 0.80x the raw embedder's chunks/s or better")


def _time_raw(model: Any, texts: list[str]) -> float:
    model.embed(["warm up at this thread count"])
    started = time.perf_counter()
    for start in range(0, len(texts), 128):
        model.embed(texts[start : start + 128])
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
