"""Deployment settings from `cdk.json` context (override with `cdk deploy -c raas:stage=dev`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from raas.domain import catalog

Profile = Literal["standard", "starter"]


class DeploymentSettings(BaseModel):
    stage: str = Field(default="prod", pattern=r"^[a-z][a-z0-9-]{1,15}$")
    # standard: highly available search; starter: one small managed-domain node (docs/deploy.md, cost model)
    profile: Profile = "standard"
    # empty or unset: the profile's engine (standard -> serverless, starter -> domain)
    search_engine: Literal["serverless", "domain"] = "serverless"
    # OpenSearch Serverless standby replicas in a second Availability Zone (serverless engine only)
    search_redundancy: bool = True
    # AWS::ApiGateway::Account is one per account and region: only one stack may own it (opt-in)
    api_gateway_account_role: bool = False
    # optional custom domain for the API (regional endpoint; the ACM certificate must be in the same region)
    domain_name: str = Field(default="", pattern=r"^$|^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
    certificate_arn: str = Field(default="", pattern=r"^$|^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[0-9a-f-]+$")
    allowed_models: list[str] = Field(default_factory=list, description="empty = the whole catalogue")
    jwt_issuer: str = ""
    jwt_audience: str = ""
    jwt_jwks_url: str = ""
    log_retention_days: int = 90
    alarm_email: str = ""
    removal_policy: Literal["retain", "destroy"] = "retain"
    authorizer_cache_seconds: int = Field(default=60, ge=0, le=3600)
    architecture: Literal["arm64", "x86_64"] = "arm64"
    embedder: Literal["openai"] = "openai"
    reranker: Literal["none", "bedrock"] = "none"
    bedrock_rerank_model_arn: str = ""
    waf_rate_limit_per_5min: int = Field(default=2000, ge=100)
    billing: Literal["none", "stripe"] = "none"
    payment_grace_days: int = Field(default=7, ge=0, le=90)

    @field_validator("allowed_models")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = set(value) - set(catalog.models())
        if unknown:
            raise ValueError(f"unknown models in raas:allowedModels: {sorted(unknown)}")
        return value

    @model_validator(mode="before")
    @classmethod
    def _engine_from_profile(cls, values: Any) -> Any:
        if isinstance(values, dict) and values.get("search_engine") in (None, ""):
            values = {**values, "search_engine": "domain" if values.get("profile") == "starter" else "serverless"}
        return values

    @model_validator(mode="after")
    def _consistent(self) -> DeploymentSettings:
        if self.profile == "starter" and self.search_engine != "domain":
            raise ValueError("raas:profile=starter searches on one managed-domain node: leave raas:searchEngine empty or set domain")
        if bool(self.domain_name) != bool(self.certificate_arn):
            raise ValueError("raas:domainName and raas:certificateArn go together: set both (custom API domain) or neither")
        return self

    @classmethod
    def from_context(cls, get: Any) -> DeploymentSettings:
        """`get` is `node.try_get_context`; keys are `raas:<camelCase>`."""
        values = {}
        for name in cls.model_fields:
            parts = name.split("_")
            key = "raas:" + parts[0] + "".join(p.capitalize() for p in parts[1:])
            key = key.replace("Jwks", "Jwks").replace("Per5min", "Per5Min")
            value = get(key)
            if value is not None:
                values[name] = value
        return cls.model_validate(values)

    @property
    def jwt_enabled(self) -> bool:
        return bool(self.jwt_issuer and self.jwt_audience and self.jwt_jwks_url)

    def log_retention(self) -> Any:
        from aws_cdk import aws_logs as logs

        by_days = {
            7: logs.RetentionDays.ONE_WEEK,
            14: logs.RetentionDays.TWO_WEEKS,
            30: logs.RetentionDays.ONE_MONTH,
            60: logs.RetentionDays.TWO_MONTHS,
            90: logs.RetentionDays.THREE_MONTHS,
            180: logs.RetentionDays.SIX_MONTHS,
            365: logs.RetentionDays.ONE_YEAR,
            731: logs.RetentionDays.TWO_YEARS,
        }
        if self.log_retention_days not in by_days:
            raise ValueError(f"raas:logRetentionDays must be one of {sorted(by_days)}")
        return by_days[self.log_retention_days]

    def table_name(self, logical: str) -> str:
        return self.prefix(logical)

    def bucket_name(self, account: str, region: str) -> str:
        return f"{self.prefix('docs')}-{account}-{region}"

    @property
    def ingest_queue_name(self) -> str:
        return self.prefix("ingest")

    @property
    def usage_buffer_queue_name(self) -> str:
        return self.prefix("usage-buffer")

    @property
    def bus_name(self) -> str:
        return self.prefix("platform")

    @property
    def platform_key_alias(self) -> str:
        return f"alias/{self.prefix('platform')}"

    @property
    def alarms_key_alias(self) -> str:
        return f"alias/{self.prefix('alarms')}"

    @property
    def api_name(self) -> str:
        return self.prefix("api")

    @property
    def ingest_dead_letter_queue_name(self) -> str:
        return self.prefix("ingest-dlq")

    def event_dead_letter_queue_name(self, function: str) -> str:
        return f"{self.prefix('events')}-{function}-dlq"

    # Functions, their log groups and roles have deterministic names so other stacks address them
    # by name (no CloudFormation exports pin the API stack; see ObservabilityStack and SearchStack).
    def function_name(self, group: str) -> str:
        return self.prefix(group)

    def function_log_group_name(self, group: str) -> str:
        return f"/aws/lambda/{self.function_name(group)}"

    def function_role_name(self, group: str, region: str) -> str:
        """IAM role names are account-wide, so the region keeps two regional deployments apart."""
        return f"{self.prefix(group)}-{region}"

    def prefix(self, name: str) -> str:
        return f"raas-{self.stage}-{name}"
