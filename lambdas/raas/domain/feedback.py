"""Feedback on answers: a thumbs up or down per caller and answer, and the summary per config version."""

from __future__ import annotations

import re
from enum import StrEnum

from pydantic import ConfigDict, Field

from raas.domain.model import Model

MAX_COMMENT_CHARS = 2000
# Every answer's query_id is a UUID (services/query.py); anything else names no answer.
_QUERY_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def is_query_id(value: str) -> bool:
    return bool(_QUERY_ID.fullmatch(value))


class Rating(StrEnum):
    UP = "up"
    DOWN = "down"


class FeedbackRequest(Model):
    """`POST /v1/queries/{query_id}/feedback`: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    rating: Rating
    comment: str | None = Field(default=None, max_length=MAX_COMMENT_CHARS)


class Feedback(Model):
    query_id: str
    rating: Rating
    comment: str | None = None
    config_version: int = Field(description="the configuration version that produced the answer")
    actor: str = Field(description="who gave it (`role:key id`); one record per caller and answer")
    created_at: str = Field(description="ISO 8601 UTC")
    updated_at: str = Field(description="ISO 8601 UTC; moves when the caller changes the rating or comment")


class FeedbackPage(Model):
    feedback: list[Feedback]
    next_cursor: str | None


class VersionFeedback(Model):
    config_version: int
    answers: int = Field(description="answers this configuration version produced (kept per the tier's retention)")
    up: int
    down: int
    ratio: float | None = Field(description="up / (up + down), null while nobody rated")

    @classmethod
    def of(cls, config_version: int, answers: int, up: int, down: int) -> VersionFeedback:
        rated = up + down
        return cls(config_version=config_version, answers=answers, up=up, down=down, ratio=round(up / rated, 4) if rated else None)


class FeedbackSummary(Model):
    versions: list[VersionFeedback] = Field(description="newest configuration version first")
