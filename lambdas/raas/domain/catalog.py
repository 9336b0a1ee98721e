"""Model catalogue and tier limits, both loaded once from the package's data files."""

from __future__ import annotations

import json
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Literal

from pydantic import ConfigDict

from raas.domain.model import Model


class Tier(StrEnum):
    FREE = "free"
    SMB = "smb"
    MIDMARKET = "midmarket"
    ENTERPRISE = "enterprise"


class ModelInfo(Model):
    model_config = ConfigDict(frozen=True)

    provider: Literal["openai", "anthropic"]
    provider_model_id: str
    input_per_mtok: float
    output_per_mtok: float
    context_window: int
    max_output_tokens: int

    def cost_usd(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input_per_mtok + completion_tokens * self.output_per_mtok) / 1_000_000


class TierLimits(Model):
    model_config = ConfigDict(frozen=True)

    allowed_models: tuple[str, ...]
    max_top_k: int
    max_tokens: int
    reranking: bool
    max_api_keys: int
    max_documents: int
    max_storage_bytes: int
    max_document_bytes: int
    max_extracted_bytes: int  # bytes of XML and text one document may expand to on extraction
    monthly_queries: int
    rate_limit_rps: int
    burst: int
    query_history_days: int
    monthly_llm_budget_usd: float
    max_webhook_endpoints: int
    webhook_log_days: int  # how long the delivery log of a webhook endpoint is kept


def _load(name: str) -> dict:
    return json.loads(resources.files("raas.data").joinpath(name).read_text(encoding="utf-8"))


@cache
def models() -> dict[str, ModelInfo]:
    return {name: ModelInfo(**info) for name, info in _load("models.json")["models"].items()}


@cache
def tiers() -> dict[Tier, TierLimits]:
    loaded = {Tier(name): TierLimits(**limits) for name, limits in _load("tiers.json")["tiers"].items()}
    unknown = {m for limits in loaded.values() for m in limits.allowed_models} - set(models())
    if unknown:
        raise ValueError(f"tiers.json names models missing from models.json: {sorted(unknown)}")
    return loaded


def tier_limits(tier: Tier | str) -> TierLimits:
    return tiers()[Tier(tier)]
