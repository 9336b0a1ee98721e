"""The OpenSearch adapter over real HTTP.

Serverless (the default deployment) against `tests/serverless_standin.py`, a strict stand-in for a VECTORSEARCH
collection: generated ids only, no `refresh`, no upsert, k-NN, and writes that become searchable only when the
test says the collection refreshed (`standin.refresh()`), so every test here also runs in the window where a
search by document id cannot see what was just written. The managed-domain variant runs against osmem-server
(an OpenSearch-compatible server) and against the stand-in in domain mode.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from raas.adapters.search_common import ForeignIndexError, index_name
from raas.adapters.search_opensearch import BulkWriteFailed, OpenSearchIndex
from raas.bootstrap import services
from raas.domain.documents import Chunk
from raas.domain.ports import IndexedChunks
from raas.domain.retrieval import parse_filters
from raas.local.events import QueuePump
from tests.conftest import TenantHandle
from tests.helpers import ApiClient, expect, rebuild_services
from tests.serverless_standin import ID_REFUSED, ServerlessStandin, running_standin

TENANT = "t0123456789abcde"
OTHER = "tzzzzzzzzzzzzzzz"
INDEX = index_name(TENANT)


@pytest.fixture(scope="module")
def standin() -> Iterator[ServerlessStandin]:
    with running_standin(refresh_interval=None) as server:  # visibility moves only when a test refreshes
        yield server


@pytest.fixture(scope="module")
def client(standin: ServerlessStandin) -> Any:
    from opensearchpy import OpenSearch

    return OpenSearch(hosts=[standin.url], timeout=10, max_retries=0)


@pytest.fixture
def index(client: Any) -> Iterator[OpenSearchIndex]:
    adapter = OpenSearchIndex(client, dimension=4)
    yield adapter
    for tenant in (TENANT, OTHER):
        adapter.drop_index(tenant)


def chunks(document_id: str, texts: list[tuple[str, dict]]) -> list[Chunk]:
    return [
        Chunk(chunk_id=f"{document_id}:{i:05d}", document_id=document_id, title="Doc", text=t, position=i, metadata=m)
        for i, (t, m) in enumerate(texts)
    ]


def vectors(n: int) -> list[list[float]]:
    return [[1.0 if j == i % 4 else 0.0 for j in range(4)] for i in range(n)]


def stored_documents(standin: ServerlessStandin) -> list[str]:
    return sorted(source["document_id"] for source in standin.stored(INDEX).values())


# --- the stand-in says no where Serverless does ---------------------------------------------------


def test_the_standin_refuses_custom_ids_upserts_refresh_and_unknown_fields(index: OpenSearchIndex, client: Any) -> None:
    from opensearchpy.exceptions import NotFoundError, RequestError

    index.ensure_index(TENANT)
    doc = {"chunk_id": "d000000000000001:00000", "document_id": "d000000000000001", "title": "t", "text": "x", "position": 0}
    item = client.bulk(body=[{"index": {"_index": INDEX, "_id": "mine"}}, {**doc, "vector": [1, 0, 0, 0]}])["items"][0]["index"]
    assert (item["status"], item["error"]) == (400, {"type": "illegal_argument_exception", "reason": ID_REFUSED})
    item = client.bulk(body=[{"update": {"_index": INDEX, "_id": "x"}}, {"doc": doc, "doc_as_upsert": True}])["items"][0]["update"]
    assert item["status"] == 400
    with pytest.raises(RequestError, match=ID_REFUSED):
        client.index(index=INDEX, id="mine", body=doc)
    with pytest.raises(NotFoundError):
        client.update(index=INDEX, id="mine", body={"doc": doc, "doc_as_upsert": True})
    with pytest.raises(RequestError, match=r"unrecognized parameter: \[refresh\]"):
        client.bulk(body=[{"index": {"_index": INDEX}}, {**doc, "vector": [1, 0, 0, 0]}], refresh="wait_for")
    with pytest.raises(NotFoundError):
        client.indices.refresh(index=INDEX)
    with pytest.raises(NotFoundError):
        client.delete_by_query(index=INDEX, body={"query": {"term": {"document_id": "d000000000000001"}}})
    item = client.bulk(body=[{"index": {"_index": INDEX}}, {**doc, "vector": [1, 0, 0, 0], "extra": 1}])["items"][0]["index"]
    assert (item["status"], item["error"]["type"]) == (400, "strict_dynamic_mapping_exception")
    item = client.bulk(body=[{"index": {"_index": INDEX}}, {**doc, "vector": [1, 0, 0]}])["items"][0]["index"]
    assert (item["status"], item["error"]["type"]) == (400, "mapper_parsing_exception")


def test_heads_request_shape_fails_against_the_standin(index: OpenSearchIndex, client: Any) -> None:
    """What the adapter sent before: `_id = chunk_id` on every index action and `refresh=wait_for`."""
    from opensearchpy import helpers
    from opensearchpy.exceptions import RequestError

    index.ensure_index(TENANT)
    chunk = chunks("d000000000000001", [("refunds", {})])[0]
    old_action = {"_op_type": "index", "_index": INDEX, "_id": chunk.chunk_id, **chunk.model_dump(mode="json"), "vector": [1, 0, 0, 0]}
    with pytest.raises(RequestError, match=r"unrecognized parameter: \[refresh\]"):
        list(helpers.streaming_bulk(client, [old_action], refresh="wait_for", raise_on_error=False))
    [(ok, item)] = list(helpers.streaming_bulk(client, [old_action], raise_on_error=False))  # even without refresh
    assert not ok
    assert item["index"]["error"]["reason"] == ID_REFUSED


def test_writes_carry_no_id_and_no_refresh_and_become_searchable_at_the_refresh(index: OpenSearchIndex, standin: ServerlessStandin) -> None:
    index.ensure_index(TENANT)
    before = len(standin.requests)
    ids = index.replace(TENANT, chunks("d000000000000001", [("refunds within thirty days", {})]), vectors(1), [])
    assert len(ids) == 1
    assert ids[0] != "d000000000000001:00000"  # the collection chose it
    assert all("refresh" not in params for _method, _path, params in standin.requests[before:])
    assert index.lexical(TENANT, "refunds", 10, []) == []  # written, not yet searchable
    standin.refresh()
    assert [hit.chunk_id for hit in index.lexical(TENANT, "refunds", 10, [])] == ["d000000000000001:00000"]
    assert index.visible_at_once is False


# --- search --------------------------------------------------------------------------------------


def test_index_lifecycle_bm25_filters_and_delete(index: OpenSearchIndex, client: Any, standin: ServerlessStandin) -> None:
    index.ensure_index(TENANT)
    index.ensure_index(TENANT)  # idempotent
    mapping = client.indices.get_mapping(index=INDEX)[INDEX]["mappings"]
    assert mapping["properties"]["vector"]["type"] == "knn_vector"
    docs = chunks(
        "d000000000000001",
        [
            ("refunds within thirty days of purchase", {"dept": "support", "year": 2024, "tags": ["money", "policy"]}),
            ("shipping worldwide in five days", {"dept": "logistics", "year": 2020, "tags": ["delivery"]}),
            ("refunds for shipping damage", {"dept": "logistics", "year": 2023, "tags": ["money"]}),
        ],
    )
    ids = index.replace(TENANT, docs, vectors(3), [])
    standin.refresh()
    assert next(h.chunk_id for h in index.lexical(TENANT, "refunds", 10, [])) in {"d000000000000001:00000", "d000000000000001:00002"}
    assert {h.chunk_id for h in index.lexical(TENANT, "refunds shipping", 10, parse_filters({"dept": "logistics"}))} == {
        "d000000000000001:00001",
        "d000000000000001:00002",
    }
    assert {h.position for h in index.lexical(TENANT, "refunds shipping", 10, parse_filters({"year": {"gte": 2021, "lte": 2023}}))} == {2}
    assert {h.position for h in index.lexical(TENANT, "refunds shipping", 10, parse_filters({"tags": {"in": ["delivery"]}}))} == {1}
    hit = index.lexical(TENANT, "thirty", 1, [])[0]
    assert (hit.title, hit.metadata["dept"], hit.text) == ("Doc", "support", "refunds within thirty days of purchase")
    index.delete_document(TENANT, "d000000000000001", 3, ids)
    standin.refresh()
    assert index.lexical(TENANT, "refunds", 10, []) == []
    assert standin.stored(INDEX) == {}


def test_semantic_search_is_knn_with_an_efficient_filter(index: OpenSearchIndex, standin: ServerlessStandin) -> None:
    index.ensure_index(TENANT)
    docs = chunks("d000000000000001", [("a", {"dept": "x"}), ("b", {"dept": "y"}), ("c", {"dept": "x"})])
    index.replace(TENANT, docs, [[1, 0, 0, 0], [0.9, 0.1, 0, 0], [0, 1, 0, 0]], [])
    standin.refresh()
    assert [h.position for h in index.semantic(TENANT, [1.0, 0.0, 0.0, 0.0], 2, [])] == [0, 1]
    assert [h.position for h in index.semantic(TENANT, [1.0, 0.0, 0.0, 0.0], 2, parse_filters({"dept": "x"}))] == [0, 2]
    assert index.semantic(TENANT, [1.0, 0.0, 0.0, 0.0], 2, [])[0].score == pytest.approx(2.0)  # innerproduct: 1 + dot


# --- removal under delayed visibility ------------------------------------------------------------


def test_a_delete_right_after_indexing_removes_chunks_a_search_cannot_see_yet(index: OpenSearchIndex, standin: ServerlessStandin) -> None:
    index.ensure_index(TENANT)
    ids = index.replace(TENANT, chunks("d000000000000001", [("fresh", {}), ("fresher", {})]), vectors(2), [])
    index.delete_document(TENANT, "d000000000000001", 2)  # by document id alone: the search sees nothing yet
    standin.refresh()
    assert len(index.lexical(TENANT, "fresh fresher", 10, [])) == 2  # ... so they stayed: this is why ids are kept
    more = index.replace(TENANT, chunks("d000000000000002", [("fresh", {})]), vectors(1), [])
    index.delete_document(TENANT, "d000000000000002", 1, more)  # not visible yet, removed by id
    index.delete_document(TENANT, "d000000000000001", 2, ids)
    standin.refresh()
    assert index.lexical(TENANT, "fresh fresher", 10, []) == []
    assert standin.stored(INDEX) == {}


def test_replacing_a_version_not_yet_visible_leaves_only_the_new_one(index: OpenSearchIndex, standin: ServerlessStandin) -> None:
    index.ensure_index(TENANT)
    old = index.replace(TENANT, chunks("d00000000000000a", [("old policy text", {}), ("old appendix", {})]), vectors(2), [])
    new = index.replace(
        TENANT, chunks("d00000000000000b", [("new policy text", {})]), vectors(1), [IndexedChunks("d00000000000000a", 2, old)]
    )
    standin.refresh()
    assert {h.document_id for h in index.lexical(TENANT, "policy appendix text", 10, [])} == {"d00000000000000b"}
    assert set(standin.stored(INDEX)) == set(new)


def test_a_rerun_removes_what_an_earlier_attempt_wrote(index: OpenSearchIndex, standin: ServerlessStandin) -> None:
    """A crashed ingest's chunks (no receipt) are visible by the time the queue redelivers; the re-run sweeps them."""
    index.ensure_index(TENANT)
    document = chunks("d000000000000001", [("alpha", {}), ("beta", {})])
    index.replace(TENANT, document, vectors(2), [])
    standin.refresh()
    again = index.replace(TENANT, document, vectors(2), [])
    standin.refresh()
    assert set(standin.stored(INDEX)) == set(again)
    assert sorted(h.chunk_id for h in index.lexical(TENANT, "alpha beta", 10, [])) == [c.chunk_id for c in document]


def test_a_sweep_pages_through_many_chunks_and_twins(
    index: OpenSearchIndex, standin: ServerlessStandin, monkeypatch: pytest.MonkeyPatch
) -> None:
    from raas.adapters import search_opensearch

    monkeypatch.setattr(search_opensearch, "SWEEP_PAGE", 3)
    index.ensure_index(TENANT)
    document = chunks("d000000000000001", [(f"part {i}", {}) for i in range(4)])
    index.replace(TENANT, document, vectors(4), [])
    index.replace(TENANT, document[:2], vectors(2), [])  # twins of chunk 0 and 1 (not yet visible to each other)
    standin.refresh()
    assert len(standin.stored(INDEX)) == 6
    index.delete_document(TENANT, "d000000000000001", 4)
    standin.refresh()
    assert standin.stored(INDEX) == {}


def test_a_refused_write_leaves_nothing_behind(index: OpenSearchIndex, standin: ServerlessStandin) -> None:
    index.ensure_index(TENANT)
    document = chunks("d000000000000001", [("good", {}), ("bad", {})])
    with pytest.raises(BulkWriteFailed, match="mapper_parsing_exception"):
        index.replace(TENANT, document, [[1.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0]], [])  # the second vector is the wrong size
    standin.refresh()
    assert standin.stored(INDEX) == {}


def test_tenants_have_separate_indexes_and_foreign_names_are_refused(index: OpenSearchIndex, standin: ServerlessStandin) -> None:
    index.ensure_index(TENANT)
    index.ensure_index(OTHER)
    index.replace(OTHER, chunks("d00000000000000c", [("other tenant's secret plan", {})]), vectors(1), [])
    standin.refresh()
    assert index.lexical(TENANT, "secret plan", 10, []) == []
    assert len(index.lexical(OTHER, "secret plan", 10, [])) == 1
    for bad in ("*", f"{TENANT},{OTHER}", "_all", f"tenant_{OTHER}_documents"):
        with pytest.raises(ForeignIndexError):
            index.lexical(bad, "secret", 10, [])


def test_deleting_from_a_tenant_without_an_index_is_a_no_op(index: OpenSearchIndex) -> None:
    index.delete_document(TENANT, "d000000000000001", 3)


# --- the whole path, through the API ---------------------------------------------------------------


def test_the_whole_pipeline_runs_on_serverless(
    api: ApiClient,
    tenant_a: TenantHandle,
    ingest_queue: QueuePump,
    client: Any,
    standin: ServerlessStandin,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    adapter = OpenSearchIndex(client, dimension=services().embedder.dimension)
    rebuild_services(search_index=adapter)
    tenant_index = index_name(tenant_a.tenant_id)
    key = tenant_a.admin_key

    def ingest(title: str, text: str, source_uri: str | None = None) -> str:
        body = {"title": title, "text": text, **({"source_uri": source_uri} if source_uri else {})}
        document_id: str = expect(api.request("POST", "/v1/documents", key=key, json_body=body), 202)["document_id"]
        ingest_queue.drain()
        assert expect(api.request("GET", f"/v1/documents/{document_id}", key=key), 200)["status"] == "indexed"
        return document_id

    def search(query: str, alpha: float) -> list[dict]:
        results: list[dict] = expect(api.request("POST", "/v1/search", key=key, json_body={"query": query, "alpha": alpha}), 200)["results"]
        return results

    try:
        refunds = ingest("Refunds", "Refunds are paid within 30 days of purchase.")
        ingest("Shipping", "Parcels ship worldwide in five days.")
        assert search("refunds", 0.5) == []  # indexed, not yet searchable: the collection has not refreshed
        standin.refresh()
        assert search("refunds", 0)[0]["document_id"] == refunds  # lexical
        assert search("refunds paid purchase", 1)[0]["document_id"] == refunds  # k-NN
        assert search("when are refunds paid", 0.5)[0]["document_id"] == refunds  # hybrid

        # a re-ingest of the same source replaces the old version, although neither is searchable yet
        first = ingest("Policy", "Warranty lasts one year.", source_uri="s3://policies/warranty")
        second = ingest("Policy", "Warranty lasts two years now.", source_uri="s3://policies/warranty")
        standin.refresh()
        assert {source["document_id"] for source in standin.stored(tenant_index).values()} >= {second}
        assert first not in {source["document_id"] for source in standin.stored(tenant_index).values()}
        assert expect(api.request("GET", f"/v1/documents/{first}", key=key), 404)
        assert [r["document_id"] for r in search("warranty", 0)] == [second]

        # delete at once after indexing: its chunks are not searchable yet, and still none is left
        fresh = ingest("Fresh", "Brand new gadget manual.")
        assert api.request("DELETE", f"/v1/documents/{fresh}", key=key).status == 204
        assert api.request("DELETE", f"/v1/documents/{refunds}", key=key).status == 204
        standin.refresh()
        remaining = {source["document_id"] for source in standin.stored(tenant_index).values()}
        assert fresh not in remaining
        assert refunds not in remaining
        assert search("refunds gadget", 0) == []
        assert {r["document_id"] for r in search("refunds gadget", 0.5)}.isdisjoint({fresh, refunds})
    finally:
        adapter.drop_index(tenant_a.tenant_id)


# --- a managed domain -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def osmem_client() -> Iterator[Any]:
    from opensearchpy import OpenSearch
    from osmem_server import OsmemServer

    with OsmemServer.start(freeze=False, japanese=False) as server:
        yield OpenSearch(hosts=[server.url], timeout=30)


def test_the_domain_variant_is_searchable_when_the_call_returns(osmem_client: Any) -> None:
    """osmem-server stands in for a managed domain: custom ids and `refresh=wait_for` are accepted there."""
    domain = OpenSearchIndex(osmem_client, dimension=4, service="es")
    assert domain.visible_at_once is True
    try:
        domain.ensure_index(TENANT)
        old = domain.replace(TENANT, chunks("d00000000000000a", [("old policy text", {}), ("old appendix", {})]), vectors(2), [])
        assert {h.document_id for h in domain.lexical(TENANT, "policy appendix", 10, [])} == {"d00000000000000a"}
        domain.replace(TENANT, chunks("d00000000000000b", [("new policy text", {})]), vectors(1), [IndexedChunks("d00000000000000a", 2)])
        assert {h.document_id for h in domain.lexical(TENANT, "policy appendix text", 10, [])} == {"d00000000000000b"}
        assert len(old) == 2
        domain.delete_document(TENANT, "d00000000000000b", 1)  # no ids needed: the sweep sees every write
        assert domain.lexical(TENANT, "policy", 10, []) == []
    finally:
        domain.drop_index(TENANT)


def test_the_domain_variant_against_the_standin_in_domain_mode() -> None:
    from opensearchpy import OpenSearch

    with running_standin(refresh_interval=None, service="es") as domain_standin:
        domain = OpenSearchIndex(OpenSearch(hosts=[domain_standin.url], timeout=10, max_retries=0), dimension=4, service="es")
        domain.ensure_index(TENANT)
        domain.replace(TENANT, chunks("d000000000000001", [("refunds", {})]), vectors(1), [])
        assert len(domain.lexical(TENANT, "refunds", 10, [])) == 1  # no refresh by the test: wait_for did it
        assert all(params.get("refresh") == ["wait_for"] for _m, path, params in domain_standin.requests if path.endswith("_bulk"))
        domain.delete_document(TENANT, "d000000000000001", 1)
        assert domain.lexical(TENANT, "refunds", 10, []) == []
