"""A restart of `raas local` with a state dir fires the bucket's creation events for every object but those of finished
(indexed or failed) documents: those come back quietly (10,000 of them used to re-run ingestion's first
steps for minutes), and a document the start-up reconciliation queues again gets its event back. And the larger indexes
are read ahead at start, so that a restarted tenant's first queries do not compete with their reading."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

from raas.adapters.aws import client
from raas.domain.catalog import Tier
from raas.domain.documents import DocumentStatus
from raas.local.aws import StateDir
from raas.local.reconcile import finished_uploads, reconcile_at_start
from raas.services.documents import NewDocument


def _queued_keys() -> list[str]:
    """The object keys of the creation events waiting in the ingest queue (taken off it)."""
    sqs, url, keys = client("sqs"), os.environ["RAAS_INGEST_QUEUE_URL"], []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", []):
        for message in messages:
            body = json.loads(message["Body"])
            keys += [unquote_plus(r["s3"]["object"]["key"]) for r in body.get("Records", [])]
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return sorted(keys)


def _document(aws: Any, tenant_id: str, title: str) -> str:
    created = aws.document_service.create_inline(
        tenant_id, Tier.ENTERPRISE, NewDocument(title, f"{title} text".encode(), "text/plain", {}, None)
    )
    return str(created[0].document_id)


def _source_key(tenant_id: str, document_id: str) -> str:
    return f"tenants/{tenant_id}/documents/{document_id}/source"


def _saved_then_lost(aws: Any, tmp_path: Path) -> StateDir:
    """The state saved, then moto's objects gone and the queue empty: what a restart restores into."""
    state = StateDir(tmp_path / "state")
    state.restore()
    state.save()
    s3, bucket = client("s3"), aws.settings.documents_bucket
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            s3.delete_object(Bucket=bucket, Key=obj["Key"])
    _queued_keys()
    return state


def test_only_unfinished_documents_get_their_creation_event_at_a_restore(aws: Any, ingest_queue: Any, tmp_path: Path) -> None:
    tenant, _key, _secret = aws.tenant_service.create("restored", Tier.ENTERPRISE)
    indexed = _document(aws, tenant.tenant_id, "indexed")
    ingest_queue.drain()
    queued = _document(aws, tenant.tenant_id, "queued")  # its event is never taken before the stop
    s3, bucket = client("s3"), aws.settings.documents_bucket
    orphan = _source_key(tenant.tenant_id, "deleted-before-its-removal-was-saved")  # bytes of a document with no record
    s3.put_object(Bucket=bucket, Key=orphan, Body=b"deleted")
    state = _saved_then_lost(aws, tmp_path)
    notifications = s3.get_bucket_notification_configuration(Bucket=bucket)["QueueConfigurations"]

    state.restore(quiet=lambda: finished_uploads(aws))

    assert _queued_keys() == sorted([_source_key(tenant.tenant_id, queued), orphan])  # the ingest removes the orphan
    for document_id, title in ((indexed, "indexed"), (queued, "queued")):  # both objects are back, as they were
        restored = s3.get_object(Bucket=bucket, Key=_source_key(tenant.tenant_id, document_id))
        assert (restored["Body"].read(), restored["ContentType"]) == (f"{title} text".encode(), "text/plain")
    assert s3.get_bucket_notification_configuration(Bucket=bucket)["QueueConfigurations"] == notifications
    s3.put_object(Bucket=bucket, Key=_source_key(tenant.tenant_id, "after"), Body=b"x")  # and the bucket notifies again
    assert _queued_keys() == [_source_key(tenant.tenant_id, "after")]


def test_without_a_choice_every_object_fires_as_before(aws: Any, ingest_queue: Any, tmp_path: Path) -> None:
    tenant, _key, _secret = aws.tenant_service.create("restored", Tier.ENTERPRISE)
    first, second = _document(aws, tenant.tenant_id, "first"), _document(aws, tenant.tenant_id, "second")
    ingest_queue.drain()
    state = _saved_then_lost(aws, tmp_path)
    state.restore()
    assert _queued_keys() == sorted(_source_key(tenant.tenant_id, d) for d in (first, second))


def test_a_document_queued_again_by_the_reconciliation_gets_its_event_back(aws: Any, ingest_queue: Any, tmp_path: Path) -> None:
    tenant, _key, _secret = aws.tenant_service.create("restored", Tier.ENTERPRISE)
    document_id = _document(aws, tenant.tenant_id, "lost chunks")
    ingest_queue.drain()
    chunks = aws.document_store.get(tenant.tenant_id, document_id).chunk_count
    state = _saved_then_lost(aws, tmp_path)
    state.restore(quiet=lambda: finished_uploads(aws))
    assert _queued_keys() == []  # indexed at the stop: restored quietly
    aws.search_index.delete_document(tenant.tenant_id, document_id, chunks)  # a crash lost its chunks

    result = reconcile_at_start(aws, redeliver=state.redeliver_object)

    assert result.requeued == 1
    ingest_queue.drain()
    assert aws.document_store.get(tenant.tenant_id, document_id).status is DocumentStatus.INDEXED
    assert aws.search_index.document_ids(tenant.tenant_id) == {document_id}


def test_the_larger_indexes_are_read_ahead_at_start(aws: Any, ingest_queue: Any, monkeypatch: Any) -> None:
    """A restarted tenant's first queries find its vectors and BM25 postings in memory (raas.local.server.warm_search_indexes)."""
    from raas.local import server

    large, _key, _secret = aws.tenant_service.create("large", Tier.ENTERPRISE)
    small, _key, _secret = aws.tenant_service.create("small", Tier.ENTERPRISE)
    for n in range(3):
        _document(aws, large.tenant_id, f"large {n}")
    _document(aws, small.tenant_id, "small")
    ingest_queue.drain()
    monkeypatch.setattr(server, "WARM_INDEX_MIN_CHUNKS", 2)  # what counts as larger, at this test's scale

    thread = server.warm_search_indexes(aws)
    assert thread is not None
    thread.join(30)

    lexicons = aws.search_index._lexicons
    assert lexicons[large.tenant_id].postings is not None
    assert large.tenant_id in aws.search_index._matrices
    assert small.tenant_id not in lexicons or lexicons[small.tenant_id].postings is None
