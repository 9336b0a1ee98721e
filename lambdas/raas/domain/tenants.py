"""Tenants, API keys and the caller identity the authorizer establishes."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from enum import StrEnum

from pydantic import ConfigDict, Field, field_validator, model_validator

from raas.domain.catalog import Tier
from raas.domain.model import Model


class TenantStatus(StrEnum):
    PROVISIONING = "provisioning"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    DELETING = "deleting"
    DELETED = "deleted"

    @property
    def gone(self) -> bool:
        """Being deleted or deleted: its keys are refused and its data may not be touched."""
        return self in (TenantStatus.DELETING, TenantStatus.DELETED)


class SuspensionReason(StrEnum):
    """Why a tenant is suspended. Each reason is lifted only by its own remedy: `operator` by the
    operator's resume, `payment` by a paid invoice (or the operator waiving it explicitly)."""

    OPERATOR = "operator"
    PAYMENT = "payment"


# Every status but the two of a deletion: the tenant and its data still exist.
LIVE_STATUSES = tuple(status for status in TenantStatus if not status.gone)


class Role(StrEnum):
    OPERATOR = "operator"  # platform admin; never a tenant role
    ADMIN = "admin"
    EDITOR = "editor"
    READER = "reader"


TENANT_ROLES = (Role.ADMIN, Role.EDITOR, Role.READER)
_ROLE_RANK = {Role.READER: 1, Role.EDITOR: 2, Role.ADMIN: 3}


def role_allows(role: Role, required: Role) -> bool:
    """admin > editor > reader within a tenant; the operator role is separate and never implied."""
    if required is Role.OPERATOR or role is Role.OPERATOR:
        return role is required
    return _ROLE_RANK[role] >= _ROLE_RANK[required]


class DeletionStep(Model):
    step: str
    count: int = Field(description="objects, items or resources removed by this step")
    completed_at: datetime
    detail: str = ""


class DeletionReceipt(Model):
    """What was deleted and when; kept on the tenant's tombstone after everything else is gone."""

    tenant_id: str
    requested_at: datetime
    completed_at: datetime
    steps: list[DeletionStep]
    export_key: str | None = Field(default=None, description="the export bundle written before deletion, when asked for")
    notes: list[str] = []


class Tenant(Model):
    tenant_id: str
    name: str
    tier: Tier
    status: TenantStatus
    created_at: datetime
    updated_at: datetime
    # The tenant's API Gateway usage-plan key (cloud only); never part of an API response.
    usage_key_id: str | None = Field(default=None, exclude=True)
    usage_key_value: str | None = Field(default=None, exclude=True, repr=False)
    annual_billing: bool = False
    stripe_customer_id: str | None = None
    payment_failed_at: datetime | None = None
    suspension_reasons: list[SuspensionReason] = Field(
        default_factory=list,
        description="why the tenant is suspended; it is active again only when each reason has been lifted by its own remedy",
    )
    deletion_requested_at: datetime | None = None
    deletion_export: bool = Field(default=False, exclude=True)
    deletion_steps: dict[str, DeletionStep] = Field(default_factory=dict, exclude=True)
    deletion_receipt: DeletionReceipt | None = None

    @field_validator("suspension_reasons", mode="before")
    @classmethod
    def _as_sorted_set(cls, value: object) -> object:
        # DynamoDB hands a string set back as a Python set; the API shows it sorted.
        return sorted(set(value)) if isinstance(value, set | frozenset | list | tuple) else value

    @model_validator(mode="after")
    def _reason_of_a_legacy_suspension(self) -> Tenant:
        """A tenant suspended before reasons were stored: a failed payment was the billing
        suspension, anything else the operator's (as the previous code decided)."""
        if self.status is TenantStatus.SUSPENDED and not self.suspension_reasons:
            legacy = SuspensionReason.PAYMENT if self.payment_failed_at is not None else SuspensionReason.OPERATOR
            self.suspension_reasons = [legacy]
        return self


class ApiKey(Model):
    """Key metadata; the secret itself is never stored, only its SHA-256 hash."""

    model_config = ConfigDict(extra="ignore")

    key_id: str
    tenant_id: str | None = Field(default=None, description="None for operator keys")
    name: str
    role: Role
    prefix: str = Field(description="first characters of the key, to recognise it")
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


TENANT_KEY_PREFIX = "raas_"
OPERATOR_KEY_PREFIX = "raasop_"
VISIBLE_PREFIX_CHARS = 12


def generate_secret(operator: bool = False) -> str:
    """A new API key: 256 random bits, url-safe, with a prefix that says what it is."""
    return (OPERATOR_KEY_PREFIX if operator else TENANT_KEY_PREFIX) + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    # Keys are 256-bit random, so a fast hash is safe here (no dictionary to attack);
    # it keeps the authorizer's lookup to one index read.
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def visible_prefix(secret: str) -> str:
    return secret[:VISIBLE_PREFIX_CHARS]


class Principal(Model):
    """Who is calling, as the authorizer established it. The only source of tenant id."""

    model_config = ConfigDict(frozen=True)

    role: Role
    key_id: str
    tenant_id: str | None = None
    tier: Tier | None = None
    usage_key: str | None = Field(default=None, exclude=True, repr=False)

    @property
    def is_operator(self) -> bool:
        return self.role is Role.OPERATOR

    @property
    def actor(self) -> str:
        """Who did it, as the audit log and configuration versions record it (`role:key id`)."""
        return f"{self.role.value}:{self.key_id}"
