"""A document that fails ingestion gives its quota share back, exactly once (issue 12)."""

from __future__ import annotations

import pytest

from raas.bootstrap import services
from raas.domain import catalog
from raas.domain.catalog import Tier
from raas.domain.documents import DocumentStatus
from raas.domain.ports import VersionConflict
from raas.local.events import QueuePump
from tests.conftest import TenantHandle
from tests.helpers import ApiClient, expect

UNINDEXABLE = "   \n\t  "  # accepted at the API, then extraction finds no text: the document fails


def add(api: ApiClient, tenant: TenantHandle, title: str, text: str) -> str:
    body = {"title": title, "text": text}
    return str(expect(api.request("POST", "/v1/documents", key=tenant.admin_key, json_body=body), 202)["document_id"])


def usage(tenant_id: str) -> tuple[int, int]:
    stats = services().document_store.stats(tenant_id)
    return stats["documents"], stats["bytes"]


def test_a_failed_document_no_longer_counts_and_deleting_it_gives_nothing_back_twice(
    api: ApiClient, tenant_a: TenantHandle, ingest_queue: QueuePump
) -> None:
    kept = add(api, tenant_a, "kept", "a document about comets that indexes fine")
    ingest_queue.drain()
    baseline = usage(tenant_a.tenant_id)
    assert baseline == (1, len(b"a document about comets that indexes fine"))

    failed = add(api, tenant_a, "blank", UNINDEXABLE)
    assert usage(tenant_a.tenant_id) == (2, baseline[1] + len(UNINDEXABLE))  # reserved while it waits
    ingest_queue.drain()
    shown = expect(api.request("GET", f"/v1/documents/{failed}", key=tenant_a.admin_key), 200)
    assert shown["status"] == "failed"
    assert usage(tenant_a.tenant_id) == baseline  # given back when it failed

    expect(api.request("DELETE", f"/v1/documents/{failed}", key=tenant_a.admin_key), 204)
    assert usage(tenant_a.tenant_id) == baseline  # not a second time
    expect(api.request("DELETE", f"/v1/documents/{kept}", key=tenant_a.admin_key), 204)
    assert usage(tenant_a.tenant_id) == (0, 0)


def test_marking_failed_again_gives_nothing_back(api: ApiClient, tenant_a: TenantHandle) -> None:
    """A retried `mark_failed` (a redelivered attempt, a client retry after a timeout) is refused by its condition."""
    document_id = add(api, tenant_a, "doomed", "some text")
    store = services().document_store
    store.claim(tenant_a.tenant_id, document_id, "attempt-1")
    failed = store.mark_failed(tenant_a.tenant_id, document_id, "attempt-1", "the parser gave up")
    assert (failed.status, failed.error) == (DocumentStatus.FAILED, "the parser gave up")
    assert usage(tenant_a.tenant_id) == (0, 0)
    with pytest.raises(VersionConflict):
        store.mark_failed(tenant_a.tenant_id, document_id, "attempt-1", "the parser gave up")
    assert usage(tenant_a.tenant_id) == (0, 0)


def test_failed_documents_do_not_use_up_the_document_quota(
    api: ApiClient, tenant_a: TenantHandle, ingest_queue: QueuePump, monkeypatch: pytest.MonkeyPatch
) -> None:
    limits = catalog.tier_limits(Tier.ENTERPRISE)
    monkeypatch.setattr(catalog, "tier_limits", lambda tier: limits.model_copy(update={"max_documents": 2}))
    for attempt in range(3):
        add(api, tenant_a, f"blank {attempt}", UNINDEXABLE + " " * attempt)  # each content distinct
        ingest_queue.drain()
    add(api, tenant_a, "one", "the first real document")
    add(api, tenant_a, "two", "the second real document")
    refused = api.request("POST", "/v1/documents", key=tenant_a.admin_key, json_body={"title": "three", "text": "a third one"})
    assert (refused.status, refused.error_code) == (429, "quota_exceeded")
