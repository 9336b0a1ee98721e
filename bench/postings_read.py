"""How long reading a tenant's BM25 postings keeps the queries beside it from the interpreter.

    python bench/postings_read.py ../shared/eval/scifact [--copies 2] [--runs 3]

The embedded engine reads a stable index's postings on a thread of its own, beside the queries that follow a
preload (raas.adapters.search_embedded, ski rental). A query's embedding gives the interpreter lock up between
the model's operators and waits for it again each time, so what matters is the longest single hold, not the total.
The corpus (taken `--copies` times, as bench/load.py takes SciFact twice to reach 10,000 documents) is indexed
with placeholder vectors; then the postings are read `--runs` times with the codes parsed in one piece (the
baseline: one `split` and one `np.array` over every code, as before) and in batches (`_parse_codes`, now), while
a probe thread sleeps 1 ms at a time and records how late it wakes.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import load_beir  # also puts lambdas/ on the path


def one_piece(per_term: list[str]) -> np.ndarray:
    return np.array(",".join(per_term).split(","), dtype=np.int64)


def probed(read: Callable[[], object]) -> tuple[float, list[float]]:
    """The read's seconds, and each 1-ms sleep's lateness (seconds) on a thread beside it."""
    late: list[float] = []
    done = threading.Event()

    def probe() -> None:
        while not done.is_set():
            started = time.perf_counter()
            time.sleep(0.001)
            late.append(time.perf_counter() - started - 0.001)

    thread = threading.Thread(target=probe)
    thread.start()
    time.sleep(0.1)
    started = time.perf_counter()
    read()
    took = time.perf_counter() - started
    done.set()
    thread.join()
    return took, sorted(late)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--copies", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    from raas.adapters import fts5_bm25
    from raas.adapters.search_embedded import _WEIGHTS, EmbeddedSearch
    from raas.domain.documents import Chunk

    corpus = load_beir(args.corpus)
    with tempfile.TemporaryDirectory() as directory:
        search = EmbeddedSearch(Path(directory), 2)
        tenant = "tenant0000000001"
        chunks = [
            Chunk(chunk_id=f"{doc}-{copy}:0", document_id=f"{doc}-{copy}", title=title, text=text, position=0)
            for copy in range(args.copies)
            for doc, (title, text) in corpus.documents.items()
        ]
        for start in range(0, len(chunks), 1000):
            search.replace(tenant, chunks[start : start + 1000], [[1.0, 0.0]] * len(chunks[start : start + 1000]), [])
        db = sqlite3.connect(search._path(tenant))
        print(f"{len(chunks):,} documents of {args.corpus.name} (one chunk each), postings read {args.runs} times each way")
        print(f"{'parse':<10}{'read s':>8}{'probe late p50 ms':>19}{'p99 ms':>9}{'max ms':>9}{'wakes > 5 ms late':>19}")
        parse_codes = fts5_bm25._parse_codes
        for _ in range(args.runs):
            for name, parse in (("one piece", one_piece), ("batches", parse_codes)):
                fts5_bm25._parse_codes = parse
                took, late = probed(lambda: fts5_bm25.read_postings(db, "chunks_fts", _WEIGHTS, 0))
                over = sum(1 for x in late if x > 0.005)
                p50, p99 = late[len(late) // 2] * 1000, late[int(len(late) * 0.99)] * 1000
                print(f"{name:<10}{took:>8.2f}{p50:>19.2f}{p99:>9.1f}{late[-1] * 1000:>9.1f}{over:>19}")
        fts5_bm25._parse_codes = parse_codes
        db.close()
        search.close()


if __name__ == "__main__":
    main()
