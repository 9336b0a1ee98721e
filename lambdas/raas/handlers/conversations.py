"""Conversations API: create, list, read and delete conversations, and ask in one (any tenant role).

Asking is `POST /v1/conversations/{conversation_id}/messages` with the body of `POST /v1/query`: the
follow-up is rewritten into a standalone query from the recent turns, answered as a query (same quota,
usage, history and feedback), and stored with its answer as two messages."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import Router

from raas.bootstrap import services
from raas.domain.conversations import Conversation, ConversationAnswer, ConversationDetail, ConversationPage, CreateConversationRequest
from raas.domain.tenants import Role
from raas.handlers.api import JSON, lambda_handler, make_app, metrics, require_tenant, responses
from raas.handlers.idempotency import idempotent_post
from raas.handlers.streaming import answer_as_events, sse_route, wants_stream
from raas.services.query import QueryRequest

router = Router()
TAGS = ["conversations"]


@router.post("/v1/conversations", summary="Start a conversation", tags=TAGS, responses=responses(201, Conversation, "Created"))
def create_conversation(body: CreateConversationRequest) -> Response[Conversation]:
    caller = require_tenant(app, Role.READER)
    conversation = services().conversation_service.create(caller.tenant_id, caller.tier, caller.actor, body)
    return Response(201, JSON, conversation)


@router.get(
    "/v1/conversations",
    summary="The tenant's conversations, newest first (kept per the tier's retention)",
    tags=TAGS,
    responses=responses(200, ConversationPage, "Conversations"),
)
def list_conversations(
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> ConversationPage:
    caller = require_tenant(app, Role.READER)
    return services().conversation_service.list(caller.tenant_id, limit, cursor)


@router.get(
    "/v1/conversations/<conversation_id>",
    summary="A conversation with its messages (oldest first) and the citations each answer used",
    tags=TAGS,
    responses=responses(200, ConversationDetail, "The conversation"),
)
def read_conversation(
    conversation_id: str,
    limit: Annotated[int, Query(ge=1, le=100)] = 100,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> ConversationDetail:
    caller = require_tenant(app, Role.READER)
    return services().conversation_service.read(caller.tenant_id, conversation_id, limit, cursor)


@router.delete(
    "/v1/conversations/<conversation_id>",
    summary="Delete a conversation and its messages",
    tags=TAGS,
    responses=responses(204, None, "Deleted"),
)
def delete_conversation(conversation_id: str) -> Response[None]:
    caller = require_tenant(app, Role.READER)
    services().conversation_service.delete(caller.tenant_id, caller.actor, conversation_id)
    return Response(204)


@router.post(
    "/v1/conversations/<conversation_id>/messages",
    summary="Ask in a conversation: the follow-up is rewritten into a standalone query and answered",
    tags=TAGS,
    responses=responses(200, ConversationAnswer, "The answer, the rewritten query and the stored messages", 409, 504),
    middlewares=[idempotent_post, sse_route],
)
def ask(conversation_id: str, body: QueryRequest) -> ConversationAnswer:
    caller = require_tenant(app, Role.READER)
    if wants_stream(app):  # Server-Sent Events, as POST /v1/query streams them (raas.handlers.streaming)
        events = services().conversation_service.ask_stream(caller.tenant_id, caller.tier, conversation_id, body)
        metrics.add_metric(name="Queries", unit="Count", value=1)
        answer_as_events(events)
    result = services().conversation_service.ask(caller.tenant_id, caller.tier, conversation_id, body)
    usage = result.answer.usage
    metrics.add_metric(name="Queries", unit="Count", value=1)
    metrics.add_metric(
        name="LLMTokens",
        unit="Count",
        value=usage.prompt_tokens + usage.completion_tokens + result.rewrite_usage.prompt_tokens + result.rewrite_usage.completion_tokens,
    )
    metrics.add_metric(name="LLMCostMicroUSD", unit="Count", value=round((usage.cost_usd + result.rewrite_usage.cost_usd) * 1_000_000))
    return result


app = make_app()
app.include_router(router)
handler = lambda_handler(app)
