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
from raas.domain.catalog import Tier
from raas.domain.documents import DocumentStatus
from raas.domain.errors import ServiceUnavailable
from raas.domain.ports import VersionConflict
from raas.domain.usage import UsageEvent, period_of
from raas.services.documents import NewDocument
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


def _accepted(tenant: TenantHandle, text: str) -> str:
    new = NewDocument("Refunds", text.encode(), "text/plain", {}, None)
    document, _created = services().document_service.create_inline(tenant.tenant_id, Tier(tenant.tier), new)
    return document.document_id


def test_a_document_is_marked_indexed_and_counted_in_one_write_or_neither(tenant_a: TenantHandle) -> None:
    """A crash or a refused write between a document's mark and its usage event used to leave it indexed and never
    counted (a redelivered event finds it indexed and counts nothing). Both are one transaction now: when the usage
    counters keep conflicting, the document is not marked either, and the event that comes back marks and counts it."""
    document_id, ingest = _accepted(tenant_a, "Refunds are paid within 30 days."), services().ingest_service
    before = _indexed_this_month(tenant_a)
    conflicts = transaction_conflicts(TRANSACTION_ATTEMPTS, services().settings.usage_table)
    with conflicts as cancelled, pytest.raises(ServiceUnavailable):  # the event comes back
        ingest.ingest(tenant_a.tenant_id, document_id)
    assert len(cancelled) == TRANSACTION_ATTEMPTS
    assert services().document_service.get(tenant_a.tenant_id, document_id).status is DocumentStatus.PROCESSING
    assert _indexed_this_month(tenant_a) == before

    indexed = ingest.ingest(tenant_a.tenant_id, document_id)  # the redelivery
    assert indexed is not None
    assert (indexed.status, indexed.chunk_count) == (DocumentStatus.INDEXED, 1)
    assert services().document_service.get(tenant_a.tenant_id, document_id) == indexed  # what the mark returns is the record
    assert _indexed_this_month(tenant_a) == before + 1
    ingest.ingest(tenant_a.tenant_id, document_id)  # a later redelivery finds it indexed and counts nothing
    assert _indexed_this_month(tenant_a) == before + 1


def test_an_ingest_event_counted_before_does_not_stop_the_mark_and_is_not_counted_again(tenant_a: TenantHandle) -> None:
    document_id = _accepted(tenant_a, "Exchanges are free for 60 days.")
    assert services().usage_recorder.record(_usage_event(tenant_a, f"ingest-{document_id}")) is True
    before = _indexed_this_month(tenant_a)
    indexed = services().ingest_service.ingest(tenant_a.tenant_id, document_id)
    assert indexed is not None
    assert indexed.status is DocumentStatus.INDEXED
    assert services().document_service.get(tenant_a.tenant_id, document_id) == indexed
    assert _indexed_this_month(tenant_a) == before


def test_a_mark_refused_to_an_attempt_that_lost_the_document_counts_nothing(tenant_a: TenantHandle) -> None:
    document_id, store = _accepted(tenant_a, "Gift cards are not refundable."), services().document_store
    claimed = store.claim(tenant_a.tenant_id, document_id, "attempt-1")
    store.mark_deleting(tenant_a.tenant_id, document_id)  # a delete came while the attempt was indexing
    before = _indexed_this_month(tenant_a)
    with pytest.raises(VersionConflict):
        store.mark_indexed_and_count(
            claimed,
            "attempt-1",
            chunk_count=1,
            content_hash=claimed.content_hash,
            indexed_at=datetime.now(UTC),
            counted=_usage_event(tenant_a, f"ingest-{document_id}"),
        )
    assert _indexed_this_month(tenant_a) == before
    assert store.get(tenant_a.tenant_id, document_id).status is DocumentStatus.DELETING  # type: ignore[union-attr]
