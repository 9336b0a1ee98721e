"""Rerankers applied to the fused candidates.

- `BedrockReranker` (cloud): Amazon Bedrock's Rerank API (Amazon Rerank or Cohere Rerank
  cross-encoders) through bedrock-agent-runtime.
- `SentenceMaxSimReranker` (local): no cross-encoder model can be installed from the package
  registries without a run-time download, so the local reranker rescores each candidate by
  its best-matching sentence under the offline MiniLM bi-encoder, mixed with its chunk-level
  similarity. Its effect is measured in bench/retrieval_eval.py.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import numpy as np

from raas.domain.errors import ServiceUnavailable
from raas.domain.ports import Embedder
from raas.domain.retrieval import Hit

_SENTENCE = re.compile(r"(?<=[.!?])\s+")
MAX_SENTENCES_PER_HIT = 24


class SentenceMaxSimReranker:
    name = "local-sentence-maxsim"

    def __init__(self, embedder: Embedder, sentence_weight: float = 0.5):
        self.embedder = embedder
        self.sentence_weight = sentence_weight

    def rerank(self, query: str, hits: list[Hit], top_n: int) -> list[Hit]:
        if not hits:
            return []
        sentences: list[str] = []
        owners: list[int] = []
        for index, hit in enumerate(hits):
            parts = [s for s in _SENTENCE.split(hit.text) if s.strip()][:MAX_SENTENCES_PER_HIT] or [hit.text]
            sentences.extend(parts)
            owners.extend([index] * len(parts))
        vectors = np.asarray(self.embedder.embed([query, *[h.text for h in hits], *sentences]), dtype=np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True) + 1e-12
        query_vector, chunk_vectors, sentence_vectors = vectors[0], vectors[1 : 1 + len(hits)], vectors[1 + len(hits) :]
        chunk_scores = chunk_vectors @ query_vector
        sentence_scores = sentence_vectors @ query_vector
        best = np.full(len(hits), -1.0, dtype=np.float32)
        np.maximum.at(best, np.asarray(owners), sentence_scores)
        scores = self.sentence_weight * best + (1 - self.sentence_weight) * chunk_scores
        ranked = sorted(range(len(hits)), key=lambda i: (-float(scores[i]), hits[i].chunk_id))[:top_n]
        return [replace(hits[i], score=float(scores[i])) for i in ranked]


class BedrockReranker:
    name = "bedrock-rerank"

    def __init__(self, client: Any, model_arn: str):
        self.client = client
        self.model_arn = model_arn

    def rerank(self, query: str, hits: list[Hit], top_n: int) -> list[Hit]:
        if not hits:
            return []
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self.client.rerank(
                queries=[{"type": "TEXT", "textQuery": {"text": query}}],
                sources=[{"type": "INLINE", "inlineDocumentSource": {"type": "TEXT", "textDocument": {"text": h.text}}} for h in hits],
                rerankingConfiguration={
                    "type": "BEDROCK_RERANKING_MODEL",
                    "bedrockRerankingConfiguration": {
                        "numberOfResults": min(top_n, len(hits)),
                        "modelConfiguration": {"modelArn": self.model_arn},
                    },
                },
            )
        except (ClientError, BotoCoreError) as exc:
            raise ServiceUnavailable("the reranker is unavailable; try again or query without rerank", code="rerank_unavailable") from exc
        return [replace(hits[r["index"]], score=float(r["relevanceScore"])) for r in response["results"]]
