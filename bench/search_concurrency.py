"""The embedded engine's cost a query, from one thread and from 8 at once, with numpy's BLAS threads as loaded
and then limited to one, as `raas local` runs it (raas.local.server.limit_blas_threads); both in the same run.

    python bench/search_concurrency.py ../shared/eval/scifact [--documents 2000] [--queries 300] [--rounds 3]

The index holds the corpus's first N abstracts (one chunk each, text and title as ingested; the vectors are random:
a matrix product costs the same whatever the numbers). A query is one lexical (BM25) and one semantic search, as
hybrid retrieval makes; the queries are the dataset's. Prints, a query, the wall time (elapsed over queries, so
with 8 threads it is the inverse of the throughput) and the process's CPU time.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "lambdas"))

from raas.adapters.search_embedded import EmbeddedSearch
from raas.domain.documents import Chunk

TENANT = "t0123456789abcde"


def read_jsonl(path: Path, limit: int) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if len(rows) == limit:
                break
            rows.append(json.loads(line))
    return rows


def build(directory: Path, corpus: list[dict[str, str]]) -> tuple[EmbeddedSearch, list[float]]:
    engine = EmbeddedSearch(directory, 384)
    vectors = np.random.default_rng(0).standard_normal((len(corpus), 384))
    chunks = [
        Chunk(chunk_id=f"d{n:015d}:00000", document_id=f"d{n:015d}", title=row.get("title", ""), text=row["text"], position=0)
        for n, row in enumerate(corpus)
    ]
    for start in range(0, len(chunks), 100):
        engine.replace(TENANT, chunks[start : start + 100], vectors[start : start + 100].tolist(), [])
    return engine, np.random.default_rng(1).standard_normal(384).tolist()


def per_query(engine: EmbeddedSearch, vector: list[float], queries: list[str], threads: int) -> tuple[float, float]:
    """(wall ms, CPU ms) a query with `threads` threads sharing the queries."""

    def work(mine: list[str]) -> None:
        for query in mine:
            engine.lexical(TENANT, query, 10, [])
            engine.semantic(TENANT, vector, 10, [])

    workers = [threading.Thread(target=work, args=(queries[i::threads],)) for i in range(threads)]
    wall, cpu = time.perf_counter(), time.process_time()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return (time.perf_counter() - wall) * 1000 / len(queries), (time.process_time() - cpu) * 1000 / len(queries)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--documents", type=int, default=2000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    corpus = read_jsonl(args.dataset / "corpus.jsonl", args.documents)
    queries = [row["text"] for row in read_jsonl(args.dataset / "queries.jsonl", args.queries)]
    pools = [pool for pool in threadpool_info() if pool["user_api"] == "blas"]
    blas = [f"{pool['internal_api']} {pool['version']}, {pool['num_threads']} threads" for pool in pools]
    print(f"{len(corpus)} documents, {len(queries)} queries, {args.rounds} rounds; BLAS as loaded: {'; '.join(blas) or 'none found'}")
    with tempfile.TemporaryDirectory() as directory:
        engine, vector = build(Path(directory), corpus)
        per_query(engine, vector, queries[:20], 1)  # vectors and postings in memory before anything is timed
        for label, limit in (("BLAS threads as loaded (baseline)", None), ("one BLAS thread (raas local)", 1)):
            with threadpool_limits(limits=limit, user_api="blas"):
                for _ in range(args.rounds):
                    alone, together = per_query(engine, vector, queries, 1), per_query(engine, vector, queries, 8)
                    print(
                        f"{label:34} 1 thread: {alone[0]:5.2f} ms, CPU {alone[1]:5.2f} ms a query | "
                        f"8 threads: {together[0]:5.2f} ms, CPU {together[1]:5.2f} ms a query"
                    )
        engine.close()


if __name__ == "__main__":
    main()
