"""Builds the services once per container from settings and adapters.

Handlers ask for services here; tests and the local platform call `reset()` after
changing the environment so the next call builds them anew.
"""

from __future__ import annotations

from functools import cache

from raas.adapters.aws import client, reset_clients
from raas.adapters.registry import DynamoConfigStore, DynamoKeyStore, DynamoTenantStore
from raas.domain.ports import TokenVerifier
from raas.services.auth import Authenticator
from raas.services.config import ConfigCache, ConfigService
from raas.services.tenants import KeyService, TenantService
from raas.settings import get_settings


@cache
def tenant_store() -> DynamoTenantStore:
    return DynamoTenantStore(client("dynamodb"), get_settings().tenants_table)


@cache
def key_store() -> DynamoKeyStore:
    settings = get_settings()
    return DynamoKeyStore(client("dynamodb"), settings.tenants_table, settings.key_touch_interval_seconds)


@cache
def config_service() -> ConfigService:
    settings = get_settings()
    return ConfigService(DynamoConfigStore(client("dynamodb"), settings.tenants_table), ConfigCache(settings.config_cache_ttl_seconds))


@cache
def tenant_service() -> TenantService:
    return TenantService(tenant_store(), config_service())


@cache
def key_service() -> KeyService:
    return KeyService(key_store())


@cache
def jwt_verifier() -> TokenVerifier | None:
    settings = get_settings()
    if not (settings.jwt_jwks_url and settings.jwt_issuer and settings.jwt_audience):
        return None
    from raas.adapters.jwt_verifier import JwksVerifier  # cryptography is only loaded when JWT is on

    return JwksVerifier(settings.jwt_jwks_url, settings.jwt_issuer, settings.jwt_audience)


@cache
def authenticator() -> Authenticator:
    return Authenticator(key_store(), tenant_store(), jwt_verifier())


def reset() -> None:
    for factory in (tenant_store, key_store, config_service, tenant_service, key_service, jwt_verifier, authenticator):
        factory.cache_clear()
    get_settings.cache_clear()
    reset_clients()
