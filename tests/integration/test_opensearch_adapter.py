"""The OpenSearch adapter over real HTTP against osmem-server (an OpenSearch-compatible server).

osmem supports index management, _bulk, match/bool/term/terms/range; it does not support
k-NN queries, so vector search against OpenSearch is covered by the request-body unit tests
(tests/unit/test_search_adapters.py) and here only the lexical side runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from raas import wiring
from raas.adapters.search_common import ForeignIndexError, index_name
from raas.adapters.search_opensearch import OpenSearchIndex
from raas.domain.documents import Chunk
from raas.domain.retrieval import parse_filters
from raas.local.events import QueuePump
from tests.conftest import TenantHandle
from tests.helpers import ApiClient, expect

TENANT = "t0123456789abcde"
OTHER = "tzzzzzzzzzzzzzzz"


@pytest.fixture(scope="module")
def opensearch_client() -> Iterator[Any]:
    from opensearchpy import OpenSearch
    from osmem_server import OsmemServer

    with OsmemServer.start(freeze=False, japanese=False) as server:
        yield OpenSearch(hosts=[server.url], timeout=30)


@pytest.fixture
def index(opensearch_client: Any) -> Iterator[OpenSearchIndex]:
    adapter = OpenSearchIndex(opensearch_client, dimension=4, refresh=True)
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


def test_index_lifecycle_bulk_bm25_filters_and_delete(index: OpenSearchIndex, opensearch_client: Any) -> None:
    index.ensure_index(TENANT)
    index.ensure_index(TENANT)  # idempotent
    mapping = opensearch_client.indices.get_mapping(index=index_name(TENANT))[index_name(TENANT)]["mappings"]
    assert mapping["properties"]["vector"]["type"] == "knn_vector"
    docs = chunks(
        "d000000000000001",
        [
            ("refunds within thirty days of purchase", {"dept": "support", "year": 2024, "tags": ["money", "policy"]}),
            ("shipping worldwide in five days", {"dept": "logistics", "year": 2020, "tags": ["delivery"]}),
            ("refunds for shipping damage", {"dept": "logistics", "year": 2023, "tags": ["money"]}),
        ],
    )
    index.replace(TENANT, docs, vectors(3), [])
    assert next(h.chunk_id for h in index.lexical(TENANT, "refunds", 10, [])) in {"d000000000000001:00000", "d000000000000001:00002"}
    assert {h.chunk_id for h in index.lexical(TENANT, "refunds shipping", 10, parse_filters({"dept": "logistics"}))} == {
        "d000000000000001:00001",
        "d000000000000001:00002",
    }
    assert {h.position for h in index.lexical(TENANT, "refunds shipping", 10, parse_filters({"year": {"gte": 2021, "lte": 2023}}))} == {2}
    assert {h.position for h in index.lexical(TENANT, "refunds shipping", 10, parse_filters({"tags": {"in": ["delivery"]}}))} == {1}
    hit = index.lexical(TENANT, "thirty", 1, [])[0]
    assert (hit.title, hit.metadata["dept"], hit.text) == ("Doc", "support", "refunds within thirty days of purchase")
    index.delete_document(TENANT, "d000000000000001", 3)
    assert index.lexical(TENANT, "refunds", 10, []) == []


def test_replace_swaps_versions_in_one_bulk_request(index: OpenSearchIndex) -> None:
    index.ensure_index(TENANT)
    index.replace(TENANT, chunks("d00000000000000a", [("old policy text", {}), ("old appendix", {})]), vectors(2), [])
    index.replace(TENANT, chunks("d00000000000000b", [("new policy text", {})]), vectors(1), [("d00000000000000a", 2)])
    assert {h.document_id for h in index.lexical(TENANT, "policy appendix text", 10, [])} == {"d00000000000000b"}


def test_tenants_have_separate_indexes_and_foreign_names_are_refused(index: OpenSearchIndex) -> None:
    index.ensure_index(TENANT)
    index.ensure_index(OTHER)
    index.replace(OTHER, chunks("d00000000000000c", [("other tenant's secret plan", {})]), vectors(1), [])
    assert index.lexical(TENANT, "secret plan", 10, []) == []
    assert len(index.lexical(OTHER, "secret plan", 10, [])) == 1
    for bad in ("*", f"{TENANT},{OTHER}", "_all", f"tenant_{OTHER}_documents"):
        with pytest.raises(ForeignIndexError):
            index.lexical(bad, "secret", 10, [])


def test_the_whole_pipeline_runs_on_opensearch(
    api: ApiClient, tenant_a: TenantHandle, ingest_queue: QueuePump, opensearch_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    adapter = OpenSearchIndex(opensearch_client, dimension=wiring.embedder().dimension, refresh=True)
    monkeypatch.setattr(wiring, "search_index", lambda: adapter)
    for factory in (wiring.ingest_service, wiring.query_service, wiring.document_service):
        factory.cache_clear()
    accepted = expect(
        api.request("POST", "/v1/documents", key=tenant_a.admin_key, json_body={"title": "Policy", "text": "Refunds within 30 days."}), 202
    )
    ingest_queue.drain()
    assert expect(api.request("GET", f"/v1/documents/{accepted['document_id']}", key=tenant_a.admin_key), 200)["status"] == "indexed"
    results = expect(api.request("POST", "/v1/search", key=tenant_a.admin_key, json_body={"query": "refunds", "alpha": 0}), 200)["results"]
    assert results[0]["document_id"] == accepted["document_id"]
    assert api.request("DELETE", f"/v1/documents/{accepted['document_id']}", key=tenant_a.admin_key).status == 204
    assert (
        expect(api.request("POST", "/v1/search", key=tenant_a.admin_key, json_body={"query": "refunds", "alpha": 0}), 200)["results"] == []
    )
    adapter.drop_index(tenant_a.tenant_id)
