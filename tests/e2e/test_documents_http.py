"""Documents and questions over HTTP against `raas local`, with the real offline MiniLM embedder."""

from __future__ import annotations

import httpx

from tests.conftest import TenantHandle
from tests.e2e.test_isolation_http import wait_indexed
from tests.helpers import HttpClient, expect

POLICY = """# Refund policy

Customers may request a full refund within 30 days of purchase. Refunds are paid to the original card.

# Shipping

Orders ship worldwide within five business days. Express shipping takes two days.
"""


def test_presigned_upload_index_and_answer(http_api: HttpClient, http_tenant_a: TenantHandle) -> None:
    data = POLICY.encode()
    ticket = expect(
        http_api.request(
            "POST",
            "/v1/documents/uploads",
            key=http_tenant_a.admin_key,
            json_body={"filename": "policy.md", "content_type": "text/markdown", "size": len(data), "metadata": {"dept": "support"}},
        ),
        201,
    )
    put = httpx.put(ticket["upload_url"], content=data, headers=ticket["headers"], timeout=30)
    assert put.status_code == 200, put.text
    document = wait_indexed(http_api, http_tenant_a, ticket["document_id"])
    assert (document["status"], document["chunk_count"]) == ("indexed", 2)

    # semantic match: no word of the question but "refund" appears in the answer chunk
    results = expect(
        http_api.request("POST", "/v1/search", key=http_tenant_a.admin_key, json_body={"query": "money back deadline", "alpha": 1}), 200
    )
    assert results["results"][0]["metadata"]["section"] == "Refund policy"

    answer = expect(
        http_api.request("POST", "/v1/query", key=http_tenant_a.admin_key, json_body={"query": "How fast is express shipping?"}), 200
    )
    assert answer["offline"] is True
    assert "two days" in answer["answer"]
    assert answer["citations"][0]["document_id"] == ticket["document_id"]
    history = expect(http_api.request("GET", "/v1/queries", key=http_tenant_a.admin_key), 200)["queries"]
    assert history[0]["query"] == "How fast is express shipping?"


def test_inline_document_and_delete(http_api: HttpClient, http_tenant_a: TenantHandle) -> None:
    accepted = expect(
        http_api.request(
            "POST", "/v1/documents", key=http_tenant_a.admin_key, json_body={"title": "Cats", "text": "Cats purr when they are content."}
        ),
        202,
    )
    wait_indexed(http_api, http_tenant_a, accepted["document_id"])
    assert expect(http_api.request("POST", "/v1/search", key=http_tenant_a.admin_key, json_body={"query": "purring"}), 200)["results"]
    assert http_api.request("DELETE", f"/v1/documents/{accepted['document_id']}", key=http_tenant_a.admin_key).status == 204
    results = expect(http_api.request("POST", "/v1/search", key=http_tenant_a.admin_key, json_body={"query": "purring"}), 200)["results"]
    assert all(r["document_id"] != accepted["document_id"] for r in results)
