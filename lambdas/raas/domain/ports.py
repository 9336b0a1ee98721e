"""Interfaces the services need from storage and identity providers.

Adapters (DynamoDB, JWKS) implement them; tests and the local platform swap them.
Every method that touches tenant data takes the tenant id explicitly.
"""

from __future__ import annotations

from typing import Any, Protocol

from raas.domain.catalog import Tier
from raas.domain.config import ConfigVersion
from raas.domain.tenants import ApiKey, Tenant, TenantStatus


class VersionConflict(Exception):
    """A conditional write lost a race: somebody else wrote first."""


class TenantStore(Protocol):
    def create_tenant(self, tenant: Tenant, admin_key: ApiKey, key_hash: str) -> None:
        """Writes the tenant and its first admin key atomically."""

    def get_tenant(self, tenant_id: str) -> Tenant | None: ...

    def list_tenants(self, limit: int, cursor: str | None) -> tuple[list[Tenant], str | None]: ...

    def update_tenant(
        self,
        tenant_id: str,
        *,
        name: str | None = None,
        tier: Tier | None = None,
        status: TenantStatus | None = None,
        expected_status: tuple[TenantStatus, ...] | None = None,
    ) -> Tenant:
        """Raises NotFound for an unknown tenant, VersionConflict when the status is not the expected one."""


class KeyStore(Protocol):
    def put_key(self, key: ApiKey, key_hash: str) -> None: ...

    def get_key(self, owner: str | None, key_id: str) -> ApiKey | None:
        """owner is the tenant id, or None for operator keys."""

    def list_keys(self, owner: str | None) -> list[ApiKey]: ...

    def revoke_key(self, owner: str | None, key_id: str) -> ApiKey:
        """Raises NotFound when the owner has no such key."""

    def find_by_hash(self, key_hash: str) -> ApiKey | None:
        """The key with this hash, read consistently so a revocation is seen at once."""

    def touch(self, key: ApiKey) -> None:
        """Records use of a key (best effort, rate limited by the adapter)."""


class ConfigStore(Protocol):
    def current(self, tenant_id: str) -> ConfigVersion | None: ...

    def write(self, tenant_id: str, version: ConfigVersion, expected_current: int) -> None:
        """Writes a new version iff the current version is still `expected_current`; else VersionConflict."""

    def get_version(self, tenant_id: str, version: int) -> ConfigVersion | None: ...

    def list_versions(self, tenant_id: str, limit: int, cursor: str | None) -> tuple[list[ConfigVersion], str | None]: ...


class TokenVerifier(Protocol):
    def verify(self, token: str) -> dict[str, Any]:
        """Claims of a valid token; raises Unauthorized otherwise."""
