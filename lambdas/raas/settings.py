"""Deployment settings, read once per container from RAAS_* environment variables."""

from __future__ import annotations

from functools import cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RAAS_", extra="ignore")

    stage: str = "local"
    tenants_table: str = "raas-tenants"
    config_cache_ttl_seconds: float = Field(default=300.0, ge=0)
    key_touch_interval_seconds: int = Field(default=60, ge=0, description="how often a key's last_used_at is written")
    max_body_bytes: int = 10 * 1024 * 1024

    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_jwks_url: str | None = None

    @property
    def jwt_enabled(self) -> bool:
        return bool(self.jwt_issuer and self.jwt_audience and self.jwt_jwks_url)


@cache
def get_settings() -> Settings:
    return Settings()
