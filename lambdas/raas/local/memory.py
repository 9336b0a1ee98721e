"""Hands the memory the local platform has freed back to the operating system, now and then.

glibc's malloc serves each thread from an arena of its own (up to eight per core on 64-bit Linux,
https://man7.org/linux/man-pages/man3/mallopt.3.html, M_ARENA_MAX) and keeps what a thread frees in
that arena for later requests instead of returning it. `raas local` allocates and frees in many
threads at once (four ingest workers, a thread per HTTP connection, the embedder's tensors of every
size), so its arenas fill with free holes and the resident set grows with every document although
nothing is kept: measured in one process with MiniLM (`python bench/memory.py`), 1,600 SciFact
abstracts left 188 MiB in use by malloc, 164 MiB free but held in arenas, and 792 MiB resident;
one `malloc_trim(0)` brought it to 665 MiB. `malloc_trim` returns every whole free page of every
arena (glibc 2.8 and later: https://man7.org/linux/man-pages/man3/malloc_trim.3.html), and the pages
are faulted in again if malloc reuses them.

Elsewhere (macOS, musl) there is no `malloc_trim` and trimming does nothing; Lambda needs none of
this, since a container's memory ends with it. Nothing in the deployed functions imports it.

The same turn keeps CPython's full garbage collections off the request path (`LongLivedObjects`).
`raas local` is one process that holds every emulated table, object and queue message as Python
objects, so a full collection walks all of them: 266 ms at 5,183 SciFact abstracts, in whichever
request happened to allocate the object that triggered it (the query p99 of `bench/load.py`).
`gc.freeze()` moves every object that has survived so far into a permanent generation that
collections ignore (https://docs.python.org/3/library/gc.html#gc.freeze); a full collection over
everything then runs only when the frozen objects have doubled since the last one, so cyclic garbage
that was frozen is bounded by the live heap, and a heap that stops growing is never walked again.
"""

from __future__ import annotations

import ctypes
import gc
import time
from collections.abc import Callable
from types import ModuleType

from aws_lambda_powertools import Logger

logger = Logger(service="raas")

# Trimming takes each arena's lock in turn (a few milliseconds for hundreds of MiB), so not on every
# request; the scheduler's thread wakes every 5 s and trims on every sixth wake.
TRIM_INTERVAL_SECONDS = 30.0


def _glibc_malloc_trim() -> Callable[[int], int] | None:
    try:
        trim = ctypes.CDLL(None).malloc_trim  # the C library the interpreter runs on
    except (AttributeError, OSError, TypeError):  # not glibc (macOS, musl) or no C library to load (Windows)
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


_MALLOC_TRIM = _glibc_malloc_trim()


def return_free_memory() -> bool:
    """Releases the free pages malloc holds; whether there was a `malloc_trim` to do it."""
    if _MALLOC_TRIM is None:
        return False
    _MALLOC_TRIM(0)  # its result says only whether any memory went back; both are fine
    return True


class LongLivedObjects:
    """Freezes the objects that have survived, and collects everything only when they have doubled."""

    def __init__(self, growth: float = 2.0, collector: ModuleType = gc):
        self.growth = growth
        self.gc = collector
        self.frozen_after_full: int | None = None  # the permanent generation's size after the last full collection

    def settle(self) -> bool:
        """Whether a full collection ran now."""
        self.gc.collect(1)  # the young generations first: short-lived cycles are freed, not frozen
        self.gc.freeze()
        frozen = self.gc.get_freeze_count()
        if self.frozen_after_full is None:  # the first turn: what start-up built is the baseline
            self.frozen_after_full = frozen
            return False
        if frozen < self.frozen_after_full * self.growth:
            return False
        self.gc.unfreeze()
        self.gc.collect()
        self.gc.freeze()
        self.frozen_after_full = self.gc.get_freeze_count()
        return True


class FreeMemoryReturner:
    """Calls `collector.settle` then `trim` at most once per `interval_seconds` (from the local scheduler's thread):
    what a full collection frees goes back to the OS in the same turn."""

    def __init__(
        self,
        interval_seconds: float = TRIM_INTERVAL_SECONDS,
        trim: Callable[[], bool] = return_free_memory,
        collector: LongLivedObjects | None = None,
    ):
        self.interval_seconds = interval_seconds
        self.trim = trim
        self.collector = collector or LongLivedObjects()
        self.next_trim = 0.0

    def trim_if_due(self, monotonic_now: float | None = None) -> bool:
        """Whether memory was handed back now."""
        now = time.monotonic() if monotonic_now is None else monotonic_now
        if now < self.next_trim:
            return False
        self.next_trim = now + self.interval_seconds
        try:
            self.collector.settle()
            return self.trim()
        except Exception:  # the platform runs on; the next turn tries again
            logger.exception("returning free memory failed")
            return False
