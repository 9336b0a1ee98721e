"""`Idempotency-Key` on POSTs, through the local gateway (authorizer, resolver, Powertools idempotency on moto)."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from raas.bootstrap import services
from raas.domain.errors import ServiceUnavailable
from raas.handlers.idempotency import (
    KEY_PREFIX,
    REPLAYED_HEADER,
    STORE_NAME,
    idempotency_config,
    idempotency_request,
)
from tests.conftest import OPERATOR_KEY, TenantHandle
from tests.helpers import ApiClient, RecordingChat, expect

pytestmark = pytest.mark.usefixtures("aws", "chat")


def _post(api: ApiClient, tenant: TenantHandle, path: str, body: Any, key: str | None) -> Any:
    headers = {"Idempotency-Key": key} if key is not None else None
    return api.request("POST", path, key=tenant.admin_key, json_body=body, headers=headers)


def _usage(api: ApiClient, tenant: TenantHandle) -> dict[str, Any]:
    usage: dict[str, Any] = expect(api.request("GET", "/v1/usage", key=tenant.admin_key), 200)
    return usage


def _documents(api: ApiClient, tenant: TenantHandle) -> list[dict[str, Any]]:
    documents: list[dict[str, Any]] = expect(api.request("GET", "/v1/documents", key=tenant.admin_key), 200)["documents"]
    return documents


def test_a_retried_query_is_answered_once_and_counted_once(
    api: ApiClient, tenant_a: TenantHandle, ingest_queue: Any, chat: RecordingChat
) -> None:
    expect(_post(api, tenant_a, "/v1/documents", {"title": "t", "text": "refunds within 30 days"}, None), 202)
    ingest_queue.drain()
    first = _post(api, tenant_a, "/v1/query", {"query": "refunds?"}, "retry-me-1")
    again = _post(api, tenant_a, "/v1/query", {"query": "refunds?"}, "retry-me-1")
    assert first.status == again.status == 200
    assert again.json() == first.json()  # the first answer, not a cached second one
    assert again.headers.get(REPLAYED_HEADER) == "true"
    assert REPLAYED_HEADER not in first.headers
    assert len(chat.requests) == 1
    assert _usage(api, tenant_a)["queries"] == 1


def test_a_retried_search_is_replayed(api: ApiClient, tenant_a: TenantHandle) -> None:
    first = expect(_post(api, tenant_a, "/v1/search", {"query": "anything"}, "search-1"), 200)
    again = _post(api, tenant_a, "/v1/search", {"query": "anything"}, "search-1")
    assert again.status == 200
    assert again.json() == first
    assert again.headers.get(REPLAYED_HEADER) == "true"
    assert _usage(api, tenant_a)["searches"] == 1


def test_a_retried_document_post_creates_one_document(api: ApiClient, tenant_a: TenantHandle) -> None:
    body = {"title": "Refunds", "text": "Customers may request a refund within 30 days."}
    first = _post(api, tenant_a, "/v1/documents", body, "doc-1")
    again = _post(api, tenant_a, "/v1/documents", body, "doc-1")
    assert first.status == again.status == 202  # the first answer (202), not "already present" (200)
    assert again.json() == first.json()
    assert again.headers.get(REPLAYED_HEADER) == "true"
    assert [d["document_id"] for d in _documents(api, tenant_a)] == [first.json()["document_id"]]


def test_a_retried_upload_ticket_is_the_same_ticket(api: ApiClient, tenant_a: TenantHandle) -> None:
    body = {"filename": "policy.pdf", "content_type": "application/pdf", "size": 4821}
    first = _post(api, tenant_a, "/v1/documents/uploads", body, "upload-1")
    again = _post(api, tenant_a, "/v1/documents/uploads", body, "upload-1")
    assert first.status == again.status == 201
    assert again.json() == first.json()
    assert len(_documents(api, tenant_a)) == 1


def test_a_retried_tenant_creation_creates_one_tenant(api: ApiClient) -> None:
    headers = {"Idempotency-Key": "new-tenant-1"}
    body = {"name": "Globex", "tier": "smb"}
    first = api.request("POST", "/v1/tenants", key=OPERATOR_KEY, json_body=body, headers=headers)
    again = api.request("POST", "/v1/tenants", key=OPERATOR_KEY, json_body=body, headers=headers)
    assert first.status == again.status == 201
    assert again.json() == first.json()  # the first admin key again: the operator's only copy may have been lost
    tenants = expect(api.request("GET", "/v1/tenants", key=OPERATOR_KEY), 200)["tenants"]
    assert [t["name"] for t in tenants].count("Globex") == 1


def test_the_same_key_with_another_body_is_refused(api: ApiClient, tenant_a: TenantHandle) -> None:
    expect(_post(api, tenant_a, "/v1/search", {"query": "first"}, "reused"), 200)
    other = _post(api, tenant_a, "/v1/search", {"query": "second"}, "reused")
    assert other.status == 422
    assert other.error_code == "idempotency_key_reused"
    elsewhere = _post(api, tenant_a, "/v1/documents", {"title": "t", "text": "x"}, "reused")
    assert elsewhere.status == 422
    assert elsewhere.error_code == "idempotency_key_reused"
    assert _documents(api, tenant_a) == []


def test_formatting_and_key_order_do_not_make_another_request(api: ApiClient, tenant_a: TenantHandle) -> None:
    first = expect(_post(api, tenant_a, "/v1/search", {"query": "q", "top_k": 3}, "order"), 200)
    again = _post(api, tenant_a, "/v1/search", {"top_k": 3, "query": "q"}, "order")
    assert again.status == 200
    assert again.json() == first
    assert again.headers.get(REPLAYED_HEADER) == "true"


def test_tenants_using_the_same_key_never_meet(api: ApiClient, tenant_a: TenantHandle, tenant_b: TenantHandle) -> None:
    body = {"title": "Shared title", "text": "the same words in two tenants"}
    a = _post(api, tenant_a, "/v1/documents", body, "same-key")
    b = _post(api, tenant_b, "/v1/documents", body, "same-key")
    assert a.status == b.status == 202
    assert REPLAYED_HEADER not in b.headers
    assert a.json()["document_id"] != b.json()["document_id"]
    assert len(_documents(api, tenant_a)) == len(_documents(api, tenant_b)) == 1
    # and tenant B's different body under that key is its own first request, not a mismatch with A's
    other = _post(api, tenant_b, "/v1/search", {"query": "b"}, "another")
    mine = _post(api, tenant_a, "/v1/search", {"query": "a"}, "another")
    assert other.status == mine.status == 200


def test_a_request_still_in_progress_is_a_409(api: ApiClient, tenant_a: TenantHandle) -> None:
    body = {"query": "slow"}
    store = services().idempotency_store(STORE_NAME)
    store.configure(idempotency_config(), key_prefix=KEY_PREFIX)
    # the record Powertools writes while the first request runs
    store.save_inprogress(data=idempotency_request(f"tenant:{tenant_a.tenant_id}", "busy", "POST", "/v1/search", body))
    reply = _post(api, tenant_a, "/v1/search", body, "busy")
    assert reply.status == 409
    assert reply.error_code == "idempotency_in_progress"
    assert reply.headers.get("Retry-After") == "1"


def test_a_failed_request_is_not_stored_and_its_retry_does_the_work(
    api: ApiClient, tenant_a: TenantHandle, ingest_queue: Any, chat: RecordingChat
) -> None:
    expect(_post(api, tenant_a, "/v1/documents", {"title": "t", "text": "refunds within 30 days"}, None), 202)
    ingest_queue.drain()
    chat.fail_with = ServiceUnavailable("provider down", code="llm_unavailable")
    failed = _post(api, tenant_a, "/v1/query", {"query": "refunds?"}, "after-failure")
    assert failed.status == 503
    chat.fail_with = None
    retried = _post(api, tenant_a, "/v1/query", {"query": "refunds?"}, "after-failure")
    assert retried.status == 200
    assert REPLAYED_HEADER not in retried.headers
    assert _usage(api, tenant_a)["queries"] == 1


def test_a_validation_error_is_not_stored(api: ApiClient, tenant_a: TenantHandle) -> None:
    assert _post(api, tenant_a, "/v1/documents", {"title": "t", "text": "x", "metadata": "not an object"}, "fix-and-retry").status == 422
    # the refusal was not stored, so the corrected request under the same key is not "reused": it runs
    fixed = _post(api, tenant_a, "/v1/documents", {"title": "t", "text": "now with text"}, "fix-and-retry")
    assert fixed.status == 202
    assert REPLAYED_HEADER not in fixed.headers


@pytest.mark.parametrize("bad", ["x" * 256, "tab\there", "caf\u00e9", ""])
def test_malformed_keys_are_refused(api: ApiClient, tenant_a: TenantHandle, bad: str) -> None:
    reply = _post(api, tenant_a, "/v1/search", {"query": "q"}, bad)
    assert reply.status == 400
    assert reply.error_code == "invalid_idempotency_key"


def test_the_longest_allowed_key_works(api: ApiClient, tenant_a: TenantHandle) -> None:
    assert _post(api, tenant_a, "/v1/search", {"query": "q"}, "k" * 255).status == 200


def test_without_the_header_nothing_changes(api: ApiClient, tenant_a: TenantHandle) -> None:
    body = {"title": "Refunds", "text": "Customers may request a refund within 30 days."}
    first = _post(api, tenant_a, "/v1/documents", body, None)
    again = _post(api, tenant_a, "/v1/documents", body, None)
    assert (first.status, again.status) == (202, 200)  # the existing dedupe answers "already present"
    assert again.json()["duplicate"] is True
    assert REPLAYED_HEADER not in again.headers
    expect(_post(api, tenant_a, "/v1/search", {"query": "q"}, None), 200)
    expect(_post(api, tenant_a, "/v1/search", {"query": "q"}, None), 200)
    assert _usage(api, tenant_a)["searches"] == 2


def test_the_openapi_document_declares_the_header() -> None:
    from raas.handlers.openapi import openapi_document

    paths = openapi_document()["paths"]
    for path in ("/v1/query", "/v1/search", "/v1/documents", "/v1/documents/uploads", "/v1/tenants", "/v1/export"):
        names = [p.get("name") for p in paths[path]["post"].get("parameters", [])]
        assert "Idempotency-Key" in names, path
    assert "Idempotency-Key" not in [p.get("name") for p in paths["/v1/pricing/estimate"]["post"].get("parameters", [])]


def test_stored_responses_hold_neither_secrets_nor_tenant_data_in_clear(api: ApiClient, tenant_a: TenantHandle) -> None:
    # The idempotency table is shared by every tenant and cannot be fenced per tenant by IAM: what it keeps
    # must be useless without the client's own Idempotency-Key.
    created = expect(
        api.request(
            "POST", "/v1/tenants", key=OPERATOR_KEY, json_body={"name": "Initech", "tier": "smb"}, headers={"Idempotency-Key": "k-1"}
        ),
        201,
    )
    expect(_post(api, tenant_a, "/v1/documents", {"title": "Confidential roadmap", "text": "quarterly plans"}, "k-2"), 202)
    table = services().settings.idempotency_table
    items = [i for i in boto3.client("dynamodb").scan(TableName=table)["Items"] if i["id"]["S"].startswith(f"{KEY_PREFIX}#")]
    assert len(items) == 2  # (the platform-event functions keep their own records in the same table)
    dumped = json.dumps(items)
    assert created["api_key"] not in dumped
    assert created["tenant"]["tenant_id"] not in dumped
    assert "k-1" not in dumped
    assert "k-2" not in dumped
    assert tenant_a.tenant_id not in dumped
