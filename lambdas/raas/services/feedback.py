"""Feedback on answers: one rating per caller and answer, stored with the config version that
produced the answer, audited, and summarised per config version."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from raas.domain import catalog
from raas.domain.catalog import Tier
from raas.domain.errors import Conflict, NotFound
from raas.domain.feedback import Feedback, FeedbackPage, FeedbackRequest, FeedbackSummary, Rating, VersionFeedback, is_query_id
from raas.domain.ports import AuditLog, VersionConflict


class FeedbackStore(Protocol):
    def answer_version(self, tenant_id: str, query_id: str) -> int | None: ...

    def get(self, tenant_id: str, query_id: str, actor: str) -> Feedback | None: ...

    def create(self, tenant_id: str, feedback: Feedback, retention_days: int) -> None: ...

    def change(self, tenant_id: str, before: Feedback, after: Feedback, retention_days: int) -> None: ...

    def summary(self, tenant_id: str) -> list[VersionFeedback]: ...

    def list(self, tenant_id: str, rating: Rating | None, limit: int, cursor: str | None) -> tuple[list[Feedback], str | None]: ...


class FeedbackService:
    ATTEMPTS = 3  # a concurrent twin of the same caller's request: read again and apply once more

    def __init__(self, store: FeedbackStore, audit: AuditLog, clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.store = store
        self.audit = audit
        self._now = clock

    def give(self, tenant_id: str, tier: Tier, actor: str, query_id: str, request: FeedbackRequest) -> tuple[Feedback, bool]:
        """The caller's feedback on the answer and whether it was created now (False: it existed; a
        different rating or comment replaces the old one, the same one changes nothing)."""
        version = self.store.answer_version(tenant_id, query_id) if is_query_id(query_id) else None
        if version is None:
            # Unknown, expired, or another tenant's answer: all the same to the caller.
            raise NotFound(f"answer {query_id} not found", code="query_not_found")
        retention = catalog.tier_limits(tier).query_history_days
        for _ in range(self.ATTEMPTS):
            try:
                return self._apply(tenant_id, actor, query_id, version, request, retention)
            except VersionConflict:
                if self.store.answer_version(tenant_id, query_id) is None:
                    raise NotFound(f"answer {query_id} not found", code="query_not_found") from None
        raise Conflict("the feedback changed while it was being written; try again", code="version_conflict")

    def list(self, tenant_id: str, rating: Rating | None, limit: int, cursor: str | None) -> FeedbackPage:
        items, next_cursor = self.store.list(tenant_id, rating, limit, cursor)
        return FeedbackPage(feedback=items, next_cursor=next_cursor)

    def summary(self, tenant_id: str) -> FeedbackSummary:
        return FeedbackSummary(versions=self.store.summary(tenant_id))

    def _apply(
        self, tenant_id: str, actor: str, query_id: str, version: int, request: FeedbackRequest, retention: int
    ) -> tuple[Feedback, bool]:
        before = self.store.get(tenant_id, query_id, actor)
        now = self._now().isoformat()
        if before is None:
            created = Feedback(
                query_id=query_id,
                rating=request.rating,
                comment=request.comment,
                config_version=version,
                actor=actor,
                created_at=now,
                updated_at=now,
            )
            self.store.create(tenant_id, created, retention)
            self._audit(tenant_id, actor, created, "feedback.given")
            return created, True
        if (before.rating, before.comment) == (request.rating, request.comment):
            return before, False  # the same feedback again: nothing changes, nothing is audited twice
        after = before.model_copy(update={"rating": request.rating, "comment": request.comment, "updated_at": now})
        self.store.change(tenant_id, before, after, retention)
        self._audit(tenant_id, actor, after, "feedback.changed")
        return after, False

    def _audit(self, tenant_id: str, actor: str, feedback: Feedback, action: str) -> None:
        details = {"rating": feedback.rating.value, "config_version": feedback.config_version, "commented": feedback.comment is not None}
        self.audit.record(tenant_id, actor, action, feedback.query_id, details)
