"""Search and question answering over a tenant's own documents."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from aws_lambda_powertools import Logger
from pydantic import Field, StrictBool, StrictFloat, StrictInt

from raas.domain import catalog
from raas.domain.answers import Citation, QueryHistoryEntry, QueryResponse, RetrievalInfo, SearchResponse, SearchResult, Timings, Usage
from raas.domain.catalog import ModelInfo, Tier
from raas.domain.config import TenantConfig, TierLimitExceeded
from raas.domain.context import build_context, estimate_tokens
from raas.domain.errors import ValidationFailed
from raas.domain.generation import GenerationRequest
from raas.domain.model import Model
from raas.domain.ports import ChatModel, Embedder, Reranker, SearchIndex, UsageRecorder
from raas.domain.prompts import find_injection, render_prompt
from raas.domain.retrieval import Condition, Hit, fuse, parse_filters
from raas.domain.usage import UsageEvent, usd_to_micro
from raas.services.config import ConfigService
from raas.services.quota import QuotaGuard

logger = Logger(service="raas")

MAX_CANDIDATES = 100
RERANK_POOL = 30
CONTEXT_TOKEN_CAP = 12_000


class QueryRequest(Model):
    query: str = Field(min_length=1, max_length=2000)
    # strict: `top_k: true` or `"3"` is refused, as on every request model (floats still take integers)
    top_k: StrictInt | None = Field(default=None, ge=1, le=20)
    alpha: StrictFloat | None = Field(default=None, ge=0, le=1)
    filters: dict[str, Any] | None = None
    rerank: StrictBool | None = None


@dataclass(frozen=True)
class Plan:
    top_k: int
    alpha: float
    rerank: bool
    conditions: list[Condition]
    filters: dict[str, Any]


class QueryLog(Protocol):
    def append(self, tenant_id: str, entry: QueryHistoryEntry, retention_days: int) -> None: ...


class ResponseCache(Protocol):
    def get(self, tenant_id: str, key: str) -> QueryResponse | None: ...

    def put(self, tenant_id: str, key: str, response: QueryResponse) -> None: ...


def plan(config: TenantConfig, tier: Tier, request: QueryRequest) -> Plan:
    """The tenant's settings with the request's overrides, refused beyond the tier's bounds."""
    limits = catalog.tier_limits(tier)
    top_k = request.top_k if request.top_k is not None else config.top_k
    rerank = config.enable_reranking if request.rerank is None else request.rerank
    problems = []
    if top_k > limits.max_top_k:
        problems.append({"field": "top_k", "message": f"the {tier.value} tier allows top_k up to {limits.max_top_k}"})
    if rerank and not limits.reranking:
        problems.append({"field": "rerank", "message": f"reranking is not available on the {tier.value} tier"})
    if problems:
        raise TierLimitExceeded("request exceeds the tier's bounds", details=problems)
    alpha = request.alpha if request.alpha is not None else config.alpha
    return Plan(top_k, alpha, rerank, parse_filters(request.filters), request.filters or {})


class QueryService:
    def __init__(
        self,
        configs: ConfigService,
        search: SearchIndex,
        embedder: Embedder,
        reranker: Reranker | None,
        chat_for: Callable[[ModelInfo], ChatModel],
        generation_of: Callable[[str], int],
        cache: ResponseCache,
        log: QueryLog,
        usage: UsageRecorder,
        quota: QuotaGuard,
    ):
        self.quota = quota
        self.configs = configs
        self.search = search
        self.embedder = embedder
        self.reranker = reranker
        self.chat_for = chat_for
        self.generation_of = generation_of
        self.cache = cache
        self.log = log
        self.usage = usage

    # --- retrieval ----------------------------------------------------------------------------
    def retrieve(self, tenant_id: str, query: str, how: Plan, timings: dict[str, float] | None = None) -> list[Hit]:
        candidates = min(MAX_CANDIDATES, max(how.top_k * 4, 20))
        lexical = self.search.lexical(tenant_id, query, candidates, how.conditions) if how.alpha < 1 else []
        semantic: list[Hit] = []
        if how.alpha > 0:
            started = time.perf_counter()
            vector = self.embedder.embed([query])[0]
            if timings is not None:
                timings["embedding_ms"] = round((time.perf_counter() - started) * 1000, 1)
            semantic = self.search.semantic(tenant_id, vector, candidates, how.conditions)
        fused = fuse(lexical, semantic, how.alpha)
        if how.rerank and self.reranker is not None and fused:
            return self.reranker.rerank(query, fused[:RERANK_POOL], how.top_k)
        return fused[: how.top_k]

    def search_only(self, tenant_id: str, tier: Tier, request: QueryRequest) -> SearchResponse:
        current = self.configs.get(tenant_id)
        how = plan(current.config, tier, request)
        hits = self.retrieve(tenant_id, request.query, how)
        self._record(tenant_id, str(uuid.uuid4()), {"searches": 1})
        return SearchResponse(results=[SearchResult.of(h) for h in hits], config_version=current.version)

    # --- answering ----------------------------------------------------------------------------
    def answer(self, tenant_id: str, tier: Tier, request: QueryRequest) -> QueryResponse:
        started = time.perf_counter()
        injection = find_injection(request.query)
        if injection:
            raise ValidationFailed(
                f"the query looks like an attempt to override instructions ({injection})",
                code="prompt_injection_detected",
                details=[{"field": "query", "rule": injection, "message": "instruction-override pattern"}],
            )
        current = self.configs.get(tenant_id)
        config = current.config
        how = plan(config, tier, request)
        query_id = str(uuid.uuid4())
        cache_key = self._cache_key(tenant_id, current.version, request.query, how)
        cached = self.cache.get(tenant_id, cache_key)
        if cached is not None:
            self.quota.reserve(tenant_id, tier, 0.0, caps=config.limits)  # a cached answer still counts against the query quota
            response = cached.model_copy(
                update={
                    "cached": True,
                    "query_id": query_id,
                    "latency_ms": round((time.perf_counter() - started) * 1000, 1),
                    "timings": Timings(),  # nothing was embedded or generated for this request
                }
            )
            self._record(tenant_id, query_id, {"queries": 1})
            self._log(tenant_id, tier, request, response)
            return response

        model = catalog.models()[config.model]
        timings: dict[str, float] = {"embedding_ms": 0.0}
        hits = self.retrieve(tenant_id, request.query, how, timings)
        budget = min(CONTEXT_TOKEN_CAP, model.context_window - config.max_tokens - estimate_tokens(config.prompt_template) - 512)
        context = build_context(hits, budget)
        prompt = render_prompt(config.prompt_template, query=request.query, context=context.text, variables=config.prompt_variables)
        chat = self.chat_for(model)
        # Worst case: the whole prompt plus max_tokens of answer, reserved before the call.
        reservation = self.quota.reserve(tenant_id, tier, model.cost_usd(estimate_tokens(prompt), config.max_tokens), caps=config.limits)
        generation_started = time.perf_counter()
        try:
            generation = chat.generate(
                GenerationRequest(
                    model_name=config.model,
                    model=model,
                    prompt=prompt,
                    max_tokens=config.max_tokens,
                    temperature=config.temperature,
                    query=request.query,
                    passages=[h.text for h in context.used],
                )
            )
        except Exception:
            self.quota.release(reservation)
            raise
        timings["generation_ms"] = round((time.perf_counter() - generation_started) * 1000, 1)
        cost = 0.0 if generation.offline else model.cost_usd(generation.prompt_tokens, generation.completion_tokens)
        self.quota.settle(reservation, cost)
        answer = QueryResponse(
            query_id=query_id,
            answer=generation.text,
            citations=[Citation.of(h) for h in context.used],
            model=generation.model,
            offline=generation.offline,
            config_version=current.version,
            usage=Usage(prompt_tokens=generation.prompt_tokens, completion_tokens=generation.completion_tokens, cost_usd=round(cost, 6)),
            retrieval=RetrievalInfo(
                top_k=how.top_k, alpha=how.alpha, reranked=how.rerank and self.reranker is not None, screened_out=len(context.screened_out)
            ),
            cached=False,
            latency_ms=round((time.perf_counter() - started) * 1000, 1),
            timings=Timings(**timings),  # what the embedder and the LLM took of latency_ms
        )
        self.cache.put(tenant_id, cache_key, answer)
        self._record(
            tenant_id,
            query_id,
            {
                "queries": 1,
                "prompt_tokens": generation.prompt_tokens,
                "completion_tokens": generation.completion_tokens,
                "cost_microusd": usd_to_micro(cost),
            },
        )
        self._log(tenant_id, tier, request, answer)
        return answer

    def _cache_key(self, tenant_id: str, config_version: int, query: str, how: Plan) -> str:
        material = json.dumps(
            {
                "config": config_version,
                "documents": self.generation_of(tenant_id),  # any document change moves this, so old answers are never served
                "query": query.strip(),
                "top_k": how.top_k,
                "alpha": how.alpha,
                "rerank": how.rerank,
                "filters": how.filters,
            },
            sort_keys=True,
        )
        return hashlib.sha256(material.encode()).hexdigest()

    def _record(self, tenant_id: str, event_id: str, counters: dict[str, int]) -> None:
        self.usage.record(UsageEvent(event_id=event_id, tenant_id=tenant_id, occurred_at=datetime.now(UTC), counters=counters))

    def _log(self, tenant_id: str, tier: Tier, request: QueryRequest, response: QueryResponse) -> None:
        entry = QueryHistoryEntry.of(datetime.now(UTC).isoformat(), request.query, response)
        try:
            self.log.append(tenant_id, entry, catalog.tier_limits(tier).query_history_days)
        except Exception:  # history is best effort; the answer is already paid for
            logger.exception("could not record query history", extra={"tenant_id": tenant_id})
