"""Tenant webhooks: endpoints, the event catalogue, signatures, retry schedule and destination rules.

Pure domain: no I/O. The events come from the platform bus (domain/events.py): `to_webhook`
maps a platform event to the webhook a tenant sees, with the platform event's own id, so every
delivery of one event carries the same `id` and a receiver can deduplicate. Delivery is at least
once and ordering is not promised.

Signature (like Stripe's): `Raas-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`,
one `v1=` per valid secret while a rotated secret is still valid (24 h). The HMAC key is the
whole secret string (`whsec_...`) as UTF-8. Receivers should refuse timestamps more than 5
minutes away from their clock (`verify_signature`).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import random
import secrets as _secrets
import string
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import ConfigDict, Field

from raas.domain import events as platform
from raas.domain.model import Model

SIGNATURE_HEADER = "Raas-Signature"
EVENT_ID_HEADER = "Raas-Event-Id"
DEFAULT_TOLERANCE_SECONDS = 300
SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
ROTATION_OVERLAP = timedelta(hours=24)
DELIVERY_TIMEOUT_SECONDS = 10.0
MAX_RESPONSE_BYTES = 64 * 1024  # read at most this much of a receiver's answer
SNIPPET_CHARS = 512  # kept in the delivery log
RETRY_WINDOW = timedelta(hours=24)
RETRY_BASE_SECONDS = 30.0
RETRY_CAP_SECONDS = 4 * 3600.0
# Auto-disable: this many failed attempts in a row, the first of them at least this long ago.
DISABLE_AFTER_FAILURES = 10
DISABLE_AFTER = timedelta(hours=12)
MAX_DESCRIPTION = 500
MAX_URL = 2048
TEST_EVENT = "webhook.test"

_ALPHABET = string.digits + string.ascii_lowercase
ENDPOINT_ID_PATTERN = r"^we[0-9a-z]{16}$"
DELIVERY_ID_PATTERN = r"^wd[0-9a-z]{24}$"


def new_endpoint_id() -> str:
    return "we" + "".join(_secrets.choice(_ALPHABET) for _ in range(16))


def new_delivery_id(now: datetime) -> str:
    """Sortable by creation time (12 base-36 digits of milliseconds), then random."""
    millis = int(now.timestamp() * 1000)
    digits = ""
    for _ in range(12):
        millis, rest = divmod(millis, 36)
        digits = _ALPHABET[rest] + digits
    return "wd" + digits + "".join(_secrets.choice(_ALPHABET) for _ in range(12))


def is_endpoint_id(value: str) -> bool:
    return len(value) == 18 and value.startswith("we") and all(c in _ALPHABET for c in value[2:])


def is_delivery_id(value: str) -> bool:
    return len(value) == 26 and value.startswith("wd") and all(c in _ALPHABET for c in value[2:])


def new_secret() -> str:
    return SECRET_PREFIX + _secrets.token_urlsafe(32)


# --- the event catalogue ---------------------------------------------------------------------


class _Data(Model):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DocumentIndexedData(_Data):
    document_id: str
    title: str
    chunk_count: int


class DocumentFailedData(_Data):
    document_id: str
    title: str
    reason: str


class QuotaThresholdData(_Data):
    metric: str = Field(description="queries | documents | storage_bytes | llm_budget_usd (what the quota guard counts)")
    period: str
    threshold_percent: int = Field(description="80 or 100")
    used: int
    limit: int


class InvoiceIssuedData(_Data):
    period: str
    total_cents: int
    currency: str


class InvoicePaidData(_Data):
    period: str | None
    reference: str


class InvoicePaymentFailedData(_Data):
    period: str | None


class ConfigChangedData(_Data):
    version: int
    changed_by: str
    mode: str
    changed_fields: list[str]


class KeyData(_Data):
    key_id: str
    name: str
    role: str


class TenantSuspendedData(_Data):
    reason: str


class TenantResumedData(_Data):
    pass


class TenantTierChangedData(_Data):
    previous_tier: str
    tier: str


class ExportReadyData(_Data):
    key: str
    url: str = Field(description="a presigned GET link to the bundle")
    expires_in: int
    documents: int


class WebhookTestData(_Data):
    message: str
    endpoint_id: str


# webhook type -> (platform detail type or None, data model, description)
CATALOGUE: dict[str, tuple[str | None, type[_Data], str]] = {
    "document.indexed": ("DocumentIndexed", DocumentIndexedData, "a document is searchable"),
    "document.failed": ("DocumentFailed", DocumentFailedData, "a document could not be indexed (with the reason)"),
    "quota.threshold": ("QuotaThresholdReached", QuotaThresholdData, "80 % or 100 % of a monthly quota or budget used"),
    "invoice.issued": ("InvoiceIssued", InvoiceIssuedData, "the month's invoice was issued"),
    "invoice.paid": ("InvoicePaid", InvoicePaidData, "the payment provider reports an invoice paid"),
    "invoice.payment_failed": ("InvoicePaymentFailed", InvoicePaymentFailedData, "a payment failed"),
    "config.changed": ("ConfigChanged", ConfigChangedData, "a new configuration version (who, mode, changed fields)"),
    "key.created": ("KeyCreated", KeyData, "an API key was created"),
    "key.revoked": ("KeyRevoked", KeyData, "an API key was revoked"),
    "tenant.suspended": ("TenantSuspended", TenantSuspendedData, "the tenant was suspended"),
    "tenant.resumed": ("TenantResumed", TenantResumedData, "the tenant is active again"),
    "tenant.tier_changed": ("TenantTierChanged", TenantTierChangedData, "the tenant moved to another tier"),
    "export.ready": ("ExportReady", ExportReadyData, "an export bundle can be downloaded"),
    TEST_EVENT: (None, WebhookTestData, "sent by the 'send test event' action only"),
}
EVENT_VERSION = 1
SUBSCRIBABLE = frozenset(name for name in CATALOGUE if name != TEST_EVENT)
WEBHOOK_TYPE_OF: dict[str, str] = {detail: name for name, (detail, _m, _d) in CATALOGUE.items() if detail}
# The platform events the delivery function takes (handlers/registry.py routes these to it).
PLATFORM_EVENTS: tuple[str, ...] = tuple(WEBHOOK_TYPE_OF)


class WebhookEvent(Model):
    """The JSON body POSTed to an endpoint."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(description="stable across retries and replays: deduplicate on it")
    type: str
    version: Literal[1] = 1
    created: datetime
    tenant_id: str
    data: dict[str, Any]


def event_schema(event_type: str) -> dict[str, Any]:
    """The documented JSON schema of one webhook type (the envelope with its `data`)."""
    _detail, data_model, description = CATALOGUE[event_type]
    data_schema = data_model.model_json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": event_type,
        "description": description,
        "type": "object",
        "required": ["id", "type", "version", "created", "tenant_id", "data"],
        "additionalProperties": False,
        "properties": {
            "id": {"type": "string", "description": "stable event id; deduplicate on it"},
            "type": {"const": event_type},
            "version": {"const": EVENT_VERSION},
            "created": {"type": "string", "format": "date-time"},
            "tenant_id": {"type": "string"},
            "data": data_schema,
        },
    }


def _data_of(event: platform.PlatformEvent) -> dict[str, Any]:
    fields = event.model_dump(mode="json", exclude={"version", "event_id", "tenant_id", "occurred_at", "actor"})
    if isinstance(event, platform.ConfigChanged):
        fields["changed_by"] = event.actor
        fields["version"] = fields.pop("config_version")
    return fields


def to_webhook(event: platform.PlatformEvent) -> WebhookEvent | None:
    """The webhook a tenant receives for a platform event, or None when tenants do not see that type."""
    name = WEBHOOK_TYPE_OF.get(event.detail_type())
    if name is None:
        return None
    data_model = CATALOGUE[name][1]
    data = data_model.model_validate(_data_of(event)).model_dump(mode="json")
    return WebhookEvent(id=f"evt_{event.event_id}", type=name, created=event.occurred_at, tenant_id=event.tenant_id, data=data)


def test_event(tenant_id: str, endpoint_id: str, now: datetime, event_id: str) -> WebhookEvent:
    data = WebhookTestData(message="a test event from raas", endpoint_id=endpoint_id).model_dump(mode="json")
    return WebhookEvent(id=f"evt_{event_id}", type=TEST_EVENT, created=now, tenant_id=tenant_id, data=data)


def encode(event: WebhookEvent) -> bytes:
    """The raw body: compact JSON, the bytes that are signed."""
    return event.model_dump_json().encode("utf-8")


# --- signatures ------------------------------------------------------------------------------


class SignatureError(ValueError):
    pass


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(body: bytes, secrets: Sequence[str], timestamp: int) -> str:
    """The `Raas-Signature` header value: one `v1=` per valid secret (newest first)."""
    if not secrets:
        raise ValueError("no signing secret")
    return ",".join([f"t={timestamp}", *(f"v1={_digest(s, timestamp, body)}" for s in secrets)])


def verify_signature(
    body: bytes, header: str, secret: str, *, tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS, now: float | None = None
) -> int:
    """Checks a `Raas-Signature` header against the raw body; returns its timestamp.

    Raises SignatureError when the header is malformed, no `v1` matches `secret`, or the
    timestamp is more than `tolerance_seconds` (5 minutes) older or newer than `now`."""
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise SignatureError("the signature's timestamp is not an integer") from None
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        raise SignatureError("the signature header needs t= and at least one v1=")
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_seconds:
        raise SignatureError("the signature's timestamp is outside the tolerance (a replay, or a skewed clock)")
    expected = _digest(secret, timestamp, body)
    if not any(hmac.compare_digest(expected, candidate) for candidate in candidates):
        raise SignatureError("no signature matches the secret")
    return timestamp


# --- models ----------------------------------------------------------------------------------


class WebhookEndpoint(Model):
    """An endpoint as the API shows it (never the secret)."""

    model_config = ConfigDict(frozen=True)

    endpoint_id: str
    url: str
    events: list[str]
    description: str = ""
    enabled: bool = True
    disabled_reason: str | None = None
    created_at: datetime
    updated_at: datetime
    secret_rotated_at: datetime | None = None
    previous_secret_expires_at: datetime | None = None
    consecutive_failures: int = 0
    failing_since: datetime | None = None


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # waiting for its next attempt
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # retries exhausted (24 h)
    CANCELLED = "cancelled"  # the endpoint was disabled or deleted before it succeeded


class DeliveryAttempt(Model):
    model_config = ConfigDict(frozen=True)

    attempt: int
    at: datetime
    status_code: int | None = None
    latency_ms: float
    response_snippet: str = ""
    error: str | None = None


class WebhookDelivery(Model):
    model_config = ConfigDict(frozen=True)

    delivery_id: str
    endpoint_id: str
    event_id: str
    event_type: str
    status: DeliveryStatus
    created_at: datetime
    next_attempt_at: datetime | None = None
    attempts: list[DeliveryAttempt] = Field(default_factory=list)
    replay_of: str | None = None


class SealedSecret(Model):
    model_config = ConfigDict(frozen=True)

    ciphertext: str  # base64 KMS ciphertext
    expires_at: datetime | None = None  # set on the previous secret at a rotation


class StoredEndpoint(Model):
    """An endpoint with its sealed secrets (never leaves the service)."""

    model_config = ConfigDict(frozen=True)

    tenant_id: str
    endpoint: WebhookEndpoint
    secrets: list[SealedSecret]
    revision: int = 0  # optimistic concurrency: a write names the revision it read

    def valid_secrets(self, now: datetime) -> list[SealedSecret]:
        return [s for s in self.secrets if s.expires_at is None or s.expires_at > now]


class DueDelivery(Model):
    tenant_id: str
    endpoint_id: str
    delivery_id: str


@dataclass(frozen=True)
class SendResult:
    status_code: int | None
    latency_ms: float
    body: bytes
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


# --- retries ---------------------------------------------------------------------------------


def retry_delay(failed_attempts: int, rng: random.Random | None = None) -> float:
    """Seconds before the next attempt after `failed_attempts` failures: exponential (30 s, 60 s, ...,
    capped at 4 h) with equal jitter (half fixed, half random), so receivers coming back are not
    hit by every sender at once."""
    base = min(RETRY_CAP_SECONDS, RETRY_BASE_SECONDS * 2 ** max(0, failed_attempts - 1))
    chooser = rng or random.Random()  # noqa: S311 - jitter, not cryptography
    return base / 2 + chooser.uniform(0, base / 2)


def next_attempt(created_at: datetime, now: datetime, failed_attempts: int, rng: random.Random | None = None) -> datetime | None:
    """When to try again, or None when the next attempt would fall beyond the 24 h retry window."""
    when = now + timedelta(seconds=retry_delay(failed_attempts, rng))
    return when if when <= created_at + RETRY_WINDOW else None


def should_disable(consecutive_failures: int, failing_since: datetime | None, now: datetime) -> bool:
    return consecutive_failures >= DISABLE_AFTER_FAILURES and failing_since is not None and now - failing_since >= DISABLE_AFTER


# --- destinations (SSRF) ---------------------------------------------------------------------


class DestinationRefused(ValueError):
    """The URL or the address it resolves to may not be called."""


_LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
# Cloud metadata services, refused even when loopback is allowed (most are link-local or private
# anyway; listed so the intent survives a change of the generic checks).
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200", "169.254.169.123")
)


def check_url(url: str, *, allow_loopback: bool) -> str:
    """Syntactic checks made when an endpoint is saved (the address is checked again at every send):
    https only, except http://127.0.0.1 / localhost when loopback is allowed (local development);
    no credentials in the URL; a literal IP must itself be allowed."""
    if len(url) > MAX_URL:
        raise DestinationRefused(f"the URL is longer than {MAX_URL} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise DestinationRefused(f"not a valid URL: {exc}") from None
    host = (parts.hostname or "").lower()
    if not host:
        raise DestinationRefused("the URL has no host")
    if parts.username or parts.password:
        raise DestinationRefused("the URL may not carry credentials")
    if parts.fragment:
        raise DestinationRefused("the URL may not have a fragment")
    if parts.scheme == "http":
        if not (allow_loopback and host in _LOOPBACK_NAMES):
            raise DestinationRefused("only https:// URLs are allowed")
    elif parts.scheme != "https":
        raise DestinationRefused("only https:// URLs are allowed")
    if port == 0:
        raise DestinationRefused("port 0 is not a destination")
    if not allow_loopback and (host == "localhost" or host.endswith(".localhost")):
        raise DestinationRefused("localhost is a loopback name")  # refused early; every name is checked again at send
    try:
        literal = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return url
    check_address(literal, allow_loopback=allow_loopback)
    return url


def check_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address, *, allow_loopback: bool) -> None:
    """Refuses anything but a public address; loopback only when allowed (never metadata or link-local)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in METADATA_ADDRESSES:
        raise DestinationRefused(f"{address} is a metadata address")
    if address.is_loopback:
        if allow_loopback:
            return
        raise DestinationRefused(f"{address} is a loopback address")
    if address.is_link_local:
        raise DestinationRefused(f"{address} is a link-local address")
    if address.is_private or address.is_multicast or address.is_reserved or address.is_unspecified or not address.is_global:
        raise DestinationRefused(f"{address} is not a public address")
