"""Suspension reasons in the registry: a set whose members are added and lifted atomically, each by
its own remedy; the tenant is active only when none is left (moto)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from raas.adapters.registry import DynamoTenantStore
from raas.bootstrap import services
from raas.domain.tenants import SuspensionReason, TenantStatus
from tests.conftest import OPERATOR_KEY, TenantHandle
from tests.helpers import ApiClient, expect, local_bus

pytestmark = pytest.mark.usefixtures("aws")

OPERATOR, PAYMENT = SuspensionReason.OPERATOR, SuspensionReason.PAYMENT


def _delivered(kind: str) -> int:
    return sum(1 for function, detail_type in local_bus().delivered if function == "lifecycle" and detail_type == kind)


def test_each_reason_is_lifted_by_its_own_remedy_and_the_last_one_resumes(tenant_a: TenantHandle) -> None:
    service = services().tenant_service
    suspended_before, resumed_before = _delivered("TenantSuspended"), _delivered("TenantResumed")
    service.suspend(tenant_a.tenant_id, reason=OPERATOR)
    service.suspend(tenant_a.tenant_id, actor="billing", reason=PAYMENT)
    service.suspend(tenant_a.tenant_id, reason=OPERATOR)  # idempotent
    assert service.get(tenant_a.tenant_id).suspension_reasons == [OPERATOR, PAYMENT]
    assert _delivered("TenantSuspended") - suspended_before == 1  # suspended once, however many reasons

    after_operator = service.resume(tenant_a.tenant_id, reason=OPERATOR)
    assert (after_operator.status, after_operator.suspension_reasons) == (TenantStatus.SUSPENDED, [PAYMENT])
    assert _delivered("TenantResumed") == resumed_before
    assert service.resume(tenant_a.tenant_id, reason=OPERATOR).status is TenantStatus.SUSPENDED  # nothing left of its own to lift

    after_payment = service.resume(tenant_a.tenant_id, actor="billing", reason=PAYMENT)
    assert (after_payment.status, after_payment.suspension_reasons) == (TenantStatus.ACTIVE, [])
    assert _delivered("TenantResumed") - resumed_before == 1


def test_a_reason_lifted_meanwhile_is_not_lost_nor_leaves_the_tenant_suspended(
    tenant_a: TenantHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The operator's resume reads [operator, payment]; before it writes, the payment is settled.
    Its conditional update then fails and it reads again: the tenant ends active, not suspended
    with no reason at all."""
    store = services().tenant_store
    service = services().tenant_service
    service.suspend(tenant_a.tenant_id, reason=OPERATOR)
    service.suspend(tenant_a.tenant_id, actor="billing", reason=PAYMENT)
    original_get = DynamoTenantStore._get
    raced = False

    def stale_then_race(self: DynamoTenantStore, pk: str, sk: str, tenant_id: str | None = None) -> dict[str, Any] | None:
        nonlocal raced
        item = original_get(self, pk, sk, tenant_id)
        if not raced:
            raced = True
            monkeypatch.setattr(DynamoTenantStore, "_get", original_get)
            store.remove_suspension_reason(tenant_a.tenant_id, PAYMENT)  # lands between our read and our write
        return item

    monkeypatch.setattr(DynamoTenantStore, "_get", stale_then_race)
    tenant, active_now = store.remove_suspension_reason(tenant_a.tenant_id, OPERATOR)
    assert raced
    assert (tenant.status, tenant.suspension_reasons, active_now) == (TenantStatus.ACTIVE, [], True)


def test_tenants_suspended_before_reasons_were_stored_keep_their_meaning(api: ApiClient, tenant_a: TenantHandle) -> None:
    """Profiles written by the previous code: `suspended` and no reasons. A recorded payment failure
    meant the billing suspension; anything else was the operator's."""
    store = services().tenant_store
    service = services().tenant_service
    store.update_tenant(tenant_a.tenant_id, status=TenantStatus.SUSPENDED, fields={"payment_failed_at": datetime.now(UTC)})
    shown = expect(api.request("GET", f"/v1/tenants/{tenant_a.tenant_id}", key=OPERATOR_KEY), 200)
    assert (shown["status"], shown["suspension_reasons"]) == ("suspended", ["payment"])
    assert service.resume(tenant_a.tenant_id, reason=OPERATOR).status is TenantStatus.SUSPENDED
    paid = service.resume(tenant_a.tenant_id, actor="billing", reason=PAYMENT)
    assert (paid.status, paid.payment_failed_at) == (TenantStatus.ACTIVE, None)

    store.update_tenant(tenant_a.tenant_id, status=TenantStatus.SUSPENDED)
    assert service.get(tenant_a.tenant_id).suspension_reasons == [OPERATOR]
    service.suspend(tenant_a.tenant_id, actor="billing", reason=PAYMENT)  # a new reason keeps the old one
    assert service.get(tenant_a.tenant_id).suspension_reasons == [OPERATOR, PAYMENT]
    assert service.resume(tenant_a.tenant_id, actor="billing", reason=PAYMENT).status is TenantStatus.SUSPENDED
    assert service.resume(tenant_a.tenant_id, reason=OPERATOR).status is TenantStatus.ACTIVE


def test_suspending_needs_a_live_provisioned_tenant(api: ApiClient, tenant_a: TenantHandle) -> None:
    expect(api.request("DELETE", f"/v1/tenants/{tenant_a.tenant_id}", key=OPERATOR_KEY), 202)
    for action in ("suspend", "resume"):
        refused = api.request("POST", f"/v1/tenants/{tenant_a.tenant_id}/{action}", key=OPERATOR_KEY)
        assert (refused.status, refused.json()["error"]["code"]) == (409, "invalid_status_transition")
