"""Turns a bearer credential (API key or JWT) into a Principal, or refuses it."""

from __future__ import annotations

from raas.domain.errors import Forbidden, Unauthorized
from raas.domain.ports import KeyStore, TenantStore, TokenVerifier
from raas.domain.tenants import TENANT_ROLES, Principal, Role, Tenant, TenantStatus, hash_secret


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and token.startswith("eyJ")


class Authenticator:
    def __init__(self, keys: KeyStore, tenants: TenantStore, jwt_verifier: TokenVerifier | None = None):
        self.keys = keys
        self.tenants = tenants
        self.jwt_verifier = jwt_verifier

    def authenticate(self, authorization: str | None) -> Principal:
        token = _bearer_token(authorization)
        if looks_like_jwt(token):
            if self.jwt_verifier is None:
                raise Unauthorized("JWT authentication is not enabled on this deployment", code="jwt_disabled")
            return self._from_jwt(token, self.jwt_verifier)
        return self._from_api_key(token)

    def _from_api_key(self, secret: str) -> Principal:
        found = self.keys.find_with_tenant(hash_secret(secret))  # key and tenant in one round trip
        if found is None or not found[0].active:
            raise Unauthorized("invalid or revoked API key", code="invalid_api_key")
        key, tenant_read = found
        self.keys.touch(key)
        if key.role is Role.OPERATOR:
            return Principal(role=Role.OPERATOR, key_id=key.key_id)
        if key.tenant_id is None:
            raise Unauthorized("key has no tenant", code="invalid_api_key")
        tenant = _active(tenant_read)
        return Principal(role=key.role, key_id=key.key_id, tenant_id=key.tenant_id, tier=tenant.tier, usage_key=tenant.usage_key_value)

    def _from_jwt(self, token: str, verifier: TokenVerifier) -> Principal:
        claims = verifier.verify(token)
        tenant_id, role_name, subject = claims.get("tenant_id"), claims.get("role"), claims.get("sub")
        if not isinstance(tenant_id, str) or not isinstance(subject, str):
            raise Unauthorized("token lacks tenant_id or sub claims", code="invalid_token")
        try:
            role = Role(str(role_name))
        except ValueError:
            raise Unauthorized("token role claim must be admin, editor or reader", code="invalid_token") from None
        if role not in TENANT_ROLES:
            raise Unauthorized("token role claim must be admin, editor or reader", code="invalid_token")
        tenant = self._active_tenant(tenant_id)
        return Principal(role=role, key_id=f"jwt:{subject}"[:128], tenant_id=tenant_id, tier=tenant.tier, usage_key=tenant.usage_key_value)

    def _active_tenant(self, tenant_id: str) -> Tenant:
        return _active(self.tenants.get_tenant(tenant_id))


def _active(tenant: Tenant | None) -> Tenant:
    """The tenant a credential names, if it may call the API now."""
    if tenant is None or tenant.status.gone:
        raise Unauthorized("tenant does not exist", code="invalid_api_key")
    if tenant.status is not TenantStatus.ACTIVE:
        raise Forbidden(f"tenant is {tenant.status.value}", code=f"tenant_{tenant.status.value}")
    return tenant


def _bearer_token(authorization: str | None) -> str:
    if not authorization:
        raise Unauthorized("missing Authorization header", code="missing_credentials")
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 8192:
        raise Unauthorized("Authorization must be 'Bearer <api key or token>'", code="missing_credentials")
    return token
