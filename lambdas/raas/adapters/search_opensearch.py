"""OpenSearch adapter (Serverless collections and managed domains), via opensearch-py.

Request bodies are built by pure functions so they can be checked without a cluster; the
client is created once per container with SigV4 auth. Every call names the index itself,
from the tenant id, through `index_name`, which refuses anything else.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from raas.adapters.search_common import index_name
from raas.domain.documents import Chunk, chunk_id
from raas.domain.errors import GatewayTimeout, ServiceUnavailable
from raas.domain.retrieval import Condition, Hit

_SOURCE_FIELDS = ["chunk_id", "document_id", "title", "text", "position", "metadata"]


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


def bulk_actions(tenant_id: str, chunks: list[Chunk], vectors: list[list[float]], remove: list[tuple[str, int]]) -> list[dict[str, Any]]:
    """Deletes of the removed documents' chunks and indexes of the new ones, in one bulk request."""
    index = index_name(tenant_id)
    new_ids = {c.chunk_id for c in chunks}
    actions: list[dict[str, Any]] = [
        {"_op_type": "delete", "_index": index, "_id": chunk_id(document_id, position)}
        for document_id, count in remove
        for position in range(count)
        if chunk_id(document_id, position) not in new_ids
    ]
    for chunk, vector in zip(chunks, vectors, strict=True):
        actions.append({"_op_type": "index", "_index": index, "_id": chunk.chunk_id, **chunk.model_dump(mode="json"), "vector": vector})
    return actions


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


class OpenSearchIndex:
    def __init__(self, client: Any, dimension: int, refresh: str | bool = "wait_for"):
        self.client = client
        self.dimension = dimension
        self.refresh = refresh

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

    def replace(self, tenant_id: str, chunks: list[Chunk], vectors: list[list[float]], remove: list[tuple[str, int]]) -> None:
        from opensearchpy import helpers

        actions = bulk_actions(tenant_id, chunks, vectors, remove)
        if not actions:
            return
        # streaming_bulk retries 429s with exponential backoff; any other item error raises.
        with search_errors():
            self._bulk(helpers, actions)

    def _bulk(self, helpers: Any, actions: list[dict[str, Any]]) -> None:
        for ok, item in helpers.streaming_bulk(
            self.client,
            actions,
            chunk_size=200,
            max_retries=5,
            initial_backoff=1,
            max_backoff=20,
            refresh=self.refresh,
            raise_on_error=False,
        ):
            operation = next(iter(item.values()))
            if not ok and not (operation.get("status") == 404 and "delete" in item):
                raise RuntimeError(f"bulk indexing failed: {operation.get('error') or operation}")

    def delete_document(self, tenant_id: str, document_id: str, chunk_count: int) -> None:
        self.replace(tenant_id, [], [], [(document_id, chunk_count)])

    def lexical(self, tenant_id: str, query: str, k: int, conditions: list[Condition]) -> list[Hit]:
        with search_errors():
            return _hits(self.client.search(index=index_name(tenant_id), body=lexical_body(query, k, conditions)))

    def semantic(self, tenant_id: str, vector: list[float], k: int, conditions: list[Condition]) -> list[Hit]:
        with search_errors():
            return _hits(self.client.search(index=index_name(tenant_id), body=knn_body(vector, k, conditions)))

    def drop_index(self, tenant_id: str) -> None:
        with search_errors():
            self.client.indices.delete(index=index_name(tenant_id), ignore=[404])


def sigv4_client(endpoint: str, region: str, service: str) -> Any:
    """An OpenSearch client signing with the Lambda's credentials (aoss = Serverless, es = domain)."""
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
