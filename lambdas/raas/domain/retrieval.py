"""Retrieval logic above the search engines: metadata filters and hybrid score fusion.

Fusion lives here, not in an engine, so OpenSearch and the embedded engine rank alike:
each list's scores are min-max normalised to [0, 1], then mixed as
`alpha * vector + (1 - alpha) * bm25` (a chunk missing from one list scores 0 there).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

from raas.domain.documents import MetadataValue
from raas.domain.errors import ValidationFailed

Operator = Literal["eq", "in", "range"]
_RANGE_KEYS = {"gte", "gt", "lte", "lt"}
MAX_FILTERS = 20


@dataclass(frozen=True)
class Condition:
    field: str
    op: Operator
    value: Any


def parse_filters(raw: dict[str, Any] | None) -> list[Condition]:
    """`{"field": value}` equals, `{"field": {"in": [...]}}`, `{"field": {"gte": a, "lte": b}}`; all must hold."""
    if not raw:
        return []
    if len(raw) > MAX_FILTERS:
        raise ValidationFailed(f"at most {MAX_FILTERS} filters", code="invalid_filter")
    conditions = []
    for name, value in raw.items():
        where = [{"field": f"filters.{name}", "message": ""}]
        if isinstance(value, dict):
            keys = set(value)
            if keys == {"in"}:
                options = value["in"]
                if not isinstance(options, list) or not options or len(options) > 100 or not all(_is_scalar(o) for o in options):
                    where[0]["message"] = "'in' takes a list of 1 to 100 strings, numbers or booleans"
                    raise ValidationFailed("filter is invalid", code="invalid_filter", details=where)
                conditions.append(Condition(name, "in", options))
            elif keys and keys <= _RANGE_KEYS:
                if not all(isinstance(v, int | float | str) and not isinstance(v, bool) for v in value.values()):
                    where[0]["message"] = "range bounds are numbers or strings"
                    raise ValidationFailed("filter is invalid", code="invalid_filter", details=where)
                conditions.append(Condition(name, "range", dict(value)))
            else:
                where[0]["message"] = "use a value, {'in': [...]} or {'gte'/'gt'/'lte'/'lt': ...}"
                raise ValidationFailed("filter is invalid", code="invalid_filter", details=where)
        elif _is_scalar(value):
            conditions.append(Condition(name, "eq", value))
        else:
            where[0]["message"] = "equality filters take a string, number or boolean"
            raise ValidationFailed("filter is invalid", code="invalid_filter", details=where)
    return conditions


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool)


def _compare(value: Any, bound: Any) -> int | None:
    """-1/0/1, or None when the two are not comparable (a string against a number)."""
    numeric = (int, float)
    if isinstance(value, bool) or isinstance(bound, bool):
        return None
    if isinstance(value, numeric) and isinstance(bound, numeric):
        return (value > bound) - (value < bound)
    if isinstance(value, str) and isinstance(bound, str):
        return (value > bound) - (value < bound)
    return None


def _holds(value: MetadataValue | None, condition: Condition) -> bool:
    values = value if isinstance(value, list) else [value]
    if condition.op == "eq":
        return condition.value in values
    if condition.op == "in":
        return any(v in condition.value for v in values)
    for v in values:
        checks = []
        for op, bound in condition.value.items():
            order = _compare(v, bound)
            checks.append(order is not None and {"gte": order >= 0, "gt": order > 0, "lte": order <= 0, "lt": order < 0}[op])
        if checks and all(checks):
            return True
    return False


def matches(metadata: dict[str, MetadataValue], conditions: list[Condition]) -> bool:
    return all(_holds(metadata.get(c.field), c) for c in conditions)


@dataclass(frozen=True)
class Hit:
    chunk_id: str
    document_id: str
    title: str
    text: str
    position: int
    score: float
    metadata: dict[str, MetadataValue] = field(default_factory=dict)


def normalise(hits: list[Hit]) -> dict[str, float]:
    if not hits:
        return {}
    scores = [h.score for h in hits]
    low, high = min(scores), max(scores)
    if high - low < 1e-12:
        return {h.chunk_id: 1.0 for h in hits}
    return {h.chunk_id: (h.score - low) / (high - low) for h in hits}


def fuse(bm25: list[Hit], vector: list[Hit], alpha: float) -> list[Hit]:
    lexical, semantic = normalise(bm25), normalise(vector)
    by_id = {h.chunk_id: h for h in [*vector, *bm25]}
    fused = [replace(hit, score=alpha * semantic.get(cid, 0.0) + (1 - alpha) * lexical.get(cid, 0.0)) for cid, hit in by_id.items()]
    # ties broken by chunk id so every engine returns the same order
    return sorted(fused, key=lambda h: (-h.score, h.chunk_id))
