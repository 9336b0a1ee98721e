"""Monthly query quota and LLM budget: reserved atomically before the LLM call, reconciled after."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from aws_lambda_powertools import Logger

from raas.domain import catalog
from raas.domain.catalog import Tier
from raas.domain.errors import TooManyRequests
from raas.domain.events import QuotaThresholdReached
from raas.domain.ports import EventPublisher, QuotaExceeded
from raas.domain.usage import crossed_thresholds, period_of, seconds_until_next_period, usd_to_micro

logger = Logger(service="raas")


class Ledger(Protocol):
    def reserve(
        self, tenant_id: str, period: str, *, cost_microusd: int, query_limit: int, cost_limit_microusd: int
    ) -> tuple[int, int]: ...

    def adjust(self, tenant_id: str, period: str, *, queries: int = 0, cost_microusd: int = 0) -> None: ...

    def used(self, tenant_id: str, period: str) -> tuple[int, int]: ...


@dataclass(frozen=True)
class Reservation:
    tenant_id: str
    tier: Tier
    period: str
    cost_microusd: int


class QuotaGuard:
    def __init__(self, ledger: Ledger, events: EventPublisher, clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.ledger = ledger
        self.events = events
        self._now = clock

    def reserve(self, tenant_id: str, tier: Tier, estimated_cost_usd: float) -> Reservation:
        """Takes one query and the worst-case cost of its LLM call, or raises 429."""
        limits = catalog.tier_limits(tier)
        now = self._now()
        period = period_of(now)
        cost = usd_to_micro(estimated_cost_usd)
        budget = usd_to_micro(limits.monthly_llm_budget_usd)
        try:
            if cost > budget:
                raise QuotaExceeded("llm_budget")
            queries, spent = self.ledger.reserve(
                tenant_id, period, cost_microusd=cost, query_limit=limits.monthly_queries, cost_limit_microusd=budget
            )
        except QuotaExceeded as exc:
            raise self._exceeded(tenant_id, tier, period, str(exc), now) from None
        self._announce(tenant_id, period, "queries", queries - 1, queries, limits.monthly_queries)
        self._announce(tenant_id, period, "llm_cost_microusd", spent - cost, spent, budget)
        return Reservation(tenant_id, tier, period, cost)

    def settle(self, reservation: Reservation, actual_cost_usd: float) -> None:
        """Replaces the estimate with what the call cost."""
        delta = usd_to_micro(actual_cost_usd) - reservation.cost_microusd
        self.ledger.adjust(reservation.tenant_id, reservation.period, cost_microusd=delta)

    def release(self, reservation: Reservation) -> None:
        """Gives the query and its estimate back (the call failed; nothing is charged)."""
        self.ledger.adjust(reservation.tenant_id, reservation.period, queries=-1, cost_microusd=-reservation.cost_microusd)

    def _exceeded(self, tenant_id: str, tier: Tier, period: str, metric: str, now: datetime) -> TooManyRequests:
        limits = catalog.tier_limits(tier)
        queries, spent = self.ledger.used(tenant_id, period)
        headers = {
            "Retry-After": str(seconds_until_next_period(now)),
            "X-Quota-Queries-Limit": str(limits.monthly_queries),
            "X-Quota-Queries-Remaining": str(max(0, limits.monthly_queries - queries)),
            "X-Quota-Budget-Remaining-Usd": f"{max(0, usd_to_micro(limits.monthly_llm_budget_usd) - spent) / 1_000_000:.6f}",
        }
        if metric == "queries":
            return TooManyRequests(
                f"the {tier.value} tier's {limits.monthly_queries} queries for {period} are used up", code="quota_exceeded", headers=headers
            )
        return TooManyRequests(
            f"the {tier.value} tier's LLM budget of ${limits.monthly_llm_budget_usd:g} for {period} is used up",
            code="llm_budget_exceeded",
            headers=headers,
        )

    def _announce(self, tenant_id: str, period: str, metric: str, before: int, after: int, limit: int) -> None:
        for threshold in crossed_thresholds(before, after, limit):
            event = QuotaThresholdReached(
                event_id=f"quota-{tenant_id}-{period}-{metric}-{threshold}",
                tenant_id=tenant_id,
                metric=metric,
                period=period,
                threshold_percent=threshold,
                used=after,
                limit=limit,
            )
            try:
                self.events.publish(event)
            except Exception:  # an alert must not fail the query that crossed the line
                logger.exception("could not publish QuotaThresholdReached", extra={"tenant_id": tenant_id})
