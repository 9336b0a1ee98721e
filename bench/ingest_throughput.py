"""Ingest throughput through the whole path, beside the raw embedder on the same texts.

    python bench/ingest_throughput.py ../shared/eval/scifact [--documents 500]

The whole path is API service -> S3 (moto) -> S3 event -> SQS -> ingest handler -> extract ->
chunk -> embed (offline MiniLM) -> embedded index -> DynamoDB status and usage. The baseline
embeds the very chunk texts that ingestion produced, in the same process, so the difference
is the platform's own overhead.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ingest_corpus, load_beir, platform


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--documents", type=int, default=500)
    args = parser.parse_args()

    from raas.bootstrap import services

    corpus = load_beir(args.dataset)
    documents = dict(list(corpus.documents.items())[: args.documents])
    with platform() as bench:
        embedder = services().embedder
        embedder.embed(["warm up the model before timing"])
        seconds, chunks = ingest_corpus(bench, documents)
        texts = [f"{chunk.title}\n{chunk.text}" for chunk in services().search_index.export_chunks(bench.tenant_id)]  # type: ignore[attr-defined]
        started = time.perf_counter()
        for start in range(0, len(texts), 128):
            embedder.embed(texts[start : start + 128])
        raw = time.perf_counter() - started
    print(f"documents: {len(documents)}, chunks: {chunks} (the baseline embeds the same {len(texts)} chunk texts)")
    print(f"{'':<28}{'seconds':>9}{'docs/s':>9}{'chunks/s':>10}")
    print(f"{'whole ingest path':<28}{seconds:>9.1f}{len(documents) / seconds:>9.1f}{chunks / seconds:>10.1f}")
    print(f"{'raw embedder (baseline)':<28}{raw:>9.1f}{'':>9}{len(texts) / raw:>10.1f}")
    print(f"platform overhead per document: {(seconds - raw * chunks / max(len(texts), 1)) * 1000 / len(documents):.1f} ms")


if __name__ == "__main__":
    main()
