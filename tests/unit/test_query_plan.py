from __future__ import annotations

import pytest

from raas.domain.catalog import Tier
from raas.domain.config import TenantConfig, TierLimitExceeded
from raas.domain.errors import ValidationFailed
from raas.services.query import QueryRequest, plan


def test_plan_takes_the_config_unless_the_request_overrides() -> None:
    config = TenantConfig(top_k=4, alpha=0.3, enable_reranking=False)
    default = plan(config, Tier.SMB, QueryRequest(query="q"))
    assert (default.top_k, default.alpha, default.rerank, default.conditions) == (4, 0.3, False, [])
    override = plan(config, Tier.SMB, QueryRequest(query="q", top_k=8, alpha=1.0, rerank=True, filters={"a": 1}))
    assert (override.top_k, override.alpha, override.rerank, len(override.conditions)) == (8, 1.0, True, 1)


def test_overrides_beyond_the_tier_are_refused() -> None:
    with pytest.raises(TierLimitExceeded) as caught:
        plan(TenantConfig(), Tier.FREE, QueryRequest(query="q", top_k=6, rerank=True))
    assert {d["field"] for d in caught.value.details} == {"top_k", "rerank"}


def test_bad_filters_are_refused() -> None:
    with pytest.raises(ValidationFailed):
        plan(TenantConfig(), Tier.SMB, QueryRequest(query="q", filters={"x": {"regex": ".*"}}))
