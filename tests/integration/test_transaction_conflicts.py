"""DynamoDB cancels a transaction that meets another one on the same item (`TransactionConflict`), and botocore
does not retry a cancellation. A tenant's usage counters and its document quota are items every request of the
tenant writes, so under concurrency this is an everyday answer in AWS, and moto never gives it. Here a test
double gives it (`tests.helpers.transaction_conflicts`): a conflicted transaction is tried again with backoff,
and after the last attempt it is a 503 to retry, or for usage an event buffered for replay, never lost nor
counted twice."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from botocore.exceptions import ClientError

from raas.adapters.dynamo import TRANSACTION_ATTEMPTS, is_transaction_conflict
from raas.bootstrap import services
from raas.domain.usage import UsageEvent, period_of
from tests.conftest import TenantHandle
from tests.helpers import ApiClient, expect, transaction_conflicts

pytestmark = pytest.mark.usefixtures("aws")


def _usage_event(tenant: TenantHandle, event_id: str) -> UsageEvent:
    return UsageEvent(event_id=event_id, tenant_id=tenant.tenant_id, occurred_at=datetime.now(UTC), counters={"documents_indexed": 1})


def _indexed_this_month(tenant: TenantHandle) -> int:
    return services().usage_recorder.totals(tenant.tenant_id, period_of(datetime.now(UTC)))["documents_indexed"]


def test_a_usage_event_that_meets_a_conflict_is_written_on_a_later_attempt_and_counted_once(tenant_a: TenantHandle) -> None:
    before = _indexed_this_month(tenant_a)
    with transaction_conflicts(TRANSACTION_ATTEMPTS - 1, services().settings.usage_table) as cancelled:
        assert services().usage_recorder.record(_usage_event(tenant_a, "conflicted-1")) is True
    assert len(cancelled) == TRANSACTION_ATTEMPTS - 1
    assert _indexed_this_month(tenant_a) == before + 1
    assert services().usage_recorder.record(_usage_event(tenant_a, "conflicted-1")) is False  # a replay counts nothing
    assert _indexed_this_month(tenant_a) == before + 1


def test_a_usage_event_that_keeps_meeting_conflicts_is_buffered_and_replayed_once(tenant_a: TenantHandle) -> None:
    recorder = services().usage_recorder
    before = _indexed_this_month(tenant_a)
    with transaction_conflicts(TRANSACTION_ATTEMPTS, services().settings.usage_table) as cancelled:
        assert recorder.record(_usage_event(tenant_a, "conflicted-2")) is True  # buffered, not lost
    assert len(cancelled) == TRANSACTION_ATTEMPTS
    assert _indexed_this_month(tenant_a) == before
    assert recorder.replay() == 1  # type: ignore[union-attr]
    assert _indexed_this_month(tenant_a) == before + 1


def test_an_upload_that_keeps_meeting_conflicts_is_a_503_to_retry_with_nothing_written(api: ApiClient, tenant_a: TenantHandle) -> None:
    stats = services().document_store.stats(tenant_a.tenant_id)
    body = {"title": "Conflicted", "text": "Written while another request held the tenant's quota item."}
    with transaction_conflicts(TRANSACTION_ATTEMPTS, services().settings.documents_table):
        reply = api.request("POST", "/v1/documents", key=tenant_a.admin_key, json_body=body)
    assert reply.status == 503
    assert reply.json()["error"]["code"] == "storage_unavailable"
    assert services().document_store.stats(tenant_a.tenant_id) == stats  # no record, no quota taken
    with transaction_conflicts(1, services().settings.documents_table):  # one conflict: the retry writes it
        expect(api.request("POST", "/v1/documents", key=tenant_a.admin_key, json_body=body), 202)
    assert services().document_store.stats(tenant_a.tenant_id)["documents"] == stats["documents"] + 1


def test_a_failed_condition_beside_a_conflict_is_an_answer_not_a_conflict() -> None:
    def cancelled(*codes: str) -> ClientError:
        reasons = [{"Code": code} for code in codes]
        return ClientError({"Error": {"Code": "TransactionCanceledException"}, "CancellationReasons": reasons}, "TransactWriteItems")  # type: ignore[typeddict-item]

    assert is_transaction_conflict(cancelled("None", "TransactionConflict"))
    assert not is_transaction_conflict(cancelled("ConditionalCheckFailed", "TransactionConflict"))  # the condition answers
    assert not is_transaction_conflict(cancelled("None", "ValidationError"))
    assert not is_transaction_conflict(None)
