"""At start, brings the local search index and the document registry back into agreement after a crash.

The registry (DynamoDB, snapshot + journal) and the embedded index (SQLite files) are written at different
moments, so a process killed between the two leaves them apart:
- chunks of a document the registry does not know (an ingest that wrote its chunks but whose record was
  lost), or knows as failed or deleting: removed (deleting ones are finished by `DocumentRemover`, as a
  repeated DELETE would);
- a document the registry calls `indexed` whose chunks are missing: queued again when its source object
  is there (its creation event is fired again: objects of finished documents are restored without one,
  see `finished_uploads`; ingest takes `queued` documents), else failed with a reason;
- an inline document (its bytes came with the request) still `queued` whose source object was lost:
  failed with a reason, since no S3 event will ever come for it. A presigned upload still `queued` is
  waiting for its client, and is left alone.
Tenants being deleted lose their index entirely. Runs before the ingest pump and the HTTP server start.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from raas.adapters.objects import tenant_object_key
from raas.domain.documents import Document, DocumentStatus
from raas.domain.paging import Page, all_items
from raas.services.documents import DocumentRemover, object_key
from raas.services.metering import all_tenants

if TYPE_CHECKING:
    from raas.bootstrap import Services

logger = logging.getLogger(__name__)

# Documents whose chunks the index may hold: finished, or an ingest that will run (again) and replace them.
_MAY_HAVE_CHUNKS = {DocumentStatus.INDEXED, DocumentStatus.QUEUED, DocumentStatus.PROCESSING}
LOST_CHUNKS = "its chunks were lost from the search index in a crash and its source is gone; upload it again"
LOST_SOURCE = "its source bytes were lost in a crash before they were saved; upload it again"


@dataclass
class Reconciliation:
    orphans_removed: int = 0
    deletions_finished: int = 0
    requeued: int = 0
    failed: int = 0


def reconcile_at_start(services: Services, redeliver: Callable[[str], bool] | None = None) -> Reconciliation:
    """Brings the search index and the registry of `services` back into agreement after a crash; `redeliver(key)`
    fires the creation event of a requeued document's source object again."""
    return reconcile_search_index(
        services.tenant_store, services.document_store, services.object_store, services.search_index, redeliver=redeliver
    )


def finished_uploads(services: Services) -> set[str]:
    """The bucket keys of the source objects of documents that were `indexed` or `failed` at the stop: at a restore
    their creation events need not fire again. Every other object's does: a queued or processing document is
    ingested, and the object of a document deleted in the last second before a crash is removed by the ingest
    that finds no record for it."""
    keys: set[str] = set()
    for tenant in all_tenants(services.tenant_store):
        if tenant.status.gone:
            continue
        for status in (DocumentStatus.INDEXED, DocumentStatus.FAILED):
            documents = _all_documents(services.document_store, tenant.tenant_id, status)
            keys.update(tenant_object_key(tenant.tenant_id, object_key(d.document_id)) for d in documents)
    return keys


def _all_documents(documents: Any, tenant_id: str, status: DocumentStatus | None = None) -> list[Document]:
    def page(cursor: str | None) -> Page[Document]:
        return documents.list(tenant_id, status, 100, cursor)

    return list(all_items(page))


def reconcile_search_index(
    tenants: Any, documents: Any, objects: Any, search: Any, *, redeliver: Callable[[str], bool] | None = None
) -> Reconciliation:
    result = Reconciliation()
    indexed_ids = getattr(search, "document_ids", None)
    if indexed_ids is None:  # an engine that cannot list its documents (OpenSearch): nothing to compare
        return result
    remover = DocumentRemover(documents, objects, search)
    for tenant in all_tenants(tenants):
        tenant_id = tenant.tenant_id
        if tenant.status.gone:
            search.drop_index(tenant_id)  # its deletion drops it too; a crash may have come first
            continue
        registry = {d.document_id: d for d in _all_documents(documents, tenant_id)}
        in_index = indexed_ids(tenant_id)
        for document_id in sorted(in_index):
            known = registry.get(document_id)
            if known is None or known.status not in _MAY_HAVE_CHUNKS:
                search.delete_document(tenant_id, document_id, known.chunk_count if known else 0)
                result.orphans_removed += 1
        for document in registry.values():
            if document.status is DocumentStatus.DELETING:
                remover.remove(tenant_id, document.document_id)
                result.deletions_finished += 1
            elif document.status is DocumentStatus.INDEXED and document.chunk_count > 0 and document.document_id not in in_index:
                if objects.size(tenant_id, object_key(document.document_id)) is not None:
                    documents.update(tenant_id, document.document_id, status=DocumentStatus.QUEUED.value)
                    if redeliver is not None:  # its object was restored without an event (`finished_uploads`)
                        redeliver(tenant_object_key(tenant_id, object_key(document.document_id)))
                    result.requeued += 1
                else:
                    documents.update(tenant_id, document.document_id, status=DocumentStatus.FAILED.value, error=LOST_CHUNKS)
                    result.failed += 1
            elif (
                document.status is DocumentStatus.QUEUED
                and document.content_hash is not None  # inline: its bytes were stored with the record
                and objects.size(tenant_id, object_key(document.document_id)) is None
            ):
                documents.update(tenant_id, document.document_id, status=DocumentStatus.FAILED.value, error=LOST_SOURCE)
                documents.release_hash(tenant_id, document.content_hash, document.document_id)  # so it can be uploaded again
                result.failed += 1
    if result != Reconciliation():
        logger.warning("search index reconciled with the registry at start: %s", result)
    return result
