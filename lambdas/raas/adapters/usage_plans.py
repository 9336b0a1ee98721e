"""API Gateway usage-plan keys: one key per tenant in its tier's plan (throttling AWS enforces).

The REST API's key source is AUTHORIZER: the authorizer returns the caller's key value as
`usageIdentifierKey`, and API Gateway applies that key's usage plan. Plan ids per tier come
from an SSM parameter the API stack writes (`RAAS_USAGE_PLANS_PARAMETER`).
"""

from __future__ import annotations

import json
from functools import cached_property
from typing import Any

from botocore.exceptions import ClientError

from raas.adapters.dynamo import storage_errors


class UsagePlanKeys:
    def __init__(self, apigateway: Any, ssm: Any, parameter_name: str):
        self.apigateway = apigateway
        self.ssm = ssm
        self.parameter_name = parameter_name

    @cached_property
    def plans(self) -> dict[str, str]:
        with storage_errors("the usage-plan configuration"):
            value = self.ssm.get_parameter(Name=self.parameter_name)["Parameter"]["Value"]
        plans: dict[str, str] = json.loads(value)
        return plans

    def create(self, tenant_id: str, tier: str) -> tuple[str, str]:
        """A new enabled key in the tier's plan; returns (key id, key value)."""
        with storage_errors("API Gateway"):
            key = self.apigateway.create_api_key(name=f"raas-{tenant_id}", enabled=True, tags={"raas:tenant_id": tenant_id})
            try:
                self.apigateway.create_usage_plan_key(usagePlanId=self.plans[tier], keyId=key["id"], keyType="API_KEY")
            except Exception:
                self.apigateway.delete_api_key(apiKey=key["id"])  # no orphan key outside any plan
                raise
        return str(key["id"]), str(key["value"])

    def move(self, key_id: str, from_tier: str, to_tier: str) -> None:
        with storage_errors("API Gateway"):
            self.apigateway.create_usage_plan_key(usagePlanId=self.plans[to_tier], keyId=key_id, keyType="API_KEY")
            try:
                self.apigateway.delete_usage_plan_key(usagePlanId=self.plans[from_tier], keyId=key_id)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "NotFoundException":
                    raise

    def set_enabled(self, key_id: str, enabled: bool) -> None:
        with storage_errors("API Gateway"):
            self.apigateway.update_api_key(
                apiKey=key_id, patchOperations=[{"op": "replace", "path": "/enabled", "value": str(enabled).lower()}]
            )

    def delete(self, key_id: str) -> bool:
        try:
            with storage_errors("API Gateway"):
                self.apigateway.delete_api_key(apiKey=key_id)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "NotFoundException":
                return False
            raise
        return True

    def value(self, key_id: str) -> str:
        with storage_errors("API Gateway"):
            return str(self.apigateway.get_api_key(apiKey=key_id, includeValue=True)["value"])
