"""Monthly query quota and LLM budget: reserved atomically before the LLM call, reconciled after.

The limits are the tier's, lowered by the tenant's own caps (`limits` in its configuration)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from aws_lambda_powertools import Logger

from raas.domain import catalog
from raas.domain.catalog import Tier
from raas.domain.config import Limits
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
class MonthlyLimits:
    queries: int
    budget_usd: float
    queries_capped: bool  # the tenant's own cap is below the tier's
    budget_capped: bool

    @classmethod
    def of(cls, tier: Tier, caps: Limits | None) -> MonthlyLimits:
        """min(tier, tenant) for each limit; a cap the tenant did not set is the tier's."""
        tier_limits = catalog.tier_limits(tier)
        queries, budget = tier_limits.monthly_queries, tier_limits.monthly_llm_budget_usd
        if caps is not None and caps.monthly_queries is not None:
            queries = min(queries, caps.monthly_queries)
        if caps is not None and caps.monthly_cost_usd is not None:
            budget = min(budget, caps.monthly_cost_usd)
        return cls(queries, budget, queries < tier_limits.monthly_queries, budget < tier_limits.monthly_llm_budget_usd)


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

    def reserve(self, tenant_id: str, tier: Tier, estimated_cost_usd: float, caps: Limits | None = None) -> Reservation:
        """Takes one query and the worst-case cost of its LLM call, or raises 429. `caps` are the
        tenant's own limits from its configuration; each applies where it is below the tier's."""
        limits = MonthlyLimits.of(tier, caps)
        now = self._now()
        period = period_of(now)
        cost = usd_to_micro(estimated_cost_usd)
        budget = usd_to_micro(limits.budget_usd)
        try:
            if cost > budget:
                raise QuotaExceeded("llm_budget")
            queries, spent = self.ledger.reserve(
                tenant_id, period, cost_microusd=cost, query_limit=limits.queries, cost_limit_microusd=budget
            )
        except QuotaExceeded as exc:
            raise self._exceeded(tenant_id, tier, limits, period, str(exc), now) from None
        self._announce(tenant_id, period, "queries", queries - 1, queries, limits.queries)
        self._announce(tenant_id, period, "llm_cost_microusd", spent - cost, spent, budget)
        return Reservation(tenant_id, tier, period, cost)

    def settle(self, reservation: Reservation, actual_cost_usd: float) -> None:
        """Replaces the estimate with what the call cost."""
        delta = usd_to_micro(actual_cost_usd) - reservation.cost_microusd
        self.ledger.adjust(reservation.tenant_id, reservation.period, cost_microusd=delta)

    def release(self, reservation: Reservation, spent_usd: float = 0.0) -> None:
        """Gives the query and its estimate back (the call failed; nothing is charged), keeping
        `spent_usd` a model call made before the failure cost (a conversation's rewrite)."""
        delta = usd_to_micro(spent_usd) - reservation.cost_microusd
        self.ledger.adjust(reservation.tenant_id, reservation.period, queries=-1, cost_microusd=delta)

    def _exceeded(self, tenant_id: str, tier: Tier, limits: MonthlyLimits, period: str, metric: str, now: datetime) -> TooManyRequests:
        queries, spent = self.ledger.used(tenant_id, period)
        headers = {
            "Retry-After": str(seconds_until_next_period(now)),
            "X-Quota-Queries-Limit": str(limits.queries),
            "X-Quota-Queries-Remaining": str(max(0, limits.queries - queries)),
            "X-Quota-Budget-Remaining-Usd": f"{max(0, usd_to_micro(limits.budget_usd) - spent) / 1_000_000:.6f}",
        }
        tiers = f"the {tier.value} tier's"
        if metric == "queries":
            whose = "this tenant's own" if limits.queries_capped else tiers
            return TooManyRequests(
                f"{whose} limit of {limits.queries} queries for {period} is used up", code="quota_exceeded", headers=headers
            )
        whose = "this tenant's own" if limits.budget_capped else tiers
        return TooManyRequests(
            f"{whose} LLM budget of ${limits.budget_usd:g} for {period} is used up", code="llm_budget_exceeded", headers=headers
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
