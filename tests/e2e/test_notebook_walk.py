"""The customization notebook, walked end to end over HTTP against `raas local`."""

from __future__ import annotations

from tests.conftest import OPERATOR_KEY, TenantHandle, create_tenant
from tests.helpers import HttpClient, expect

STARTUP = {
    "model": "gpt-3.5-turbo",
    "temperature": 0.7,
    "top_k": 5,
    "alpha": 0.5,
    "max_tokens": 500,
    "prompt_template": "You are a helpful assistant for {company_name}. Answer: {query}",
    "prompt_variables": {"company_name": "Startup Co"},
    "branding": {"primary_color": "#3B82F6", "secondary_color": "#10B981"},
    "enable_reranking": False,
}
ENTERPRISE = {
    "model": "gpt-4-turbo",
    "temperature": 0.5,
    "top_k": 10,
    "alpha": 0.7,
    "max_tokens": 1000,
    "prompt_template": "Expert AI for {company_name}: {query}",
    "prompt_variables": {"company_name": "Enterprise Corp"},
    "branding": {"primary_color": "#1E40AF", "secondary_color": "#DC2626"},
    "enable_reranking": True,
}
RESEARCH = {"model": "claude-3-opus", "temperature": 0.9, "top_k": 15, "max_tokens": 2000, "enable_reranking": True}


def config_of(api: HttpClient, tenant: TenantHandle) -> dict:
    return expect(api.request("GET", "/v1/config", key=tenant.admin_key), 200)


def test_the_notebook_walk(http_api: HttpClient) -> None:
    api = http_api
    startup = create_tenant(api, "Startup Co", "smb")
    enterprise = create_tenant(api, "Enterprise Corp", "enterprise")
    research = create_tenant(api, "Research Lab", "enterprise")

    # 1. Every new tenant starts with the default configuration.
    default = config_of(api, startup)
    assert default["version"] == 0
    c = default["config"]
    assert (c["model"], c["temperature"], c["top_k"], c["alpha"], c["max_tokens"], c["enable_reranking"]) == (
        "gpt-3.5-turbo",
        0.7,
        5,
        0.5,
        500,
        False,
    )
    assert c["branding"]["primary_color"] == "#6B7280"

    # 3. Validation blocks invalid models and out-of-range values.
    assert api.request("PATCH", "/v1/config", key=startup.admin_key, json_body={"model": "invalid-model"}).status == 422
    assert api.request("PATCH", "/v1/config", key=startup.admin_key, json_body={"temperature": 3.0}).status == 422

    # 4. Three tenants: startup and enterprise replace (merge=False), research merges.
    expect(api.request("PUT", "/v1/config", key=startup.admin_key, json_body=STARTUP), 200)
    expect(api.request("PUT", "/v1/config", key=enterprise.admin_key, json_body=ENTERPRISE), 200)
    expect(api.request("PATCH", "/v1/config", key=research.admin_key, json_body=RESEARCH), 200)

    # 5. Each reads back its own configuration.
    s, e, r = (config_of(api, t)["config"] for t in (startup, enterprise, research))
    assert (s["model"], s["temperature"], s["top_k"], s["prompt_variables"]) == ("gpt-3.5-turbo", 0.7, 5, {"company_name": "Startup Co"})
    assert (e["model"], e["temperature"], e["enable_reranking"], e["max_tokens"]) == ("gpt-4-turbo", 0.5, True, 1000)
    assert (r["model"], r["temperature"], r["top_k"], r["max_tokens"]) == ("claude-3-opus", 0.9, 15, 2000)
    assert r["alpha"] == 0.5  # merged onto the defaults
    assert (s["branding"]["primary_color"], e["branding"]["secondary_color"]) == ("#3B82F6", "#DC2626")

    # 8. Merge keeps the other fields; replace resets them to defaults.
    merged = expect(api.request("PATCH", "/v1/config", key=startup.admin_key, json_body={"temperature": 0.9}), 200)["config"]
    assert (merged["model"], merged["temperature"], merged["top_k"], merged["prompt_variables"]) == (
        "gpt-3.5-turbo",
        0.9,
        5,
        {"company_name": "Startup Co"},
    )
    replaced = expect(api.request("PUT", "/v1/config", key=startup.admin_key, json_body={"temperature": 0.3}), 200)["config"]
    assert (replaced["temperature"], replaced["prompt_variables"], replaced["branding"]["primary_color"]) == (0.3, {}, "#6B7280")

    # 9. Isolation: each tenant's change leaves the others untouched.
    assert config_of(api, enterprise)["config"] == e
    assert config_of(api, research)["config"] == r

    # Failure 2: replace with a partial body resets the rest; merge preserves it.
    expect(api.request("PUT", "/v1/config", key=research.admin_key, json_body={"temperature": 0.8, "top_k": 10}), 200)
    right = expect(api.request("PATCH", "/v1/config", key=research.admin_key, json_body={"model": "gpt-4"}), 200)["config"]
    assert (right["model"], right["temperature"], right["top_k"]) == ("gpt-4", 0.8, 10)

    # Failure 3: an update is visible to the next read at once (the cache is invalidated).
    expect(api.request("PATCH", "/v1/config", key=enterprise.admin_key, json_body={"temperature": 0.6}), 200)
    assert config_of(api, enterprise)["config"]["temperature"] == 0.6

    # Failure 4: every change is a version, and a bad change can be rolled back.
    versions = expect(api.request("GET", "/v1/config/versions", key=startup.admin_key), 200)["versions"]
    assert [v["version"] for v in versions] == [3, 2, 1]
    assert [v["mode"] for v in versions] == ["replace", "merge", "replace"]
    restored = expect(api.request("POST", "/v1/config/rollback", key=startup.admin_key, json_body={"version": 2}), 200)
    assert restored["version"] == 4
    assert restored["config"]["temperature"] == 0.9
    assert restored["config"]["prompt_variables"] == {"company_name": "Startup Co"}

    # Tier bounds: the startup (smb) cannot take the enterprise tenant's model.
    refused = api.request("PATCH", "/v1/config", key=startup.admin_key, json_body={"model": "claude-3-opus"})
    assert (refused.status, refused.error_code) == (422, "tier_limit_exceeded")

    # The operator sees all three tenants.
    listed = {t["tenant_id"] for t in expect(api.request("GET", "/v1/tenants?limit=100", key=OPERATOR_KEY), 200)["tenants"]}
    assert {startup.tenant_id, enterprise.tenant_id, research.tenant_id} <= listed
