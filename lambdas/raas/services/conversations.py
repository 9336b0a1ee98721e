"""Conversations: multi-turn questions over the tenant's documents.

Each message is a query: `QueryService.answer_followup` takes the same quota reservation, records the
same usage and history, and writes the same answer record feedback is given on, with the question first
rewritten into a standalone query from the recent turns (by the tenant's model when a provider key is
set, else by `rewrite_offline`). The question and the answer are then stored as two messages.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Generator
from datetime import UTC, datetime
from typing import Protocol

from aws_lambda_powertools import Logger

from raas.domain import catalog
from raas.domain.answers import QueryResponse, Usage
from raas.domain.catalog import ModelInfo, Tier
from raas.domain.config import TenantConfig
from raas.domain.context import estimate_tokens
from raas.domain.conversations import (
    REWRITE_MAX_TOKENS,
    REWRITE_SYSTEM,
    Conversation,
    ConversationAnswer,
    ConversationDetail,
    ConversationMessage,
    ConversationPage,
    CreateConversationRequest,
    Turn,
    clean_model_rewrite,
    distinct_titles,
    history_budget,
    is_conversation_id,
    new_conversation_id,
    rewrite_offline,
    rewrite_prompt,
    trim_history,
)
from raas.domain.errors import Conflict, NotFound
from raas.domain.generation import GenerationRequest
from raas.domain.paging import all_items
from raas.domain.ports import AuditLog, ChatModel, VersionConflict
from raas.domain.prompts import find_injection
from raas.domain.streaming import StreamEvent
from raas.services.query import QueryRequest, QueryService, Rewritten

logger = Logger(service="raas")

RECENT_TURNS = 10  # turns read for a rewrite (then trimmed to the model's window)
TITLE_CHARS = 200


class ConversationStore(Protocol):
    def create(self, tenant_id: str, conversation: Conversation, retention_days: int) -> None: ...

    def get(self, tenant_id: str, conversation_id: str) -> Conversation | None: ...

    def messages(
        self, tenant_id: str, conversation_id: str, limit: int, cursor: str | None
    ) -> tuple[list[ConversationMessage], str | None]: ...

    def recent(self, tenant_id: str, conversation_id: str, count: int) -> list[ConversationMessage]: ...

    def append(
        self, tenant_id: str, conversation: Conversation, messages: list[ConversationMessage], retention_days: int, title: str | None
    ) -> Conversation: ...

    def delete(self, tenant_id: str, conversation_id: str) -> bool: ...

    def list(self, tenant_id: str, limit: int, cursor: str | None) -> tuple[list[Conversation], str | None]: ...


def turns_of(messages: list[ConversationMessage]) -> list[Turn]:
    """Question-and-answer pairs, oldest first (a question without its answer is skipped)."""
    turns: list[Turn] = []
    question: ConversationMessage | None = None
    for message in messages:
        if message.role == "user":
            question = message
        elif question is not None:
            turns.append(
                Turn(
                    question=question.content,
                    searched=message.rewritten_query or question.content,
                    answer=message.content,
                    titles=distinct_titles(message.citations),
                )
            )
            question = None
    return turns


class ConversationFollowUp:
    """The question of one message and the conversation's recent turns (services/query.py's FollowUp)."""

    def __init__(self, question: str, turns: list[Turn]):
        self.question = question
        self.turns = turns

    def needs_model(self) -> bool:
        return bool(self.turns)

    def history(self, config: TenantConfig, model: ModelInfo) -> list[Turn]:
        """The recent turns trimmed to the model's context window less the tenant's max_tokens."""
        return trim_history(self.turns, history_budget(model.context_window, config.max_tokens, self.question))

    def model_ceiling(self, config: TenantConfig, model: ModelInfo) -> tuple[int, int]:
        prompt = rewrite_prompt(self.question, self.history(config, model))
        return estimate_tokens(REWRITE_SYSTEM) + estimate_tokens(prompt), min(config.max_tokens, REWRITE_MAX_TOKENS)

    def rewrite(self, config: TenantConfig, model: ModelInfo, chat: ChatModel | None) -> Rewritten:
        if not self.turns:
            return Rewritten(self.question, "unchanged")
        offline = rewrite_offline(self.question, self.turns)
        if chat is None:
            return Rewritten(offline, "offline" if offline != self.question else "unchanged")
        generation = chat.generate(
            GenerationRequest(
                model_name=config.model,
                model=model,
                system=REWRITE_SYSTEM,
                prompt=rewrite_prompt(self.question, self.history(config, model)),
                max_tokens=min(config.max_tokens, REWRITE_MAX_TOKENS),
                temperature=0.0,
                query=self.question,
            )
        )
        cost = 0.0 if generation.offline else model.cost_usd(generation.prompt_tokens, generation.completion_tokens)
        text = clean_model_rewrite(generation.text)
        method = "model"
        if not text or find_injection(text):
            # An empty or instruction-like rewrite is not searched: the deterministic one is.
            logger.warning("model rewrite refused; using the offline rewrite")
            text, method = offline, "offline"
        return Rewritten(text, method, generation.prompt_tokens, generation.completion_tokens, cost)


class ConversationService:
    APPEND_ATTEMPTS = 5

    def __init__(
        self,
        store: ConversationStore,
        queries: QueryService,
        audit: AuditLog,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self.store = store
        self.queries = queries
        self.audit = audit
        self._now = clock

    def create(self, tenant_id: str, tier: Tier, actor: str, request: CreateConversationRequest) -> Conversation:
        now = self._now().isoformat()
        conversation = Conversation(
            conversation_id=new_conversation_id(), title=request.title, created_at=now, updated_at=now, messages=0, created_by=actor
        )
        self.store.create(tenant_id, conversation, _retention(tier))
        return conversation

    def list(self, tenant_id: str, limit: int, cursor: str | None) -> ConversationPage:
        conversations, next_cursor = self.store.list(tenant_id, limit, cursor)
        return ConversationPage(conversations=conversations, next_cursor=next_cursor)

    def read(self, tenant_id: str, conversation_id: str, limit: int, cursor: str | None) -> ConversationDetail:
        conversation = self._get(tenant_id, conversation_id)
        messages, next_cursor = self.store.messages(tenant_id, conversation_id, limit, cursor)
        return ConversationDetail(conversation=conversation, messages=messages, next_cursor=next_cursor)

    def delete(self, tenant_id: str, actor: str, conversation_id: str) -> None:
        if not is_conversation_id(conversation_id) or not self.store.delete(tenant_id, conversation_id):
            raise NotFound(f"conversation {conversation_id} not found", code="conversation_not_found")
        self.audit.record(tenant_id, actor, "conversation.deleted", conversation_id)

    def ask(self, tenant_id: str, tier: Tier, conversation_id: str, request: QueryRequest) -> ConversationAnswer:
        conversation = self._get(tenant_id, conversation_id)
        turns = turns_of(self.store.recent(tenant_id, conversation_id, 2 * RECENT_TURNS))
        asked_at = self._now().isoformat()
        response, rewritten = self.queries.answer_followup(tenant_id, tier, request, ConversationFollowUp(request.query, turns))
        messages = self._store(tenant_id, tier, conversation, request, asked_at, response, rewritten)
        return ConversationAnswer(
            conversation_id=conversation_id,
            rewritten_query=rewritten.query,
            rewrite=rewritten.method,
            rewrite_usage=Usage(
                prompt_tokens=rewritten.prompt_tokens, completion_tokens=rewritten.completion_tokens, cost_usd=round(rewritten.cost_usd, 6)
            ),
            answer=response,
            messages=messages,
        )

    def ask_stream(self, tenant_id: str, tier: Tier, conversation_id: str, request: QueryRequest) -> Generator[StreamEvent, None, None]:
        """`ask` as events: the query's own, with `done` carrying the stored messages' ids. An answer cut
        short (the client went away) is settled by the query and not stored in the conversation."""
        conversation = self._get(tenant_id, conversation_id)
        turns = turns_of(self.store.recent(tenant_id, conversation_id, 2 * RECENT_TURNS))
        asked_at = self._now().isoformat()
        events = self.queries.stream(tenant_id, tier, request, ConversationFollowUp(request.query, turns))
        return self._stored_on_done(events, tenant_id, tier, conversation, request, asked_at)

    def _stored_on_done(
        self,
        events: Generator[StreamEvent, None, None],
        tenant_id: str,
        tier: Tier,
        conversation: Conversation,
        request: QueryRequest,
        asked_at: str,
    ) -> Generator[StreamEvent, None, None]:
        searched, method = request.query, "unchanged"
        try:
            for event in events:
                if event.event == "retrieval":
                    searched, method = event.data["rewritten_query"], event.data["rewrite"]
                if event.event == "done" and event.response is not None:
                    rewritten = Rewritten(
                        query=searched,
                        method=method,
                        prompt_tokens=event.data["rewrite_usage"]["prompt_tokens"],
                        completion_tokens=event.data["rewrite_usage"]["completion_tokens"],
                        cost_usd=event.data["rewrite_usage"]["cost_usd"],
                    )
                    messages = self._store(tenant_id, tier, conversation, request, asked_at, event.response, rewritten)
                    event = event.with_data(conversation_id=conversation.conversation_id, message_ids=[m.message_id for m in messages])
                yield event
        finally:
            events.close()  # the client went away: the query's own generator settles what was used

    def _store(
        self,
        tenant_id: str,
        tier: Tier,
        conversation: Conversation,
        request: QueryRequest,
        asked_at: str,
        response: QueryResponse,
        rewritten: Rewritten,
    ) -> builtins.list[ConversationMessage]:
        answered_at = self._now().isoformat()
        for _ in range(self.APPEND_ATTEMPTS):
            seq = conversation.messages
            messages = [
                ConversationMessage(message_id=f"m{seq + 1:06d}", role="user", content=request.query, at=asked_at),
                ConversationMessage(
                    message_id=f"m{seq + 2:06d}",
                    role="assistant",
                    content=response.answer,
                    at=answered_at,
                    query_id=response.query_id,
                    rewritten_query=rewritten.query,
                    rewrite=rewritten.method,
                    citations=response.citations,
                    model=response.model,
                    config_version=response.config_version,
                    usage=response.usage,
                ),
            ]
            try:
                self.store.append(tenant_id, conversation, messages, _retention(tier), request.query[:TITLE_CHARS])
            except VersionConflict:
                # Another message of this conversation was stored first: go after it (or 404 if it was deleted).
                conversation = self._get(tenant_id, conversation.conversation_id)
                continue
            return messages
        raise Conflict("the conversation is busy with other messages; try again", code="version_conflict")

    def _get(self, tenant_id: str, conversation_id: str) -> Conversation:
        conversation = self.store.get(tenant_id, conversation_id) if is_conversation_id(conversation_id) else None
        if conversation is None:
            # Unknown, expired, or another tenant's: all the same to the caller.
            raise NotFound(f"conversation {conversation_id} not found", code="conversation_not_found")
        return conversation


class ConversationArchive:
    """The conversations in the tenant export: only the store (the export builds no query service)."""

    def __init__(self, store: ConversationStore):
        self.store = store

    def export(self, tenant_id: str) -> list[ConversationDetail]:
        """Every live conversation with all its messages, newest conversation first."""
        details = []
        for conversation in all_items(lambda c: self.store.list(tenant_id, 100, c)):
            messages = self._messages(tenant_id, conversation.conversation_id)
            details.append(ConversationDetail(conversation=conversation, messages=messages, next_cursor=None))
        return details

    def _messages(self, tenant_id: str, conversation_id: str) -> list[ConversationMessage]:
        return list(all_items(lambda cursor: self.store.messages(tenant_id, conversation_id, 100, cursor)))


def _retention(tier: Tier) -> int:
    return catalog.tier_limits(tier).query_history_days
