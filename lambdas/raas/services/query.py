"""Search and question answering over a tenant's own documents."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable, Generator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from aws_lambda_powertools import Logger
from pydantic import Field, StrictBool, StrictFloat, StrictInt

from raas.domain import catalog
from raas.domain.answers import Citation, QueryHistoryEntry, QueryResponse, RetrievalInfo, SearchResponse, SearchResult, Timings, Usage
from raas.domain.catalog import ModelInfo, Tier
from raas.domain.config import TenantConfig, TierLimitExceeded
from raas.domain.context import BuiltContext, build_context, estimate_tokens
from raas.domain.errors import RaasError, ValidationFailed
from raas.domain.generation import Generation, GenerationRequest
from raas.domain.model import Model
from raas.domain.ports import ChatModel, Embedder, Reranker, SearchIndex, UsageRecorder
from raas.domain.prompts import find_injection, render_prompt
from raas.domain.retrieval import Condition, Hit, fuse, parse_filters
from raas.domain.streaming import StreamEvent
from raas.domain.usage import UsageEvent, usd_to_micro
from raas.services.config import ConfigService
from raas.services.quota import QuotaGuard, Reservation

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


class AnswerJournal(Protocol):
    def keep(self, tenant_id: str, entry: QueryHistoryEntry, response: QueryResponse, retention_days: int, cache_key: str | None) -> None:
        """Writes together what an answer leaves: its history line, its config version under its query_id (what
        feedback is given on) and, with `cache_key`, the answer for the response cache."""


@dataclass(frozen=True)
class Rewritten:
    """A conversation's follow-up as the standalone query that is searched and answered."""

    query: str
    method: str  # "model" | "offline" | "unchanged"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0


class FollowUp(Protocol):
    """The extension point conversations use: rewrites the question before retrieval, inside the
    query's own quota reservation when the rewrite calls the tenant's model."""

    def needs_model(self) -> bool:
        """True when there are earlier turns to rewrite against (a first question is asked as it is)."""

    def model_ceiling(self, config: TenantConfig, model: ModelInfo) -> tuple[int, int]:
        """The most prompt and completion tokens the rewrite call can take."""

    def rewrite(self, config: TenantConfig, model: ModelInfo, chat: ChatModel | None) -> Rewritten:
        """With `chat` (a provider key is set) by the model, else deterministically offline."""


class ResponseCache(Protocol):
    def get(self, tenant_id: str, key: str) -> QueryResponse | None: ...


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
        journal: AnswerJournal,
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
        self.journal = journal
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
    def answer(self, tenant_id: str, tier: Tier, request: QueryRequest, *, followup: FollowUp | None = None) -> QueryResponse:
        return self.answer_followup(tenant_id, tier, request, followup)[0]

    def answer_followup(
        self, tenant_id: str, tier: Tier, request: QueryRequest, followup: FollowUp | None
    ) -> tuple[QueryResponse, Rewritten]:
        """`answer`, with the question first rewritten by `followup` (conversations): the answer and
        the rewrite. The rewrite's model call, if any, is covered by the query's one reservation
        (taken before it, for the rewrite and the answer's ceiling) and reconciled with both."""
        prepared = self._prepare(tenant_id, tier, request, followup)
        if not isinstance(prepared, _Pending):
            return prepared
        prepared.generation_started = time.perf_counter()
        try:
            generation = prepared.chat.generate(prepared.generation)
        except Exception:
            self._give_back(prepared)
            raise
        return self._finish(prepared, generation), prepared.rewritten

    def stream(
        self, tenant_id: str, tier: Tier, request: QueryRequest, followup: FollowUp | None = None
    ) -> Generator[StreamEvent, None, None]:
        """The answer as events (`retrieval`, `delta`..., then `done` or `error`). Everything that can be
        refused (validation, tier bounds, quota) is refused here, before the first event; closing the
        generator early (the client went away) stops the generation and settles what it used, once."""
        return self._events(self._prepare(tenant_id, tier, request, followup))

    def _events(self, prepared: _Pending | tuple[QueryResponse, Rewritten]) -> Generator[StreamEvent, None, None]:
        if not isinstance(prepared, _Pending):  # a cached answer, already accounted for
            response, rewritten = prepared
            yield _retrieval_event(response.query_id, response.citations, response.retrieval, rewritten)
            yield StreamEvent("delta", {"text": response.answer})
            yield _done_event(response, rewritten)
            return
        p = prepared
        parts: list[str] = []
        settled = requested = False
        pieces = stream_generation(p.chat, p.generation)
        try:
            citations = [Citation.of(h) for h in p.context.used]
            yield _retrieval_event(p.query_id, citations, p.retrieval_info(self.reranker is not None), p.rewritten)
            p.generation_started = time.perf_counter()
            requested = True
            final: Generation | None = None
            for piece in pieces:
                if isinstance(piece, Generation):
                    final = piece
                    break
                parts.append(piece)
                yield StreamEvent("delta", {"text": piece})
            if final is None:  # a stream that ended without its usage: what was sent, estimated
                final = self._estimated(p, "".join(parts), requested=True)
            elif not final.text:  # a provider's last event carries usage only: the answer is what was streamed
                final = final.model_copy(update={"text": "".join(parts)})
            settled = True
            response = self._finish(p, final)
            yield _done_event(response, p.rewritten)
        except RaasError as exc:
            if not settled:
                settled = True
                self._give_back(p)
            yield StreamEvent("error", {"code": exc.code, "message": exc.message})
        finally:
            pieces.close()  # the provider's stream stops: no more tokens are generated or paid for
            if not settled:  # the client went away (or an unexpected error): charge what was generated, once
                settled = True
                self._finish(p, self._estimated(p, "".join(parts), requested=requested), complete=False)

    def _prepare(
        self, tenant_id: str, tier: Tier, request: QueryRequest, followup: FollowUp | None
    ) -> _Pending | tuple[QueryResponse, Rewritten]:
        """Everything before the model call: checks, rewrite, cache, retrieval, prompt, the reservation.
        A cached answer is returned whole (counted and logged)."""
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
        held: Reservation | None = None
        rewritten = Rewritten(request.query, "unchanged")
        if followup is not None:
            request, rewritten, held = self._rewrite(tenant_id, tier, request, config, followup)
        cache_key = self._cache_key(tenant_id, current.version, request.query, how)
        cached = self.cache.get(tenant_id, cache_key)
        if cached is not None:
            if held is not None:
                self.quota.settle(held, rewritten.cost_usd)  # only the rewrite was paid for
            else:
                self.quota.reserve(tenant_id, tier, 0.0, caps=config.limits)  # a cached answer still counts against the query quota
            response = cached.model_copy(
                update={
                    "cached": True,
                    "query_id": query_id,
                    "latency_ms": round((time.perf_counter() - started) * 1000, 1),
                    "timings": Timings(),  # nothing was embedded or generated for this request
                }
            )
            self._record(tenant_id, query_id, {"queries": 1, **_rewrite_counters(rewritten)})
            self._log(tenant_id, tier, request, response)
            return response, rewritten

        model = catalog.models()[config.model]
        timings: dict[str, float] = {"embedding_ms": 0.0}
        hits = self.retrieve(tenant_id, request.query, how, timings)
        context = build_context(hits, _context_budget(config, model))
        prompt = render_prompt(config.prompt_template, query=request.query, context=context.text, variables=config.prompt_variables)
        chat = self.chat_for(model)
        # Worst case: the whole prompt plus max_tokens of answer, reserved before the call. The offline
        # answerer costs nothing (`_finish` charges it 0), so it holds no budget and needs no reconciling.
        ceiling = 0.0 if getattr(chat, "offline", False) else model.cost_usd(estimate_tokens(prompt), config.max_tokens)
        reservation = held or self.quota.reserve(tenant_id, tier, ceiling, caps=config.limits)
        generation = GenerationRequest(
            model_name=config.model,
            model=model,
            prompt=prompt,
            max_tokens=config.max_tokens,
            temperature=config.temperature,
            query=request.query,
            passages=[h.text for h in context.used],
        )
        return _Pending(
            tenant_id,
            tier,
            request,
            query_id,
            started,
            current.version,
            how,
            model,
            chat,
            context,
            generation,
            reservation,
            rewritten,
            cache_key,
            timings,
        )

    def _give_back(self, p: _Pending) -> None:
        """The model call failed: the query and its estimate go back; a rewrite that was paid for stays paid."""
        self.quota.release(p.reservation, spent_usd=p.rewritten.cost_usd)
        if p.rewritten.cost_usd:  # the rewrite's tokens were paid for even though the answer failed
            self._record(p.tenant_id, p.query_id, _rewrite_counters(p.rewritten))

    def _estimated(self, p: _Pending, text: str, *, requested: bool) -> Generation:
        """What a call cut short used, estimated: the whole prompt (once the model was asked) and the text so far."""
        offline = bool(getattr(p.chat, "offline", False))
        return Generation(
            text=text,
            prompt_tokens=0 if offline or not requested else estimate_tokens(p.generation.prompt),
            completion_tokens=0 if offline or not text else estimate_tokens(text),
            model="offline-extractive" if offline else p.generation.model_name,  # as adapters.llm.OFFLINE_MODEL
            offline=offline,
        )

    def _finish(self, p: _Pending, generation: Generation, *, complete: bool = True) -> QueryResponse:
        """Settles the reservation with the actual cost, records usage and history once; caches a complete answer."""
        p.timings["generation_ms"] = round((time.perf_counter() - p.generation_started) * 1000, 1)
        cost = 0.0 if generation.offline else p.model.cost_usd(generation.prompt_tokens, generation.completion_tokens)
        self.quota.settle(p.reservation, cost + p.rewritten.cost_usd)
        answer = QueryResponse(
            query_id=p.query_id,
            answer=generation.text,
            citations=[Citation.of(h) for h in p.context.used],
            model=generation.model,
            offline=generation.offline,
            config_version=p.config_version,
            usage=Usage(prompt_tokens=generation.prompt_tokens, completion_tokens=generation.completion_tokens, cost_usd=round(cost, 6)),
            retrieval=p.retrieval_info(self.reranker is not None),
            cached=False,
            latency_ms=round((time.perf_counter() - p.started) * 1000, 1),
            timings=Timings(**p.timings),  # what the embedder and the LLM took of latency_ms
        )
        self._record(
            p.tenant_id,
            p.query_id,
            {
                "queries": 1,
                "prompt_tokens": generation.prompt_tokens,
                "completion_tokens": generation.completion_tokens,
                "cost_microusd": usd_to_micro(cost),
            }
            | _rewrite_counters(p.rewritten, generation.prompt_tokens, generation.completion_tokens, cost),
        )
        self._log(p.tenant_id, p.tier, p.request, answer, cache_key=p.cache_key if complete else None)
        return answer

    def _rewrite(
        self, tenant_id: str, tier: Tier, request: QueryRequest, config: TenantConfig, followup: FollowUp
    ) -> tuple[QueryRequest, Rewritten, Reservation | None]:
        """The request with the standalone query, the rewrite, and the reservation taken for it (if the model is called)."""
        model = catalog.models()[config.model]
        held: Reservation | None = None
        chat: ChatModel | None = None
        if followup.needs_model():
            chat = self.chat_for(model)
            if getattr(chat, "offline", False):  # no provider key: the offline answerer cannot rewrite
                chat = None
        if chat is not None:
            prompt_tokens, completion_tokens = followup.model_ceiling(config, model)
            answer_ceiling = model.cost_usd(_answer_prompt_ceiling(config, model), config.max_tokens)
            ceiling = model.cost_usd(prompt_tokens, completion_tokens) + answer_ceiling
            held = self.quota.reserve(tenant_id, tier, ceiling, caps=config.limits)
        try:
            rewritten = followup.rewrite(config, model, chat)
        except Exception:
            if held is not None:
                self.quota.release(held)
            raise
        return request.model_copy(update={"query": rewritten.query}), rewritten, held

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

    def _log(self, tenant_id: str, tier: Tier, request: QueryRequest, response: QueryResponse, *, cache_key: str | None = None) -> None:
        """History, the feedback record and (with `cache_key`, a fresh complete answer) the cached copy, in one write."""
        entry = QueryHistoryEntry.of(datetime.now(UTC).isoformat(), request.query, response)
        try:
            self.journal.keep(tenant_id, entry, response, catalog.tier_limits(tier).query_history_days, cache_key)
        except Exception:  # best effort: the answer is already paid for (without it, feedback on it is a 404 and it is not cached)
            logger.exception("could not record the answer (history, feedback, cache)", extra={"tenant_id": tenant_id})


def _context_budget(config: TenantConfig, model: ModelInfo) -> int:
    """Tokens of retrieved context an answer's prompt may hold."""
    return min(CONTEXT_TOKEN_CAP, model.context_window - config.max_tokens - estimate_tokens(config.prompt_template) - 512)


def _answer_prompt_ceiling(config: TenantConfig, model: ModelInfo) -> int:
    """The most prompt tokens an answer can send: template, variables, a query of the longest kind and a full context."""
    variables = sum(estimate_tokens(v) for v in config.prompt_variables.values())
    return estimate_tokens(config.prompt_template) + variables + estimate_tokens("x" * 2000) + _context_budget(config, model)


def _rewrite_counters(rewritten: Rewritten, prompt_tokens: int = 0, completion_tokens: int = 0, cost: float = 0.0) -> dict[str, int]:
    """Usage counters with the rewrite's tokens added (nothing when it did not call a model)."""
    if not rewritten.cost_usd and not rewritten.prompt_tokens and not rewritten.completion_tokens:
        return {}
    return {
        "prompt_tokens": prompt_tokens + rewritten.prompt_tokens,
        "completion_tokens": completion_tokens + rewritten.completion_tokens,
        "cost_microusd": usd_to_micro(cost + rewritten.cost_usd),
    }


@dataclass
class _Pending:
    """A fresh answer between its preparation and its model call."""

    tenant_id: str
    tier: Tier
    request: QueryRequest
    query_id: str
    started: float
    config_version: int
    how: Plan
    model: ModelInfo
    chat: ChatModel
    context: BuiltContext
    generation: GenerationRequest
    reservation: Reservation
    rewritten: Rewritten
    cache_key: str
    timings: dict[str, float]
    generation_started: float = 0.0

    def retrieval_info(self, reranker: bool) -> RetrievalInfo:
        return RetrievalInfo(
            top_k=self.how.top_k,
            alpha=self.how.alpha,
            reranked=self.how.rerank and reranker,
            screened_out=len(self.context.screened_out),
        )


def stream_generation(chat: ChatModel, request: GenerationRequest) -> Generator[str | Generation, None, None]:
    """Text deltas, then the finished Generation: the model's own stream when it has one, else one delta."""
    stream = getattr(chat, "stream", None)
    if stream is not None:
        yield from stream(request)
        return
    generation = chat.generate(request)
    yield generation.text
    yield generation


def _retrieval_event(query_id: str, citations: list[Citation], retrieval: RetrievalInfo, rewritten: Rewritten) -> StreamEvent:
    return StreamEvent(
        "retrieval",
        {
            "query_id": query_id,
            "citations": [c.model_dump(mode="json") for c in citations],
            "retrieval": retrieval.model_dump(mode="json"),
            "rewritten_query": rewritten.query,
            "rewrite": rewritten.method,
        },
    )


def _done_event(response: QueryResponse, rewritten: Rewritten) -> StreamEvent:
    return StreamEvent(
        "done",
        {
            "query_id": response.query_id,
            "model": response.model,
            "offline": response.offline,
            "cached": response.cached,
            "config_version": response.config_version,
            "usage": response.usage.model_dump(mode="json"),
            "cost_usd": response.usage.cost_usd,
            "rewrite_usage": {
                "prompt_tokens": rewritten.prompt_tokens,
                "completion_tokens": rewritten.completion_tokens,
                "cost_usd": round(rewritten.cost_usd, 6),
            },
            "latency_ms": response.latency_ms,
            "timings": response.timings.model_dump(mode="json"),
        },
        response=response,
    )
