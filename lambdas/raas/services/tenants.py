"""Operator-side tenant management and tenant-side API keys."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from raas.domain import catalog, ids
from raas.domain.catalog import Tier
from raas.domain.errors import Conflict, Forbidden, NotFound
from raas.domain.events import (
    KeyCreated,
    KeyRevoked,
    TenantCreated,
    TenantDeletionRequested,
    TenantResumed,
    TenantSuspended,
    TenantTierChanged,
)
from raas.domain.ports import AuditLog, EventPublisher, KeyStore, TenantStore, VersionConflict
from raas.domain.tenants import (
    LIVE_STATUSES,
    ApiKey,
    Principal,
    Role,
    SuspensionReason,
    Tenant,
    TenantStatus,
    generate_secret,
    hash_secret,
    visible_prefix,
)
from raas.services.notify import announce

Clock = Callable[[], datetime]


class SuspendableTenants(TenantStore, Protocol):
    """The registry with a tenant's suspension reasons, each added and lifted atomically."""

    def add_suspension_reason(self, tenant_id: str, reason: SuspensionReason, *, while_payment_failed: bool = False) -> tuple[Tenant, bool]:
        """Returns the tenant and whether it was active before (raises VersionConflict if it is neither active nor suspended)."""

    def remove_suspension_reason(self, tenant_id: str, reason: SuspensionReason) -> tuple[Tenant, bool]:
        """Returns the tenant and whether it is active again (no reason left)."""

    def advance_payment_clock(self, tenant_id: str, event_created: int) -> bool:
        """False when a payment event created later than `event_created` was applied already."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


def new_key(owner: str | None, name: str, role: Role, now: datetime) -> tuple[ApiKey, str, str]:
    """A key's metadata, its one-time secret and the secret's hash."""
    secret = generate_secret(operator=role is Role.OPERATOR)
    key = ApiKey(key_id=ids.new_key_id(), tenant_id=owner, name=name, role=role, prefix=visible_prefix(secret), created_at=now)
    return key, secret, hash_secret(secret)


class TenantService:
    """Operator actions on tenants. Each writes the registry, then announces the change on the
    platform bus; the lifecycle function does the work on AWS resources (see LifecycleService)."""

    def __init__(self, tenants: SuspendableTenants, events: EventPublisher, audit: AuditLog, clock: Clock = _utcnow):
        self.tenants = tenants
        self.events = events
        self.audit = audit
        self._now = clock

    def create(self, name: str, tier: Tier, actor: str = "operator") -> tuple[Tenant, ApiKey, str]:
        now = self._now()
        # The registry entry and first admin key are written atomically; the tenant stays
        # `provisioning` (its keys refused) until the lifecycle function has made its resources.
        tenant = Tenant(
            tenant_id=ids.new_tenant_id(), name=name, tier=tier, status=TenantStatus.PROVISIONING, created_at=now, updated_at=now
        )
        key, secret, key_hash = new_key(tenant.tenant_id, "initial admin key", Role.ADMIN, now)
        self.tenants.create_tenant(tenant, key, key_hash)
        self.events.publish(TenantCreated(tenant_id=tenant.tenant_id, tier=tier, actor=actor))
        return self.get(tenant.tenant_id), key, secret

    def get(self, tenant_id: str) -> Tenant:
        tenant = self.tenants.get_tenant(tenant_id) if ids.is_tenant_id(tenant_id) else None
        if tenant is None:
            raise NotFound(f"tenant {tenant_id} not found", code="tenant_not_found")
        return tenant

    def list(
        self,
        limit: int,
        cursor: str | None,
        *,
        status: TenantStatus | None = None,
        tier: Tier | None = None,
        name_contains: str | None = None,
    ) -> tuple[list[Tenant], str | None]:
        """A page of tenants; with filters the page may be short (even empty) while `next_cursor` goes on."""
        return self.tenants.list_tenants(limit, cursor, status=status, tier=tier, name_contains=name_contains)

    def update(self, tenant_id: str, *, name: str | None, tier: Tier | None, actor: str, annual_billing: bool | None = None) -> Tenant:
        before = self._live(tenant_id)
        extra = {"annual_billing": annual_billing} if annual_billing is not None else None
        updated = self.tenants.update_tenant(tenant_id, name=name, tier=tier, fields=extra)
        if annual_billing is not None and annual_billing != before.annual_billing:
            self.audit.record(tenant_id, actor, "tenant.billing_cycle", tenant_id, {"annual": annual_billing})
        if name is not None and name != before.name:
            self.audit.record(tenant_id, actor, "tenant.renamed", tenant_id, {"from": before.name, "to": name})
        if tier is not None and tier != before.tier:
            # The lifecycle function moves the usage-plan key and clamps the configuration.
            self.events.publish(TenantTierChanged(tenant_id=tenant_id, previous_tier=before.tier, tier=tier, actor=actor))
            updated = self.get(tenant_id)
        return updated

    def suspend(
        self,
        tenant_id: str,
        actor: str = "operator",
        reason: SuspensionReason = SuspensionReason.OPERATOR,
        *,
        while_payment_failed: bool = False,
    ) -> Tenant:
        """Adds `reason` to the tenant's suspension; idempotent. Only that reason's own remedy
        lifts it again (see resume), so no other actor can undo it by accident."""
        self.get(tenant_id)  # 404 for an unknown id
        try:
            tenant, suspended_now = self.tenants.add_suspension_reason(tenant_id, reason, while_payment_failed=while_payment_failed)
        except VersionConflict:
            raise self._cannot(tenant_id, TenantStatus.SUSPENDED) from None
        if suspended_now:
            self.events.publish(TenantSuspended(tenant_id=tenant_id, actor=actor, reason=reason.value))
        return tenant

    def resume(self, tenant_id: str, actor: str = "operator", reason: SuspensionReason = SuspensionReason.OPERATOR) -> Tenant:
        """Lifts `reason` (the operator's own, unless the operator waives another explicitly); the
        tenant is active again only when no reason is left. Resuming an active tenant changes nothing."""
        current = self.get(tenant_id)
        if current.status.gone or current.status is TenantStatus.PROVISIONING:
            raise self._cannot(tenant_id, TenantStatus.ACTIVE)
        try:
            tenant, active_now = self.tenants.remove_suspension_reason(tenant_id, reason)
        except VersionConflict:
            raise self._cannot(tenant_id, TenantStatus.ACTIVE) from None
        if active_now:
            self.events.publish(TenantResumed(tenant_id=tenant_id, actor=actor))
        return tenant

    def request_deletion(self, tenant_id: str, *, export_first: bool, actor: str) -> Tenant:
        """Marks the tenant `deleting` (its keys are refused from now on) and starts the deletion."""
        current = self.get(tenant_id)
        if current.status.gone:
            return current  # a repeated DELETE starts nothing new
        try:
            self.tenants.update_tenant(
                tenant_id,
                status=TenantStatus.DELETING,
                expected_status=LIVE_STATUSES,
                fields={"deletion_requested_at": self._now(), "deletion_export": export_first, "deletion_steps": {}},
            )
        except VersionConflict:
            return self.get(tenant_id)
        self.events.publish(TenantDeletionRequested(tenant_id=tenant_id, export_first=export_first, actor=actor))
        return self.get(tenant_id)  # locally the deletion has already run by now

    def _live(self, tenant_id: str) -> Tenant:
        tenant = self.get(tenant_id)
        if tenant.status.gone:
            raise Conflict(f"tenant is {tenant.status.value}", code="invalid_status_transition")
        return tenant

    def _cannot(self, tenant_id: str, to: TenantStatus) -> Conflict:
        latest = self.get(tenant_id)
        return Conflict(f"tenant is {latest.status.value}; cannot move to {to.value}", code="invalid_status_transition")


class KeyService:
    def __init__(self, keys: KeyStore, audit: AuditLog | None = None, clock: Clock = _utcnow, events: EventPublisher | None = None):
        self.events = events  # key.created / key.revoked for tenants' webhooks (best effort)
        self.keys = keys
        self.audit = audit
        self._now = clock

    def _audit(self, principal: Principal, action: str, key: ApiKey) -> None:
        if self.audit is not None and principal.tenant_id:
            self.audit.record(principal.tenant_id, principal.actor, action, key.key_id, {"name": key.name, "role": key.role.value})
        if principal.tenant_id:
            kind = KeyCreated if action == "key.created" else KeyRevoked
            announce(
                self.events,
                kind(
                    event_id=f"{action.replace('.', '-')}-{key.key_id}",
                    tenant_id=principal.tenant_id,
                    actor=principal.actor,
                    key_id=key.key_id,
                    name=key.name,
                    role=key.role.value,
                ),
            )

    def create(self, principal: Principal, name: str, role: Role) -> tuple[ApiKey, str]:
        tenant_id = _tenant_of(principal)
        if role is Role.OPERATOR:
            raise Forbidden("tenant keys cannot have the operator role", code="invalid_role")
        if principal.tier is None:
            raise Forbidden("this route needs a tenant key", code="tenant_key_required")
        limit = catalog.tier_limits(principal.tier).max_api_keys
        if sum(1 for k in self.keys.list_keys(tenant_id) if k.active) >= limit:
            raise Conflict(f"the {principal.tier.value} tier allows {limit} active API keys", code="key_limit_reached")
        key, secret, key_hash = new_key(tenant_id, name, role, self._now())
        self.keys.put_key(key, key_hash)
        self._audit(principal, "key.created", key)
        return key, secret

    def list(self, principal: Principal) -> list[ApiKey]:
        return sorted(self.keys.list_keys(_tenant_of(principal)), key=lambda k: k.created_at)

    def revoke(self, principal: Principal, key_id: str) -> ApiKey:
        tenant_id = _tenant_of(principal)
        key = self.keys.get_key(tenant_id, key_id) if ids.is_key_id(key_id) else None
        if key is None:
            raise NotFound(f"key {key_id} not found", code="key_not_found")
        if not key.active:
            return key
        if key.role is Role.ADMIN:
            other_admins = [k for k in self.keys.list_keys(tenant_id) if k.active and k.role is Role.ADMIN and k.key_id != key_id]
            if not other_admins:
                raise Conflict("cannot revoke the last active admin key; create another admin key first", code="last_admin_key")
        revoked = self.keys.revoke_key(tenant_id, key_id)
        self._audit(principal, "key.revoked", revoked)
        return revoked

    def create_operator_key(self, name: str, secret: str | None = None) -> tuple[ApiKey, str]:
        """An operator key; `secret` lets a deployment pin a known key (local platform, bootstrap)."""
        now = self._now()
        key, generated, key_hash = new_key(None, name, Role.OPERATOR, now)
        if secret is not None:
            key = key.model_copy(update={"prefix": visible_prefix(secret)})
            generated, key_hash = secret, hash_secret(secret)
        existing = self.keys.find_by_hash(key_hash)
        if existing is not None and existing.active:
            return existing, generated
        self.keys.put_key(key, key_hash)
        return key, generated


def _tenant_of(principal: Principal) -> str:
    if principal.tenant_id is None:
        raise Forbidden("this route needs a tenant key", code="tenant_key_required")
    return principal.tenant_id
