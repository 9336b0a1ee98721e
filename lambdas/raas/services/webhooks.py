"""Tenant webhooks: endpoint management (admin API) and delivery (platform events and retries).

Delivery is at least once, ordering is not promised:
- a platform event about tenant T is matched against T's own endpoints only (the store is read with
  T's partition key, which comes from the event), enabled and subscribed to its type;
- each (endpoint, event) becomes one delivery record before anything is sent (a marker refuses a
  second one when the bus hands the event over again), with its next attempt set a lease ahead, so a
  function that dies before or while sending leaves a record the retry schedule picks up;
- an attempt that fails (network error, timeout, non-2xx, refused destination) is retried with
  exponential backoff and jitter until 24 h after the event; after DISABLE_AFTER_FAILURES failed
  attempts in a row spread over DISABLE_AFTER the endpoint is disabled and the audit log says so.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from aws_lambda_powertools import Logger
from pydantic import ConfigDict

from raas.domain import catalog
from raas.domain import webhooks as wh
from raas.domain.catalog import Tier
from raas.domain.errors import Conflict, NotFound, ValidationFailed
from raas.domain.events import PlatformEvent
from raas.domain.model import Model
from raas.domain.ports import AuditLog, VersionConflict
from raas.domain.webhooks import (
    DeliveryAttempt,
    DeliveryStatus,
    DueDelivery,
    SealedSecret,
    SendResult,
    StoredEndpoint,
    WebhookDelivery,
    WebhookEndpoint,
)

logger = Logger(service="raas")
Clock = Callable[[], datetime]
EndpointReader = Callable[[str], list[StoredEndpoint]]  # tenant id -> that tenant's endpoints
WRITE_ATTEMPTS = 5
LEASE = timedelta(seconds=60)  # how long a fresh delivery waits for its first attempt before the retry schedule takes it


class WebhookStore(Protocol):
    def put_endpoint(self, stored: StoredEndpoint, *, create: bool) -> None: ...
    def get_endpoint(self, tenant_id: str, endpoint_id: str) -> StoredEndpoint | None: ...
    def list_endpoints(self, tenant_id: str) -> list[StoredEndpoint]: ...
    def delete_endpoint(self, tenant_id: str, endpoint_id: str) -> None: ...
    def create_delivery(self, tenant_id: str, delivery: WebhookDelivery, body: str, retention_days: int, *, dedupe: bool) -> bool: ...
    def save_delivery(self, tenant_id: str, delivery: WebhookDelivery) -> None: ...
    def get_delivery(self, tenant_id: str, endpoint_id: str, delivery_id: str) -> tuple[WebhookDelivery, str] | None: ...
    def list_deliveries(
        self, tenant_id: str, endpoint_id: str, limit: int, cursor: str | None
    ) -> tuple[list[WebhookDelivery], str | None]: ...
    def due(self, now: datetime, limit: int) -> list[DueDelivery]: ...


class SecretBox(Protocol):
    def seal(self, tenant_id: str, endpoint_id: str, secret: str) -> str: ...
    def open(self, tenant_id: str, endpoint_id: str, ciphertext: str) -> str: ...


class Sender(Protocol):
    allow_loopback: bool

    def send(self, url: str, body: bytes, headers: dict[str, str]) -> SendResult: ...


class TierOf(Protocol):
    def __call__(self, tenant_id: str) -> Tier | None: ...


# --- results the API returns -----------------------------------------------------------------


class EndpointCreated(Model):
    endpoint: WebhookEndpoint
    secret: str


class SecretRotated(Model):
    endpoint: WebhookEndpoint
    secret: str
    previous_secret_expires_at: datetime


class EndpointList(Model):
    endpoints: list[WebhookEndpoint]


class DeliveryPage(Model):
    deliveries: list[WebhookDelivery]
    next_cursor: str | None


class EventTypeInfo(Model):
    model_config = ConfigDict(frozen=True)

    type: str
    version: int
    description: str
    json_schema: dict[str, object]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _check_events(events: list[str]) -> list[str]:
    unknown = sorted(set(events) - wh.SUBSCRIBABLE)
    if unknown:
        raise ValidationFailed(
            f"unknown event type {', '.join(unknown)}",
            code="unknown_event_type",
            details=[{"field": "events", "message": f"choose from {', '.join(sorted(wh.SUBSCRIBABLE))}"}],
        )
    if not events:
        raise ValidationFailed("subscribe to at least one event type", details=[{"field": "events", "message": "empty"}])
    return sorted(set(events))


def _check_url(url: str, allow_loopback: bool) -> str:
    try:
        return wh.check_url(url, allow_loopback=allow_loopback)
    except wh.DestinationRefused as exc:
        raise ValidationFailed(str(exc), code="invalid_webhook_url", details=[{"field": "url", "message": str(exc)}]) from None


class WebhookDispatcher:
    """Sends deliveries: fresh ones from platform events, due ones from the retry schedule, replays."""

    def __init__(
        self,
        store: WebhookStore,
        secrets: SecretBox,
        sender: Sender,
        audit: AuditLog,
        tier_of: TierOf,
        clock: Clock = _utcnow,
        rng: random.Random | None = None,
    ):
        self.store = store
        self.secrets = secrets
        self.sender = sender
        self.audit = audit
        self.tier_of = tier_of
        self._now = clock
        self._rng = rng or random.Random()  # noqa: S311 - jitter

    # --- from the bus ------------------------------------------------------------------------

    def dispatch(self, event: PlatformEvent, endpoints: EndpointReader | None = None) -> list[WebhookDelivery]:
        """Creates and attempts one delivery per matching endpoint of the event's tenant (never another's).
        `endpoints` reads a tenant's endpoints (default: the store, every time; a batch passes `batch_reader()`)."""
        webhook = wh.to_webhook(event)
        if webhook is None:
            return []
        # The endpoints first: most tenants subscribe to no event, and then the tier is not read at all.
        listed = (endpoints or self.store.list_endpoints)(event.tenant_id)
        subscribed = [s for s in listed if s.endpoint.enabled and webhook.type in s.endpoint.events]
        if not subscribed:
            return []
        tier = self.tier_of(event.tenant_id)
        if tier is None:
            return []  # the tenant is gone: nothing to tell, nobody to tell it to
        retention = catalog.tier_limits(tier).webhook_log_days
        body = wh.encode(webhook).decode("utf-8")
        sent: list[WebhookDelivery] = []
        for stored in subscribed:
            endpoint = stored.endpoint
            delivery = self._new_delivery(endpoint.endpoint_id, webhook)
            if not self.store.create_delivery(event.tenant_id, delivery, body, retention, dedupe=True):
                continue  # handed over before: that delivery (and the retry schedule) own it
            # A batch's list may be moments old: its attempts read the endpoint again, so one disabled or re-keyed
            # since is cancelled or signed with the new secret, as a retry would be.
            sent.append(self.attempt(event.tenant_id, delivery, body, stored if endpoints is None else None))
        return sent

    def batch_reader(self) -> EndpointReader:
        """Reads each tenant's endpoints once, for the events of one batch (the queue hands over up to ten, most of
        them one tenant's ingests): one query a tenant instead of one an event. The events of a batch were published
        moments apart, so an endpoint created in between is no likelier to be missed than by the event before it.
        A read that fails is not kept: the next event of the batch reads again."""
        read: dict[str, list[StoredEndpoint]] = {}

        def endpoints(tenant_id: str) -> list[StoredEndpoint]:
            if tenant_id not in read:
                read[tenant_id] = self.store.list_endpoints(tenant_id)
            return read[tenant_id]

        return endpoints

    def _new_delivery(self, endpoint_id: str, webhook: wh.WebhookEvent, replay_of: str | None = None) -> WebhookDelivery:
        now = self._now()
        return WebhookDelivery(
            delivery_id=wh.new_delivery_id(now),
            endpoint_id=endpoint_id,
            event_id=webhook.id,
            event_type=webhook.type,
            status=DeliveryStatus.PENDING,
            created_at=now,
            next_attempt_at=now + LEASE,
            replay_of=replay_of,
        )

    # --- retries -----------------------------------------------------------------------------

    def retry_due(self, limit: int = 100) -> int:
        """Attempts every delivery whose next attempt is due (the retry schedule, every minute)."""
        done = 0
        for due in self.store.due(self._now(), limit):
            found = self.store.get_delivery(due.tenant_id, due.endpoint_id, due.delivery_id)
            if found is None:
                continue
            delivery, body = found
            if delivery.status is not DeliveryStatus.PENDING or (delivery.next_attempt_at and delivery.next_attempt_at > self._now()):
                continue
            try:
                self.attempt(due.tenant_id, delivery, body)
            except Exception:  # one tenant's storage trouble must not stop the others' retries
                logger.exception("webhook retry failed", extra={"tenant_id": due.tenant_id, "delivery_id": due.delivery_id})
                continue
            done += 1
        return done

    # --- one attempt -------------------------------------------------------------------------

    def attempt(self, tenant_id: str, delivery: WebhookDelivery, body: str, stored: StoredEndpoint | None = None) -> WebhookDelivery:
        stored = stored or self.store.get_endpoint(tenant_id, delivery.endpoint_id)
        if stored is None or not stored.endpoint.enabled:
            cancelled = delivery.model_copy(update={"status": DeliveryStatus.CANCELLED, "next_attempt_at": None})
            self.store.save_delivery(tenant_id, cancelled)
            return cancelled
        now = self._now()
        secrets = [self.secrets.open(tenant_id, stored.endpoint.endpoint_id, s.ciphertext) for s in stored.valid_secrets(now)]
        raw = body.encode("utf-8")
        headers = {
            wh.SIGNATURE_HEADER: wh.sign(raw, secrets, int(now.timestamp())),
            wh.EVENT_ID_HEADER: delivery.event_id,
            "User-Agent": "raas-webhooks/1",
        }
        number = len(delivery.attempts) + 1
        try:
            result = self.sender.send(stored.endpoint.url, raw, headers)
            attempt = DeliveryAttempt(
                attempt=number,
                at=now,
                status_code=result.status_code,
                latency_ms=round(result.latency_ms, 2),
                response_snippet=result.body[: wh.SNIPPET_CHARS * 4].decode("utf-8", "replace")[: wh.SNIPPET_CHARS],
                error=result.error or (None if result.ok else f"HTTP {result.status_code}"),
            )
            ok = result.ok
        except wh.DestinationRefused as exc:
            attempt = DeliveryAttempt(attempt=number, at=now, latency_ms=0.0, error=f"destination refused: {exc}")
            ok = False
        attempts = [*delivery.attempts, attempt]
        if ok:
            updated = delivery.model_copy(update={"status": DeliveryStatus.SUCCEEDED, "attempts": attempts, "next_attempt_at": None})
        else:
            following = wh.next_attempt(delivery.created_at, self._now(), len(attempts), self._rng)
            status = DeliveryStatus.PENDING if following else DeliveryStatus.FAILED
            updated = delivery.model_copy(update={"status": status, "attempts": attempts, "next_attempt_at": following})
        self.store.save_delivery(tenant_id, updated)
        self._streak(tenant_id, stored, ok, now, attempt)
        logger.info(
            "webhook attempt",
            extra={
                "tenant_id": tenant_id,
                "delivery_id": delivery.delivery_id,
                "status": updated.status.value,
                "code": attempt.status_code,
            },
        )
        return updated

    def _streak(self, tenant_id: str, stored: StoredEndpoint, ok: bool, now: datetime, attempt: DeliveryAttempt) -> None:
        """Counts the attempt in the endpoint's failure streak (other deliveries count too), re-reading on a
        concurrent write so neither an admin's change nor another attempt's count is lost."""
        for _ in range(WRITE_ATTEMPTS):
            current = self.store.get_endpoint(tenant_id, stored.endpoint.endpoint_id)
            if current is None:
                return
            try:
                self._count(tenant_id, current, ok, now, attempt)
            except VersionConflict:
                continue
            except NotFound:
                return  # deleted meanwhile
            return
        logger.warning("could not record a webhook attempt in the endpoint's streak", extra={"tenant_id": tenant_id})

    def _count(self, tenant_id: str, current: StoredEndpoint, ok: bool, now: datetime, attempt: DeliveryAttempt) -> None:
        endpoint = current.endpoint
        disable, reason = False, ""
        if ok:
            if endpoint.consecutive_failures == 0:
                return
            changed = endpoint.model_copy(update={"consecutive_failures": 0, "failing_since": None})
        else:
            failures = endpoint.consecutive_failures + 1
            since = endpoint.failing_since or now
            changed = endpoint.model_copy(update={"consecutive_failures": failures, "failing_since": since})
            disable = endpoint.enabled and wh.should_disable(failures, since, now)
            if disable:
                reason = f"disabled after {failures} failed attempts in a row since {since.isoformat()} (last: {attempt.error})"
                changed = changed.model_copy(update={"enabled": False, "disabled_reason": reason[:500], "updated_at": now})
        self.store.put_endpoint(current.model_copy(update={"endpoint": changed}), create=False)
        if disable:  # after the write that disabled it, so a lost race does not audit twice
            self.audit.record(
                tenant_id, "platform", "webhook.disabled", endpoint.endpoint_id, {"url": endpoint.url, "reason": reason[:500]}
            )
            logger.warning("webhook endpoint disabled", extra={"tenant_id": tenant_id, "endpoint_id": endpoint.endpoint_id})


class WebhookService:
    """The admin API on a tenant's own endpoints; the tenant id always comes from the caller."""

    def __init__(
        self,
        store: WebhookStore,
        secrets: SecretBox,
        dispatcher: WebhookDispatcher,
        audit: AuditLog,
        *,
        allow_loopback: bool,
        clock: Clock = _utcnow,
    ):
        self.store = store
        self.secrets = secrets
        self.dispatcher = dispatcher
        self.audit = audit
        self.allow_loopback = allow_loopback
        self._now = clock

    def event_types(self) -> list[EventTypeInfo]:
        return [
            EventTypeInfo(type=name, version=wh.EVENT_VERSION, description=info[2], json_schema=wh.event_schema(name))
            for name, info in wh.CATALOGUE.items()
        ]

    def create(self, tenant_id: str, tier: Tier, actor: str, url: str, events: list[str], description: str) -> EndpointCreated:
        url = _check_url(url, self.allow_loopback)
        chosen = _check_events(events)
        limit = catalog.tier_limits(tier).max_webhook_endpoints
        if len(self.store.list_endpoints(tenant_id)) >= limit:
            raise Conflict(f"the {tier.value} tier allows {limit} webhook endpoints", code="webhook_limit_reached")
        now = self._now()
        endpoint = WebhookEndpoint(
            endpoint_id=wh.new_endpoint_id(), url=url, events=chosen, description=description, created_at=now, updated_at=now
        )
        secret = wh.new_secret()
        sealed = SealedSecret(ciphertext=self.secrets.seal(tenant_id, endpoint.endpoint_id, secret))
        self.store.put_endpoint(StoredEndpoint(tenant_id=tenant_id, endpoint=endpoint, secrets=[sealed]), create=True)
        self.audit.record(tenant_id, actor, "webhook.created", endpoint.endpoint_id, {"url": url, "events": chosen})
        return EndpointCreated(endpoint=endpoint, secret=secret)

    def _stored(self, tenant_id: str, endpoint_id: str) -> StoredEndpoint:
        stored = self.store.get_endpoint(tenant_id, endpoint_id) if wh.is_endpoint_id(endpoint_id) else None
        if stored is None:
            raise NotFound(f"webhook endpoint {endpoint_id} not found", code="webhook_not_found")
        return stored

    def list_endpoints(self, tenant_id: str) -> EndpointList:
        return EndpointList(endpoints=sorted((s.endpoint for s in self.store.list_endpoints(tenant_id)), key=lambda e: e.created_at))

    def get(self, tenant_id: str, endpoint_id: str) -> WebhookEndpoint:
        return self._stored(tenant_id, endpoint_id).endpoint

    def update(
        self,
        tenant_id: str,
        actor: str,
        endpoint_id: str,
        *,
        url: str | None = None,
        events: list[str] | None = None,
        description: str | None = None,
        enabled: bool | None = None,
    ) -> WebhookEndpoint:
        checked: dict[str, object] = {}
        if url is not None:
            checked["url"] = _check_url(url, self.allow_loopback)
        if events is not None:
            checked["events"] = _check_events(events)
        if description is not None:
            checked["description"] = description
        for _ in range(WRITE_ATTEMPTS):
            stored = self._stored(tenant_id, endpoint_id)
            changes: dict[str, object] = {**checked, "updated_at": self._now()}
            if enabled is not None:
                changes["enabled"] = enabled
                if enabled:  # re-enabling starts a new streak
                    changes |= {"disabled_reason": None, "consecutive_failures": 0, "failing_since": None}
                elif stored.endpoint.enabled:
                    changes["disabled_reason"] = f"disabled by {actor}"
            endpoint = stored.endpoint.model_copy(update=changes)
            try:
                self.store.put_endpoint(stored.model_copy(update={"endpoint": endpoint}), create=False)
            except VersionConflict:
                continue
            break
        else:
            raise Conflict("the endpoint is being changed concurrently; try again", code="version_conflict")
        fields = sorted(k for k in changes if k not in ("updated_at", "disabled_reason", "consecutive_failures", "failing_since"))
        self.audit.record(tenant_id, actor, "webhook.updated", endpoint_id, {"fields": fields})
        return endpoint

    def delete(self, tenant_id: str, actor: str, endpoint_id: str) -> None:
        stored = self._stored(tenant_id, endpoint_id)
        self.store.delete_endpoint(tenant_id, endpoint_id)
        self.audit.record(tenant_id, actor, "webhook.deleted", endpoint_id, {"url": stored.endpoint.url})

    def rotate_secret(self, tenant_id: str, actor: str, endpoint_id: str) -> SecretRotated:
        """A new current secret; the previous one keeps signing (a second `v1=`) for 24 hours."""
        self._stored(tenant_id, endpoint_id)
        secret = wh.new_secret()
        fresh = SealedSecret(ciphertext=self.secrets.seal(tenant_id, endpoint_id, secret))
        for _ in range(WRITE_ATTEMPTS):
            stored = self._stored(tenant_id, endpoint_id)
            now = self._now()
            expires = now + wh.ROTATION_OVERLAP
            current = next((s for s in stored.secrets if s.expires_at is None), None)
            kept = [SealedSecret(ciphertext=current.ciphertext, expires_at=expires)] if current else []
            update = {"secret_rotated_at": now, "previous_secret_expires_at": expires, "updated_at": now}
            endpoint = stored.endpoint.model_copy(update=update)
            try:
                self.store.put_endpoint(stored.model_copy(update={"endpoint": endpoint, "secrets": [fresh, *kept]}), create=False)
            except VersionConflict:
                continue
            break
        else:
            raise Conflict("the endpoint is being changed concurrently; try again", code="version_conflict")
        self.audit.record(tenant_id, actor, "webhook.secret_rotated", endpoint_id, {"previous_valid_until": expires.isoformat()})
        return SecretRotated(endpoint=endpoint, secret=secret, previous_secret_expires_at=expires)

    def send_test(self, tenant_id: str, tier: Tier, endpoint_id: str) -> WebhookDelivery:
        """Sends a `webhook.test` event now (to a disabled endpoint too: that is how one checks a fix)."""
        stored = self._stored(tenant_id, endpoint_id)
        now = self._now()
        event = wh.test_event(tenant_id, endpoint_id, now, wh.new_delivery_id(now))
        delivery = self.dispatcher._new_delivery(endpoint_id, event)
        body = wh.encode(event).decode("utf-8")
        self.store.create_delivery(tenant_id, delivery, body, catalog.tier_limits(tier).webhook_log_days, dedupe=False)
        enabled = stored.model_copy(update={"endpoint": stored.endpoint.model_copy(update={"enabled": True})})
        return self.dispatcher.attempt(tenant_id, delivery, body, enabled)

    def deliveries(self, tenant_id: str, endpoint_id: str, limit: int, cursor: str | None) -> DeliveryPage:
        self._stored(tenant_id, endpoint_id)
        items, next_cursor = self.store.list_deliveries(tenant_id, endpoint_id, limit, cursor)
        return DeliveryPage(deliveries=items, next_cursor=next_cursor)

    def delivery(self, tenant_id: str, endpoint_id: str, delivery_id: str) -> WebhookDelivery:
        return self._delivery(tenant_id, endpoint_id, delivery_id)[0]

    def _delivery(self, tenant_id: str, endpoint_id: str, delivery_id: str) -> tuple[WebhookDelivery, str]:
        self._stored(tenant_id, endpoint_id)
        found = self.store.get_delivery(tenant_id, endpoint_id, delivery_id) if wh.is_delivery_id(delivery_id) else None
        if found is None:
            raise NotFound(f"delivery {delivery_id} not found", code="delivery_not_found")
        return found

    def replay(self, tenant_id: str, tier: Tier, actor: str, endpoint_id: str, delivery_id: str) -> WebhookDelivery:
        """Sends the same body (same event `id`) again as a new delivery, whatever the first one's outcome."""
        original, body = self._delivery(tenant_id, endpoint_id, delivery_id)
        stored = self._stored(tenant_id, endpoint_id)
        if not stored.endpoint.enabled:
            raise Conflict("the endpoint is disabled; enable it first", code="webhook_disabled")
        now = self._now()
        replay = original.model_copy(
            update={
                "delivery_id": wh.new_delivery_id(now),
                "status": DeliveryStatus.PENDING,
                "created_at": now,
                "next_attempt_at": now + LEASE,
                "attempts": [],
                "replay_of": original.delivery_id,
            }
        )
        self.store.create_delivery(tenant_id, replay, body, catalog.tier_limits(tier).webhook_log_days, dedupe=False)
        self.audit.record(
            tenant_id, actor, "webhook.replayed", endpoint_id, {"delivery_id": original.delivery_id, "event_id": original.event_id}
        )
        return self.dispatcher.attempt(tenant_id, replay, body, stored)
