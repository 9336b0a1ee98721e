"""`raas local` over HTTP: a streamed answer (`Accept: text/event-stream`), as curl -N would read it,
and a conversation asked over HTTP with its follow-up rewritten offline."""

from __future__ import annotations

import json
import time

import httpx

from raas.domain.streaming import parse_events
from tests.conftest import TenantHandle
from tests.e2e.conftest import LocalServer
from tests.helpers import HttpClient, expect


def _indexed(http_api: HttpClient, tenant: TenantHandle) -> None:
    for title, text in (
        ("Refund policy", "Customers may request a refund within 30 days of purchase."),
        ("Shipping", "We ship worldwide within five business days."),
    ):
        expect(http_api.request("POST", "/v1/documents", key=tenant.admin_key, json_body={"title": title, "text": text}), 202)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        documents = expect(http_api.request("GET", "/v1/documents", key=tenant.admin_key), 200)["documents"]
        if documents and all(d["status"] == "indexed" for d in documents):
            return
        time.sleep(0.2)
    raise AssertionError("documents were not indexed in time")


def test_a_query_streams_over_http_and_a_conversation_follow_up_is_rewritten(
    local_server: LocalServer, http_api: HttpClient, http_tenant_a: TenantHandle
) -> None:
    _indexed(http_api, http_tenant_a)
    headers = {"Authorization": f"Bearer {http_tenant_a.admin_key}", "Accept": "text/event-stream"}
    with httpx.stream(
        "POST", f"{local_server.url}/v1/query", headers=headers, json={"query": "When can customers request a refund?"}, timeout=30
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream"
        assert "content-length" not in response.headers
        chunks = list(response.iter_text())
    events = parse_events("".join(chunks))
    assert events[0][0] == "retrieval"
    assert events[-1][0] == "done"
    assert "within 30 days" in "".join(d["text"] for k, d in events if k == "delta")

    conversation = expect(http_api.request("POST", "/v1/conversations", key=http_tenant_a.admin_key, json_body={}), 201)
    path = f"/v1/conversations/{conversation['conversation_id']}/messages"
    expect(http_api.request("POST", path, key=http_tenant_a.admin_key, json_body={"query": "What is the refund policy?"}), 200)
    follow = expect(http_api.request("POST", path, key=http_tenant_a.admin_key, json_body={"query": "and the second one?"}), 200)
    assert (follow["rewrite"], follow["rewritten_query"]) == ("offline", "refund policy: Shipping?")
    assert "Shipping" in {c["title"] for c in follow["answer"]["citations"]}
    assert json.loads(json.dumps(follow))["messages"][1]["query_id"] == follow["answer"]["query_id"]
