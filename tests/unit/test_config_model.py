from __future__ import annotations

import itertools

import pytest

from raas.domain import catalog
from raas.domain.catalog import Tier
from raas.domain.config import (
    TenantConfig,
    TierLimitExceeded,
    apply_update,
    changed_fields,
    check_tier,
    clamp_to_tier,
    parse_config,
)
from raas.domain.errors import ValidationFailed
from raas.domain.prompts import TemplateError


def test_defaults_are_the_notebooks() -> None:
    config = TenantConfig()
    assert (config.model, config.temperature, config.top_k, config.alpha, config.max_tokens) == ("gpt-3.5-turbo", 0.7, 5, 0.5, 500)
    assert config.enable_reranking is False
    assert config.branding.primary_color == "#6B7280"  # grey
    assert config.branding.secondary_color == "#9CA3AF"
    assert config.prompt_variables == {}


def test_defaults_fit_every_tier() -> None:
    for tier in Tier:
        check_tier(TenantConfig(), tier)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("temperature", -0.1),
        ("temperature", 2.01),
        ("top_k", 0),
        ("top_k", 21),
        ("alpha", -0.01),
        ("alpha", 1.5),
        ("max_tokens", 0),
        ("model", "invalid-model"),
        ("unknown_field", 1),
    ],
)
def test_out_of_bounds_values_are_rejected_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_config({field: value})
    assert caught.value.status == 422
    assert [d["field"] for d in caught.value.details] == [field]


@pytest.mark.parametrize(
    ("field", "value"), [("temperature", 0.0), ("temperature", 2.0), ("top_k", 1), ("top_k", 20), ("alpha", 0), ("alpha", 1)]
)
def test_bounds_are_inclusive(field: str, value: float) -> None:
    assert getattr(parse_config({field: value}), field) == value


def test_max_tokens_is_capped_by_the_models_output_limit() -> None:
    with pytest.raises(ValidationFailed, match="output limit"):
        parse_config({"model": "gpt-4", "max_tokens": 5000})


@pytest.mark.parametrize("colour", ["blue", "#12345", "#GGGGGG", "123456", "#1234567"])
def test_branding_colours_must_be_hex(colour: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_config({"branding": {"primary_color": colour}})
    assert caught.value.details[0]["field"] == "branding.primary_color"


def test_branding_colours_are_normalised_and_logo_must_be_https() -> None:
    assert parse_config({"branding": {"primary_color": "#abc"}}).branding.primary_color == "#ABC"
    with pytest.raises(ValidationFailed):
        parse_config({"branding": {"logo_url": "http://example.com/logo.png"}})


def test_chunking_overlap_must_stay_below_half_the_size() -> None:
    with pytest.raises(ValidationFailed):
        parse_config({"chunking": {"size": 100, "overlap": 50}})
    assert parse_config({"chunking": {"size": 100, "overlap": 49}}).chunking.overlap == 49


def test_template_errors_surface_with_rule_details() -> None:
    with pytest.raises(TemplateError) as caught:
        parse_config({"prompt_template": "Hi {company} {query}"})
    assert caught.value.code == "invalid_prompt_template"
    assert caught.value.details[0]["rule"] == "unknown_placeholder"


def test_merge_keeps_other_fields_and_replace_resets_them() -> None:
    start = parse_config({"model": "gpt-4", "temperature": 0.8, "top_k": 10})
    merged = apply_update(start, {"temperature": 0.9}, merge=True)
    assert (merged.model, merged.temperature, merged.top_k) == ("gpt-4", 0.9, 10)
    replaced = apply_update(start, {"temperature": 0.3}, merge=False)
    assert (replaced.model, replaced.temperature, replaced.top_k) == ("gpt-3.5-turbo", 0.3, 5)


def test_merge_combines_nested_objects_field_by_field() -> None:
    start = parse_config({"branding": {"primary_color": "#111111", "secondary_color": "#222222"}})
    merged = apply_update(start, {"branding": {"primary_color": "#333333"}}, merge=True)
    assert (merged.branding.primary_color, merged.branding.secondary_color) == ("#333333", "#222222")


def test_merge_revalidates_the_combined_result() -> None:
    start = parse_config({"prompt_template": "For {company}: {query}", "prompt_variables": {"company": "Acme"}})
    with pytest.raises(TemplateError):
        apply_update(start, {"prompt_variables": {}}, merge=True)  # {company} would become unknown


def test_changed_fields_lists_nested_names() -> None:
    before = TenantConfig()
    after = apply_update(before, {"temperature": 1.0, "branding": {"primary_color": "#000000"}}, merge=True)
    assert changed_fields(before, after) == ["branding.primary_color", "temperature"]
    assert changed_fields(before, before) == []


def test_tier_bounds_reject_with_one_detail_per_field() -> None:
    config = parse_config({"model": "claude-3-opus", "top_k": 15, "max_tokens": 2000, "enable_reranking": True})
    with pytest.raises(TierLimitExceeded) as caught:
        check_tier(config, Tier.FREE)
    assert caught.value.code == "tier_limit_exceeded"
    assert {d["field"] for d in caught.value.details} == {"model", "top_k", "max_tokens", "enable_reranking"}
    check_tier(config, Tier.ENTERPRISE)


def test_clamp_to_tier_produces_a_config_within_bounds() -> None:
    config = parse_config({"model": "claude-3-opus", "top_k": 15, "max_tokens": 2000, "enable_reranking": True, "temperature": 0.2})
    clamped = clamp_to_tier(config, Tier.FREE)
    check_tier(clamped, Tier.FREE)
    assert (clamped.model, clamped.top_k, clamped.max_tokens, clamped.enable_reranking) == ("gpt-3.5-turbo", 5, 500, False)
    assert clamped.temperature == 0.2  # fields the tier does not bound are kept
    assert clamp_to_tier(clamped, Tier.FREE) == clamped


def test_catalogue_has_the_notebook_models_with_prices() -> None:
    models = catalog.models()
    for name in ("gpt-4", "gpt-4-turbo", "gpt-3.5-turbo", "claude-3-opus", "claude-3-sonnet", "claude-3-haiku"):
        assert models[name].input_per_mtok > 0
        assert models[name].output_per_mtok > 0
    assert models["claude-3-opus"].provider == "anthropic"
    assert models["gpt-4o"].provider == "openai"
    assert models["gpt-3.5-turbo"].cost_usd(1_000_000, 1_000_000) == pytest.approx(2.0)


def test_every_tier_names_only_catalogue_models_and_grows_monotonically() -> None:
    tiers = [catalog.tier_limits(t) for t in (Tier.FREE, Tier.SMB, Tier.MIDMARKET, Tier.ENTERPRISE)]
    for smaller, larger in itertools.pairwise(tiers):
        assert set(smaller.allowed_models) <= set(larger.allowed_models)
        assert smaller.max_top_k <= larger.max_top_k
        assert smaller.max_tokens <= larger.max_tokens
        assert smaller.monthly_queries <= larger.monthly_queries
