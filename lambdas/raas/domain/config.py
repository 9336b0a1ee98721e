"""Tenant configuration: the model, its bounds, defaults, merge/replace and tier rules."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import ConfigDict, Field, ValidationError, field_validator, model_validator

from raas.domain import catalog
from raas.domain.catalog import Tier
from raas.domain.errors import ValidationFailed, pydantic_details
from raas.domain.model import Model
from raas.domain.prompts import DEFAULT_TEMPLATE, check_template

_HEX_COLOUR = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")


class TierLimitExceeded(ValidationFailed):
    code = "tier_limit_exceeded"


class Branding(Model):
    model_config = ConfigDict(extra="forbid")

    primary_color: str = "#6B7280"
    secondary_color: str = "#9CA3AF"
    logo_url: str | None = Field(default=None, max_length=2048)

    @field_validator("primary_color", "secondary_color")
    @classmethod
    def _hex(cls, value: str) -> str:
        if not _HEX_COLOUR.fullmatch(value):
            raise ValueError("must be a hex colour like #1E40AF or #fff")
        return value.upper()

    @field_validator("logo_url")
    @classmethod
    def _https(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("https://"):
            raise ValueError("must be an https:// URL")
        return value


class ChunkingStrategy(StrEnum):
    TOKENS = "tokens"
    STRUCTURE = "structure"


class Chunking(Model):
    model_config = ConfigDict(extra="forbid")

    strategy: ChunkingStrategy = ChunkingStrategy.STRUCTURE
    size: int = Field(default=200, ge=32, le=2048, strict=True, description="target chunk size in tokens (words and punctuation)")
    overlap: int = Field(default=30, ge=0, le=512, strict=True, description="tokens shared by neighbouring chunks")

    @model_validator(mode="after")
    def _overlap_below_size(self) -> Chunking:
        if self.overlap >= self.size // 2:
            raise ValueError("overlap must be less than half of size")
        return self


class Limits(Model):
    """Caps a tenant admin may set below its tier's (None = the tier's own limit)."""

    model_config = ConfigDict(extra="forbid")

    monthly_queries: int | None = Field(default=None, ge=0, strict=True)
    monthly_cost_usd: float | None = Field(default=None, ge=0, strict=True)
    requests_per_second: int | None = Field(default=None, ge=1, strict=True)


def _default_model() -> str:
    return "gpt-3.5-turbo"


class TenantConfig(Model):
    """A tenant's RAG settings. Defaults are the seed notebook's.

    Numbers and booleans are strict (`top_k: true` is refused, not read as 1); a float field still
    takes an integer (`temperature: 1`), as pydantic's strict float does."""

    model_config = ConfigDict(extra="forbid", use_enum_values=False)

    model: str = Field(default_factory=_default_model, description="a model name from the model catalogue")
    temperature: float = Field(default=0.7, ge=0.0, le=2.0, strict=True)
    top_k: int = Field(default=5, ge=1, le=20, strict=True)
    alpha: float = Field(default=0.5, ge=0.0, le=1.0, strict=True, description="0 = BM25 only, 1 = vector only")
    max_tokens: int = Field(default=500, ge=1, le=64000, strict=True)
    enable_reranking: bool = Field(default=False, strict=True)
    prompt_template: str = Field(default=DEFAULT_TEMPLATE, min_length=1)
    prompt_variables: dict[str, str] = Field(default_factory=dict)
    branding: Branding = Field(default_factory=Branding)
    chunking: Chunking = Field(default_factory=Chunking)
    limits: Limits = Field(default_factory=Limits)

    @field_validator("model")
    @classmethod
    def _known_model(cls, value: str) -> str:
        if value not in catalog.models():
            raise ValueError(f"unknown model {value!r}; allowed: {', '.join(sorted(catalog.models()))}")
        return value

    @model_validator(mode="after")
    def _template_and_model_bounds(self) -> TenantConfig:
        check_template(self.prompt_template, self.prompt_variables)
        model_max = catalog.models()[self.model].max_output_tokens
        if self.max_tokens > model_max:
            raise ValueError(f"max_tokens {self.max_tokens} exceeds {self.model}'s output limit of {model_max}")
        return self


# Nested objects that a merge update combines field by field; other fields are replaced whole.
_MERGED_OBJECTS = ("branding", "chunking", "limits")


def parse_config(data: dict[str, Any]) -> TenantConfig:
    """Validates a full config document, turning pydantic errors into a 422 with field details."""
    try:
        return TenantConfig.model_validate(data)
    except ValidationError as exc:
        # Template rule errors (TemplateError) are not ValueErrors, so pydantic lets them
        # through unwrapped with their own rule-by-rule details.
        details = pydantic_details(exc.errors())
        summary = "; ".join(f"{d['field'] or 'config'}: {d['message']}" for d in details)
        raise ValidationFailed(f"configuration is invalid: {summary}", details=details) from None


def apply_update(current: TenantConfig, update: dict[str, Any], *, merge: bool) -> TenantConfig:
    """The notebook's semantics: merge keeps fields not named; replace resets them to defaults."""
    if not merge:
        return parse_config(update)
    base = current.model_dump(mode="json")
    for key, value in update.items():
        if key in _MERGED_OBJECTS and isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return parse_config(base)


def changed_fields(before: TenantConfig, after: TenantConfig) -> list[str]:
    """Dotted names of the fields whose values differ (nested objects reported per field)."""
    old, new = before.model_dump(mode="json"), after.model_dump(mode="json")
    changed: list[str] = []
    for key in sorted(set(old) | set(new)):
        if key in _MERGED_OBJECTS and isinstance(old.get(key), dict) and isinstance(new.get(key), dict):
            changed.extend(f"{key}.{sub}" for sub in sorted(set(old[key]) | set(new[key])) if old[key].get(sub) != new[key].get(sub))
        elif old.get(key) != new.get(key):
            changed.append(key)
    return changed


def tier_violations(config: TenantConfig, tier: Tier | str) -> list[dict[str, Any]]:
    limits = catalog.tier_limits(tier)
    name = Tier(tier).value
    problems: list[dict[str, Any]] = []
    if config.model not in limits.allowed_models:
        problems.append(
            {
                "field": "model",
                "message": f"{config.model} is not available on the {name} tier; allowed: {', '.join(limits.allowed_models)}",
            }
        )
    if config.top_k > limits.max_top_k:
        problems.append({"field": "top_k", "message": f"top_k {config.top_k} exceeds the {name} tier's maximum of {limits.max_top_k}"})
    if config.max_tokens > limits.max_tokens:
        problems.append(
            {"field": "max_tokens", "message": f"max_tokens {config.max_tokens} exceeds the {name} tier's maximum of {limits.max_tokens}"}
        )
    if config.enable_reranking and not limits.reranking:
        problems.append({"field": "enable_reranking", "message": f"reranking is not available on the {name} tier"})
    if config.limits.monthly_queries is not None and config.limits.monthly_queries > limits.monthly_queries:
        problems.append(
            {"field": "limits.monthly_queries", "message": f"exceeds the {name} tier's {limits.monthly_queries} queries a month"}
        )
    if config.limits.requests_per_second is not None and config.limits.requests_per_second > limits.rate_limit_rps:
        problems.append(
            {"field": "limits.requests_per_second", "message": f"exceeds the {name} tier's {limits.rate_limit_rps} requests a second"}
        )
    if config.limits.monthly_cost_usd is not None and config.limits.monthly_cost_usd > limits.monthly_llm_budget_usd:
        problems.append(
            {
                "field": "limits.monthly_cost_usd",
                "message": f"exceeds the {name} tier's LLM budget of ${limits.monthly_llm_budget_usd:g} a month",
            }
        )
    return problems


def check_tier(config: TenantConfig, tier: Tier | str) -> None:
    problems = tier_violations(config, tier)
    if problems:
        raise TierLimitExceeded(
            f"configuration exceeds the {Tier(tier).value} tier: " + "; ".join(p["message"] for p in problems), details=problems
        )


def clamp_to_tier(config: TenantConfig, tier: Tier | str) -> TenantConfig:
    """The nearest config within a tier's bounds (used when a tenant moves to a smaller tier)."""
    return clamp_with_changes(config, tier)[0]


class ClampedField(Model):
    """One value a tier change lowers (or turns off) to fit the new tier."""

    field: str = Field(description="dotted field name, e.g. `top_k` or `limits.monthly_queries`")
    from_: Any = Field(alias="from", description="the current value")
    to: Any = Field(description="the value the tier change would write")


def clamp_with_changes(config: TenantConfig, tier: Tier | str) -> tuple[TenantConfig, list[ClampedField]]:
    """The clamped config and what changed. The tier change (clamp_to_tier) and its preview both use this one
    function, so the preview cannot promise anything the change would not do."""
    clamped = _clamp(config, tier)
    before, after = config.model_dump(mode="json"), clamped.model_dump(mode="json")
    changes = []
    for name in changed_fields(config, clamped):
        head, _, sub = name.partition(".")
        old, new = (before[head], after[head]) if not sub else (before[head][sub], after[head][sub])
        changes.append(ClampedField.model_validate({"field": name, "from": old, "to": new}))
    return clamped, changes


def _clamp(config: TenantConfig, tier: Tier | str) -> TenantConfig:
    limits = catalog.tier_limits(tier)
    data = config.model_dump(mode="json")
    if config.model not in limits.allowed_models:
        data["model"] = _default_model() if _default_model() in limits.allowed_models else limits.allowed_models[0]
    data["top_k"] = min(config.top_k, limits.max_top_k)
    data["max_tokens"] = min(config.max_tokens, limits.max_tokens, catalog.models()[data["model"]].max_output_tokens)
    data["enable_reranking"] = config.enable_reranking and limits.reranking
    if config.limits.monthly_queries is not None:
        data["limits"]["monthly_queries"] = min(config.limits.monthly_queries, limits.monthly_queries)
    if config.limits.requests_per_second is not None:
        data["limits"]["requests_per_second"] = min(config.limits.requests_per_second, limits.rate_limit_rps)
    if config.limits.monthly_cost_usd is not None:
        data["limits"]["monthly_cost_usd"] = min(config.limits.monthly_cost_usd, limits.monthly_llm_budget_usd)
    return parse_config(data)


class ConfigVersion(Model):
    """One immutable version of a tenant's configuration."""

    version: int
    config: TenantConfig
    created_at: datetime
    created_by: str
    mode: str = Field(description="merge, replace, rollback, tier_clamp or default")
    changed_fields: list[str] = Field(default_factory=list)
    rolled_back_from: int | None = None
