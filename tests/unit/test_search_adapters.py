from __future__ import annotations

import json
from typing import Any

import pytest

from raas.adapters.search_common import ForeignIndexError, check_index, index_name
from raas.adapters.search_embedded import fts_query
from raas.adapters.search_opensearch import delete_actions, filter_clauses, index_actions, index_body, knn_body, lexical_body, sweep_body
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


def test_index_actions_carry_no_id_and_delete_actions_name_the_engine_ids() -> None:
    chunk = Chunk(chunk_id="dnew000000000000:00000", document_id="dnew000000000000", title="t", text="x", position=0)
    [action] = index_actions(TENANT, [chunk], [[0.5]])
    assert "_id" not in action  # Serverless VECTORSEARCH generates ids and refuses ours
    assert (action["_op_type"], action["_index"], action["chunk_id"], action["document_id"], action["vector"]) == (
        "index",
        index_name(TENANT),
        "dnew000000000000:00000",
        "dnew000000000000",
        [0.5],
    )
    assert delete_actions(TENANT, ["b", "a", "b"]) == [
        {"_op_type": "delete", "_index": index_name(TENANT), "_id": "a"},
        {"_op_type": "delete", "_index": index_name(TENANT), "_id": "b"},
    ]


def test_sweep_body_pages_by_chunk_id_inclusively_without_scroll() -> None:
    first = sweep_body("d000000000000001", None, size=50)
    assert first == {
        "size": 50,
        "_source": False,
        "sort": [{"chunk_id": "asc"}],
        "query": {"bool": {"filter": [{"term": {"document_id": "d000000000000001"}}]}},
    }
    later = sweep_body("d000000000000001", "d000000000000001:00049")
    assert later["query"]["bool"]["filter"][1] == {"range": {"chunk_id": {"gte": "d000000000000001:00049"}}}


class _BulkClient:
    """Answers the first bulk call with per-item 429s, then accepts."""

    def __init__(self) -> None:
        from types import SimpleNamespace

        from opensearchpy.serializer import JSONSerializer

        self.calls: list[str] = []
        self.params: list[object] = []
        self.transport = SimpleNamespace(serializer=JSONSerializer())

    def bulk(self, body: str, **kwargs: object) -> dict:
        lines = [line for line in body.splitlines() if line.strip()]
        operations = [line for line in lines if line.startswith('{"index"') or line.startswith('{"delete"')]
        self.calls.append(body)
        self.params.append(dict(kwargs))
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

    def search(self, index: str, body: dict) -> dict:
        return {"hits": {"hits": []}}  # nothing searchable yet: the sweep finds no older chunks


def test_bulk_429s_are_retried_with_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    from raas.adapters.search_opensearch import OpenSearchIndex

    monkeypatch.setattr(time, "sleep", lambda _seconds: None)  # the backoff itself is the library's
    client = _BulkClient()
    chunk = Chunk(chunk_id="d000000000000001:00000", document_id="d000000000000001", title="t", text="x", position=0)
    ids = OpenSearchIndex(client, 1).replace(TENANT, [chunk], [[1.0]], [])
    assert len(client.calls) == 2
    assert ids == ("0",)  # the id the engine answered on the retry


class _SweepingClient(_BulkClient):
    """Accepts bulk writes and answers every search with no hits (a collection that has not refreshed)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls_made = 0

    def bulk(self, body: str, **kwargs: object) -> dict:
        self.calls.append(body)
        self.params.append(dict(kwargs))
        lines = [line for line in body.splitlines() if line.strip() and ('"index"' in line[:10] or '"delete"' in line[:10])]
        op = "delete" if lines and lines[0].startswith('{"delete"') else "index"
        return {"took": 1, "errors": False, "items": [{op: {"_id": f"gen{i}", "status": 201}} for i in range(len(lines))]}


@pytest.mark.parametrize(("service", "params"), [("aoss", {}), ("es", {"refresh": "wait_for"})])
def test_serverless_writes_take_no_refresh_and_a_domain_waits_for_it(service: str, params: dict) -> None:
    from raas.adapters.search_opensearch import OpenSearchIndex

    client = _SweepingClient()
    adapter = OpenSearchIndex(client, 1, service)  # type: ignore[arg-type]
    chunk = Chunk(chunk_id="d000000000000001:00000", document_id="d000000000000001", title="t", text="x", position=0)
    assert adapter.replace(TENANT, [chunk], [[1.0]], []) == ("gen0",)
    adapter.delete_document(TENANT, "d000000000000001", 1, ["gen0"])
    assert client.params == [params, params]
    assert adapter.visible_at_once is (service == "es")
    assert '"_id"' not in client.calls[0]
    assert json.loads(client.calls[1]) == {"delete": {"_index": index_name(TENANT), "_id": "gen0"}}


def test_embedded_replace_answers_chunk_ids_and_drops_the_documents_older_chunks(tmp_path: object) -> None:
    from pathlib import Path

    from raas.adapters.search_embedded import EmbeddedSearch
    from raas.domain.ports import IndexedChunks

    engine = EmbeddedSearch(Path(str(tmp_path)), 2)
    old = [
        Chunk(chunk_id=f"d000000000000001:0000{i}", document_id="d000000000000001", title="t", text=f"old {i}", position=i)
        for i in range(3)
    ]
    engine.replace(TENANT, old, [[1.0, 0.0]] * 3, [])
    new = [Chunk(chunk_id="d000000000000002:00000", document_id="d000000000000002", title="t", text="new", position=0)]
    assert engine.replace(TENANT, new, [[0.0, 1.0]], [IndexedChunks("d000000000000001", 3)]) == ("d000000000000002:00000",)
    assert engine.count(TENANT) == 1
    assert engine.replace(TENANT, new, [[0.0, 1.0]], []) == ("d000000000000002:00000",)  # a re-run replaces, never duplicates
    assert engine.count(TENANT) == 1
    assert engine.visible_at_once is True


# FTS5 ranking every match with its chunk: what the engine's answers are checked against
_FULL_RANKING = (
    "SELECT c.chunk_id, -bm25(chunks_fts, 0.5, 1.0) AS score FROM chunks_fts JOIN chunks c ON c.rowid = chunks_fts.rowid "
    "WHERE chunks_fts MATCH ? ORDER BY score DESC, c.chunk_id LIMIT ?"
)


def test_embedded_lexical_top_k_is_the_full_ranking_even_where_scores_tie(tmp_path: object) -> None:
    """The fast path (top k scored in FTS5, then joined) answers exactly what ranking every match with its
    chunk answers, on an index where most documents tie (same length, few distinct term counts), for
    several k: the window past the k-th holds its ties, and a tie wider than the window falls back."""
    import random

    words = ["otter", "river", "kelp", "tide", "marsh", "heron"]
    search, tenant = _index(tmp_path, [("t", " ".join(random.Random(n).choices(words, k=6))) for n in range(600)])  # noqa: S311
    rng = random.Random(7)  # noqa: S311 - test data
    for k in (1, 5, 20, 40, 200):
        for _ in range(10):
            query = " ".join(rng.sample(words, rng.randint(1, 3)))
            with search._connect(tenant) as db:
                expected = db.execute(_FULL_RANKING, (fts_query(query), k)).fetchall()
            assert [(h.chunk_id, h.score) for h in search.lexical(tenant, query, k, [])] == expected, (k, query)


def _index(tmp_path: object, titles_and_texts: list[tuple[str, str]]) -> tuple[Any, str]:
    """An embedded index of one-chunk documents `doc0000`, `doc0001`... with these titles and texts."""
    from pathlib import Path

    from raas.adapters.search_embedded import EmbeddedSearch

    search = EmbeddedSearch(Path(str(tmp_path)), 2)
    tenant = "tenant0000000001"
    chunks = [
        Chunk(chunk_id=f"doc{n:04d}:0", document_id=f"doc{n:04d}", title=title, text=text, position=0, metadata={})
        for n, (title, text) in enumerate(titles_and_texts)
    ]
    search.replace(tenant, chunks, [[1.0, 0.0]] * len(chunks), [])
    return search, tenant


def _varied_index(tmp_path: object, documents: int = 400) -> tuple[Any, str]:
    """Chunks of different lengths, with stems that meet (run/runs/running), accents, titles that match."""
    import random

    words = ["run", "runs", "running", "café", "cafe", "Otter", "river", "rivers", "kelp", "tide", "naïve", "2024", "x"]
    rng = random.Random(3)  # noqa: S311 - test data
    titles = [" ".join(rng.choices(words, k=rng.randint(0, 3))) for _ in range(documents)]
    return _index(tmp_path, [(title, " ".join(rng.choices(words, k=rng.randint(1, 40)))) for title in titles])


@pytest.mark.parametrize("batch_terms", [200, 3])  # the codes parsed in one batch, or in batches of 3 terms
def test_in_memory_bm25_scores_are_fts5s_own_numbers(tmp_path: object, batch_terms: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Scored from the postings in memory, every query answers exactly FTS5's full ranking: the same chunks,
    the same order (ties by chunk id) and bit-identical scores, with stems that merge two query terms into
    one token counted twice, accents folded, terms nowhere in the index, and several k."""
    import random

    from raas.adapters import fts5_bm25
    from raas.adapters.fts5_bm25 import QueryTokens, read_postings
    from raas.adapters.search_embedded import _WEIGHTS, query_terms

    monkeypatch.setattr(fts5_bm25, "PARSE_BATCH_TERMS", batch_terms)
    search, tenant = _varied_index(tmp_path)
    tokens = QueryTokens()
    with search._connect(tenant) as db:
        postings = read_postings(db, "chunks_fts", _WEIGHTS, 0)
        chunk_of = dict(db.execute("SELECT rowid, chunk_id FROM chunks"))
        rng = random.Random(11)  # noqa: S311 - test data
        vocabulary = ["run", "running", "Runs", "CAFE", "café", "otter", "rivers", "kelp", "tide", "naive", "2024", "absent", "x"]
        queries = ["run running", "café cafe", "absent", "x", *(" ".join(rng.choices(vocabulary, k=rng.randint(1, 5))) for _ in range(60))]
        for query in queries:
            phrases = [t[0] for t in tokens.of(query_terms(query))]
            for k in (1, 7, 40, 500):
                expected = db.execute(_FULL_RANKING, (fts_query(query), k)).fetchall()
                assert [(chunk_of[rowid], score) for rowid, score in postings.top(phrases, k)] == expected, (query, k)


def test_the_embedded_engine_reads_postings_for_a_stable_index_and_never_answers_from_old_ones(tmp_path: object) -> None:
    """A new index version is answered by FTS5 first; the postings are read once the version is stable and
    FTS5 has spent what reading them cost; a write that only adds chunks is applied to them at once; any other
    write makes the answers FTS5's again, with the write in them, until reading everything is worth it."""
    search, tenant = _varied_index(tmp_path, documents=60)
    lexicons = search._lexicons

    def answer(query: str, k: int = 5) -> list[tuple[str, float]]:
        hits = [(h.chunk_id, h.score) for h in search.lexical(tenant, query, k, [])]
        with search._connect(tenant) as db:
            assert hits == db.execute(_FULL_RANKING, (fts_query(query), k)).fetchall()
        return hits

    answer("otter kelp")
    assert lexicons[tenant].postings is None  # first sight of this version: FTS5
    answer("river tide")  # worth reading now: FTS5 still answers, while a thread reads them
    search.wait_for_postings(tenant)
    read_once = lexicons[tenant].postings
    assert read_once is not None
    answer("running café")
    assert lexicons[tenant].postings is read_once  # served from memory, not read again

    added = Chunk(chunk_id="new0000000000001:0", document_id="new0000000000001", title="", text="kelp kelp kelp", position=0)
    search.replace(tenant, [added], [[0.0, 1.0]], [])
    lexicons[tenant].read_seconds = 3600.0  # reading everything is dear now, extending is not
    assert answer("kelp", 1)[0][0] == "new0000000000001:0"  # FTS5, while the added chunk is applied
    search.wait_for_postings(tenant)
    extended = lexicons[tenant].postings
    assert extended is not None
    assert extended.version == read_once.version + 1
    assert answer("kelp", 1)[0][0] == "new0000000000001:0"
    assert lexicons[tenant].postings is extended  # from memory, with the added chunk in it

    search.delete_document(tenant, "doc0003", 1)  # a chunk the postings hold is gone: extending cannot tell
    answer("kelp")
    answer("kelp tide")
    search.wait_for_postings(tenant)
    assert lexicons[tenant].postings is extended  # FTS5 keeps answering until it has spent what a reading costs
    lexicons[tenant].read_seconds = 0.0
    answer("kelp")
    search.wait_for_postings(tenant)
    assert lexicons[tenant].postings is not extended
    assert lexicons[tenant].postings.version == extended.version + 1


def test_postings_extended_by_added_chunks_are_the_numbers_a_full_reading_gives(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks added in several writes (stems, accents, titles, a document of three chunks, an empty write) extend the
    postings in memory without reading the index again, and the result is bit for bit what reading it gives: rows,
    chunk id ranks, lengths, norms (the mean length moved), every term's rows and frequencies; the answers are
    FTS5's full ranking."""
    import random

    from raas.adapters import search_embedded
    from raas.adapters.fts5_bm25 import QueryTokens, read_postings
    from raas.adapters.search_embedded import _WEIGHTS, query_terms

    search, tenant = _varied_index(tmp_path, documents=120)
    search.warm(tenant)
    full_readings: list[int] = []

    def counted(*args: Any) -> Any:
        full_readings.append(1)
        return read_postings(*args)

    monkeypatch.setattr(search_embedded, "read_postings", counted)
    words = ["run", "runs", "running", "café", "cafe", "Otter", "river", "kelp", "tide", "naïve", "2024", "x", "newword", "Zebra"]
    rng = random.Random(5)  # noqa: S311 - test data
    for write in range(6):
        chunks = [
            Chunk(
                chunk_id=f"add{write:02d}{n:010d}:{position}",
                document_id=f"add{write:02d}{n:010d}",
                title=" ".join(rng.choices(words, k=rng.randint(0, 3))),
                text=" ".join(rng.choices(words, k=rng.randint(1, 30))),
                position=position,
            )
            for n in range(write)  # the first write adds nothing
            for position in range(3 if n == 1 else 1)
        ]
        search.replace(tenant, chunks, [[1.0, 0.0]] * len(chunks), [])
        search.lexical(tenant, "kelp", 5, [])
        search.wait_for_postings(tenant)
    assert full_readings == []
    ours = search._lexicons[tenant].postings
    tokens = QueryTokens()
    with search._connect(tenant) as db:
        version = int(db.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()[0])
        seq = int(db.execute("SELECT max(seq) FROM changes").fetchone()[0])
        theirs = read_postings(db, "chunks_fts", _WEIGHTS, version, seq)
        assert (ours.version, ours.seq) == (theirs.version, theirs.seq)
        for name in ("rowids", "id_rank", "lengths", "norms", "chunk_ids"):
            assert getattr(ours, name).tolist() == getattr(theirs, name).tolist(), name
        assert sorted(ours.terms) == sorted(theirs.terms)
        for term, (positions, freq) in theirs.terms.items():
            assert (ours.terms[term][0].tolist(), ours.terms[term][1].tolist()) == (positions.tolist(), freq.tolist()), term
        chunk_of = dict(db.execute("SELECT rowid, chunk_id FROM chunks"))
        for query in ["running newword", "zebra café", "x", *(" ".join(rng.choices(words, k=rng.randint(1, 4))) for _ in range(30))]:
            phrases = [t[0] for t in tokens.of(query_terms(query))]
            for k in (1, 10, 500):
                expected = db.execute(_FULL_RANKING, (fts_query(query), k)).fetchall()
                assert [(chunk_of[rowid], score) for rowid, score in ours.top(phrases, k)] == expected, (query, k)


def test_postings_of_another_index_in_the_same_file_are_never_extended(tmp_path: object) -> None:
    """The change log restarts with a new index: postings whose last row is not in the file any more (or is another
    chunk) are read again, not extended."""
    from dataclasses import replace

    import numpy as np

    from raas.adapters.search_embedded import _only_appended

    search, tenant = _varied_index(tmp_path, documents=10)
    search.warm(tenant)
    postings = search._lexicons[tenant].postings
    with search._connect(tenant) as db:
        assert _only_appended(db, postings)
        assert not _only_appended(db, replace(postings, chunk_ids=np.append(postings.chunk_ids[:-1], "other:0")))
        assert not _only_appended(db, replace(postings, rowids=postings.rowids + 100))


def test_the_postings_are_read_on_a_thread_of_their_own_while_fts5_answers_the_queries(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading the postings took 7.5 s at 10,000 SciFact abstracts, inside whichever query triggered it: a query
    never waits for it now."""
    import threading

    from raas.adapters import search_embedded

    search, tenant = _varied_index(tmp_path, documents=30)
    reading, release = threading.Event(), threading.Event()
    read_postings = search_embedded.read_postings

    def slow_reading(*args: Any) -> Any:
        reading.set()
        assert release.wait(30)
        return read_postings(*args)

    monkeypatch.setattr(search_embedded, "read_postings", slow_reading)
    search.lexical(tenant, "otter kelp", 5, [])  # first sight of this version: FTS5
    search.lexical(tenant, "river tide", 5, [])  # worth reading now: the reading starts, FTS5 answers
    assert reading.wait(10)
    hits = [(h.chunk_id, h.score) for h in search.lexical(tenant, "kelp tide", 5, [])]  # while the reading waits
    with search._connect(tenant) as db:
        assert hits == db.execute(_FULL_RANKING, (fts_query("kelp tide"), 5)).fetchall()
    assert search._lexicons[tenant].postings is None
    release.set()
    search.wait_for_postings(tenant)
    assert search._lexicons[tenant].postings is not None


def test_warming_reads_the_postings_and_vectors_so_the_first_query_scores_in_memory(tmp_path: object) -> None:
    """`raas local` warms its larger indexes at start: a restarted tenant's first queries are not served from FTS5
    while a reading competes with them (the first 15 s after a restart at 10,000 SciFact abstracts: p99 154 ms)."""
    search, tenant = _varied_index(tmp_path, documents=30)
    fresh = type(search)(search.directory, search.dimension)  # a restarted process: the same files, nothing in memory
    assert fresh.warm(tenant) is True
    assert fresh._lexicons[tenant].postings is not None
    assert tenant in fresh._matrices
    hits = [(h.chunk_id, h.score) for h in fresh.lexical(tenant, "kelp tide", 5, [])]  # the first query: in memory
    assert fresh._lexicons[tenant].fts5_seconds == 0.0
    with fresh._connect(tenant) as db:
        assert hits == db.execute(_FULL_RANKING, (fts_query("kelp tide"), 5)).fetchall()
    assert fresh.warm("tenant0000000002") is False
    assert not fresh._path("tenant0000000002").exists()  # warming never creates an index


def test_a_term_the_tokenizer_splits_is_left_to_fts5s_phrase_query(tmp_path: object) -> None:
    from raas.adapters.fts5_bm25 import QueryTokens

    assert QueryTokens().of(["foo_bar", "running", "café"]) == [("foo", "bar"), ("run",), ("cafe",)]
    search, tenant = _varied_index(tmp_path, documents=30)
    for _ in range(3):  # the postings are read by now, yet a split term is FTS5's
        hits = search.lexical(tenant, "river_kelp tide", 5, [])
        with search._connect(tenant) as db:
            assert [(h.chunk_id, h.score) for h in hits] == db.execute(_FULL_RANKING, (fts_query("river_kelp tide"), 5)).fetchall()


def test_the_vectors_in_memory_follow_every_write_by_reading_only_what_changed(tmp_path: object) -> None:
    """After inserts, a replaced document, a deleted document and a rowid SQLite hands out again (the last row
    deleted, then a new one), the vectors kept in memory and updated from the change log are exactly a fresh
    reading of the index: the same rows, the same vectors, the same semantic answers."""
    import random
    from pathlib import Path

    from raas.adapters.search_embedded import EmbeddedSearch
    from raas.domain.ports import IndexedChunks

    rng = random.Random(5)  # noqa: S311 - test data
    search = EmbeddedSearch(Path(str(tmp_path)), 3)
    tenant = "tenant0000000001"

    def chunks(document: str, count: int) -> tuple[list[Chunk], list[list[float]]]:
        made = [Chunk(chunk_id=f"{document}:{i}", document_id=document, title="t", text=f"text {i}", position=i) for i in range(count)]
        return made, [[rng.uniform(-1, 1) for _ in range(3)] for _ in made]

    def matches_a_fresh_reading() -> None:
        query = [rng.uniform(-1, 1) for _ in range(3)]
        kept = search._matrix(tenant)
        fresh = EmbeddedSearch(Path(str(tmp_path)), 3)
        again = fresh._matrix(tenant)
        assert sorted(zip(kept.rowids, kept.ids, map(bytes, kept.vectors), strict=True)) == sorted(
            zip(again.rowids, again.ids, map(bytes, again.vectors), strict=True)
        )
        assert search.semantic(tenant, query, 50, []) == fresh.semantic(tenant, query, 50, [])

    for n in range(6):
        search.replace(tenant, *chunks(f"doc{n}", 3), [])
    matches_a_fresh_reading()
    search.replace(tenant, *chunks("doc7", 2), [])  # inserts
    matches_a_fresh_reading()
    search.replace(tenant, *chunks("doc2", 1), [])  # a re-run replaces the document's chunks
    matches_a_fresh_reading()
    search.replace(tenant, *chunks("doc8", 2), [IndexedChunks("doc3", 3)])  # a new version replaces an old one
    search.delete_document(tenant, "doc1", 3)
    matches_a_fresh_reading()
    search.delete_document(tenant, "doc8", 2)  # the highest rowids go, and the next insert takes them again
    search.replace(tenant, *chunks("doc9", 2), [])
    matches_a_fresh_reading()


def test_an_index_written_before_the_change_log_gains_it_before_it_is_read(tmp_path: object) -> None:
    """A state directory from an earlier version has no change log: the first connection adds it, so the
    writes that follow are logged and the vectors in memory still follow them."""
    import sqlite3

    search, tenant = _index(tmp_path, [("t", "otter"), ("t", "river")])
    path = search._path(tenant)
    with sqlite3.connect(path) as db:
        db.executescript("DROP TRIGGER chunks_log_ai; DROP TRIGGER chunks_log_ad; DROP TABLE changes;")
    older = type(search)(path.parent, 2)  # a new process on the old file
    assert [h.chunk_id for h in older.semantic(tenant, [1.0, 0.0], 5, [])] == ["doc0000:0", "doc0001:0"]
    older.delete_document(tenant, "doc0000", 1)
    assert [h.chunk_id for h in older.semantic(tenant, [1.0, 0.0], 5, [])] == ["doc0001:0"]


def test_the_embedded_engine_keeps_each_index_file_open_so_a_write_is_no_checkpoint(tmp_path: object) -> None:
    """SQLite checkpoints a WAL database and deletes its WAL when the last connection closes: with a connection
    per operation, every write was a checkpoint. A kept connection leaves the WAL in place between writes; a
    file dropped by another process (another engine on the same directory) is let go and the new one kept."""
    from pathlib import Path

    from raas.adapters.search_embedded import EmbeddedSearch

    search, tenant = _index(tmp_path, [("Refunds", "within thirty days")])
    path = Path(str(tmp_path)) / f"{index_name(tenant)}.sqlite"
    wal = Path(f"{path}-wal")
    assert wal.exists()  # the write's connection closed, the kept one holds the WAL
    chunk = Chunk(chunk_id="doc0001:0", document_id="doc0001", title="Shipping", text="five days", position=0, metadata={})
    search.replace(tenant, [chunk], [[0.0, 1.0]], [])
    assert wal.exists()
    assert [hit.chunk_id for hit in search.lexical(tenant, "shipping", 5, [])] == ["doc0001:0"]

    other_process = EmbeddedSearch(Path(str(tmp_path)), 2)
    other_process.drop_index(tenant)
    other_process.replace(tenant, [chunk], [[0.0, 1.0]], [])  # a new file at the same path
    search.replace(tenant, [chunk.model_copy(update={"chunk_id": "doc0002:0", "document_id": "doc0002"})], [[0.0, 1.0]], [])
    assert {hit.chunk_id for hit in other_process.lexical(tenant, "shipping", 5, [])} == {"doc0001:0", "doc0002:0"}

    search.close()
    other_process.close()
    assert not wal.exists()  # the last close checkpointed it into the database
    assert other_process.count(tenant) == 2


def _open_files(path: object) -> int:
    """How many of this process's descriptors point at `path` (Linux: /proc/self/fd)."""
    import os

    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == str(path):
                count += 1
        except OSError:  # the descriptor listing itself, closed meanwhile
            continue
    return count


def test_a_thread_keeps_one_connection_per_index_and_its_reads_see_every_later_write(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection per operation cost a dozen system calls twice a query, each one a hand-over of the interpreter
    lock under load. A thread's connection is kept between uses, and no use leaves it inside a read snapshot: a
    write made since, on another thread, is seen at once."""
    import sqlite3
    import threading

    search, tenant = _index(tmp_path, [("Refunds", "within thirty days")])
    opened_by: list[str] = []
    connect = sqlite3.connect

    def recorded(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        opened_by.append(threading.current_thread().name)
        return connect(*args, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", recorded)
    me = threading.current_thread().name
    for _ in range(5):
        assert [hit.chunk_id for hit in search.lexical(tenant, "refunds", 5, [])] == ["doc0000:0"]
        assert [hit.chunk_id for hit in search.semantic(tenant, [1.0, 0.0], 5, [])] == ["doc0000:0"]
        assert search.count(tenant) == 1
    search.wait_for_postings(tenant)  # a reading of the postings runs on a thread of its own, with its own connection
    assert me not in opened_by  # the thread that wrote the index reads through the connection it wrote with

    shipping = Chunk(chunk_id="doc0001:0", document_id="doc0001", title="Shipping", text="refunds ship in 5 days", position=0, metadata={})
    writer = threading.Thread(target=search.replace, args=(tenant, [shipping], [[0.0, 1.0]], []), name="writer")
    writer.start()
    writer.join()
    assert opened_by.count("writer") == 1
    assert {hit.chunk_id for hit in search.lexical(tenant, "refunds", 5, [])} == {"doc0000:0", "doc0001:0"}
    assert [hit.chunk_id for hit in search.semantic(tenant, [0.0, 1.0], 1, [])] == ["doc0001:0"]
    assert search.count(tenant) == 2
    search.wait_for_postings(tenant)
    assert me not in opened_by


def test_a_dropped_index_is_never_read_through_a_connection_kept_from_before(tmp_path: object) -> None:
    """A new file at the same path may get the dropped one's inode; the drop itself retires every kept connection."""
    search, tenant = _index(tmp_path, [("Refunds", "within thirty days")])
    assert search.count(tenant) == 1
    search.drop_index(tenant)
    assert search.count(tenant) == 0
    chunk = Chunk(chunk_id="doc0009:0", document_id="doc0009", title="Shipping", text="five days", position=0, metadata={})
    search.replace(tenant, [chunk], [[0.0, 1.0]], [])
    assert search.lexical(tenant, "refunds", 5, []) == []
    assert [hit.chunk_id for hit in search.lexical(tenant, "shipping", 5, [])] == ["doc0009:0"]
    assert search.count(tenant) == 1


def test_a_use_that_raises_gives_its_connection_up_and_the_next_one_works(tmp_path: object) -> None:
    search, tenant = _index(tmp_path, [("Refunds", "within thirty days")])

    def fail_inside_a_use() -> None:
        with search._connect(tenant) as db:
            db.execute("BEGIN")
            raise RuntimeError("a failure inside a use")

    with pytest.raises(RuntimeError):
        fail_inside_a_use()
    assert search.count(tenant) == 1
    assert [hit.chunk_id for hit in search.lexical(tenant, "refunds", 5, [])] == ["doc0000:0"]


def _watch_index_connections(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Weak references to every connection opened to an index file from now on (the tokenizer's scratch database in
    memory is left out). sqlite3.Connection cannot be referred to weakly; a subclass of it can."""
    import sqlite3
    import weakref

    class Watched(sqlite3.Connection):
        pass

    opened: list[weakref.ref[sqlite3.Connection]] = []
    connect = sqlite3.connect

    def watched(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        connection = connect(*args, **kwargs, factory=Watched)
        if str(args[0]).endswith(".sqlite"):
            opened.append(weakref.ref(connection))
        return connection

    monkeypatch.setattr(sqlite3, "connect", watched)
    return opened


def test_the_connections_of_finished_threads_close_and_close_closes_the_others(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    """Request threads come and go (one per HTTP connection): what a finished thread kept must not stay open. (SQLite
    itself may park a closed connection's descriptor while others of the process hold the file, so the connections
    are watched, not the descriptors; once the engine closes, no descriptor is left.)"""
    import gc
    import threading
    from pathlib import Path

    search, tenant = _index(tmp_path, [("Refunds", "within thirty days")])
    path = Path(str(tmp_path)) / f"{index_name(tenant)}.sqlite"
    opened = _watch_index_connections(monkeypatch)
    for _ in range(20):
        reader = threading.Thread(target=search.count, args=(tenant,))
        reader.start()
        reader.join()
    gc.collect()
    assert len(opened) == 20
    assert [ref for ref in opened if ref() is not None] == []  # each finished thread's connection was let go

    ready, parked = threading.Event(), threading.Event()

    def hold() -> None:
        search.count(tenant)
        ready.set()
        parked.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()  # a thread still alive at close, holding its kept connection
    try:
        assert ready.wait(10)
        search.close()
        assert _open_files(path) == 0
        assert not Path(f"{path}-wal").exists()  # the last close checkpointed the WAL into the database
    finally:
        parked.set()
        holder.join()
    assert search.count(tenant) == 1  # usable again after a close: a closed connection is replaced


def test_a_thread_keeps_connections_to_the_indexes_it_used_last_only(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    """A thread that walks every tenant (reconciliation at start) must not keep a connection to each: beside the one
    idle connection the engine holds to each file, a thread keeps its 8 most recently used."""
    import gc
    import sqlite3
    import weakref
    from pathlib import Path

    from raas.adapters.search_embedded import EmbeddedSearch

    opened = _watch_index_connections(monkeypatch)
    search = EmbeddedSearch(Path(str(tmp_path)), 2)
    tenants = [f"tenant{n:010d}" for n in range(20)]
    for n, tenant in enumerate(tenants):
        chunk = Chunk(chunk_id=f"doc{n:04d}:0", document_id=f"doc{n:04d}", title="t", text=f"words of tenant {n}", position=0, metadata={})
        search.replace(tenant, [chunk], [[1.0, 0.0]], [])
    for tenant in tenants:
        assert search.count(tenant) == 1
    gc.collect()

    def is_open(ref: weakref.ref[sqlite3.Connection]) -> bool:
        connection = ref()
        if connection is None:
            return False
        try:
            connection.execute("SELECT 1")
        except sqlite3.ProgrammingError:  # closed
            return False
        return True

    assert sum(map(is_open, opened)) == len(tenants) + 8  # the idle one to each file, and this thread's 8
    assert [hit.chunk_id for hit in search.lexical(tenants[0], "words", 5, [])] == ["doc0000:0"]  # reopened when needed
    search.close()
