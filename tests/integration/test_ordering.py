"""Deletion racing ingestion (issue 12, items 2 and 3): the interleavings are injected, never timed.

An ingest that must be caught mid-flight runs in a worker thread and parks in the embedder (after it has
claimed the document and checked the tenant) until the deleting side lets it go, from a hook inside the
delete; each side waits on an Event, so every run takes the same path."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from raas.adapters.search_embedded import EmbeddedSearch
from raas.bootstrap import services
from raas.domain.tenants import TenantStatus
from raas.local.events import QueuePump
from raas.services.documents import DocumentService
from raas.services.ingest import IngestService
from raas.services.lifecycle import LifecycleService
from tests.conftest import TenantHandle
from tests.helpers import ApiClient, HashingEmbedder, expect, rebuild_services

WAIT = 30  # seconds; only a broken handshake ever waits this long


class ParkingEmbedder:
    """Embeds like the test embedder, but first parks until `resume` is set (signalling `parked`)."""

    def __init__(self, inner: HashingEmbedder):
        self.inner = inner
        self.name = inner.name
        self.dimension = inner.dimension
        self.parked = threading.Event()
        self.resume = threading.Event()

    def embed(self, texts: list[str]) -> list[list[float]]:
        self.parked.set()
        assert self.resume.wait(WAIT), "nobody resumed the parked ingest"
        return self.inner.embed(texts)


class HookedSearch:
    """The real index, with a hook run once before or after the first call of one method."""

    def __init__(self, inner: Any, method: str, hook: Callable[[], object], *, before: bool = False):
        self.inner = inner
        self.method = method
        self.hook: Callable[[], object] | None = hook
        self.before = before

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.inner, name)
        if name != self.method:
            return attribute

        def hooked(*args: Any, **kwargs: Any) -> Any:
            hook, self.hook = self.hook, None
            if hook is not None and self.before:
                hook()
            result = attribute(*args, **kwargs)
            if hook is not None and not self.before:
                hook()
            return result

        return hooked


class IngestInThread:
    """Runs one ingest in a worker thread and keeps its outcome."""

    def __init__(self, service: IngestService, tenant_id: str, document_id: str):
        self.outcome: list[Any] = []
        self.thread = threading.Thread(target=lambda: self.outcome.append(self._run(service, tenant_id, document_id)), daemon=True)

    @staticmethod
    def _run(service: IngestService, tenant_id: str, document_id: str) -> Any:
        try:
            return service.ingest(tenant_id, document_id)
        except BaseException as exc:  # reported to the test, which asserts on it
            return exc

    def finish(self) -> None:
        self.thread.join(WAIT)
        assert not self.thread.is_alive(), "the ingest did not finish"
        assert not isinstance(self.outcome[0], BaseException), self.outcome[0]


def parked_ingest(embedder: HashingEmbedder, tenant_id: str, document_id: str) -> tuple[ParkingEmbedder, IngestInThread]:
    """An ingest started in its worker thread and parked in the embedder: it has claimed the document and
    checked the tenant, and waits for `parking.resume`."""
    parking = ParkingEmbedder(embedder)
    worker = IngestInThread(ingest_service(embedded(), parking), tenant_id, document_id)
    worker.thread.start()
    assert parking.parked.wait(WAIT)
    return parking, worker


def ingest_service(search: Any, embedder: Any) -> IngestService:
    return IngestService(
        services().document_store,
        services().object_store,
        search,
        embedder,
        services().config_service,
        services().tenant_store,
    )


def add(api: ApiClient, tenant: TenantHandle, title: str, text: str, **extra: object) -> str:
    body = {"title": title, "text": text, **extra}
    return str(expect(api.request("POST", "/v1/documents", key=tenant.admin_key, json_body=body), 202)["document_id"])


def search_hits(api: ApiClient, tenant: TenantHandle, query: str) -> list[dict]:
    return expect(api.request("POST", "/v1/search", key=tenant.admin_key, json_body={"query": query}), 200)["results"]


def embedded() -> EmbeddedSearch:
    index = services().search_index
    assert isinstance(index, EmbeddedSearch)
    return index


def index_file_exists(tenant_id: str) -> bool:
    return embedded()._path(tenant_id).exists()


# --- a document deleted while it is being indexed --------------------------------------------------


def test_a_document_deleted_while_its_ingest_writes_leaves_no_chunks(
    api: ApiClient, tenant_a: TenantHandle, embedder: HashingEmbedder
) -> None:
    # Given an ingest that has claimed the document and is embedding it
    document_id = add(api, tenant_a, "comets", "ephemeral knowledge about comets and their tails")
    parking, worker = parked_ingest(embedder, tenant_a.tenant_id, document_id)

    # When a DELETE sweeps the index, then the ingest writes its chunks and marks the document, then the DELETE ends
    def ingest_writes_now() -> None:
        parking.resume.set()
        worker.finish()

    hooked = HookedSearch(embedded(), "delete_document", ingest_writes_now)
    deleter = DocumentService(services().document_store, services().object_store, hooked)
    deleter.delete(tenant_a.tenant_id, document_id)

    # Then nothing of the document is searchable or left in the index, and it is gone
    assert worker.outcome == [None]
    assert embedded().count(tenant_a.tenant_id) == 0
    assert search_hits(api, tenant_a, "comets tails") == []
    assert api.request("GET", f"/v1/documents/{document_id}", key=tenant_a.admin_key).status == 404
    assert services().document_store.stats(tenant_a.tenant_id)["documents"] == 0


def test_an_ingest_that_starts_while_a_delete_runs_writes_nothing(api: ApiClient, tenant_a: TenantHandle, ingest_queue: QueuePump) -> None:
    # Given a queued document whose S3 event is delivered while its DELETE is between sweeping and removing the record
    document_id = add(api, tenant_a, "comets", "ephemeral knowledge about comets and their tails")
    deleter = DocumentService(
        services().document_store, services().object_store, HookedSearch(embedded(), "delete_document", lambda: ingest_queue.drain())
    )
    # When the delete runs
    deleter.delete(tenant_a.tenant_id, document_id)
    # Then the ingest wrote nothing that outlives it
    assert embedded().count(tenant_a.tenant_id) == 0
    assert search_hits(api, tenant_a, "comets tails") == []
    assert api.request("GET", f"/v1/documents/{document_id}", key=tenant_a.admin_key).status == 404


def test_a_new_version_that_retires_an_old_one_being_reingested_leaves_only_the_new(
    api: ApiClient, tenant_a: TenantHandle, ingest_queue: QueuePump, embedder: HashingEmbedder
) -> None:
    # Given version 1 of a source indexed, and a redelivered ingest of it parked mid-flight
    old_id = add(api, tenant_a, "policy", "refunds take thirty days", source_uri="s3://crm/policy.md")
    ingest_queue.drain()
    services().document_store.update(tenant_a.tenant_id, old_id, status="processing")  # as an attempt that crashed left it
    parking, worker = parked_ingest(embedder, tenant_a.tenant_id, old_id)

    # When version 2 is indexed, and the old version's ingest writes and marks it indexed right after version 2's
    # index call removed version 1's chunks (before version 2 retires version 1's record)
    new_id = add(api, tenant_a, "policy", "refunds take sixty days", source_uri="s3://crm/policy.md")

    def old_ingest_writes_now() -> None:
        parking.resume.set()
        worker.finish()

    hooked = HookedSearch(embedded(), "replace", old_ingest_writes_now)
    ingest_service(hooked, embedder).ingest(tenant_a.tenant_id, new_id)

    # Then only version 2 is searchable, and version 1 is gone
    assert {hit["document_id"] for hit in search_hits(api, tenant_a, "refunds days")} == {new_id}
    assert {c.document_id for c in embedded().export_chunks(tenant_a.tenant_id)} == {new_id}
    assert api.request("GET", f"/v1/documents/{old_id}", key=tenant_a.admin_key).status == 404


# --- a tenant deleted while one of its documents is being indexed --------------------------------


def _lifecycle_with(search: Any) -> LifecycleService:
    real = services().lifecycle_service
    return LifecycleService(
        real.tenants,
        real.configs,
        real.keyring,
        search,
        real.purger,
        real.events,
        usage_plans=real.usage_plans,
        billing=real.billing,
        exporter=real.exporter,
        final_billing=real.final_billing,
        tenants_table=real.tenants_table,
    )


def _assert_tenant_fully_deleted(tenant_id: str) -> None:
    tenant = services().tenant_store.get_tenant(tenant_id)
    assert tenant is not None
    assert tenant.status is TenantStatus.DELETED
    assert tenant.deletion_receipt is not None
    assert any(step.step == "search_index" for step in tenant.deletion_receipt.steps)
    # What the receipt says is true: no index and no chunks for the tenant.
    assert not index_file_exists(tenant_id)
    assert embedded().count(tenant_id) == 0


def test_a_tenant_deleted_while_an_ingest_embeds_keeps_no_index(
    api: ApiClient, tenant_a: TenantHandle, embedder: HashingEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an ingest that has checked the tenant and claimed its document, and is embedding
    document_id = add(api, tenant_a, "secret", "the launch codes are in the blue folder")
    parking, worker = parked_ingest(embedder, tenant_a.tenant_id, document_id)

    # When the tenant's deletion drops the index, the ingest then runs to its end, and the deletion finishes
    def ingest_finishes_now() -> None:
        parking.resume.set()
        worker.finish()

    lifecycle = _lifecycle_with(HookedSearch(embedded(), "drop_index", ingest_finishes_now))
    rebuild_services(lifecycle_service=lifecycle)
    services().tenant_service.request_deletion(tenant_a.tenant_id, export_first=False, actor="operator:test")

    # Then the receipt is true
    assert worker.outcome[0] is None
    _assert_tenant_fully_deleted(tenant_a.tenant_id)


def test_a_tenant_deleted_between_an_ingests_check_and_its_write_keeps_no_index(
    api: ApiClient, tenant_a: TenantHandle, embedder: HashingEmbedder
) -> None:
    # Given an ingest about to write, whose tenant's whole deletion runs just before the write
    document_id = add(api, tenant_a, "secret", "the launch codes are in the blue folder")

    def delete_the_tenant() -> None:
        services().tenant_service.request_deletion(tenant_a.tenant_id, export_first=False, actor="operator:test")

    hooked = HookedSearch(embedded(), "replace", delete_the_tenant, before=True)
    # When the ingest writes (re-creating the index) and finishes
    assert ingest_service(hooked, embedder).ingest(tenant_a.tenant_id, document_id) is None
    # Then the index it re-created is gone again
    _assert_tenant_fully_deleted(tenant_a.tenant_id)


class LambdaKilled(BaseException):
    """The function dies (timeout, out of memory): no handler code runs after it."""


def test_an_ingest_killed_after_writing_for_a_deleted_tenant_leaves_nothing_once_redelivered(
    api: ApiClient, tenant_a: TenantHandle, embedder: HashingEmbedder, ingest_queue: QueuePump
) -> None:
    # Given an ingest whose tenant is deleted just before it writes, and which dies right after writing
    document_id = add(api, tenant_a, "secret", "the launch codes are in the blue folder")

    class WriteThenDie(HookedSearch):
        def replace(self, *args: Any, **kwargs: Any) -> Any:
            services().tenant_service.request_deletion(tenant_a.tenant_id, export_first=False, actor="operator:test")
            self.inner.replace(*args, **kwargs)
            raise LambdaKilled

    with pytest.raises(LambdaKilled):
        ingest_service(WriteThenDie(embedded(), "", lambda: None), embedder).ingest(tenant_a.tenant_id, document_id)
    assert index_file_exists(tenant_a.tenant_id)  # what the dead attempt left

    # When SQS delivers the event again (to the real handler)
    ingest_queue.drain()

    # Then the tenant has no index
    _assert_tenant_fully_deleted(tenant_a.tenant_id)
