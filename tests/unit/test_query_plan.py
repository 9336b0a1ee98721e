from __future__ import annotations

import threading
from typing import Any, cast

import pytest

from raas.domain.catalog import Tier
from raas.domain.config import TenantConfig, TierLimitExceeded
from raas.domain.errors import ValidationFailed
from raas.domain.retrieval import Hit
from raas.services.query import QueryRequest, QueryService, plan


def test_plan_takes_the_config_unless_the_request_overrides() -> None:
    config = TenantConfig(top_k=4, alpha=0.3, enable_reranking=False)
    default = plan(config, Tier.SMB, QueryRequest(query="q"))
    assert (default.top_k, default.alpha, default.rerank, default.conditions) == (4, 0.3, False, [])
    override = plan(config, Tier.SMB, QueryRequest(query="q", top_k=8, alpha=1.0, rerank=True, filters={"a": 1}))
    assert (override.top_k, override.alpha, override.rerank, len(override.conditions)) == (8, 1.0, True, 1)


def test_overrides_beyond_the_tier_are_refused() -> None:
    with pytest.raises(TierLimitExceeded) as caught:
        plan(TenantConfig(), Tier.FREE, QueryRequest(query="q", top_k=6, rerank=True))
    assert {d["field"] for d in caught.value.details} == {"top_k", "rerank"}


def test_bad_filters_are_refused() -> None:
    with pytest.raises(ValidationFailed):
        plan(TenantConfig(), Tier.SMB, QueryRequest(query="q", filters={"x": {"regex": ".*"}}))


class _OverlapSearch:
    """A keyword search that finds its hit only if the query's embedding has started meanwhile."""

    def __init__(self, embedding_started: threading.Event, fail: bool = False):
        self.embedding_started = embedding_started
        self.fail = fail

    def lexical(self, tenant_id: str, query: str, k: int, conditions: list[Any]) -> list[Hit]:
        overlapped = self.embedding_started.wait(timeout=5)
        if self.fail:
            raise RuntimeError("the keyword search failed")
        return [Hit("doc1:0", "doc1", "t", "kelp", 0, 1.0, {})] if overlapped else []

    def semantic(self, tenant_id: str, vector: list[float], k: int, conditions: list[Any]) -> list[Hit]:
        return []


class _SignallingEmbedder:
    def __init__(self, started: threading.Event):
        self.started = started

    def embed(self, texts: list[str]) -> list[list[float]]:
        self.started.set()
        return [[1.0, 0.0, 0.0, 0.0] for _ in texts]


def _service(search: Any, embedder: Any) -> QueryService:
    unused = cast(Any, None)
    return QueryService(unused, search, embedder, None, unused, unused, unused, unused, unused, unused)


def test_the_keyword_search_runs_while_the_query_is_embedded() -> None:
    started = threading.Event()
    service = _service(_OverlapSearch(started), _SignallingEmbedder(started))
    how = plan(TenantConfig(), Tier.ENTERPRISE, QueryRequest(query="kelp", alpha=0.5))
    timings: dict[str, float] = {}
    hits = service.retrieve("tenant0000000001", "kelp", how, timings)
    assert [h.chunk_id for h in hits] == ["doc1:0"]  # found only when both ran at once
    assert "embedding_ms" in timings


def test_a_failed_keyword_search_fails_the_retrieval_and_pure_modes_run_one_side() -> None:
    started = threading.Event()
    service = _service(_OverlapSearch(started, fail=True), _SignallingEmbedder(started))
    with pytest.raises(RuntimeError, match="keyword search failed"):
        service.retrieve("tenant0000000001", "kelp", plan(TenantConfig(), Tier.ENTERPRISE, QueryRequest(query="kelp", alpha=0.5)))
    vector_only = threading.Event()
    service = _service(_OverlapSearch(threading.Event(), fail=True), _SignallingEmbedder(vector_only))
    assert service.retrieve("tenant0000000001", "kelp", plan(TenantConfig(), Tier.ENTERPRISE, QueryRequest(query="kelp", alpha=1.0))) == []
    keyword_only = threading.Event()
    keyword_only.set()  # no embedding will happen: the search must not wait for one
    service = _service(_OverlapSearch(keyword_only), _SignallingEmbedder(threading.Event()))
    hits = service.retrieve("tenant0000000001", "kelp", plan(TenantConfig(), Tier.ENTERPRISE, QueryRequest(query="kelp", alpha=0.0)))
    assert [h.chunk_id for h in hits] == ["doc1:0"]
