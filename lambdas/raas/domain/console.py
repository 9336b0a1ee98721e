"""What the console's routes answer: who is calling, a month day by day, a tenant's timeline, a tier
preview, the config schema with the tier's bounds, a dry-run config check and a document's chunks.

Pure models and functions; the services in raas.services.console fill them from the stores.
"""

from __future__ import annotations

import copy
from datetime import date, datetime
from typing import Any

from pydantic import ConfigDict, Field

from raas.domain import catalog
from raas.domain.catalog import Tier
from raas.domain.config import Branding, ClampedField, TenantConfig
from raas.domain.model import Model
from raas.domain.prompts import MAX_TEMPLATE_CHARS, MAX_VARIABLE_NAME_CHARS, MAX_VARIABLE_VALUE_CHARS, MAX_VARIABLES
from raas.domain.tenants import Role

# --- GET /v1/me ---------------------------------------------------------------------------------


class Me(Model):
    """The caller as the authorizer established it, with what the console shows about it."""

    role: Role
    tenant_id: str | None = Field(description="null for an operator key")
    tenant_name: str | None
    tier: Tier | None
    key_id: str
    key_name: str | None = Field(description="the key's name; null for a JWT caller")
    branding: Branding | None = Field(description="the tenant configuration's branding; null for the operator")


# --- GET /v1/usage/daily ------------------------------------------------------------------------


Day = date  # the field below is called `date`, as the contract names it


class UsageDay(Model):
    date: Day
    queries: int
    searches: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    api_calls: int
    bytes_ingested: int

    @classmethod
    def of(cls, day: Day, totals: dict[str, int]) -> UsageDay:
        return cls(
            date=day,
            queries=totals.get("queries", 0),
            searches=totals.get("searches", 0),
            prompt_tokens=totals.get("prompt_tokens", 0),
            completion_tokens=totals.get("completion_tokens", 0),
            cost_usd=round(totals.get("cost_microusd", 0) / 1_000_000, 6),
            api_calls=totals.get("api_calls", 0),
            bytes_ingested=totals.get("bytes_ingested", 0),
        )


class DailyUsage(Model):
    period: str
    days: list[UsageDay] = Field(description="every day of the month up to today (UTC), or the whole month if it is over; zeros included")


# --- GET /v1/tenants/{id}/timeline --------------------------------------------------------------


class TimelineEvent(Model):
    at: datetime
    kind: str = Field(
        description="created, provisioned, suspended, resumed, tier_changed, renamed, billing_cycle_changed, deletion_requested or deleted"
    )
    actor: str | None
    detail: str | None


class Timeline(Model):
    events: list[TimelineEvent] = Field(description="oldest first; lifecycle and operator entries only, never the tenant's data")


# --- POST /v1/tenants/{id}/tier-preview ---------------------------------------------------------


class TierPreview(Model):
    tier: Tier
    clamped: list[ClampedField] = Field(description="what the tier change would lower or turn off; empty when the config fits")


# --- GET /v1/config/schema ----------------------------------------------------------------------


class ConfigSchema(Model):
    tier: Tier
    schema_: dict[str, Any] = Field(
        alias="schema",
        description="JSON Schema (2020-12) of the tenant configuration with the tier's bounds as minimum/maximum/maxLength/enum",
    )


def _inline_refs(node: Any, definitions: dict[str, Any]) -> Any:
    """The schema with every `$ref` to `$defs` replaced by its definition (no recursion in this model), so a form
    generator walks one tree."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            merged = {**_inline_refs(definitions[ref.removeprefix("#/$defs/")], definitions)}
            merged.update({k: _inline_refs(v, definitions) for k, v in node.items() if k != "$ref"})
            return merged
        return {k: _inline_refs(v, definitions) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline_refs(item, definitions) for item in node]
    return node


def _lower(schema: dict[str, Any], bound: str, value: float) -> None:
    schema[bound] = min(schema[bound], value) if bound in schema else value


def config_schema(tier: Tier | str) -> dict[str, Any]:
    """The tenant configuration's JSON Schema, generated from the pydantic model, with `tier`'s bounds applied:
    the same bounds tier_violations and check_tier enforce, so a form that respects the schema is not refused
    for the tier (per-model output limits and the template rules are checked by the API; see descriptions)."""
    limits = catalog.tier_limits(tier)
    raw = TenantConfig.model_json_schema(mode="validation")
    schema: dict[str, Any] = _inline_refs(copy.deepcopy(raw), raw.get("$defs", {}))
    props = schema["properties"]
    props["model"]["enum"] = list(limits.allowed_models)
    props["model"]["description"] = "a model the tier allows; each has its own output limit (max_tokens)"
    _lower(props["top_k"], "maximum", limits.max_top_k)
    # The model's own output limit is a second bound, checked by the API for the chosen model.
    model_cap = max(catalog.models()[name].max_output_tokens for name in limits.allowed_models)
    _lower(props["max_tokens"], "maximum", min(limits.max_tokens, model_cap))
    if not limits.reranking:
        props["enable_reranking"]["enum"] = [False]
        props["enable_reranking"]["description"] = f"reranking is not available on the {Tier(tier).value} tier"
    props["prompt_template"]["maxLength"] = MAX_TEMPLATE_CHARS
    props["prompt_template"]["description"] = (
        "named placeholders only: {query} (required), {context} and the declared prompt_variables; write {{ and }} for literal braces"
    )
    variables = props["prompt_variables"]
    variables["maxProperties"] = MAX_VARIABLES
    variables["propertyNames"] = {
        "pattern": "^[A-Za-z_][A-Za-z0-9_]*$",
        "maxLength": MAX_VARIABLE_NAME_CHARS,
        "not": {"enum": ["query", "context"]},
    }
    variables["additionalProperties"] = {"type": "string", "maxLength": MAX_VARIABLE_VALUE_CHARS}
    branding = props["branding"]["properties"]
    for colour in ("primary_color", "secondary_color"):
        branding[colour]["pattern"] = "^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$"
    for option in branding["logo_url"].get("anyOf", []):
        if option.get("type") == "string":
            option["pattern"] = "^https://"
    own = props["limits"]["properties"]
    for name, cap in (
        ("monthly_queries", limits.monthly_queries),
        ("requests_per_second", limits.rate_limit_rps),
        ("monthly_cost_usd", limits.monthly_llm_budget_usd),
    ):
        for option in own[name].get("anyOf", [own[name]]):
            if option.get("type") in ("integer", "number"):
                _lower(option, "maximum", cap)
    chunking = props["chunking"]
    chunking["description"] = "overlap must be less than half of size"
    return schema


# --- POST /v1/config/validate -------------------------------------------------------------------

# What the preview renders the template with: a question and one fenced passage, as the query path fences them.
SAMPLE_QUESTION = "What is our refund window?"
SAMPLE_CONTEXT_TITLE = "Refund policy"
SAMPLE_CONTEXT_TEXT = "Customers may return items within 30 days of delivery for a full refund."


class ConfigValidation(Model):
    valid: bool = Field(description="always true in a 200; an invalid config is the 422 PATCH would answer")
    config: TenantConfig = Field(description="the configuration the merge would produce (nothing is saved)")
    prompt_preview: str = Field(description="the template rendered with the tenant's variables, a sample question and context")


# --- GET /v1/documents/{id}/chunks --------------------------------------------------------------


class ChunkView(Model):
    chunk_id: str
    ordinal: int = Field(description="the chunk's position in its document, from 0")
    text: str


class ChunkPage(Model):
    chunks: list[ChunkView] = Field(description="in document order")
    next_cursor: str | None


class TierPreviewRequest(Model):
    model_config = ConfigDict(extra="forbid")

    tier: Tier = Field(description="the tier to preview a move to")
