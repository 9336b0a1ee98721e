"""Deployment settings, read once per container from RAAS_* environment variables.

Plain pydantic rather than pydantic-settings: reading a dozen variables does not need a
library that costs a tenth of a second at every cold start. Choices are `Literal`s, so a typo
(`RAAS_EMBEDDER=opneai`) fails when the container starts instead of falling back silently.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

ENV_PREFIX = "RAAS_"
LOCAL_STAGE = "local"


class ConfigurationError(RuntimeError):
    """The deployment's settings cannot work; raised when the container starts, never mid-request."""


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    stage: str = Field(default=LOCAL_STAGE, description="local = `raas local` and tests; anything else is a deployed stage")
    tenants_table: str = "raas-tenants"
    documents_table: str = "raas-documents"
    usage_table: str = "raas-usage"
    queries_table: str = "raas-queries"
    audit_table: str = "raas-audit"
    outbox_table: str = "raas-outbox"
    idempotency_table: str = "raas-idempotency"
    event_bus_name: str | None = Field(default=None, description="the platform EventBridge bus; unset = the local dispatcher")
    documents_bucket: str = "raas-documents"
    ingest_queue_url: str | None = None
    usage_buffer_queue_url: str | None = Field(default=None, description="where usage events wait while the usage table is unavailable")

    search_engine: Literal["embedded", "opensearch"] = Field(default="embedded", description="embedded | opensearch")
    search_dir: str | None = Field(default=None, description="where the embedded engine keeps its files")
    opensearch_endpoint: str | None = Field(default=None, description="collection or domain URL (an http loopback stand-in locally)")
    opensearch_service: Literal["aoss", "es"] = Field(
        default="aoss", description="aoss (Serverless collection) or es (managed domain): the SigV4 service and the write semantics"
    )

    embedder: Literal["local", "openai"] = Field(default="local", description="local (MiniLM, offline) | openai")
    openai_embedding_model: str = "text-embedding-3-small"
    reranker: Literal["local", "bedrock", "none"] = Field(default="local", description="local | bedrock | none")
    bedrock_rerank_model_arn: str | None = None
    openai_api_key: str | None = None
    anthropic_api_key: str | None = None
    openai_base_url: str | None = Field(default=None, description="an OpenAI-compatible endpoint (proxy, gateway)")
    anthropic_base_url: str | None = None
    offline_answers: bool = Field(default=True, description="answer extractively when a provider has no API key")
    llm_timeout_seconds: float = 30.0
    llm_max_retries: int = 3

    tenant_role_arn: str | None = Field(default=None, description="role assumed per tenant with a tenant_id session tag")
    usage_plans_parameter: str | None = Field(default=None, description="SSM parameter with the usage plan id per tier (AWS)")
    operator_usage_key_id: str | None = Field(default=None, description="API Gateway key of the operator usage plan (AWS)")

    response_cache_ttl_seconds: int = 600
    presign_expires_seconds: int = 900
    config_cache_ttl_seconds: float = Field(default=300.0, ge=0)
    key_touch_interval_seconds: int = Field(default=60, ge=0, description="how often a key's last_used_at is written")
    max_body_bytes: int = 10 * 1024 * 1024

    provider_keys_secret_arn: str | None = Field(
        default=None, description='Secrets Manager JSON {"openai", "anthropic", "stripe", "stripe_webhook"} (AWS); env keys win'
    )
    billing: Literal["none", "stripe"] = Field(
        default="none", description="stripe = bill through Stripe (the key comes from the env or the secret)"
    )
    stripe_api_key: str | None = None
    stripe_api_base: str | None = Field(default=None, description="another Stripe endpoint (tests point it at a fake)")
    stripe_webhook_secret: str | None = None
    payment_grace_days: int = Field(default=7, ge=0, description="days after a failed payment before the tenant is suspended")
    local_rate_limits: bool = Field(default=True, description="the local gateway enforces the tier's rate limit per tenant")
    local_authorizer_cache_seconds: int = Field(
        default=60,
        ge=0,
        le=3600,
        description="the local gateway reuses the authorizer's answer per Authorization header this long, as API Gateway does "
        "(the stack's raas:authorizerCacheSeconds); any write to the tenants table forgets every answer. 0 = no cache",
    )
    embedder_threads: int | None = Field(
        default=None,
        ge=1,
        description="torch threads per call of the local MiniLM embedder (default: one core less than the machine); "
        "calls run side by side while their threads fit the cores",
    )
    local_snapshot_after_writes: int = Field(
        default=20_000,
        ge=1,
        description="raas local --state-dir: snapshot the tables after this many journalled writes (a restart replays those)",
    )
    webhook_loopback_only: bool = Field(
        default=False, description="webhooks go to loopback receivers only (the test suite: nothing leaves the machine)"
    )
    webhook_allow_loopback: bool = Field(
        default=False, description="webhooks may go to http://127.0.0.1 (local development and tests only; never link-local/metadata)"
    )
    console_origin: str | None = Field(
        default=None,
        pattern=r"^https?://[A-Za-z0-9.-]+(:\d+)?$",
        description="the console's origin (AWS: https://<distribution>.cloudfront.net); API responses allow CORS for it alone. "
        "Unset = no CORS headers (raas local serves the console on the API's own origin)",
    )
    console_dir: str | None = Field(
        default=None,
        description="raas local: the built console served at /console/; unset = the repository's console/dist when raas "
        "runs from the repository (a wheel does not contain the console: set this)",
    )

    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_jwks_url: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings named by RAAS_<FIELD> variables; a bad value raises ConfigurationError."""
        env = os.environ if environ is None else environ
        values = {name: env[ENV_PREFIX + name.upper()] for name in cls.model_fields if ENV_PREFIX + name.upper() in env}
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            problems = "; ".join(f"{ENV_PREFIX}{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
            raise ConfigurationError(f"invalid settings: {problems}") from None

    @model_validator(mode="after")
    def _deployed_needs_cloud_resources(self) -> Settings:
        """A deployed stage fails at start without what only the local platform can do without."""
        if self.stage == LOCAL_STAGE:
            return self
        missing = [
            ENV_PREFIX + name.upper() for name in ("event_bus_name", "ingest_queue_url", "opensearch_endpoint") if not getattr(self, name)
        ]
        if missing:
            raise ValueError(f"stage {self.stage!r} needs {', '.join(missing)}")
        if self.webhook_allow_loopback:
            raise ValueError(f"stage {self.stage!r} cannot set RAAS_WEBHOOK_ALLOW_LOOPBACK (local development only)")
        if self.search_engine != "opensearch":
            raise ValueError(f"stage {self.stage!r} needs RAAS_SEARCH_ENGINE=opensearch (the embedded engine is local only)")
        return self

    @property
    def billing_enabled(self) -> bool:
        return self.billing == "stripe" or bool(self.stripe_api_key)

    def table_names(self) -> dict[str, str]:
        """Logical table name (dynamo_schema) -> this deployment's table name."""
        return {
            "tenants": self.tenants_table,
            "documents": self.documents_table,
            "usage": self.usage_table,
            "queries": self.queries_table,
            "audit": self.audit_table,
            "outbox": self.outbox_table,
            "idempotency": self.idempotency_table,
        }

    @property
    def jwt_enabled(self) -> bool:
        return bool(self.jwt_issuer and self.jwt_audience and self.jwt_jwks_url)
