"""Deployment settings from `cdk.json` context (override with `cdk deploy -c raas:stage=dev`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from raas.domain import catalog


class DeploymentSettings(BaseModel):
    stage: str = Field(default="prod", pattern=r"^[a-z][a-z0-9-]{1,15}$")
    search_engine: Literal["serverless", "domain"] = "serverless"
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

    def prefix(self, name: str) -> str:
        return f"raas-{self.stage}-{name}"
