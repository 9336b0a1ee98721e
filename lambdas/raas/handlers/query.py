"""Query API: answers with citations, retrieval-only search, and the tenant's query history."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import Router

from raas.bootstrap import services
from raas.domain.answers import QueryResponse, SearchResponse
from raas.domain.tenants import Role
from raas.handlers.api import lambda_handler, make_app, metrics, require_tenant, responses
from raas.handlers.idempotency import idempotent_post
from raas.handlers.schemas import QueryHistoryPage
from raas.handlers.streaming import answer_as_events, sse_route, wants_stream
from raas.services.query import QueryRequest

router = Router()
TAGS = ["query"]


@router.post(
    "/v1/query",
    summary="Answer a question from the tenant's documents",
    tags=TAGS,
    responses=responses(200, QueryResponse, "Answer (with `Accept: text/event-stream`, Server-Sent Events)", 504),
    middlewares=[idempotent_post, sse_route],
)
def query(body: QueryRequest) -> QueryResponse:
    caller = require_tenant(app, Role.READER)
    if wants_stream(app):  # Server-Sent Events: retrieval, delta..., done | error (raas.handlers.streaming)
        metrics.add_metric(name="Queries", unit="Count", value=1)
        answer_as_events(services().query_service.stream(caller.tenant_id, caller.tier, body))
    result = services().query_service.answer(caller.tenant_id, caller.tier, body)
    metrics.add_metric(name="Queries", unit="Count", value=1)
    metrics.add_metric(name="LLMTokens", unit="Count", value=result.usage.prompt_tokens + result.usage.completion_tokens)
    metrics.add_metric(name="LLMCostMicroUSD", unit="Count", value=round(result.usage.cost_usd * 1_000_000))
    return result


@router.post(
    "/v1/search",
    summary="Retrieve matching chunks without generating an answer",
    tags=TAGS,
    responses=responses(200, SearchResponse, "Results"),
    middlewares=[idempotent_post],
)
def search(body: QueryRequest) -> SearchResponse:
    caller = require_tenant(app, Role.READER)
    return services().query_service.search_only(caller.tenant_id, caller.tier, body)


@router.get(
    "/v1/queries",
    summary="Recent queries (kept per the tier's retention)",
    tags=TAGS,
    responses=responses(200, QueryHistoryPage, "History"),
)
def history(
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> QueryHistoryPage:
    caller = require_tenant(app, Role.READER)
    entries, next_cursor = services().query_log.list(caller.tenant_id, limit, cursor)
    return QueryHistoryPage(queries=entries, next_cursor=next_cursor)


app = make_app()
app.include_router(router)
handler = lambda_handler(app)
