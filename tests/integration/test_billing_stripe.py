"""Stripe through the real stripe SDK against a loopback fake (never the network): customers,
meter events from the outbox with no duplicates or losses, webhooks with signatures."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import stripe

from raas.bootstrap import services
from raas.domain.tenants import Tenant, TenantStatus
from raas.domain.usage import UsageEvent, period_of
from raas.services.billing import BillingService
from tests.conftest import OPERATOR_KEY, TenantHandle, create_tenant
from tests.helpers import ApiClient, expect, rebuild_services
from tests.stripe_fake import FakeStripe

pytestmark = pytest.mark.usefixtures("aws", "chat")

WEBHOOK_SECRET = "whsec_test_secret_for_raas"


@pytest.fixture
def fake_stripe(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeStripe]:
    fake = FakeStripe()
    monkeypatch.setenv("RAAS_STRIPE_API_KEY", "sk_test_raas")
    monkeypatch.setenv("RAAS_STRIPE_API_BASE", fake.url)
    monkeypatch.setenv("RAAS_STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET)
    monkeypatch.setenv("RAAS_PAYMENT_GRACE_DAYS", "0")
    rebuild_services()
    yield fake
    fake.close()


@pytest.fixture
def billed(api: ApiClient, fake_stripe: FakeStripe) -> TenantHandle:
    return create_tenant(api, "paying customer", "smb")


def _customer(tenant: TenantHandle) -> str:
    profile = services().tenant_store.get_tenant(tenant.tenant_id)
    assert profile is not None
    assert profile.stripe_customer_id
    return profile.stripe_customer_id


def test_provisioning_makes_one_customer_even_when_retried(api: ApiClient, fake_stripe: FakeStripe, billed: TenantHandle) -> None:
    customer = _customer(billed)
    assert fake_stripe.customers[customer]["metadata"] == {"raas_tenant_id": billed.tenant_id}
    # a retry of the creation (same idempotency key) returns the same customer
    assert services().billing_provider.ensure_customer(billed.tenant_id, "paying customer") == customer  # type: ignore[union-attr]
    assert len(fake_stripe.customers) == 1


def _record(tenant: TenantHandle, event_id: str, **counters: int) -> bool:
    return services().usage_recorder.record(
        UsageEvent(event_id=event_id, tenant_id=tenant.tenant_id, occurred_at=datetime.now(UTC), counters=counters)
    )


def test_usage_reaches_stripe_once_despite_replays_and_outages(api: ApiClient, fake_stripe: FakeStripe, billed: TenantHandle) -> None:
    billing = services().billing_service
    assert billing is not None
    billing.drain_outbox()  # whatever provisioning produced
    sent_before = len(fake_stripe.meter_events)
    for i in range(12):
        assert _record(billed, f"usage-event-{i:04d}", queries=1, prompt_tokens=50)
        assert not _record(billed, f"usage-event-{i:04d}", queries=1, prompt_tokens=50)  # a replay is not counted again

    fake_stripe.fail_next(50)  # Stripe is down: more failures than the SDK's retries
    first = billing.drain_outbox()
    assert first.failed == 1
    assert first.sent == 0
    fake_stripe.fail_next(0)
    second = billing.drain_outbox()
    assert second.sent == 12
    assert billing.drain_outbox().sent == 0  # nothing left

    new_events = fake_stripe.meter_events[sent_before:]
    identifiers = [e["identifier"] for e in new_events if e["event_name"] == "raas_queries"]
    assert len(identifiers) == len(set(identifiers)) == 12
    assert fake_stripe.totals()[(_customer(billed), "raas_queries")] == 12
    assert all(e["identifier"].endswith(":queries") for e in new_events if e["event_name"] == "raas_queries")


def test_a_lost_acknowledgement_is_not_double_counted(api: ApiClient, fake_stripe: FakeStripe, billed: TenantHandle) -> None:
    """Stripe took the event but our drain crashed before marking it sent: the resend carries the
    same idempotency key and identifier, so Stripe counts it once."""
    billing = services().billing_service
    assert billing is not None
    billing.drain_outbox()  # what the fixture's own requests produced
    posts_before = sum(1 for method, path in fake_stripe.requests if path == "/v1/billing/meter_events")
    _record(billed, "usage-event-ack", queries=3)
    outbox = billing.outbox
    original = outbox.mark_sent
    outbox.mark_sent = lambda entry: None  # type: ignore[method-assign]
    billing.drain_outbox(max_batches=1)
    outbox.mark_sent = original  # type: ignore[method-assign]
    billing.drain_outbox()
    assert sum(1 for method, path in fake_stripe.requests if path == "/v1/billing/meter_events") - posts_before == 2  # sent twice
    assert fake_stripe.totals()[(_customer(billed), "raas_queries")] == 3


def _signed(payload: dict[str, Any], secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> tuple[str, str]:
    body = json.dumps(payload)
    timestamp = int(time.time()) if timestamp is None else timestamp
    signature = stripe.WebhookSignature._compute_signature(f"{timestamp}.{body}", secret)
    return body, f"t={timestamp},v1={signature}"


def _webhook(api: ApiClient, payload: dict[str, Any], secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> Any:
    body, header = _signed(payload, secret, timestamp)
    return api.request("POST", "/v1/billing/stripe/webhook", json_body=json.loads(body), headers={"Stripe-Signature": header})


def _profile(tenant: TenantHandle) -> Tenant:
    profile = services().tenant_store.get_tenant(tenant.tenant_id)
    assert profile is not None
    return profile


def _later(service: BillingService, days: int) -> BillingService:
    """The same billing service with its clock `days` (and a minute) ahead: the daily grace check then."""
    return BillingService(
        service.tenants,
        service.tenant_service,
        service.outbox,
        service.provider,
        service.invoices,
        grace_days=days,
        clock=lambda: datetime.now(UTC) + timedelta(days=days, minutes=1),
    )


def test_payment_failure_suspends_and_payment_resumes(api: ApiClient, fake_stripe: FakeStripe, billed: TenantHandle) -> None:
    customer = _customer(billed)
    period = period_of(datetime.now(UTC))
    services().metering_service.close_period(period)
    failed = _webhook(api, {"id": "evt_1", "type": "invoice.payment_failed", "data": {"object": {"id": "in_1", "customer": customer}}})
    assert expect(failed, 200)["outcome"] == "payment failure recorded"
    assert services().tenant_store.get_tenant(billed.tenant_id).status is TenantStatus.SUSPENDED  # type: ignore[union-attr]
    assert api.request("GET", "/v1/config", key=billed.admin_key).status == 403

    paid = {
        "id": "evt_2",
        "type": "invoice.paid",
        "data": {"object": {"id": "in_1", "customer": customer, "metadata": {"raas_period": period}}},
    }
    assert expect(_webhook(api, paid), 200)["outcome"] == "payment recorded"
    assert services().tenant_store.get_tenant(billed.tenant_id).status is TenantStatus.ACTIVE  # type: ignore[union-attr]
    invoice = expect(api.request("GET", f"/v1/invoices/{period}", key=billed.admin_key), 200)
    assert (invoice["status"], invoice["payment_reference"]) == ("paid", "in_1")


def test_webhooks_without_a_valid_signature_are_refused(api: ApiClient, fake_stripe: FakeStripe, billed: TenantHandle) -> None:
    payload = {"id": "evt_3", "type": "invoice.payment_failed", "data": {"object": {"customer": _customer(billed)}}}
    forged = _webhook(api, payload, secret="whsec_someone_else")
    assert (forged.status, forged.json()["error"]["code"]) == (400, "invalid_signature")
    unsigned = api.request("POST", "/v1/billing/stripe/webhook", json_body=payload)
    assert unsigned.status == 400
    assert services().tenant_store.get_tenant(billed.tenant_id).status is TenantStatus.ACTIVE  # type: ignore[union-attr]


def test_deleting_a_tenant_archives_its_customer(api: ApiClient, fake_stripe: FakeStripe, billed: TenantHandle) -> None:
    customer = _customer(billed)
    _record(billed, "usage-before-deletion", queries=7)  # not yet drained when the deletion starts
    expect(api.request("DELETE", f"/v1/tenants/{billed.tenant_id}", key=OPERATOR_KEY), 202)
    assert fake_stripe.totals()[(customer, "raas_queries")] == 7  # reported before the outbox items went
    assert fake_stripe.customers[customer].get("deleted") is True
    receipt = expect(api.request("GET", f"/v1/tenants/{billed.tenant_id}", key=OPERATOR_KEY), 200)["deletion_receipt"]
    assert next(s for s in receipt["steps"] if s["step"] == "billing_customer")["count"] == 1
    assert next(s for s in receipt["steps"] if s["step"] == "billing_flush")["count"] >= 1


def test_without_stripe_billing_routes_say_so(api: ApiClient) -> None:
    reply = api.request("POST", "/v1/billing/stripe/webhook", json_body={"type": "invoice.paid"})
    assert (reply.status, reply.json()["error"]["code"]) == (503, "billing_not_configured")


def test_a_failed_payment_suspends_only_after_the_grace_period(
    api: ApiClient, fake_stripe: FakeStripe, billed: TenantHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAAS_PAYMENT_GRACE_DAYS", "7")
    rebuild_services()
    failed = {"id": "evt_9", "type": "invoice.payment_failed", "data": {"object": {"customer": _customer(billed)}}}
    expect(_webhook(api, failed), 200)
    assert services().tenant_store.get_tenant(billed.tenant_id).status is TenantStatus.ACTIVE  # type: ignore[union-attr]
    service = services().billing_service
    assert service is not None
    assert service.enforce_grace() == 0
    later = BillingService(
        service.tenants,
        service.tenant_service,
        service.outbox,
        service.provider,
        service.invoices,
        grace_days=7,
        clock=lambda: datetime.now(UTC) + timedelta(days=7, minutes=1),
    )
    assert later.enforce_grace() == 1  # what the daily metering run does
    assert services().tenant_store.get_tenant(billed.tenant_id).status is TenantStatus.SUSPENDED  # type: ignore[union-attr]


def test_a_replayed_webhook_acts_only_once(api: ApiClient, fake_stripe: FakeStripe, billed: TenantHandle) -> None:
    """Stripe delivers at least once and retries for days, and a captured delivery can be replayed
    while its signature is fresh. An event id acts once: a late copy of the failure must not
    suspend a tenant that has paid since."""
    customer = _customer(billed)
    failed = {"id": "evt_replayed", "type": "invoice.payment_failed", "data": {"object": {"id": "in_7", "customer": customer}}}
    assert expect(_webhook(api, failed), 200)["outcome"] == "payment failure recorded"
    paid = {"id": "evt_paid_7", "type": "invoice.paid", "data": {"object": {"id": "in_7", "customer": customer}}}
    assert expect(_webhook(api, paid), 200)["outcome"] == "payment recorded"
    assert _profile(billed).status is TenantStatus.ACTIVE

    assert expect(_webhook(api, failed), 200)["outcome"] == "duplicate"  # the same event again
    assert expect(_webhook(api, paid), 200)["outcome"] == "duplicate"
    assert _profile(billed).status is TenantStatus.ACTIVE
    assert _profile(billed).payment_failed_at is None


def test_a_webhook_signed_in_the_future_is_refused(api: ApiClient, fake_stripe: FakeStripe, billed: TenantHandle) -> None:
    """The SDK checks only that a timestamp is not too old; one an hour ahead would stay replayable for an hour."""
    failed = {"id": "evt_future", "type": "invoice.payment_failed", "data": {"object": {"customer": _customer(billed)}}}
    reply = _webhook(api, failed, timestamp=int(time.time()) + 3600)
    assert (reply.status, reply.json()["error"]["code"]) == (400, "webhook_timestamp_in_future")
    assert _profile(billed).status is TenantStatus.ACTIVE
    # a small clock skew is tolerated
    assert expect(_webhook(api, failed, timestamp=int(time.time()) + 60), 200)["outcome"] == "payment failure recorded"


def test_a_paid_invoice_does_not_lift_the_operators_suspension(
    api: ApiClient, fake_stripe: FakeStripe, billed: TenantHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAAS_PAYMENT_GRACE_DAYS", "7")
    rebuild_services()
    customer = _customer(billed)
    failed = {"id": "evt_30", "type": "invoice.payment_failed", "data": {"object": {"customer": customer}}}
    expect(_webhook(api, failed), 200)  # within the grace period: still active
    suspended = expect(api.request("POST", f"/v1/tenants/{billed.tenant_id}/suspend", key=OPERATOR_KEY), 200)
    assert suspended["status"] == "suspended"
    paid = {"id": "evt_31", "type": "invoice.paid", "data": {"object": {"id": "in_31", "customer": customer}}}
    assert expect(_webhook(api, paid), 200)["outcome"] == "payment recorded"
    assert _profile(billed).status is TenantStatus.SUSPENDED  # the payment lifts nothing the operator set
    assert api.request("GET", "/v1/config", key=billed.admin_key).status == 403
    assert _profile(billed).suspension_reasons == ["operator"]
    assert _profile(billed).payment_failed_at is None

    resumed = expect(api.request("POST", f"/v1/tenants/{billed.tenant_id}/resume", key=OPERATOR_KEY), 200)
    assert (resumed["status"], resumed["suspension_reasons"]) == ("active", [])
    assert api.request("GET", "/v1/config", key=billed.admin_key).status == 200


def test_a_payment_overdue_during_the_operators_suspension_outlasts_its_resume(
    api: ApiClient, fake_stripe: FakeStripe, billed: TenantHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAAS_PAYMENT_GRACE_DAYS", "7")
    rebuild_services()
    failed = {"id": "evt_35", "type": "invoice.payment_failed", "data": {"object": {"customer": _customer(billed)}}}
    expect(_webhook(api, failed), 200)
    expect(api.request("POST", f"/v1/tenants/{billed.tenant_id}/suspend", key=OPERATOR_KEY), 200)
    service = services().billing_service
    assert service is not None
    assert _later(service, 7).enforce_grace() == 1  # the grace period ends while the operator's suspension holds
    expect(api.request("POST", f"/v1/tenants/{billed.tenant_id}/resume", key=OPERATOR_KEY), 200)
    assert _profile(billed).status is TenantStatus.SUSPENDED  # still unpaid
    assert _profile(billed).suspension_reasons == ["payment"]


def test_the_operators_resume_does_not_lift_a_payment_suspension_unless_waived(
    api: ApiClient, fake_stripe: FakeStripe, billed: TenantHandle
) -> None:
    failed = {"id": "evt_40", "type": "invoice.payment_failed", "data": {"object": {"customer": _customer(billed)}}}
    expect(_webhook(api, failed), 200)  # grace 0: suspended for payment
    resumed = expect(api.request("POST", f"/v1/tenants/{billed.tenant_id}/resume", key=OPERATOR_KEY), 200)
    assert resumed["status"] == "suspended"  # there was no operator reason to lift
    assert resumed["suspension_reasons"] == ["payment"]
    assert api.request("GET", "/v1/config", key=billed.admin_key).status == 403

    waived = api.request("POST", f"/v1/tenants/{billed.tenant_id}/resume", key=OPERATOR_KEY, json_body={"reason": "payment"})
    assert (expect(waived, 200)["status"], waived.json()["suspension_reasons"]) == ("active", [])
    service = services().billing_service
    assert service is not None
    assert service.enforce_grace(billed.tenant_id) == 0  # the waiver cleared the failure: no suspension again
    assert _profile(billed).status is TenantStatus.ACTIVE


def test_a_failure_delivered_after_a_later_payment_does_not_suspend(api: ApiClient, fake_stripe: FakeStripe, billed: TenantHandle) -> None:
    """Stripe does not deliver events in the order they were created: the failure created a minute
    before the payment, but delivered after it, must not suspend the tenant that has paid."""
    customer = _customer(billed)
    now = int(time.time())
    paid = {"id": "evt_50", "created": now, "type": "invoice.paid", "data": {"object": {"id": "in_50", "customer": customer}}}
    late_failure = {
        "id": "evt_49",
        "created": now - 60,
        "type": "invoice.payment_failed",
        "data": {"object": {"id": "in_50", "customer": customer}},
    }
    assert expect(_webhook(api, paid), 200)["outcome"] == "payment recorded"
    expect(_webhook(api, late_failure), 200)
    assert _profile(billed).status is TenantStatus.ACTIVE
    assert _profile(billed).payment_failed_at is None
    newer_failure = {**late_failure, "id": "evt_51", "created": now + 1}
    assert expect(_webhook(api, newer_failure), 200)["outcome"] == "payment failure recorded"
    assert _profile(billed).status is TenantStatus.SUSPENDED  # a failure after the payment still counts (grace 0)
