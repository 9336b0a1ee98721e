"""Where the local platform's memory goes as documents arrive: held by Python, or free but kept by malloc?

    python bench/memory.py ../shared/eval/scifact [--documents 1600] [--every 400] [--trivial-embedder]

One process, the real ingest path as `raas local` runs it (its ingest workers, MiniLM unless
`--trivial-embedder`), the corpus's documents in slices of `--every`. After each slice: the resident
set, what glibc's malloc has handed out and not had back ("in use"), and what it has had back but
keeps in its arenas ("free, held"): memory that grows the resident set though nothing uses it. Nothing
trims during the run (this process has no `raas local` scheduler), so the rows are the baseline; at the
end one `malloc_trim(0)` (raas.local.memory, which `raas local` runs every 30 s) shows what trimming
gives back, and what it costs. `python bench/load.py --documents 10000 --corpus DIR` measures `raas
local` itself, trimming on.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ingest_corpus, load_beir, platform  # also isolates from real AWS and puts lambdas/ on the path
from bench.ingest_scaling import TrivialEmbedder, resident_mib


class _MallInfo2(ctypes.Structure):
    # struct mallinfo2 (glibc 2.33+): https://man7.org/linux/man-pages/man3/mallinfo.3.html
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")
    ]


def _mallinfo2() -> _MallInfo2 | None:
    try:
        function = ctypes.CDLL(None).mallinfo2
    except (AttributeError, OSError, TypeError):
        return None
    function.restype = _MallInfo2
    return function()


def malloc_figures() -> str:
    info = _mallinfo2()
    if info is None:
        return "(no mallinfo2: not glibc)"
    mib = 2**20
    return f"in use {(info.uordblks + info.hblkhd) / mib:6.0f} MiB   free, held {info.fordblks / mib:6.0f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--documents", type=int, default=1600)
    parser.add_argument("--every", type=int, default=400)
    parser.add_argument("--trivial-embedder", action="store_true", help="a hashing embedder instead of MiniLM")
    args = parser.parse_args()

    from raas.adapters.embedders import LocalMiniLMEmbedder
    from raas.local.memory import return_free_memory

    items = list(load_beir(args.dataset).documents.items())[: args.documents]
    embedder = TrivialEmbedder() if args.trivial_embedder else LocalMiniLMEmbedder()
    with platform(embedder=embedder) as bench:
        print(f"{'documents':>9}   {'resident':>12}   malloc (glibc)")
        print(f"{0:9d}   {resident_mib():8.0f} MiB   {malloc_figures()}   (platform up, nothing ingested)")
        for start in range(0, len(items), args.every):
            ingest_corpus(bench, dict(items[start : start + args.every]), workers=True)
            gc.collect()
            print(f"{start + len(items[start : start + args.every]):9d}   {resident_mib():8.0f} MiB   {malloc_figures()}", flush=True)
        before, started = resident_mib(), time.perf_counter()
        trimmed = return_free_memory()
        took_ms = (time.perf_counter() - started) * 1000
        if trimmed:
            print(f"one malloc_trim(0): {before:.0f} -> {resident_mib():.0f} MiB resident, in {took_ms:.1f} ms")
        else:
            print("no malloc_trim on this C library: nothing to compare")


if __name__ == "__main__":
    main()
