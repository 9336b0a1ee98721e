"""OpenSearch adapter (Serverless collections and managed domains), via opensearch-py.

Request bodies are built by pure functions so they can be checked without a cluster; the
client is created once per container with SigV4 auth. Every call names the index itself,
from the tenant id, through `index_name`, which refuses anything else.

What AWS documents, and what this adapter does about it:

- A Serverless VECTORSEARCH collection generates document ids: `PUT <index>/_doc/<id>`,
  `_create/<id>` and `_update/<id>` are "for search collection types only"
  (https://docs.aws.amazon.com/opensearch-service/latest/developerguide/serverless-genref.html), VECTORSEARCH
  collections get "Server-generated IDs" (https://docs.aws.amazon.com/solutions/latest/migration-assistant-for-amazon-opensearch-service/mts-collection-types.html),
  and a bulk `index` with an `_id` is refused per item with 400 `illegal_argument_exception` "Document ID is not
  supported in create/index operation request" (https://github.com/opensearch-project/opensearch-py/issues/792).
  So chunks are written without `_id` (on domains too: one write path) and `chunk_id`/`document_id` are fields;
  nothing is ever updated or upserted.
- Serverless lists neither `_refresh` nor `_delete_by_query` among its operations (serverless-genref above;
  both answer 404 there: https://github.com/opensearch-project/opensearch-py/issues/646,
  https://github.com/opensearch-project/opensearch-java/issues/1112), and `_bulk` takes no `refresh` parameter
  (only `timeout`: https://github.com/opensearch-project/opensearch-spark/issues/634). Removal is therefore a
  search by `document_id` for the ids, then bulk `delete` actions by id (`DELETE <index>/_doc/<id>` and `_bulk`
  are supported for every collection type).
- A Serverless write becomes searchable only at the collection's refresh: "The refresh interval for indexes on
  vector search collections is 60 seconds" (Classic), NextGen collections "have a read-after-write latency
  (`refresh_interval`) of 10 seconds"
  (https://docs.aws.amazon.com/opensearch-service/latest/developerguide/serverless-vector-search.html).
  A managed domain takes `refresh=wait_for` on `_bulk`, which returns once the writes are searchable
  (https://docs.opensearch.org/latest/api-reference/document-apis/bulk/); the domain variant uses it, so there
  `visible_at_once` is true.

Why no chunk is left behind although a search by `document_id` misses what was written less than a refresh
interval ago: every removal deletes, besides what that search finds, the ids the collection returned when the
chunks were written (`IndexedChunks.engine_ids`, which the services keep next to the document's bytes until the
document goes); a `replace` that fails after writing deletes what it wrote, by id, before it raises; and what
an attempt wrote but could not report (a crash between the bulk call and the receipt) is found by the next
attempt's search by `document_id`, which runs after the ingest queue's visibility timeout (30 minutes, far past
any refresh interval). Deleting an id twice is harmless: a missing document is a 404 item, which is ignored.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal

from aws_lambda_powertools import Logger

from raas.adapters.search_common import index_name
from raas.domain.documents import Chunk
from raas.domain.errors import GatewayTimeout, ServiceUnavailable
from raas.domain.ports import IndexedChunks
from raas.domain.retrieval import Condition, Hit

logger = Logger(service="raas")
_SOURCE_FIELDS = ["chunk_id", "document_id", "title", "text", "position", "metadata"]
SWEEP_PAGE = 1000  # ids fetched per search while collecting a document's chunks (under max_result_window)
BULK_CHUNK = 200
# Under the smallest HTTP payload limit a raas search engine has: 10 MiB on the starter profile's
# t3.small.search (https://docs.aws.amazon.com/opensearch-service/latest/developerguide/limits.html);
# 200 chunks of 1,536-dimension vectors come to 6-7 MB, so long texts could otherwise cross it.
BULK_MAX_BYTES = 9 * 1024 * 1024

Service = Literal["aoss", "es"]


def index_body(dimension: int) -> dict[str, Any]:
    return {
        "settings": {"index": {"knn": True}},
        "mappings": {
            "dynamic": "strict",
            "properties": {
                "chunk_id": {"type": "keyword"},
                "document_id": {"type": "keyword"},
                "title": {"type": "text"},
                "text": {"type": "text"},
                "position": {"type": "integer"},
                # metadata fields: strings as keywords (exact filters), numbers and booleans as such
                "metadata": {"type": "object", "dynamic": True},
                "vector": {
                    "type": "knn_vector",
                    "dimension": dimension,
                    "method": {
                        "name": "hnsw",
                        "engine": "faiss",
                        "space_type": "innerproduct",
                        "parameters": {"m": 16, "ef_construction": 128},
                    },
                },
            },
            "dynamic_templates": [
                {"metadata_strings": {"path_match": "metadata.*", "match_mapping_type": "string", "mapping": {"type": "keyword"}}}
            ],
        },
    }


def filter_clauses(conditions: list[Condition]) -> list[dict[str, Any]]:
    clauses: list[dict[str, Any]] = []
    for condition in conditions:
        field = f"metadata.{condition.field}"
        if condition.op == "eq":
            clauses.append({"term": {field: condition.value}})
        elif condition.op == "in":
            clauses.append({"terms": {field: condition.value}})
        else:
            clauses.append({"range": {field: dict(condition.value)}})
    return clauses


def lexical_body(query: str, k: int, conditions: list[Condition]) -> dict[str, Any]:
    return {
        "size": k,
        "_source": _SOURCE_FIELDS,
        "query": {
            "bool": {
                "must": [{"multi_match": {"query": query, "fields": ["text", "title^0.5"]}}],
                "filter": filter_clauses(conditions),
            }
        },
    }


def knn_body(vector: list[float], k: int, conditions: list[Condition]) -> dict[str, Any]:
    knn: dict[str, Any] = {"vector": vector, "k": k}
    if conditions:
        knn["filter"] = {"bool": {"filter": filter_clauses(conditions)}}
    return {"size": k, "_source": _SOURCE_FIELDS, "query": {"knn": {"vector": knn}}}


def index_actions(tenant_id: str, chunks: list[Chunk], vectors: list[list[float]]) -> list[dict[str, Any]]:
    """Bulk `index` actions for new chunks: no `_id` (the collection generates it), the chunk id is a field."""
    index = index_name(tenant_id)
    return [
        {"_op_type": "index", "_index": index, **chunk.model_dump(mode="json"), "vector": vector}
        for chunk, vector in zip(chunks, vectors, strict=True)
    ]


def delete_actions(tenant_id: str, engine_ids: Iterable[str]) -> list[dict[str, Any]]:
    index = index_name(tenant_id)
    return [{"_op_type": "delete", "_index": index, "_id": engine_id} for engine_id in sorted(set(engine_ids))]


def sweep_body(document_id: str, after: str | None, size: int = SWEEP_PAGE) -> dict[str, Any]:
    """One page of a document's chunk ids, in `chunk_id` order.

    Pages continue from the last `chunk_id` *inclusive* (a range, not `search_after`): two chunks can share a
    `chunk_id` (a re-run that wrote the document again), and `search_after` would skip the twin that fell on the
    next page. The caller drops ids it has already seen. No scroll: Serverless does not offer it."""
    filters: list[dict[str, Any]] = [{"term": {"document_id": document_id}}]
    if after is not None:
        filters.append({"range": {"chunk_id": {"gte": after}}})
    return {"size": size, "_source": False, "sort": [{"chunk_id": "asc"}], "query": {"bool": {"filter": filters}}}


def chunk_page_body(document_id: str, after_position: int | None, size: int) -> dict[str, Any]:
    """One page of a document's chunks in position order, continuing after `after_position` (keyset paging).

    Not `from`/`size` (a page past `index.max_result_window`, 10,000 hits by default, is refused:
    https://docs.opensearch.org/latest/search-plugins/searching-data/paginate/) and not scroll (not among
    Serverless's operations: https://docs.aws.amazon.com/opensearch-service/latest/developerguide/serverless-genref.html);
    a `range` on the `position` field and a sort are ordinary `_search` requests on every collection type."""
    filters: list[dict[str, Any]] = [{"term": {"document_id": document_id}}]
    if after_position is not None:
        filters.append({"range": {"position": {"gt": after_position}}})
    return {
        "size": size,
        "_source": ["chunk_id", "document_id", "title", "text", "position"],
        "sort": [{"position": "asc"}, {"chunk_id": "asc"}],
        "query": {"bool": {"filter": filters}},
    }


def _hits(response: dict[str, Any]) -> list[Hit]:
    hits = []
    for raw in response.get("hits", {}).get("hits", []):
        src = raw["_source"]
        hits.append(
            Hit(
                src["chunk_id"],
                src["document_id"],
                src["title"],
                src["text"],
                int(src["position"]),
                float(raw["_score"]),
                src.get("metadata") or {},
            )
        )
    return hits


@contextmanager
def search_errors() -> Iterator[None]:
    """Maps an unreachable, overloaded or slow search engine (after the client's own retries) to
    503/504 the caller can retry, instead of an internal error."""
    from opensearchpy.exceptions import ConnectionError as SearchConnectionError
    from opensearchpy.exceptions import ConnectionTimeout, TransportError

    try:
        yield
    except ConnectionTimeout as exc:
        raise GatewayTimeout("the search engine did not answer in time; try again", code="search_timeout") from exc
    except SearchConnectionError as exc:
        raise ServiceUnavailable("the search engine is unavailable; try again", code="search_unavailable") from exc
    except TransportError as exc:
        if isinstance(exc.status_code, int) and exc.status_code in (429, 500, 502, 503, 504):
            raise ServiceUnavailable("the search engine is overloaded or failing; try again", code="search_unavailable") from exc
        raise


class BulkWriteFailed(RuntimeError):
    """Some items of a bulk request were refused (after the client retried the 429s)."""


class OpenSearchIndex:
    """One adapter for both engines; `service` says where they differ.

    aoss (Serverless): no `_id` on writes (also on `es`), no `refresh` parameter, no `_refresh` call; writes are
    searchable after the collection's refresh interval, so `visible_at_once` is false and callers keep the ids.
    es (managed domain): the same requests, plus `refresh=wait_for` on every bulk write, so a write is searchable
    when the call returns."""

    def __init__(self, client: Any, dimension: int, service: Service = "aoss"):
        self.client = client
        self.dimension = dimension
        self.service = service
        self.visible_at_once = service == "es"

    def _write_params(self) -> dict[str, Any]:
        return {"refresh": "wait_for"} if self.service == "es" else {}

    def ensure_index(self, tenant_id: str) -> None:
        from opensearchpy.exceptions import RequestError

        index = index_name(tenant_id)
        with search_errors():
            if self.client.indices.exists(index=index):
                return
            try:
                self.client.indices.create(index=index, body=index_body(self.dimension))
            except RequestError as exc:
                if "resource_already_exists" not in str(exc):
                    raise

    def replace(self, tenant_id: str, chunks: list[Chunk], vectors: list[list[float]], remove: Sequence[IndexedChunks]) -> tuple[str, ...]:
        """Writes the new chunks first, then removes every other chunk of the replaced documents and of the new
        chunks' own document. A failure after the write deletes the new chunks by id before it raises, so the
        caller never has chunks it does not know about."""
        if len(chunks) != len(vectors):
            raise ValueError("one vector per chunk")
        new_ids = self._write(tenant_id, chunks, vectors)
        try:
            stale: set[str] = set()
            for old in [*remove, *(IndexedChunks(document_id) for document_id in dict.fromkeys(c.document_id for c in chunks))]:
                stale.update(old.engine_ids)
                stale.update(self._ids_of(tenant_id, old.document_id))
            self._delete_ids(tenant_id, stale - set(new_ids))
        except BaseException:
            self._undo(tenant_id, new_ids)
            raise
        return new_ids

    def delete_document(self, tenant_id: str, document_id: str, chunk_count: int, engine_ids: Sequence[str] = ()) -> None:
        self._delete_ids(tenant_id, set(engine_ids) | self._ids_of(tenant_id, document_id))

    def lexical(self, tenant_id: str, query: str, k: int, conditions: list[Condition]) -> list[Hit]:
        with search_errors():
            return _hits(self.client.search(index=index_name(tenant_id), body=lexical_body(query, k, conditions)))

    def semantic(self, tenant_id: str, vector: list[float], k: int, conditions: list[Condition]) -> list[Hit]:
        with search_errors():
            return _hits(self.client.search(index=index_name(tenant_id), body=knn_body(vector, k, conditions)))

    def drop_index(self, tenant_id: str) -> None:
        with search_errors():
            self.client.indices.delete(index=index_name(tenant_id), ignore=[404])

    def document_chunks(self, tenant_id: str, document_id: str, after_position: int | None, limit: int) -> list[Chunk]:
        """Up to `limit` of the document's chunks above `after_position`, in position order. On Serverless, chunks
        written less than a refresh interval ago are not searchable yet (module docstring), so not listed yet."""
        from opensearchpy.exceptions import NotFoundError

        try:
            with search_errors():
                response = self.client.search(index=index_name(tenant_id), body=chunk_page_body(document_id, after_position, limit))
        except NotFoundError:
            return []  # no index yet
        return [
            Chunk(
                chunk_id=hit["_source"]["chunk_id"],
                document_id=hit["_source"]["document_id"],
                title=hit["_source"]["title"],
                text=hit["_source"]["text"],
                position=int(hit["_source"]["position"]),
            )
            for hit in response.get("hits", {}).get("hits", [])
        ]

    # --- plumbing ---------------------------------------------------------------------------
    def _write(self, tenant_id: str, chunks: list[Chunk], vectors: list[list[float]]) -> tuple[str, ...]:
        """Bulk-indexes the chunks; the ids the collection generated, in no particular order."""
        written: list[str] = []
        refused: list[Any] = []
        try:
            for ok, item in self._bulk(index_actions(tenant_id, chunks, vectors)):
                operation = next(iter(item.values()))
                if ok:
                    written.append(str(operation["_id"]))
                else:
                    refused.append(operation.get("error") or operation)
            if refused:
                raise BulkWriteFailed(f"bulk indexing refused {len(refused)} of {len(chunks)} chunks: {refused[0]}")
        except BaseException:
            self._undo(tenant_id, tuple(written))
            raise
        return tuple(written)

    def _undo(self, tenant_id: str, engine_ids: tuple[str, ...]) -> None:
        """Best effort: deletes chunks this call wrote before its failure propagates. If the engine is down,
        the next attempt's sweep by document id removes them (see the module docstring)."""
        if not engine_ids:
            return
        try:
            self._delete_ids(tenant_id, set(engine_ids))
        except Exception:
            logger.exception("could not remove the chunks of a failed write", extra={"tenant_id": tenant_id, "chunks": len(engine_ids)})

    def _delete_ids(self, tenant_id: str, engine_ids: set[str]) -> None:
        if not engine_ids:
            return
        for ok, item in self._bulk(delete_actions(tenant_id, engine_ids)):
            operation = next(iter(item.values()))
            if not ok and operation.get("status") != 404:  # already gone is what we wanted
                raise BulkWriteFailed(f"bulk delete failed: {operation.get('error') or operation}")

    def _ids_of(self, tenant_id: str, document_id: str) -> set[str]:
        """The ids of the document's chunks that are searchable now."""
        from opensearchpy.exceptions import NotFoundError

        found: set[str] = set()
        after: str | None = None
        while True:
            try:
                with search_errors():
                    response = self.client.search(index=index_name(tenant_id), body=sweep_body(document_id, after))
            except NotFoundError:
                return found  # no index yet: nothing to remove
            hits = response.get("hits", {}).get("hits", [])
            fresh = {str(hit["_id"]) for hit in hits} - found
            found |= fresh
            if len(hits) < SWEEP_PAGE:
                return found
            if not fresh:  # a whole page of one chunk id, all seen: cannot page further by chunk id
                logger.warning("document has more copies of one chunk than a page holds", extra={"document_id": document_id})
                return found
            after = str(hits[-1]["sort"][0])

    def _bulk(self, actions: list[dict[str, Any]]) -> Iterator[tuple[bool, dict[str, Any]]]:
        """Every item's outcome; streaming_bulk retries 429s with exponential backoff."""
        from opensearchpy import helpers

        with search_errors():
            yield from helpers.streaming_bulk(
                self.client,
                actions,
                chunk_size=BULK_CHUNK,
                max_chunk_bytes=BULK_MAX_BYTES,
                max_retries=5,
                initial_backoff=1,
                max_backoff=20,
                raise_on_error=False,
                **self._write_params(),
            )


def sigv4_client(endpoint: str, region: str, service: str) -> Any:
    """An OpenSearch client signing with the Lambda's credentials (aoss = Serverless, es = domain).

    `raas local` may point it at a loopback stand-in over http; it then signs with the local dummy credentials."""
    import boto3
    from opensearchpy import AWSV4SignerAuth, OpenSearch, RequestsHttpConnection

    credentials = boto3.session.Session().get_credentials()
    return OpenSearch(
        hosts=[endpoint],
        http_auth=AWSV4SignerAuth(credentials, region, service),
        use_ssl=endpoint.startswith("https"),
        verify_certs=True,
        connection_class=RequestsHttpConnection,
        timeout=10,
        max_retries=3,
        retry_on_status=(429, 502, 503, 504),
        retry_on_timeout=True,
        pool_maxsize=10,
    )
