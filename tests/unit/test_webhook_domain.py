"""Webhook domain: signatures (Stripe-like, rotation), the event catalogue, retry schedule, destination rules."""

from __future__ import annotations

import ipaddress
import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from raas.domain import events as platform
from raas.domain import webhooks as wh

TENANT = "t" + "a" * 15


def test_signature_verifies_with_the_secret_and_the_raw_body() -> None:
    body = b'{"id":"evt_1","type":"key.created"}'
    header = wh.sign(body, ["whsec_one"], 1_700_000_000)
    assert header.startswith("t=1700000000,v1=")
    assert wh.verify_signature(body, header, "whsec_one", now=1_700_000_010) == 1_700_000_000
    with pytest.raises(wh.SignatureError, match="no signature matches"):
        wh.verify_signature(body, header, "whsec_other", now=1_700_000_010)
    with pytest.raises(wh.SignatureError, match="no signature matches"):
        wh.verify_signature(body + b" ", header, "whsec_one", now=1_700_000_010)  # any change to the body


def test_signature_older_or_newer_than_five_minutes_is_refused() -> None:
    body = b"{}"
    header = wh.sign(body, ["whsec_one"], 1_700_000_000)
    assert wh.verify_signature(body, header, "whsec_one", now=1_700_000_300)  # exactly 5 minutes: accepted
    with pytest.raises(wh.SignatureError, match="outside the tolerance"):
        wh.verify_signature(body, header, "whsec_one", now=1_700_000_301)
    with pytest.raises(wh.SignatureError, match="outside the tolerance"):
        wh.verify_signature(body, header, "whsec_one", now=1_699_999_699)


def test_rotation_signs_with_every_valid_secret_so_either_verifies() -> None:
    body = b'{"a":1}'
    header = wh.sign(body, ["whsec_new", "whsec_old"], 1_700_000_000)
    assert header.count("v1=") == 2
    for secret in ("whsec_new", "whsec_old"):
        wh.verify_signature(body, header, secret, now=1_700_000_000)


@pytest.mark.parametrize("header", ["", "t=abc,v1=00", "v1=00", "t=1700000000"])
def test_malformed_signature_headers_are_refused(header: str) -> None:
    with pytest.raises(wh.SignatureError):
        wh.verify_signature(b"{}", header, "whsec_one", now=1_700_000_000)


def test_every_webhook_type_has_a_platform_event_and_a_versioned_schema() -> None:
    assert set(wh.PLATFORM_EVENTS) <= set(platform.EVENT_TYPES)
    for name in wh.CATALOGUE:
        schema = wh.event_schema(name)
        assert schema["properties"]["type"] == {"const": name}
        assert schema["properties"]["version"] == {"const": 1}
    assert wh.CATALOGUE["document.failed"][1].model_json_schema()["required"] == ["document_id", "title", "reason"]


def test_webhook_keeps_the_platform_event_id_and_maps_the_data() -> None:
    event = platform.DocumentFailed(tenant_id=TENANT, document_id="d" + "1" * 15, title="Refunds", reason="no text")
    webhook = wh.to_webhook(event)
    assert webhook is not None
    assert webhook.id == f"evt_{event.event_id}"
    assert webhook.type == "document.failed"
    assert webhook.version == 1
    assert webhook.data == {"document_id": "d" + "1" * 15, "title": "Refunds", "reason": "no text"}
    assert wh.to_webhook(platform.TenantCreated(tenant_id=TENANT, tier="smb")) is None  # not a tenant-facing type
    changed = wh.to_webhook(
        platform.ConfigChanged(tenant_id=TENANT, actor="admin:k1", config_version=4, mode="merge", changed_fields=["top_k"])
    )
    assert changed is not None
    assert changed.data == {"version": 4, "changed_by": "admin:k1", "mode": "merge", "changed_fields": ["top_k"]}


def test_retry_delays_grow_exponentially_with_jitter_and_stop_at_24_hours() -> None:
    rng = random.Random(1)  # noqa: S311 - jitter under test
    for failures in range(1, 12):
        base = min(wh.RETRY_CAP_SECONDS, wh.RETRY_BASE_SECONDS * 2 ** (failures - 1))
        delays = [wh.retry_delay(failures, rng) for _ in range(50)]
        assert all(base / 2 <= d <= base for d in delays)
        assert len({round(d, 3) for d in delays}) > 1  # jittered
    created = datetime(2026, 1, 1, tzinfo=UTC)
    assert wh.next_attempt(created, created + timedelta(hours=23, minutes=59), 20, rng) is None
    assert wh.next_attempt(created, created, 1, rng) is not None


def test_auto_disable_needs_both_a_streak_and_time() -> None:
    now = datetime(2026, 1, 2, tzinfo=UTC)
    assert not wh.should_disable(wh.DISABLE_AFTER_FAILURES, now - timedelta(hours=1), now)
    assert not wh.should_disable(wh.DISABLE_AFTER_FAILURES - 1, now - timedelta(days=1), now)
    assert wh.should_disable(wh.DISABLE_AFTER_FAILURES, now - wh.DISABLE_AFTER, now)


@pytest.mark.parametrize(
    ("url", "allow_loopback"),
    [
        ("http://example.com/hook", False),
        ("http://127.0.0.1:8080/hook", False),
        ("ftp://example.com/hook", True),
        ("https://user:pass@example.com/hook", False),
        ("https://169.254.169.254/latest/meta-data", True),
        ("http://169.254.169.254/latest/meta-data", True),
        ("https://10.0.0.5/hook", False),
        ("https://[::1]/hook", False),
        ("https://localhost/hook", False),
        ("https://app.localhost/hook", False),
        ("https:///hook", False),
        ("https://example.com/" + "a" * 3000, False),
        ("http://10.1.2.3/hook", True),  # http is for loopback only
    ],
)
def test_urls_refused_when_saved(url: str, allow_loopback: bool) -> None:
    with pytest.raises(wh.DestinationRefused):
        wh.check_url(url, allow_loopback=allow_loopback)


def test_urls_accepted_when_saved() -> None:
    assert wh.check_url("https://hooks.example.com/raas?x=1", allow_loopback=False)
    assert wh.check_url("http://127.0.0.1:9000/hook", allow_loopback=True)
    assert wh.check_url("http://localhost:9000/hook", allow_loopback=True)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.1.2.3",
        "::1",
        "::ffff:127.0.0.1",
        "169.254.169.254",
        "169.254.170.2",
        "fd00:ec2::254",
        "100.100.100.200",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "100.64.0.1",
        "0.0.0.0",  # noqa: S104 - refused, not bound
        "224.0.0.1",
        "fe80::1",
        "fc00::1",
    ],
)
def test_non_public_addresses_are_refused_in_the_cloud(address: str) -> None:
    with pytest.raises(wh.DestinationRefused):
        wh.check_address(ipaddress.ip_address(address), allow_loopback=False)


@pytest.mark.parametrize("address", ["169.254.169.254", "fd00:ec2::254", "fe80::1", "10.0.0.1", "::ffff:169.254.169.254"])
def test_loopback_setting_never_opens_link_local_metadata_or_private(address: str) -> None:
    with pytest.raises(wh.DestinationRefused):
        wh.check_address(ipaddress.ip_address(address), allow_loopback=True)


def test_loopback_setting_allows_loopback_only() -> None:
    wh.check_address(ipaddress.ip_address("127.0.0.1"), allow_loopback=True)
    wh.check_address(ipaddress.ip_address("93.184.216.34"), allow_loopback=False)  # a public address


def test_ids_have_fixed_formats_and_deliveries_sort_by_time() -> None:
    first = wh.new_delivery_id(datetime(2026, 1, 1, tzinfo=UTC))
    later = wh.new_delivery_id(datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC))
    assert wh.is_delivery_id(first)
    assert wh.is_delivery_id(later)
    assert first < later
    assert wh.is_endpoint_id(wh.new_endpoint_id())
    assert not wh.is_endpoint_id("we../../etc")
    assert not wh.is_delivery_id("x")
    assert wh.new_secret().startswith("whsec_")


SAMPLES: dict[str, dict[str, object]] = {
    "DocumentIndexed": {"document_id": "d1", "title": "t", "chunk_count": 3},
    "DocumentFailed": {"document_id": "d1", "title": "t", "reason": "r"},
    "QuotaThresholdReached": {"metric": "queries", "period": "2026-12", "threshold_percent": 80, "used": 800, "limit": 1000},
    "InvoiceIssued": {"period": "2026-11", "total_cents": 4900, "currency": "usd"},
    "InvoicePaid": {"period": "2026-11", "reference": "in_1"},
    "InvoicePaymentFailed": {"period": None},
    "ConfigChanged": {"config_version": 2, "mode": "replace", "changed_fields": []},
    "KeyCreated": {"key_id": "k1", "name": "n", "role": "reader"},
    "KeyRevoked": {"key_id": "k1", "name": "n", "role": "admin"},
    "TenantSuspended": {"reason": "payment"},
    "TenantResumed": {},
    "TenantTierChanged": {"previous_tier": "smb", "tier": "enterprise"},
    "ExportReady": {"key": "exports/x.zip", "url": "https://s3/x", "expires_in": 3600, "documents": 2},
}


@pytest.mark.parametrize("detail_type", sorted(wh.PLATFORM_EVENTS))
def test_every_routed_platform_event_becomes_a_valid_webhook(detail_type: str) -> None:
    event = platform.EVENT_TYPES[detail_type](tenant_id=TENANT, **SAMPLES[detail_type])
    webhook = wh.to_webhook(event)
    assert webhook is not None
    assert webhook.type == wh.WEBHOOK_TYPE_OF[detail_type]
    schema = wh.event_schema(webhook.type)
    assert set(schema["properties"]["data"].get("required", [])) <= set(webhook.data)
    assert json.loads(wh.encode(webhook))["data"] == webhook.data


def test_the_bus_routes_every_webhook_event_to_the_delivery_function() -> None:
    from raas.handlers.registry import EVENT_ROUTES, SCHEDULES

    for detail_type in wh.PLATFORM_EVENTS:
        assert "webhook_delivery" in EVENT_ROUTES[detail_type]
    assert SCHEDULES["webhook-retries"] == ("webhook_delivery", "rate(1 minute)", {"action": "retry_due"})


def test_cli_verifies_a_signature_from_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import io
    import sys
    import time

    from raas.cli import main

    body = b'{"id":"evt_1"}'
    header = wh.sign(body, ["whsec_cli"], int(time.time()))
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(body)))
    assert main(["webhook-verify", "--secret", "whsec_cli", "--signature", header]) == 0
    assert capsys.readouterr().out.startswith("valid")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(body + b"x")))
    with pytest.raises(SystemExit, match="no signature matches"):
        main(["webhook-verify", "--secret", "whsec_cli", "--signature", header])


def test_the_test_suite_delivers_to_loopback_receivers_only() -> None:
    """Whatever URL a test or the fuzzer registers, nothing is sent beyond this machine."""
    from raas.adapters.webhook_http import WebhookSender
    from raas.settings import Settings

    assert Settings.from_env().webhook_loopback_only  # tests/conftest.py sets it for every test and `raas local` the suite starts
    public = WebhookSender(allow_loopback=True, loopback_only=True, resolver=lambda _host, _port: ["93.184.216.34"])
    with pytest.raises(wh.DestinationRefused, match="RAAS_WEBHOOK_LOOPBACK_ONLY"):
        public.resolve_checked("https://example.com/hook")
    local = WebhookSender(allow_loopback=True, loopback_only=True, resolver=lambda _host, _port: ["127.0.0.1"])
    assert local.resolve_checked("http://127.0.0.1:9/hook") == "127.0.0.1"


def test_the_trust_store_is_loaded_at_the_first_https_delivery_not_when_a_sender_is_built(monkeypatch: pytest.MonkeyPatch) -> None:
    import ssl

    from raas.adapters.webhook_http import WebhookSender

    made: list[ssl.SSLContext] = []
    create = ssl.create_default_context

    def counted(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        made.append(create(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(ssl, "create_default_context", counted)
    sender = WebhookSender(allow_loopback=True, resolver=lambda _host, _port: ["127.0.0.1"])
    assert made == []
    refused = sender.send("https://127.0.0.1:9/hook", b"{}", {})  # nothing listens on port 9: the connection fails
    assert not refused.ok
    assert len(made) == 1
    context = sender.ssl_context
    assert context is made[0]
    assert (context.verify_mode, context.check_hostname) == (ssl.CERT_REQUIRED, True)
    sender.send("https://127.0.0.1:9/hook", b"{}", {})
    assert len(made) == 1  # one a sender
    given = ssl.create_default_context()
    assert WebhookSender(ssl_context=given).ssl_context is given
