from __future__ import annotations

import pytest

from raas.adapters.search_common import ForeignIndexError, check_index, index_name
from raas.adapters.search_embedded import fts_query
from raas.adapters.search_opensearch import bulk_actions, filter_clauses, index_body, knn_body, lexical_body
from raas.domain.documents import Chunk
from raas.domain.retrieval import parse_filters

TENANT = "t0123456789abcde"


def test_index_names_are_per_tenant_and_guarded() -> None:
    assert index_name(TENANT) == f"tenant_{TENANT}_documents"
    for bad in ("*", "tenant_x_documents", "t0123456789abcde,other", "../x", "T0123456789ABCDE"):
        with pytest.raises(ForeignIndexError):
            index_name(bad)
    with pytest.raises(ForeignIndexError):
        check_index(TENANT, "tenant_t9999999999999999_documents")


def test_fts_query_quotes_terms_so_no_syntax_reaches_sqlite() -> None:
    assert fts_query('What is "NEAR(a b)" OR title:x*?') == '"what" OR "is" OR "near" OR "a" OR "b" OR "or" OR "title" OR "x"'
    assert fts_query("?!") is None


def test_index_body_declares_the_vector_and_metadata_mappings() -> None:
    body = index_body(384)
    properties = body["mappings"]["properties"]
    assert properties["vector"]["type"] == "knn_vector"
    assert properties["vector"]["dimension"] == 384
    assert properties["vector"]["method"]["name"] == "hnsw"
    assert properties["text"]["type"] == "text"
    assert properties["document_id"]["type"] == "keyword"
    assert body["settings"]["index"]["knn"] is True


def test_filters_become_term_terms_and_range_clauses() -> None:
    conditions = parse_filters({"dept": "x", "tags": {"in": ["a"]}, "year": {"gte": 2020}})
    assert filter_clauses(conditions) == [
        {"term": {"metadata.dept": "x"}},
        {"terms": {"metadata.tags": ["a"]}},
        {"range": {"metadata.year": {"gte": 2020}}},
    ]


def test_knn_body_carries_vector_k_and_efficient_filter() -> None:
    body = knn_body([0.1, 0.2], 7, parse_filters({"dept": "x"}))
    assert body["size"] == 7
    assert body["query"]["knn"]["vector"] == {
        "vector": [0.1, 0.2],
        "k": 7,
        "filter": {"bool": {"filter": [{"term": {"metadata.dept": "x"}}]}},
    }
    assert "filter" not in knn_body([0.1], 3, [])["query"]["knn"]["vector"]
    assert "vector" not in body["_source"]  # never ship vectors back


def test_lexical_body_is_a_filtered_bm25_match() -> None:
    body = lexical_body("refund policy", 5, parse_filters({"dept": "x"}))
    assert body["query"]["bool"]["must"][0]["multi_match"]["query"] == "refund policy"
    assert body["query"]["bool"]["filter"] == [{"term": {"metadata.dept": "x"}}]


def test_bulk_actions_delete_old_versions_and_index_new_chunks_in_one_request() -> None:
    chunk = Chunk(chunk_id="dnew000000000000:00000", document_id="dnew000000000000", title="t", text="x", position=0)
    actions = bulk_actions(TENANT, [chunk], [[0.5]], [("dold000000000000", 2)])
    assert [(a["_op_type"], a["_id"]) for a in actions] == [
        ("delete", "dold000000000000:00000"),
        ("delete", "dold000000000000:00001"),
        ("index", "dnew000000000000:00000"),
    ]
    assert {a["_index"] for a in actions} == {index_name(TENANT)}
    assert actions[2]["vector"] == [0.5]


class _BulkClient:
    """Answers the first bulk call with per-item 429s, then accepts."""

    def __init__(self) -> None:
        from types import SimpleNamespace

        from opensearchpy.serializer import JSONSerializer

        self.calls: list[str] = []
        self.transport = SimpleNamespace(serializer=JSONSerializer())

    def bulk(self, body: str, **kwargs: object) -> dict:
        lines = [line for line in body.splitlines() if line.strip()]
        operations = [line for line in lines if line.startswith('{"index"') or line.startswith('{"delete"')]
        self.calls.append(body)
        status = 429 if len(self.calls) == 1 else 201
        items = [
            {
                "index": {
                    "_id": str(i),
                    "status": status,
                    **({"error": {"type": "es_rejected_execution_exception"}} if status == 429 else {}),
                }
            }
            for i in range(len(operations))
        ]
        return {"took": 1, "errors": status == 429, "items": items}


def test_bulk_429s_are_retried_with_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    from raas.adapters.search_opensearch import OpenSearchIndex

    monkeypatch.setattr(time, "sleep", lambda _seconds: None)  # the backoff itself is the library's
    client = _BulkClient()
    chunk = Chunk(chunk_id="d000000000000001:00000", document_id="d000000000000001", title="t", text="x", position=0)
    OpenSearchIndex(client, 1).replace(TENANT, [chunk], [[1.0]], [])
    assert len(client.calls) == 2
