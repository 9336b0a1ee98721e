"""What the query service returns: answers, search results, citations and history entries.

Each shape is defined once, here. The service builds these models, the answer cache and the query
history store them as their JSON, the handlers return them, and the OpenAPI document references
them (the class names are the published component names, so they stay as they are).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from raas.domain.model import Model
from raas.domain.retrieval import Hit

SNIPPET_CHARS = 300
HISTORY_ANSWER_CHARS = 2000


def snippet(text: str) -> str:
    return text if len(text) <= SNIPPET_CHARS else text[: SNIPPET_CHARS - 1].rstrip() + "…"


class Citation(Model):
    document_id: str
    chunk_id: str
    title: str
    score: float
    snippet: str

    @classmethod
    def of(cls, hit: Hit) -> Citation:
        return cls(
            document_id=hit.document_id, chunk_id=hit.chunk_id, title=hit.title, score=round(hit.score, 6), snippet=snippet(hit.text)
        )


class SearchResult(Citation):
    metadata: dict[str, Any]

    @classmethod
    def of(cls, hit: Hit) -> SearchResult:
        return cls(**Citation.of(hit).model_dump(), metadata=hit.metadata)


class SearchResponse(Model):
    results: list[SearchResult]
    config_version: int


class Usage(Model):
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float


class RetrievalInfo(Model):
    top_k: int
    alpha: float
    reranked: bool
    screened_out: int = Field(description="retrieved chunks left out of the prompt for instruction-like text")


class Timings(Model):
    """The part of latency_ms spent in the embedder and the LLM (both 0 for a cached answer)."""

    embedding_ms: float = 0.0
    generation_ms: float = 0.0


class QueryResponse(Model):
    query_id: str
    answer: str
    citations: list[Citation]
    model: str
    offline: bool = Field(description="true when answered by the offline extractive answerer (no LLM key configured)")
    config_version: int
    usage: Usage
    retrieval: RetrievalInfo
    cached: bool
    latency_ms: float
    timings: Timings = Field(
        default_factory=Timings, description="embedding_ms and generation_ms: the part of latency_ms spent in the embedder and the LLM"
    )


class QueryHistoryEntry(Model):
    """One line of the tenant's query history: the answer cut short, citations as document ids."""

    query_id: str
    at: str = Field(description="when the query was answered, ISO 8601 UTC")
    query: str
    answer: str
    model: str
    citations: list[str] = Field(description="the cited documents' ids")
    usage: Usage
    latency_ms: float
    cached: bool

    @classmethod
    def of(cls, at: str, query: str, response: QueryResponse) -> QueryHistoryEntry:
        return cls(
            query_id=response.query_id,
            at=at,
            query=query,
            answer=response.answer[:HISTORY_ANSWER_CHARS],
            model=response.model,
            citations=[c.document_id for c in response.citations],
            usage=response.usage,
            latency_ms=response.latency_ms,
            cached=response.cached,
        )
