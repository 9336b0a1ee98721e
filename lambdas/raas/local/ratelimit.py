"""Per-tenant token buckets: the local gateway's stand-in for API Gateway usage-plan throttling,
with the same numbers (the tier's rate and burst from tiers.json), lowered by the tenant's own
`limits.requests_per_second` cap (`tenant_rate`)."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from raas.domain.catalog import TierLimits
from raas.domain.config import Limits


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, key: str, rate: float, burst: int) -> float:
        """Takes one token; returns 0 when allowed, else the seconds until a token is free."""
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = _Bucket(tokens=float(burst), updated=now)
            bucket.tokens = min(float(burst), bucket.tokens + (now - bucket.updated) * rate)
            bucket.updated = now
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return 0.0
            return (1 - bucket.tokens) / rate


def tenant_rate(tier: TierLimits, caps: Limits | None) -> tuple[int, int]:
    """The (rate, burst) a tenant's requests get: min(tier, tenant). A tenant cap below the tier's
    rate lowers the burst to at most one second of that rate, so the cap holds from the first second."""
    if caps is None or caps.requests_per_second is None or caps.requests_per_second >= tier.rate_limit_rps:
        return tier.rate_limit_rps, tier.burst
    rate = caps.requests_per_second
    return rate, min(tier.burst, rate)


def retry_after_header(wait_seconds: float) -> str:
    return str(max(1, math.ceil(wait_seconds)))
