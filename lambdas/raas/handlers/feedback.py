"""Feedback API: rate an answer (any tenant role), read the tenant's feedback and its summary (admin)."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import Router

from raas.bootstrap import services
from raas.domain.feedback import Feedback, FeedbackPage, FeedbackRequest, FeedbackSummary, Rating
from raas.domain.tenants import Role
from raas.handlers.api import JSON, lambda_handler, make_app, metrics, require_tenant, responses

router = Router()
TAGS = ["feedback"]


@router.post(
    "/v1/queries/<query_id>/feedback",
    summary="Rate an answer up or down (once per caller and answer; a repeat replaces it)",
    tags=TAGS,
    responses=responses(201, Feedback, "Recorded (200 when the caller's feedback on this answer existed)", 409),
)
def give_feedback(query_id: str, body: FeedbackRequest) -> Response[Feedback]:
    caller = require_tenant(app, Role.READER)
    feedback, created = services().feedback_service.give(caller.tenant_id, caller.tier, caller.actor, query_id, body)
    if created:
        metrics.add_metric(name="Feedback" + feedback.rating.value.capitalize(), unit="Count", value=1)
    return Response(201 if created else 200, JSON, feedback)


@router.get("/v1/feedback", summary="The tenant's feedback, newest first", tags=TAGS, responses=responses(200, FeedbackPage, "Feedback"))
def list_feedback(
    rating: Annotated[Rating | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> FeedbackPage:
    caller = require_tenant(app, Role.ADMIN)
    return services().feedback_service.list(caller.tenant_id, rating, limit, cursor)


@router.get(
    "/v1/feedback/summary",
    summary="Answers, up, down and ratio per configuration version",
    tags=TAGS,
    responses=responses(200, FeedbackSummary, "Summary"),
)
def feedback_summary() -> FeedbackSummary:
    caller = require_tenant(app, Role.ADMIN)
    return services().feedback_service.summary(caller.tenant_id)


app = make_app()
app.include_router(router)
handler = lambda_handler(app)
