"""An SQS batch of documents is ingested together (`IngestService.ingest_batch`): a tenant's documents share one
embedding call, the tenant-status reads around their index writes and one answer-generation bump, while each
keeps its own claim, mark, usage event and failure, and a record is reported failed only for its own error."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from raas.bootstrap import services
from raas.domain.catalog import Tier
from raas.domain.documents import DocumentStatus
from raas.domain.errors import ServiceUnavailable
from raas.domain.usage import period_of
from raas.handlers import ingest
from raas.handlers.ingest import documents_of
from raas.local.events import QueuePump
from raas.local.invocation import lambda_context
from raas.services import ingest as ingest_service
from raas.services.documents import NewDocument, object_key
from tests.conftest import TenantHandle
from tests.helpers import HashingEmbedder

pytestmark = pytest.mark.usefixtures("aws")


class RecordingEmbedder(HashingEmbedder):
    """Keeps the texts of every call."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[str]] = []

    def embed(self, texts: list[str]) -> list[list[float]]:
        self.batches.append(list(texts))
        return super().embed(texts)


@pytest.fixture
def embedder() -> RecordingEmbedder:
    return RecordingEmbedder()


def _accept(tenant: TenantHandle, title: str, body: bytes, content_type: str = "text/plain") -> str:
    new = NewDocument(title, body, content_type, {}, None)
    document, _created = services().document_service.create_inline(tenant.tenant_id, Tier(tenant.tier), new)
    return document.document_id


def _status(tenant: TenantHandle, document_id: str) -> DocumentStatus:
    document = services().document_store.get(tenant.tenant_id, document_id)
    assert document is not None
    return document.status


@pytest.fixture
def pump(ingest_queue: QueuePump) -> QueuePump:
    """The ingest queue with nothing in it (the bucket's notification test event consumed)."""
    ingest_queue.drain()
    return ingest_queue


def _received(pump: QueuePump, expected: int) -> list[dict[str, Any]]:
    """`expected` messages, in as many receives as SQS takes (one may return fewer than are waiting)."""
    messages: list[dict[str, Any]] = []
    for _ in range(20):
        messages += pump._receive(0, 10)
        if len(messages) >= expected:
            break
    assert len(messages) == expected
    return messages


def _document_of(message: dict[str, Any]) -> str:
    ((_tenant_id, document_id),) = documents_of(message["Body"])
    return document_id


def test_a_tenants_documents_share_one_embedding_call_and_each_is_indexed_and_counted(
    tenant_a: TenantHandle, pump: QueuePump, embedder: RecordingEmbedder
) -> None:
    texts = [f"Refunds for order class {i} are paid within {i + 2} days." for i in range(5)]
    document_ids = [_accept(tenant_a, f"Policy {i}", text.encode()) for i, text in enumerate(texts)]
    generation = services().document_store.generation(tenant_a.tenant_id)

    assert pump.pump_once(wait_seconds=0) == 5  # one invocation with the five messages

    assert len(embedder.batches) == 1
    assert len(embedder.batches[0]) == 5
    assert all(_status(tenant_a, document_id) is DocumentStatus.INDEXED for document_id in document_ids)
    assert services().document_store.generation(tenant_a.tenant_id) == generation + 1  # one bump for the wave
    totals = services().usage_recorder.totals(tenant_a.tenant_id, period_of(datetime.now(UTC)))
    assert totals["documents_indexed"] == 5
    assert totals["chunks_indexed"] == 5
    assert services().search_index.count(tenant_a.tenant_id) == 5  # type: ignore[attr-defined]


def test_one_documents_error_brings_back_only_its_own_event(
    tenant_a: TenantHandle, pump: QueuePump, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = [_accept(tenant_a, f"Good {i}", f"Shipping zone {i} takes {i + 1} days.".encode()) for i in range(2)]
    broken = _accept(tenant_a, "Broken", b"%PDF-1.7 not really a pdf", "application/pdf")
    flaky = _accept(tenant_a, "Flaky", b"Returns are accepted for ninety days.")
    objects = services().ingest_service.objects
    read_upload = objects.read_upload

    def unavailable_for_flaky(tenant_id: str, key: str, most: int) -> bytes | None:
        if key == object_key(flaky):
            raise ServiceUnavailable("the object store is unavailable")
        return read_upload(tenant_id, key, most)

    monkeypatch.setattr(objects, "read_upload", unavailable_for_flaky)
    messages = _received(pump, 4)
    result = ingest.handler(pump._event(messages), lambda_context("raas-ingest"))

    flaky_message = next(m["MessageId"] for m in messages if _document_of(m) == flaky)
    assert result == {"batchItemFailures": [{"itemIdentifier": flaky_message}]}
    assert [_status(tenant_a, document_id) for document_id in good] == [DocumentStatus.INDEXED] * 2
    assert _status(tenant_a, broken) is DocumentStatus.FAILED  # failed for good: its event is done
    assert _status(tenant_a, flaky) is DocumentStatus.PROCESSING  # claimed, nothing written: it comes back

    monkeypatch.setattr(objects, "read_upload", read_upload)
    again = [m for m in messages if m["MessageId"] == flaky_message]
    assert ingest.handler(pump._event(again), lambda_context("raas-ingest")) == {"batchItemFailures": []}
    assert _status(tenant_a, flaky) is DocumentStatus.INDEXED
    assert services().search_index.count(tenant_a.tenant_id) == 3  # type: ignore[attr-defined]


def test_two_tenants_in_one_batch_never_share_an_embedding_call(
    tenant_a: TenantHandle, tenant_b: TenantHandle, pump: QueuePump, embedder: RecordingEmbedder
) -> None:
    for i in range(2):
        _accept(tenant_a, f"Alpha {i}", f"alphamarker warranty terms {i}".encode())
        _accept(tenant_b, f"Beta {i}", f"betamarker warranty terms {i}".encode())
    messages = _received(pump, 4)
    embedder.batches.clear()

    assert ingest.handler(pump._event(messages), lambda_context("raas-ingest")) == {"batchItemFailures": []}

    assert sorted(len(batch) for batch in embedder.batches) == [2, 2]
    for batch in embedder.batches:
        assert all("alphamarker" in text for text in batch) or all("betamarker" in text for text in batch)
    for tenant, marker in ((tenant_a, "alphamarker"), (tenant_b, "betamarker")):  # each index holds its own only
        chunks = list(services().search_index.export_chunks(tenant.tenant_id))  # type: ignore[attr-defined]
        assert len(chunks) == 2
        assert all(marker in chunk.text for chunk in chunks)


def test_a_wave_closes_at_an_embedding_calls_worth_of_chunks(
    tenant_a: TenantHandle, pump: QueuePump, embedder: RecordingEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest_service, "EMBED_BATCH", 2)
    document_ids = [_accept(tenant_a, f"Note {i}", f"Warehouse {i} opens at {i + 6} o'clock.".encode()) for i in range(5)]
    generation = services().document_store.generation(tenant_a.tenant_id)

    assert pump.pump_once(wait_seconds=0) == 5

    assert [len(batch) for batch in embedder.batches] == [2, 2, 1]  # three waves: no more text held than a call's
    assert services().document_store.generation(tenant_a.tenant_id) == generation + 3
    assert all(_status(tenant_a, document_id) is DocumentStatus.INDEXED for document_id in document_ids)


def test_an_error_looking_up_one_documents_previous_version_fails_that_document_alone(
    tenant_a: TenantHandle, pump: QueuePump, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = _accept(tenant_a, "Plain", b"Gift cards never expire.")
    new = NewDocument("Versioned", b"Store credit expires after a year.", "text/plain", {}, "s3://handbook/credit.txt")
    versioned, _created = services().document_service.create_inline(tenant_a.tenant_id, Tier(tenant_a.tier), new)
    documents = services().ingest_service.documents
    current_for_source = documents.current_for_source

    def broken_for_the_handbook(tenant_id: str, source_uri: str) -> str | None:
        if source_uri.startswith("s3://handbook/"):
            raise RuntimeError("the source pointer could not be read")
        return current_for_source(tenant_id, source_uri)

    monkeypatch.setattr(documents, "current_for_source", broken_for_the_handbook)
    messages = _received(pump, 2)

    assert ingest.handler(pump._event(messages), lambda_context("raas-ingest")) == {"batchItemFailures": []}
    assert _status(tenant_a, plain) is DocumentStatus.INDEXED
    failed = services().document_store.get(tenant_a.tenant_id, versioned.document_id)
    assert failed is not None
    assert failed.status is DocumentStatus.FAILED
    assert failed.error == "internal error while indexing (RuntimeError)"
    assert [chunk.document_id for chunk in services().search_index.export_chunks(tenant_a.tenant_id)] == [plain]  # type: ignore[attr-defined]


def test_a_message_that_is_no_s3_notification_comes_back_and_the_rest_of_its_batch_is_ingested(
    tenant_a: TenantHandle, pump: QueuePump
) -> None:
    document_id = _accept(tenant_a, "Fine", b"Exchanges are free within a month.")
    (message,) = _received(pump, 1)
    garbled = {**message, "MessageId": "garbled-1", "Body": "not json at all"}

    result = ingest.handler(pump._event([garbled, message]), lambda_context("raas-ingest"))

    assert result == {"batchItemFailures": [{"itemIdentifier": "garbled-1"}]}
    assert _status(tenant_a, document_id) is DocumentStatus.INDEXED


def test_a_failed_read_after_the_writes_removes_the_chunks_and_fails_only_documents_on_their_last_delivery(
    tenant_a: TenantHandle, pump: QueuePump, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tenant-status read after a wave's writes fails (transient): no document is marked, so none may keep
    chunks. A document whose event comes back writes them again later; one on its last delivery (the record's
    ApproximateReceiveCount at the queue's maxReceiveCount) would go to the dead-letter queue, so it fails now."""
    early, last = (_accept(tenant_a, f"Tides {i}", f"Spring tides come {i + 1} days after the moon.".encode()) for i in range(2))
    tenants = services().ingest_service.tenants
    tenant_status = tenants.tenant_status
    reads = []

    def fails_after_the_writes(tenant_id: str) -> Any:
        reads.append(tenant_id)
        if len(reads) == 2:
            raise ServiceUnavailable("the registry is unavailable")
        return tenant_status(tenant_id)

    monkeypatch.setattr(tenants, "tenant_status", fails_after_the_writes)
    messages = _received(pump, 2)
    for message in messages:
        count = ingest_service.MAX_DELIVERIES if _document_of(message) == last else 1
        message["Attributes"]["ApproximateReceiveCount"] = str(count)
    result = ingest.handler(pump._event(messages), lambda_context("raas-ingest"))

    early_message = next(m["MessageId"] for m in messages if _document_of(m) == early)
    assert result == {"batchItemFailures": [{"itemIdentifier": early_message}]}
    assert _status(tenant_a, early) is DocumentStatus.PROCESSING  # it comes back
    failed = services().document_store.get(tenant_a.tenant_id, last)
    assert failed is not None
    assert failed.status is DocumentStatus.FAILED
    assert "registry is unavailable" in (failed.error or "")
    assert services().search_index.count(tenant_a.tenant_id) == 0  # type: ignore[attr-defined]

    monkeypatch.setattr(tenants, "tenant_status", tenant_status)
    again = [m for m in messages if m["MessageId"] == early_message]
    assert ingest.handler(pump._event(again), lambda_context("raas-ingest")) == {"batchItemFailures": []}
    assert _status(tenant_a, early) is DocumentStatus.INDEXED
    assert services().search_index.count(tenant_a.tenant_id) == 1  # type: ignore[attr-defined]
