"""One API Gateway key per tenant in its tier's usage plan; the authorizer names it (moto plays API Gateway)."""

from __future__ import annotations

import json

import boto3
import pytest

from raas.bootstrap import services
from raas.domain.catalog import Tier
from tests.helpers import rebuild_services
from tests.integration.test_authorizer import authorize

pytestmark = pytest.mark.usefixtures("aws")


@pytest.fixture
def plans(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    apigateway = boto3.client("apigateway")
    api = apigateway.create_rest_api(name="raas")
    ids = {tier.value: apigateway.create_usage_plan(name=f"raas-{tier.value}", apiStages=[])["id"] for tier in Tier}
    ids["operator"] = apigateway.create_usage_plan(name="raas-operator")["id"]
    boto3.client("ssm").put_parameter(Name="/raas/test/usage-plans", Value=json.dumps(ids), Type="String")
    operator_key = apigateway.create_api_key(name="raas-operator", enabled=True)
    apigateway.create_usage_plan_key(usagePlanId=ids["operator"], keyId=operator_key["id"], keyType="API_KEY")
    monkeypatch.setenv("RAAS_USAGE_PLANS_PARAMETER", "/raas/test/usage-plans")
    monkeypatch.setenv("RAAS_OPERATOR_USAGE_KEY_ID", operator_key["id"])
    rebuild_services()
    assert api["id"]
    return {**ids, "operator_key_value": operator_key["value"]}


def plan_key_ids(plan_id: str) -> set[str]:
    return {k["id"] for k in boto3.client("apigateway").get_usage_plan_keys(usagePlanId=plan_id)["items"]}


def test_each_tenant_gets_a_key_in_its_tiers_plan_and_the_authorizer_names_it(plans: dict[str, str]) -> None:
    tenant, _key, secret = services().tenant_service.create("acme", Tier.SMB)
    stored = services().tenant_store.get_tenant(tenant.tenant_id)
    assert stored is not None
    assert stored.usage_key_id in plan_key_ids(plans["smb"])
    assert "usage_key" not in tenant.model_dump_json()  # never in an API answer
    assert authorize(f"Bearer {secret}")["usageIdentifierKey"] == stored.usage_key_value
    other, _, _ = services().tenant_service.create("globex", Tier.SMB)
    assert services().tenant_store.get_tenant(other.tenant_id).usage_key_value != stored.usage_key_value  # type: ignore[union-attr]


def test_a_tier_change_moves_the_key_to_the_new_plan(plans: dict[str, str]) -> None:
    tenant, _key, _secret = services().tenant_service.create("acme", Tier.SMB)
    key_id = services().tenant_store.get_tenant(tenant.tenant_id).usage_key_id  # type: ignore[union-attr]
    services().tenant_service.update(tenant.tenant_id, name=None, tier=Tier.ENTERPRISE, actor="operator:test")
    assert key_id in plan_key_ids(plans["enterprise"])
    assert key_id not in plan_key_ids(plans["smb"])


def test_operators_use_the_operator_plan(plans: dict[str, str]) -> None:
    _key, secret = services().key_service.create_operator_key("ops")
    assert authorize(f"Bearer {secret}")["usageIdentifierKey"] == plans["operator_key_value"]


def test_without_usage_plans_no_key_is_made_or_returned() -> None:
    tenant, _key, secret = services().tenant_service.create("local", Tier.FREE)
    assert services().tenant_store.get_tenant(tenant.tenant_id).usage_key_id is None  # type: ignore[union-attr]
    assert "usageIdentifierKey" not in authorize(f"Bearer {secret}")


def test_suspending_disables_the_usage_plan_key_and_resuming_enables_it(plans: dict[str, str]) -> None:
    tenant, _key, _secret = services().tenant_service.create("acme", Tier.SMB)
    key_id = services().tenant_store.get_tenant(tenant.tenant_id).usage_key_id  # type: ignore[union-attr]
    apigateway = boto3.client("apigateway")
    services().tenant_service.suspend(tenant.tenant_id)
    assert apigateway.get_api_key(apiKey=key_id)["enabled"] is False
    services().tenant_service.resume(tenant.tenant_id)
    assert apigateway.get_api_key(apiKey=key_id)["enabled"] is True


def test_deleting_a_tenant_deletes_its_usage_plan_key(plans: dict[str, str]) -> None:
    tenant, _key, _secret = services().tenant_service.create("acme", Tier.SMB)
    key_id = services().tenant_store.get_tenant(tenant.tenant_id).usage_key_id  # type: ignore[union-attr]
    services().tenant_service.request_deletion(tenant.tenant_id, export_first=False, actor="operator:test")
    assert key_id not in {k["id"] for k in boto3.client("apigateway").get_api_keys()["items"]}
    receipt = services().tenant_store.get_tenant(tenant.tenant_id).deletion_receipt  # type: ignore[union-attr]
    assert receipt is not None
    assert next(s for s in receipt.steps if s.step == "usage_plan_key").count == 1
