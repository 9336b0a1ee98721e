"""Tenant webhooks end to end: the API, platform events through the local bus, a loopback receiver that
verifies signatures, retries on a fake clock, auto-disable, replay, deduplication, SSRF refusals, faults."""

from __future__ import annotations

import base64
import json
import random
import socket
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from raas.adapters.webhook_http import WebhookSender
from raas.adapters.webhooks import SECRET_PURPOSE
from raas.domain import webhooks as wh
from raas.domain.events import ConfigChanged, KeyCreated, eventbridge_envelope
from raas.domain.webhooks import DeliveryStatus, SendResult
from raas.handlers.registry import load_event_handler
from raas.local.invocation import lambda_context
from raas.services.webhooks import WebhookDispatcher
from tests.conftest import OPERATOR_KEY, TenantHandle, create_tenant
from tests.helpers import ApiClient, expect, local_bus, rebuild_services
from tests.webhook_receiver import FakeClock, LoopbackReceiver, Reply

pytestmark = pytest.mark.usefixtures("aws")


@pytest.fixture
def loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """RAAS_WEBHOOK_ALLOW_LOOPBACK=true: the local development setting, so the receiver on 127.0.0.1 is allowed."""
    monkeypatch.setenv("RAAS_WEBHOOK_ALLOW_LOOPBACK", "true")
    rebuild_services()


@pytest.fixture
def receiver() -> Iterator[LoopbackReceiver]:
    server = LoopbackReceiver()
    yield server
    server.stop()


def create_endpoint(api: ApiClient, tenant: TenantHandle, url: str, events: list[str], description: str = "") -> tuple[str, str]:
    created = expect(
        api.request("POST", "/v1/webhooks", key=tenant.admin_key, json_body={"url": url, "events": events, "description": description}),
        201,
    )
    return created["endpoint"]["endpoint_id"], created["secret"]


def dispatcher(clock: FakeClock, sender: Any = None) -> WebhookDispatcher:
    """The container's dispatcher on a fake clock (and optionally another sender)."""
    from raas.bootstrap import services

    real = services().webhook_dispatcher
    return WebhookDispatcher(real.store, real.secrets, sender or real.sender, real.audit, real.tier_of, clock=clock, rng=random.Random(3))  # noqa: S311


def config_event(tenant: TenantHandle, version: int = 7) -> ConfigChanged:
    return ConfigChanged(tenant_id=tenant.tenant_id, actor="admin:k", config_version=version, mode="merge", changed_fields=["top_k"])


def deliveries(api: ApiClient, tenant: TenantHandle, endpoint_id: str) -> list[dict[str, Any]]:
    page = expect(api.request("GET", f"/v1/webhooks/{endpoint_id}/deliveries", key=tenant.admin_key), 200)
    return list(page["deliveries"])


# --- the API -----------------------------------------------------------------------------------


def test_create_shows_the_secret_once_and_stores_it_sealed_with_the_tenant_key(
    api: ApiClient, tenant_a: TenantHandle, loopback: None, receiver: LoopbackReceiver
) -> None:
    endpoint_id, secret = create_endpoint(api, tenant_a, receiver.url, ["config.changed"], "ops alerts")
    assert secret.startswith("whsec_")
    listed = expect(api.request("GET", "/v1/webhooks", key=tenant_a.admin_key), 200)
    shown = expect(api.request("GET", f"/v1/webhooks/{endpoint_id}", key=tenant_a.admin_key), 200)
    assert secret not in json.dumps(listed)
    assert secret not in json.dumps(shown)
    assert shown["events"] == ["config.changed"]
    assert shown["description"] == "ops alerts"
    assert shown["enabled"] is True
    # at rest: a KMS ciphertext under the tenant's key, bound to tenant, endpoint and purpose
    item = boto3.client("dynamodb").get_item(
        TableName="raas-tenants", Key={"PK": {"S": f"TENANT#{tenant_a.tenant_id}#"}, "SK": {"S": f"WEBHOOK#{endpoint_id}"}}
    )["Item"]
    assert secret not in json.dumps(item)
    sealed = base64.b64decode(json.loads(item["secrets"]["S"])[0]["ciphertext"])
    kms = boto3.client("kms")
    context = {"raas:tenant_id": tenant_a.tenant_id, "raas:endpoint_id": endpoint_id, "raas:purpose": SECRET_PURPOSE}
    assert kms.decrypt(CiphertextBlob=sealed, EncryptionContext=context)["Plaintext"].decode() == secret
    with pytest.raises(ClientError, match="InvalidCiphertext"):
        kms.decrypt(CiphertextBlob=sealed, EncryptionContext={**context, "raas:tenant_id": "t" + "b" * 15})


def test_config_change_is_delivered_signed_to_the_receiver(
    api: ApiClient, tenant_a: TenantHandle, loopback: None, receiver: LoopbackReceiver
) -> None:
    _endpoint_id, secret = create_endpoint(api, tenant_a, receiver.url, ["config.changed"])
    expect(api.request("PATCH", "/v1/config", key=tenant_a.admin_key, json_body={"temperature": 0.2}), 200)
    assert len(receiver.received) == 1
    got = receiver.received[0]
    receiver.verify(got, secret)
    body = got.json()
    assert body["type"] == "config.changed"
    assert body["version"] == 1
    assert body["tenant_id"] == tenant_a.tenant_id
    assert body["data"]["changed_fields"] == ["temperature"]
    assert body["data"]["changed_by"].startswith("admin:")
    assert got.headers["raas-event-id"] == body["id"]
    assert ("webhook_delivery", "ConfigChanged") in local_bus().delivered  # the one path: the platform bus


def test_unsubscribed_types_and_disabled_endpoints_receive_nothing(
    api: ApiClient, tenant_a: TenantHandle, loopback: None, receiver: LoopbackReceiver
) -> None:
    endpoint_id, _secret = create_endpoint(api, tenant_a, receiver.url, ["key.revoked"])
    expect(api.request("POST", "/v1/keys", key=tenant_a.admin_key, json_body={"name": "ci", "role": "reader"}), 201)
    assert receiver.received == []  # key.created is not subscribed
    expect(api.request("PATCH", f"/v1/webhooks/{endpoint_id}", key=tenant_a.admin_key, json_body={"enabled": False}), 200)
    key_id = expect(api.request("GET", "/v1/keys", key=tenant_a.admin_key), 200)["keys"][-1]["key_id"]
    expect(api.request("DELETE", f"/v1/keys/{key_id}", key=tenant_a.admin_key), 204)
    assert receiver.received == []
    expect(
        api.request("PATCH", f"/v1/webhooks/{endpoint_id}", key=tenant_a.admin_key, json_body={"enabled": True, "events": ["key.created"]}),
        200,
    )
    expect(api.request("POST", "/v1/keys", key=tenant_a.admin_key, json_body={"name": "ci2", "role": "reader"}), 201)
    assert [b["type"] for b in receiver.bodies()] == ["key.created"]
    assert receiver.bodies()[0]["data"]["name"] == "ci2"


def test_an_event_about_a_never_goes_to_b(
    api: ApiClient, tenant_a: TenantHandle, tenant_b: TenantHandle, loopback: None, receiver: LoopbackReceiver
) -> None:
    other = LoopbackReceiver()
    try:
        create_endpoint(api, tenant_a, receiver.url, ["config.changed"])
        create_endpoint(api, tenant_b, other.url, ["config.changed"])
        expect(api.request("PATCH", "/v1/config", key=tenant_a.admin_key, json_body={"top_k": 3}), 200)
        assert [b["tenant_id"] for b in receiver.bodies()] == [tenant_a.tenant_id]
        assert other.received == []
    finally:
        other.stop()


def test_b_can_neither_see_nor_touch_a_s_endpoints_or_deliveries(
    api: ApiClient, tenant_a: TenantHandle, tenant_b: TenantHandle, loopback: None, receiver: LoopbackReceiver
) -> None:
    endpoint_id, _secret = create_endpoint(api, tenant_a, receiver.url, ["config.changed"])
    delivery = expect(api.request("POST", f"/v1/webhooks/{endpoint_id}/test", key=tenant_a.admin_key), 201)
    delivery_id = delivery["delivery_id"]
    base = f"/v1/webhooks/{endpoint_id}"
    for method, path, body in [
        ("GET", base, None),
        ("PATCH", base, {"description": "mine now"}),
        ("DELETE", base, None),
        ("POST", f"{base}/rotate-secret", None),
        ("POST", f"{base}/test", None),
        ("GET", f"{base}/deliveries", None),
        ("GET", f"{base}/deliveries/{delivery_id}", None),
        ("POST", f"{base}/deliveries/{delivery_id}/replay", None),
    ]:
        reply = api.request(method, path, key=tenant_b.admin_key, json_body=body)
        assert reply.status == 404, (method, path, reply.text)
    assert expect(api.request("GET", "/v1/webhooks", key=tenant_b.admin_key), 200)["endpoints"] == []
    assert len(receiver.received) == 1  # only A's own test event
    assert expect(api.request("GET", base, key=tenant_a.admin_key), 200)["description"] == ""


def test_readers_and_editors_cannot_manage_webhooks(api: ApiClient, tenant_a: TenantHandle) -> None:
    reader = expect(api.request("POST", "/v1/keys", key=tenant_a.admin_key, json_body={"name": "r", "role": "editor"}), 201)["api_key"]
    reply = api.request("POST", "/v1/webhooks", key=reader, json_body={"url": "https://hooks.example.com/x", "events": ["key.created"]})
    assert reply.status == 403
    assert reply.error_code == "insufficient_role"
    assert api.request("GET", "/v1/webhooks", key=OPERATOR_KEY).error_code == "tenant_key_required"


def test_tier_limits_the_number_of_endpoints(api: ApiClient) -> None:
    free = create_tenant(api, "small", "free")
    for _ in range(2):  # tiers.json: free allows 2
        create_endpoint(api, free, "https://hooks.example.com/x", ["key.created"])
    reply = api.request(
        "POST", "/v1/webhooks", key=free.admin_key, json_body={"url": "https://hooks.example.com/y", "events": ["key.created"]}
    )
    assert reply.status == 409
    assert reply.error_code == "webhook_limit_reached"


def test_event_types_are_listed_with_their_schemas(api: ApiClient, tenant_a: TenantHandle) -> None:
    listed = expect(api.request("GET", "/v1/webhook-event-types", key=tenant_a.admin_key), 200)["event_types"]
    names = {t["type"] for t in listed}
    assert {"document.indexed", "document.failed", "quota.threshold", "invoice.issued", "invoice.paid", "invoice.payment_failed"} <= names
    assert {"config.changed", "key.created", "key.revoked", "tenant.suspended", "tenant.resumed", "tenant.tier_changed"} <= names
    assert "export.ready" in names
    indexed = next(t for t in listed if t["type"] == "document.indexed")
    assert indexed["version"] == 1
    assert "chunk_count" in indexed["json_schema"]["properties"]["data"]["properties"]


# --- rotation, test events, the log, replay ----------------------------------------------------


def test_rotation_signs_with_both_secrets_for_24_hours(
    api: ApiClient, tenant_a: TenantHandle, loopback: None, receiver: LoopbackReceiver
) -> None:
    endpoint_id, old = create_endpoint(api, tenant_a, receiver.url, ["config.changed"])
    rotated = expect(api.request("POST", f"/v1/webhooks/{endpoint_id}/rotate-secret", key=tenant_a.admin_key), 200)
    new = rotated["secret"]
    assert new != old
    assert rotated["endpoint"]["previous_secret_expires_at"] == rotated["previous_secret_expires_at"]
    expect(api.request("POST", f"/v1/webhooks/{endpoint_id}/test", key=tenant_a.admin_key), 201)
    got = receiver.received[-1]
    assert got.headers["raas-signature"].count("v1=") == 2
    assert receiver.verifies(got, new)
    assert receiver.verifies(got, old)
    # a day later the old secret no longer signs
    clock = FakeClock()
    clock.advance(24 * 3600 + 1)
    event = config_event(tenant_a)
    dispatcher(clock).dispatch(event)
    late = receiver.received[-1]
    assert late.headers["raas-signature"].count("v1=") == 1
    assert receiver.verifies(late, new, clock.now)
    assert not receiver.verifies(late, old, clock.now)


def test_test_event_and_delivery_log_record_status_latency_and_snippet(
    api: ApiClient, tenant_a: TenantHandle, loopback: None, receiver: LoopbackReceiver
) -> None:
    endpoint_id, secret = create_endpoint(api, tenant_a, receiver.url, ["config.changed"])
    receiver.script.append(Reply(status=503, body=b"busy, try later " + b"x" * 5000))
    sent = expect(api.request("POST", f"/v1/webhooks/{endpoint_id}/test", key=tenant_a.admin_key), 201)
    assert sent["event_type"] == "webhook.test"
    assert sent["status"] == "pending"
    attempt = sent["attempts"][0]
    assert attempt["status_code"] == 503
    assert attempt["latency_ms"] > 0
    assert attempt["response_snippet"].startswith("busy, try later")
    assert len(attempt["response_snippet"]) == wh.SNIPPET_CHARS
    assert receiver.verifies(receiver.received[0], secret)
    logged = deliveries(api, tenant_a, endpoint_id)
    assert [d["delivery_id"] for d in logged] == [sent["delivery_id"]]
    one = expect(api.request("GET", f"/v1/webhooks/{endpoint_id}/deliveries/{sent['delivery_id']}", key=tenant_a.admin_key), 200)
    assert one["attempts"][0]["status_code"] == 503
    # the log is kept by the tier's retention (TTL on the item)
    item = boto3.client("dynamodb").get_item(
        TableName="raas-queries",
        Key={"PK": {"S": f"TENANT#{tenant_a.tenant_id}#"}, "SK": {"S": f"WHDLV#{endpoint_id}#{sent['delivery_id']}"}},
    )["Item"]
    created = int(receiver.received[0].json()["created"][:4])  # sanity: the body is the event
    assert created >= 2026
    assert "expires_at" in item


def test_replay_sends_the_same_event_id_again(api: ApiClient, tenant_a: TenantHandle, loopback: None, receiver: LoopbackReceiver) -> None:
    endpoint_id, secret = create_endpoint(api, tenant_a, receiver.url, ["config.changed"])
    expect(api.request("PATCH", "/v1/config", key=tenant_a.admin_key, json_body={"top_k": 4}), 200)
    first = deliveries(api, tenant_a, endpoint_id)[0]
    assert first["status"] == "succeeded"
    replayed = expect(
        api.request("POST", f"/v1/webhooks/{endpoint_id}/deliveries/{first['delivery_id']}/replay", key=tenant_a.admin_key), 201
    )
    assert replayed["replay_of"] == first["delivery_id"]
    assert replayed["status"] == "succeeded"
    assert replayed["event_id"] == first["event_id"]
    ids = [b["id"] for b in receiver.bodies()]
    assert ids == [first["event_id"], first["event_id"]]  # same id: the receiver deduplicates on it
    assert receiver.received[0].body == receiver.received[1].body
    assert all(receiver.verifies(r, secret) for r in receiver.received)
    assert {d["delivery_id"] for d in deliveries(api, tenant_a, endpoint_id)} == {first["delivery_id"], replayed["delivery_id"]}
    audit = expect(api.request("GET", "/v1/audit", key=tenant_a.admin_key), 200)["entries"]
    assert any(e["action"] == "webhook.replayed" for e in audit)


def test_an_event_handed_over_twice_is_delivered_once(
    api: ApiClient, tenant_a: TenantHandle, loopback: None, receiver: LoopbackReceiver
) -> None:
    endpoint_id, _secret = create_endpoint(api, tenant_a, receiver.url, ["config.changed"])
    event = config_event(tenant_a)
    clock = FakeClock()
    assert len(dispatcher(clock).dispatch(event)) == 1
    assert dispatcher(clock).dispatch(event) == []  # EventBridge / SQS at-least-once: the second is a no-op
    load_event_handler("webhook_delivery")(eventbridge_envelope(event, "raas-local"), lambda_context("raas-webhook_delivery"))
    assert len(receiver.received) == 1
    assert len(deliveries(api, tenant_a, endpoint_id)) == 1


# --- retries, auto-disable -------------------------------------------------------------------


def run_due_until_quiet(clock: FakeClock, d: WebhookDispatcher, tenant: TenantHandle, endpoint_id: str, rounds: int = 60) -> None:
    """Moves the fake clock to each next attempt and runs the retry schedule, as EventBridge Scheduler would."""
    for _ in range(rounds):
        pending = [x for x in d.store.list_deliveries(tenant.tenant_id, endpoint_id, 100, None)[0] if x.status is DeliveryStatus.PENDING]
        if not pending:
            return
        clock.to(min(x.next_attempt_at for x in pending if x.next_attempt_at))
        d.retry_due()


def test_retries_back_off_exponentially_until_the_receiver_answers(
    api: ApiClient, tenant_a: TenantHandle, loopback: None, receiver: LoopbackReceiver
) -> None:
    endpoint_id, secret = create_endpoint(api, tenant_a, receiver.url, ["config.changed"])
    receiver.script.extend([Reply(500), Reply(502), Reply(429), Reply(500)])
    clock = FakeClock()
    d = dispatcher(clock)
    [delivery] = d.dispatch(config_event(tenant_a))
    assert delivery.status is DeliveryStatus.PENDING
    run_due_until_quiet(clock, d, tenant_a, endpoint_id)
    final = d.store.get_delivery(tenant_a.tenant_id, endpoint_id, delivery.delivery_id)
    assert final is not None
    done = final[0]
    assert done.status is DeliveryStatus.SUCCEEDED
    assert [a.status_code for a in done.attempts] == [500, 502, 429, 500, 200]
    gaps = [(b.at - a.at).total_seconds() for a, b in zip(done.attempts, done.attempts[1:], strict=False)]
    for failures, gap in enumerate(gaps, start=1):
        base = wh.RETRY_BASE_SECONDS * 2 ** (failures - 1)
        assert base / 2 <= gap <= base, (failures, gap)
    assert len({b["id"] for b in receiver.bodies()}) == 1  # every attempt carries the same event id
    assert all(receiver.verifies(r, secret, a.at) for r, a in zip(receiver.received, done.attempts, strict=True))


def test_retries_stop_24_hours_after_the_event(api: ApiClient, tenant_a: TenantHandle, loopback: None, receiver: LoopbackReceiver) -> None:
    endpoint_id, _secret = create_endpoint(api, tenant_a, receiver.url, ["config.changed"])
    receiver.default = Reply(500)
    clock = FakeClock()
    d = dispatcher(clock)
    [delivery] = d.dispatch(config_event(tenant_a))
    run_due_until_quiet(clock, d, tenant_a, endpoint_id)
    found = d.store.get_delivery(tenant_a.tenant_id, endpoint_id, delivery.delivery_id)
    assert found is not None
    done = found[0]
    assert done.status in (DeliveryStatus.FAILED, DeliveryStatus.CANCELLED)
    assert done.attempts[-1].at - done.created_at <= wh.RETRY_WINDOW
    assert len(done.attempts) >= 10


def test_endpoint_failing_for_hours_is_disabled_with_an_audit_entry(
    api: ApiClient, tenant_a: TenantHandle, loopback: None, receiver: LoopbackReceiver
) -> None:
    endpoint_id, _secret = create_endpoint(api, tenant_a, receiver.url, ["config.changed"])
    receiver.default = Reply(500, b"down for maintenance")
    clock = FakeClock()
    d = dispatcher(clock)
    [delivery] = d.dispatch(config_event(tenant_a, 1))
    run_due_until_quiet(clock, d, tenant_a, endpoint_id)
    shown = expect(api.request("GET", f"/v1/webhooks/{endpoint_id}", key=tenant_a.admin_key), 200)
    assert shown["enabled"] is False
    assert "failed attempts in a row" in shown["disabled_reason"]
    assert shown["consecutive_failures"] >= wh.DISABLE_AFTER_FAILURES
    audit = expect(api.request("GET", "/v1/audit", key=tenant_a.admin_key), 200)["entries"]
    disabled = [e for e in audit if e["action"] == "webhook.disabled"]
    assert len(disabled) == 1
    assert disabled[0]["target"] == endpoint_id
    sent = len(receiver.received)
    # disabled: new events are not sent, the pending delivery is cancelled at its next turn
    assert d.dispatch(config_event(tenant_a, 2)) == []
    assert len(receiver.received) == sent
    found = d.store.get_delivery(tenant_a.tenant_id, endpoint_id, delivery.delivery_id)
    assert found is not None
    assert found[0].status in (DeliveryStatus.CANCELLED, DeliveryStatus.FAILED)
    # re-enabling starts a fresh streak
    receiver.default = Reply(200)
    reenabled = expect(api.request("PATCH", f"/v1/webhooks/{endpoint_id}", key=tenant_a.admin_key, json_body={"enabled": True}), 200)
    assert reenabled["enabled"] is True
    assert reenabled["consecutive_failures"] == 0
    assert reenabled["disabled_reason"] is None


# --- faults --------------------------------------------------------------------------------------


def test_receiver_down_then_back_loses_nothing(api: ApiClient, tenant_a: TenantHandle, loopback: None, receiver: LoopbackReceiver) -> None:
    endpoint_id, secret = create_endpoint(api, tenant_a, receiver.url, ["config.changed"])
    receiver.stop()  # down: connection refused
    clock = FakeClock()
    d = dispatcher(clock)
    events = [config_event(tenant_a, v) for v in range(1, 6)]
    for event in events:
        [delivery] = d.dispatch(event)
        assert delivery.status is DeliveryStatus.PENDING
        assert "Connection" in (delivery.attempts[0].error or "")
    clock.advance(600)
    d.retry_due()  # still down
    receiver.start()  # back, same port
    run_due_until_quiet(clock, d, tenant_a, endpoint_id)
    assert {b["id"] for b in receiver.bodies()} == {f"evt_{e.event_id}" for e in events}
    assert all(receiver.verifies(r, secret, clock.now) for r in receiver.received)
    logged = d.store.list_deliveries(tenant_a.tenant_id, endpoint_id, 100, None)[0]
    assert {x.status for x in logged} == {DeliveryStatus.SUCCEEDED}


class CrashingSender:
    """Sends through the real sender, but the process 'dies' (an exception escapes) on the chosen send."""

    def __init__(self, inner: Any, crash_on: int):
        self.inner = inner
        self.allow_loopback = inner.allow_loopback
        self.crash_on = crash_on
        self.calls = 0

    def send(self, url: str, body: bytes, headers: dict[str, str]) -> SendResult:
        self.calls += 1
        if self.calls == self.crash_on:
            raise SystemExit("the delivery function died mid-batch")
        return self.inner.send(url, body, headers)


def test_delivery_crash_mid_batch_loses_nothing_and_duplicates_at_most_at_least_once(
    api: ApiClient, tenant_a: TenantHandle, loopback: None
) -> None:
    receivers = [LoopbackReceiver() for _ in range(3)]
    try:
        endpoints = [create_endpoint(api, tenant_a, r.url, ["config.changed"])[0] for r in receivers]
        clock = FakeClock()
        real = dispatcher(clock)
        crashing = dispatcher(clock, CrashingSender(real.sender, crash_on=2))
        event = config_event(tenant_a)
        with pytest.raises(SystemExit):
            crashing.dispatch(event)
        assert sum(len(r.received) for r in receivers) == 1  # the first endpoint got it; the crash came on the second
        real.dispatch(event)  # the bus / queue hands the event over again (the invocation failed)
        clock.advance(120)  # past the lease of the delivery the crash interrupted
        real.retry_due()
        for r, endpoint_id in zip(receivers, endpoints, strict=True):
            assert [b["id"] for b in r.bodies()] == [f"evt_{event.event_id}"], endpoint_id  # each exactly once here
            assert len(real.store.list_deliveries(tenant_a.tenant_id, endpoint_id, 10, None)[0]) == 1
    finally:
        for r in receivers:
            r.stop()


# --- SSRF -----------------------------------------------------------------------------------------


def test_cloud_mode_refuses_http_urls_when_saved(api: ApiClient, tenant_a: TenantHandle, receiver: LoopbackReceiver) -> None:
    reply = api.request("POST", "/v1/webhooks", key=tenant_a.admin_key, json_body={"url": receiver.url, "events": ["key.created"]})
    assert reply.status == 422
    assert reply.error_code == "invalid_webhook_url"
    assert receiver.received == []


def test_cloud_mode_refuses_a_name_resolving_to_loopback_at_send_time(
    api: ApiClient, tenant_a: TenantHandle, receiver: LoopbackReceiver
) -> None:
    """The URL is https and its name looks public; DNS says 127.0.0.1 (the receiver is listening there): refused, nothing sent."""
    evil = f"https://evil.example:{receiver.port}/hook"
    endpoint_id, _secret = create_endpoint(api, tenant_a, evil, ["config.changed"])
    resolved: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        resolved.append(host)
        return ["127.0.0.1"]

    clock = FakeClock()
    d = dispatcher(clock, WebhookSender(allow_loopback=False, resolver=resolver))
    [delivery] = d.dispatch(config_event(tenant_a))
    assert resolved == ["evil.example"]
    assert delivery.status is DeliveryStatus.PENDING
    assert "destination refused: 127.0.0.1 is a loopback address" in (delivery.attempts[0].error or "")
    assert receiver.received == []
    sent = expect(api.request("POST", f"/v1/webhooks/{endpoint_id}/test", key=tenant_a.admin_key), 201)  # real resolver: no such name
    assert sent["attempts"][0]["error"].startswith("destination refused")
    assert receiver.received == []


def test_localhost_by_name_is_refused_in_cloud_mode(receiver: LoopbackReceiver) -> None:
    sender = WebhookSender(allow_loopback=False)
    with pytest.raises(wh.DestinationRefused):
        sender.send(f"https://localhost:{receiver.port}/hook", b"{}", {})
    assert receiver.received == []


@pytest.mark.parametrize("address", ["169.254.169.254", "10.0.0.7", "192.168.0.10", "fd00:ec2::254", "0.0.0.0"])  # noqa: S104 - refused, not bound
def test_names_resolving_to_private_link_local_or_metadata_are_refused_even_locally(address: str, receiver: LoopbackReceiver) -> None:
    sender = WebhookSender(allow_loopback=True, resolver=lambda host, port: [address])
    with pytest.raises(wh.DestinationRefused):
        sender.send("https://metadata.example/latest", b"{}", {})


def test_one_bad_address_among_several_is_enough_to_refuse() -> None:
    sender = WebhookSender(allow_loopback=False, resolver=lambda host, port: ["93.184.216.34", "169.254.169.254"])
    with pytest.raises(wh.DestinationRefused, match="metadata"):
        sender.resolve_checked("https://mixed.example/hook")


def test_the_connection_goes_to_the_address_that_was_checked(receiver: LoopbackReceiver) -> None:
    """DNS rebinding: the name is resolved once, checked, and that address is connected to (the Host
    header keeps the name); nothing resolves the name a second time."""
    calls: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        calls.append(host)
        return ["127.0.0.1"]

    real_getaddrinfo = socket.getaddrinfo

    def no_second_lookup(host: Any, *args: Any, **kwargs: Any) -> Any:
        assert host != "rebind.example", "the name was resolved again after the check"
        return real_getaddrinfo(host, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket, "getaddrinfo", no_second_lookup)
        result = WebhookSender(allow_loopback=True, resolver=resolver).send(f"http://localhost:{receiver.port}/hook", b"{}", {})
    assert result.ok
    assert calls == ["localhost"]
    assert receiver.received[0].headers["host"] == f"localhost:{receiver.port}"


def test_redirects_are_not_followed(receiver: LoopbackReceiver) -> None:
    receiver.script.append(Reply(302, b"", {"Location": "http://169.254.169.254/latest/meta-data/"}))
    result = WebhookSender(allow_loopback=True).send(receiver.url, b"{}", {})
    assert result.status_code == 302
    assert not result.ok
    assert len(receiver.received) == 1


def test_response_body_is_capped_and_slow_receivers_time_out(receiver: LoopbackReceiver) -> None:
    receiver.script.append(Reply(200, b"y" * (2 * 1024 * 1024)))
    result = WebhookSender(allow_loopback=True).send(receiver.url, b"{}", {})
    assert result.ok
    assert len(result.body) == wh.MAX_RESPONSE_BYTES
    receiver.script.append(Reply(200, b"late", delay_seconds=1.5))
    slow = WebhookSender(allow_loopback=True, timeout=0.3).send(receiver.url, b"{}", {})
    assert slow.status_code is None
    assert slow.error is not None
    assert "timed out" in slow.error.lower()


def test_allow_loopback_cannot_be_set_in_a_deployed_stage() -> None:
    from raas.settings import ConfigurationError, Settings

    env = {
        "RAAS_STAGE": "prod",
        "RAAS_EVENT_BUS_NAME": "bus",
        "RAAS_INGEST_QUEUE_URL": "https://sqs/q",
        "RAAS_OPENSEARCH_ENDPOINT": "https://os",
        "RAAS_SEARCH_ENGINE": "opensearch",
    }
    assert Settings.from_env(env).webhook_allow_loopback is False
    with pytest.raises(ConfigurationError, match="RAAS_WEBHOOK_ALLOW_LOOPBACK"):
        Settings.from_env({**env, "RAAS_WEBHOOK_ALLOW_LOOPBACK": "true"})


# --- events published by the services where things happen ------------------------------------------


def test_platform_events_reach_webhooks_from_the_services(
    api: ApiClient, tenant_a: TenantHandle, loopback: None, receiver: LoopbackReceiver, ingest_queue: Any
) -> None:
    create_endpoint(api, tenant_a, receiver.url, sorted(wh.SUBSCRIBABLE))
    expect(api.request("POST", "/v1/keys", key=tenant_a.admin_key, json_body={"name": "ci", "role": "reader"}), 201)
    doc = expect(
        api.request("POST", "/v1/documents", key=tenant_a.admin_key, json_body={"title": "Refunds", "text": "Refunds within 30 days."}), 202
    )
    ingest_queue.drain()
    expect(api.request("POST", "/v1/export", key=tenant_a.admin_key), 201)
    expect(api.request("POST", f"/v1/tenants/{tenant_a.tenant_id}/suspend", key=OPERATOR_KEY), 200)
    expect(api.request("POST", f"/v1/tenants/{tenant_a.tenant_id}/resume", key=OPERATOR_KEY), 200)
    expect(api.request("PATCH", f"/v1/tenants/{tenant_a.tenant_id}", key=OPERATOR_KEY, json_body={"tier": "midmarket"}), 200)
    types = [b["type"] for b in receiver.bodies()]
    for expected in ("key.created", "document.indexed", "export.ready", "tenant.suspended", "tenant.resumed", "tenant.tier_changed"):
        assert expected in types, (expected, types)
    indexed = next(b for b in receiver.bodies() if b["type"] == "document.indexed")
    assert indexed["data"]["document_id"] == doc["document_id"]
    assert indexed["data"]["chunk_count"] >= 1
    assert all(b["tenant_id"] == tenant_a.tenant_id for b in receiver.bodies())


def test_a_bus_that_is_down_does_not_fail_the_change_it_announces(api: ApiClient, tenant_a: TenantHandle) -> None:
    class DownBus:
        def publish(self, event: Any) -> None:
            raise ConnectionError("bus unavailable")

    rebuild_services(event_publisher=DownBus())
    created = api.request("POST", "/v1/keys", key=tenant_a.admin_key, json_body={"name": "ci", "role": "reader"})
    assert created.status == 201
    assert expect(api.request("PATCH", "/v1/config", key=tenant_a.admin_key, json_body={"top_k": 2}), 200)["version"] >= 1


def test_key_events_carry_stable_ids_for_deduplication() -> None:
    event = KeyCreated(event_id="key-created-k123456789012345", tenant_id="t" + "c" * 15, key_id="k1", name="n", role="reader")
    webhook = wh.to_webhook(event)
    assert webhook is not None
    assert webhook.id == "evt_key-created-k123456789012345"
    assert json.loads(wh.encode(webhook))["id"] == webhook.id
    assert timedelta(hours=24) == wh.ROTATION_OVERLAP


def test_isolation_harness_covers_the_webhook_routes_with_a_s_real_ids(
    api: ApiClient, tenant_a: TenantHandle, tenant_b: TenantHandle, ingest_queue: Any
) -> None:
    from tests.isolation import give_a_document, run_isolation_harness

    give_a_document(api, tenant_a)
    ingest_queue.drain()
    endpoint_id, secret = create_endpoint(api, tenant_a, "https://hooks.example.com/a", ["document.failed"])
    delivery_id = expect(api.request("POST", f"/v1/webhooks/{endpoint_id}/test", key=tenant_a.admin_key), 201)["delivery_id"]
    calls = run_isolation_harness(
        api, tenant_a, tenant_b, {"endpoint_id": endpoint_id, "delivery_id": delivery_id, "webhook_secret": secret}
    )
    covered = {(c.method, c.template) for c in calls}
    assert {
        ("GET", "/v1/webhooks/{endpoint_id}"),
        ("PATCH", "/v1/webhooks/{endpoint_id}"),
        ("DELETE", "/v1/webhooks/{endpoint_id}"),
        ("POST", "/v1/webhooks/{endpoint_id}/rotate-secret"),
        ("POST", "/v1/webhooks/{endpoint_id}/test"),
        ("GET", "/v1/webhooks/{endpoint_id}/deliveries"),
        ("GET", "/v1/webhooks/{endpoint_id}/deliveries/{delivery_id}"),
        ("POST", "/v1/webhooks/{endpoint_id}/deliveries/{delivery_id}/replay"),
    } <= covered
    # A's endpoint is untouched: same secret still the only one, same log
    assert expect(api.request("GET", f"/v1/webhooks/{endpoint_id}", key=tenant_a.admin_key), 200)["secret_rotated_at"] is None
    assert [d["delivery_id"] for d in deliveries(api, tenant_a, endpoint_id)] == [delivery_id]


def test_a_delivery_attempt_never_overwrites_a_concurrent_admin_change(
    api: ApiClient, tenant_a: TenantHandle, loopback: None, receiver: LoopbackReceiver
) -> None:
    """The failure streak is written under the revision it read: an admin's change made between the read
    and the write wins, and the attempt is still counted (re-read, re-applied)."""
    endpoint_id, _secret = create_endpoint(api, tenant_a, receiver.url, ["config.changed"], "before")
    receiver.default = Reply(500)
    clock = FakeClock()
    d = dispatcher(clock)
    store = d.store
    real_get = store.get_endpoint
    raced: list[bool] = []

    def get_then_admin_writes(tenant_id: str, eid: str) -> Any:
        found = real_get(tenant_id, eid)
        if not raced and found is not None and found.endpoint.description == "before" and len(receiver.received) == 1:
            raced.append(True)
            expect(api.request("PATCH", f"/v1/webhooks/{endpoint_id}", key=tenant_a.admin_key, json_body={"description": "after"}), 200)
        return found

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store, "get_endpoint", get_then_admin_writes)
        [delivery] = d.dispatch(config_event(tenant_a))
    assert raced
    assert delivery.status is DeliveryStatus.PENDING
    shown = expect(api.request("GET", f"/v1/webhooks/{endpoint_id}", key=tenant_a.admin_key), 200)
    assert shown["description"] == "after"  # the admin's write survived
    assert shown["consecutive_failures"] == 1  # and the failed attempt was counted


def test_sqs_batches_report_only_the_failed_record(
    api: ApiClient, tenant_a: TenantHandle, loopback: None, receiver: LoopbackReceiver
) -> None:
    """In AWS the rule feeds a queue: a bad record comes back alone (partial batch response), the good one is delivered."""
    create_endpoint(api, tenant_a, receiver.url, ["config.changed"])
    good = eventbridge_envelope(config_event(tenant_a), "raas-prod-platform")
    bad = {**good, "detail-type": "NoSuchEvent"}
    batch = {
        "Records": [
            {"messageId": "m-good", "body": json.dumps(good), "eventSource": "aws:sqs", "receiptHandle": "r1", "attributes": {}},
            {"messageId": "m-bad", "body": json.dumps(bad), "eventSource": "aws:sqs", "receiptHandle": "r2", "attributes": {}},
        ]
    }
    result = load_event_handler("webhook_delivery")(batch, lambda_context("raas-webhook_delivery"))
    assert result == {"batchItemFailures": [{"itemIdentifier": "m-bad"}]}
    assert [b["id"] for b in receiver.bodies()] == [f"evt_{good['id']}"]


def test_an_sqs_batch_reads_each_tenants_endpoints_once(
    api: ApiClient, tenant_a: TenantHandle, tenant_b: TenantHandle, loopback: None, receiver: LoopbackReceiver
) -> None:
    """Ten events of a batch are mostly one tenant's ingests: one endpoints query a tenant, not one an event, and
    each event still goes to its own tenant's endpoints only."""
    from raas.bootstrap import services
    from raas.local.invocation import QueuedMessage, sqs_event

    create_endpoint(api, tenant_a, receiver.url, ["config.changed"], "a")
    create_endpoint(api, tenant_b, receiver.url, ["config.changed"], "b")
    events = [config_event(tenant_a, version) for version in (2, 3, 4)] + [config_event(tenant_b, version) for version in (5, 6)]
    envelopes = [eventbridge_envelope(event, "raas-prod-platform") for event in events]
    store = services().webhook_dispatcher.store
    real_list, listed = store.list_endpoints, []

    def counting(tenant_id: str) -> Any:
        listed.append(tenant_id)
        return real_list(tenant_id)

    batch = sqs_event("raas-webhook_delivery", [QueuedMessage(f"m{i}", json.dumps(e)) for i, e in enumerate(envelopes)])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store, "list_endpoints", counting)
        result = load_event_handler("webhook_delivery")(batch, lambda_context("raas-webhook_delivery"))
    assert result == {"batchItemFailures": []}
    assert sorted(listed) == sorted([tenant_a.tenant_id, tenant_b.tenant_id])
    assert sorted(b["id"] for b in receiver.bodies()) == sorted(f"evt_{e.event_id}" for e in events)
    by_tenant = {t.tenant_id: {b["id"] for b in receiver.bodies() if b["tenant_id"] == t.tenant_id} for t in (tenant_a, tenant_b)}
    assert by_tenant == {t.tenant_id: {f"evt_{e.event_id}" for e in events if e.tenant_id == t.tenant_id} for t in (tenant_a, tenant_b)}


def test_a_failed_endpoints_read_is_not_kept_for_the_rest_of_the_batch(tenant_a: TenantHandle) -> None:
    from raas.bootstrap import services

    dispatcher_ = services().webhook_dispatcher
    calls: list[str] = []

    def flaky(tenant_id: str) -> Any:
        calls.append(tenant_id)
        if len(calls) == 1:
            raise ConnectionError("throttled")
        return []

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(dispatcher_.store, "list_endpoints", flaky)
        read = dispatcher_.batch_reader()
        with pytest.raises(ConnectionError):
            read(tenant_a.tenant_id)
        assert read(tenant_a.tenant_id) == [] == read(tenant_a.tenant_id)
    assert calls == [tenant_a.tenant_id] * 2


def test_a_batch_never_sends_to_an_endpoint_disabled_after_its_list_was_read(
    api: ApiClient, tenant_a: TenantHandle, loopback: None, receiver: LoopbackReceiver
) -> None:
    """The batch's endpoint list is read once; each attempt reads its endpoint again, so one disabled in between gets a
    cancelled delivery, not a POST."""
    from raas.bootstrap import services

    endpoint_id, _secret = create_endpoint(api, tenant_a, receiver.url, ["config.changed"])
    dispatcher_ = services().webhook_dispatcher
    read = dispatcher_.batch_reader()
    assert [s.endpoint.endpoint_id for s in read(tenant_a.tenant_id)] == [endpoint_id]
    expect(api.request("PATCH", f"/v1/webhooks/{endpoint_id}", key=tenant_a.admin_key, json_body={"enabled": False}), 200)
    [delivery] = dispatcher_.dispatch(config_event(tenant_a), read)
    assert delivery.status is DeliveryStatus.CANCELLED
    assert receiver.received == []
