"""The query service's result models: one definition, served as-is by the API and its OpenAPI document."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from pydantic import BaseModel

from raas.adapters.queries import DynamoQueryLog, DynamoResponseCache
from raas.domain import answers
from raas.domain.answers import (
    Citation,
    QueryHistoryEntry,
    QueryResponse,
    RetrievalInfo,
    SearchResponse,
    SearchResult,
    Timings,
    Usage,
    snippet,
)
from raas.domain.exports import ExportManifest, ExportResult
from raas.domain.retrieval import Hit
from raas.handlers import query as query_handlers
from raas.handlers import schemas
from raas.handlers.openapi import openapi_document

REF = "#/components/schemas/{model}"


def a_hit(text: str = "Customers may request a refund within 30 days.") -> Hit:
    return Hit(chunk_id="c-1", document_id="d-1", title="Refunds", text=text, position=0, score=0.123456789, metadata={"dept": "support"})


def an_answer(**changes: Any) -> QueryResponse:
    answer = QueryResponse(
        query_id="q-1",
        answer="Within 30 days [1]. Ünïcode ✓",
        citations=[Citation.of(a_hit())],
        model="gpt-4o",
        offline=False,
        config_version=3,
        usage=Usage(prompt_tokens=100, completion_tokens=20, cost_usd=0.00045),
        retrieval=RetrievalInfo(top_k=5, alpha=0.5, reranked=False, screened_out=1),
        cached=False,
        latency_ms=12.5,
        timings=Timings(embedding_ms=1.5, generation_ms=9.0),
    )
    return answer.model_copy(update=changes)


class FakeDynamoTable:
    """Keeps put items and gives them back by key, as get_item does (no conditions or expressions needed here)."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], dict[str, Any]] = {}

    def put_item(self, TableName: str, Item: dict[str, Any]) -> dict[str, Any]:
        self.items[(Item["PK"]["S"], Item["SK"]["S"])] = Item
        return {}

    def get_item(self, TableName: str, Key: dict[str, Any]) -> dict[str, Any]:
        item = self.items.get((Key["PK"]["S"], Key["SK"]["S"]))
        return {"Item": item} if item else {}


def component(document: dict[str, Any], model: type[BaseModel]) -> dict[str, Any]:
    schema: dict[str, Any] = document["components"]["schemas"][model.__name__]
    return schema


def test_the_openapi_answer_is_the_models_schema_referenced_not_restated() -> None:
    document = openapi_document()
    operations = {("/v1/query", "post"): QueryResponse, ("/v1/search", "post"): SearchResponse}
    for (path, method), model in operations.items():
        success = document["paths"][path][method]["responses"]["200"]["content"]["application/json"]["schema"]
        assert success == {"$ref": REF.format(model=model.__name__)}
    # Each model's component is exactly the schema pydantic derives from the one definition.
    for model in (QueryResponse, SearchResponse, Citation, SearchResult, Usage, RetrievalInfo, Timings, QueryHistoryEntry):
        derived = model.model_json_schema(ref_template=REF, mode="serialization")
        derived.pop("$defs", None)
        assert component(document, model) == derived, model.__name__
    # Nested shapes are references to those components, never inline copies.
    query = component(document, QueryResponse)["properties"]
    assert query["citations"]["items"] == {"$ref": REF.format(model="Citation")}
    assert (query["usage"], query["retrieval"], query["timings"]["$ref"]) == (
        {"$ref": REF.format(model="Usage")},
        {"$ref": REF.format(model="RetrievalInfo")},
        REF.format(model="Timings"),
    )
    history = component(document, schemas.QueryHistoryPage)["properties"]["queries"]["items"]
    assert history == {"$ref": REF.format(model="QueryHistoryEntry")}


def test_the_citation_shape_has_one_definition() -> None:
    restated = {"Citation", "SearchResult", "SearchResponse", "Usage", "RetrievalInfo", "QueryResponse", "Timings"}
    assert restated.isdisjoint(vars(schemas))  # the API's schemas module no longer restates them
    document = json.dumps(openapi_document()["components"]["schemas"])
    citation_fields = json.dumps(component(openapi_document(), Citation)["properties"])
    assert document.count(citation_fields) == 1  # no other component carries a copy of the citation
    # The handlers return the service's models themselves.
    assert query_handlers.query.__annotations__["return"] in ("QueryResponse", QueryResponse)
    assert query_handlers.search.__annotations__["return"] in ("SearchResponse", SearchResponse)
    assert query_handlers.QueryResponse is QueryResponse
    assert query_handlers.SearchResponse is SearchResponse


def test_citations_and_results_are_built_from_hits() -> None:
    long_text = "word " * 200
    citation = Citation.of(a_hit(long_text))
    assert (citation.score, citation.snippet) == (0.123457, snippet(long_text))
    assert len(citation.snippet) == answers.SNIPPET_CHARS
    assert citation.snippet.endswith("…")
    result = SearchResult.of(a_hit())
    assert result.model_dump(mode="json") == {
        "document_id": "d-1",
        "chunk_id": "c-1",
        "title": "Refunds",
        "score": 0.123457,
        "snippet": "Customers may request a refund within 30 days.",
        "metadata": {"dept": "support"},
    }


def test_a_cached_answer_round_trips_through_the_model() -> None:
    table = FakeDynamoTable()
    cache = DynamoResponseCache(table, "raas-queries", ttl_seconds=60)
    answer = an_answer()
    cache.put("t-1", "key", answer)
    assert cache.get("t-1", "key") == answer
    assert cache.get("t-2", "key") is None  # another tenant's partition
    # What HEAD stored (json.dumps of the hand-built dict) still reads back as the same answer.
    written_before = json.dumps(answer.model_dump(mode="json"))
    table.items[("TENANT#t-1#", "CACHE#old")] = {
        "PK": {"S": "TENANT#t-1#"},
        "SK": {"S": "CACHE#old"},
        "response": {"S": written_before},
        "expires_at": {"N": str(int(time.time()) + 60)},
    }
    assert cache.get("t-1", "old") == answer


def test_a_cached_answer_of_another_shape_is_a_miss_not_an_error() -> None:
    table = FakeDynamoTable()
    cache = DynamoResponseCache(table, "raas-queries", ttl_seconds=60)
    cache.put("t-1", "key", an_answer())
    stored = table.items[("TENANT#t-1#", "CACHE#key")]
    shape = json.loads(stored["response"]["S"])
    del shape["usage"]
    stored["response"] = {"S": json.dumps(shape)}
    assert cache.get("t-1", "key") is None


def test_history_entries_round_trip_and_cut_long_answers() -> None:
    entry = QueryHistoryEntry.of("2026-01-01T00:00:00+00:00", "refunds?", an_answer(answer="x" * 5000, cached=True))
    assert (len(entry.answer), entry.citations, entry.cached) == (answers.HISTORY_ANSWER_CHARS, ["d-1"], True)
    assert QueryHistoryEntry.model_validate_json(entry.model_dump_json()) == entry
    written_before = {  # the dict HEAD wrote into the history table, key for key
        "query_id": "q-1",
        "at": "2026-01-01T00:00:00+00:00",
        "query": "refunds?",
        "answer": "Within",
        "model": "gpt-4o",
        "citations": ["d-1"],
        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "cost_usd": 0.00045},
        "latency_ms": 12.5,
        "cached": False,
    }
    assert QueryHistoryEntry.model_validate_json(json.dumps(written_before)).model_dump(mode="json") == written_before


@pytest.mark.parametrize("ttl", [0, -1])
def test_the_cache_is_off_without_a_ttl(ttl: int) -> None:
    table = FakeDynamoTable()
    cache = DynamoResponseCache(table, "raas-queries", ttl_seconds=ttl)
    cache.put("t-1", "key", an_answer())
    assert (table.items, cache.get("t-1", "key")) == ({}, None)


def test_the_history_log_writes_the_entry_under_its_query_id() -> None:
    table = FakeDynamoTable()
    entry = QueryHistoryEntry.of("2026-01-01T00:00:00+00:00", "refunds?", an_answer())
    DynamoQueryLog(table, "raas-queries").append("t-1", entry, retention_days=7)
    [(pk, sk)] = table.items
    assert pk == "TENANT#t-1#"
    assert sk.startswith("Q#")
    assert sk.endswith("#q-1")
    assert QueryHistoryEntry.model_validate_json(table.items[(pk, sk)]["entry"]["S"]) == entry


def test_the_export_result_keeps_its_wire_shape_and_is_referenced_in_openapi() -> None:
    written_before = {  # the dict HEAD's ExportService.export returned, key for key
        "key": "exports/20260101T000000Z.zip",
        "url": "https://example.invalid/x",
        "expires_in": 3600,
        "manifest": {
            "tenant_id": "t-1",
            "exported_at": "2026-01-01T00:00:00+00:00",
            "documents": 2,
            "originals": 1,
            "originals_missing": ["d-2"],
            "config_versions": 1,
            "audit_entries": 4,
            "format": 1,
        },
    }
    result = ExportResult.model_validate(written_before)
    assert result.model_dump(mode="json") == written_before
    assert list(result.model_dump(mode="json")["manifest"]) == list(written_before["manifest"])  # type: ignore[call-overload]
    document = openapi_document()
    created = document["paths"]["/v1/export"]["post"]["responses"]["201"]["content"]["application/json"]["schema"]
    assert created == {"$ref": REF.format(model="ExportResult")}
    for model in (ExportResult, ExportManifest):
        derived = model.model_json_schema(ref_template=REF, mode="serialization")
        derived.pop("$defs", None)
        assert component(document, model) == derived
    assert "ExportResult" not in vars(schemas)
