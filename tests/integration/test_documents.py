"""Documents through the gateway, S3 events through SQS into the real ingest handler, on moto."""

from __future__ import annotations

import base64
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from raas.adapters.objects import tenant_object_key
from raas.bootstrap import services
from raas.domain import catalog
from raas.domain.catalog import Tier
from raas.local.events import QueuePump
from raas.services.documents import object_key
from tests.conftest import TenantHandle, create_tenant
from tests.helpers import ApiClient, FailingSearch, expect, rebuild_services

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def add(api: ApiClient, tenant: TenantHandle, title: str, text: str, **extra: object) -> dict:
    reply = api.request("POST", "/v1/documents", key=tenant.admin_key, json_body={"title": title, "text": text, **extra})
    assert reply.status in (200, 202), reply.text
    return reply.json()


def document(api: ApiClient, tenant: TenantHandle, document_id: str) -> dict:
    return expect(api.request("GET", f"/v1/documents/{document_id}", key=tenant.admin_key), 200)


def search(api: ApiClient, tenant: TenantHandle, query: str, **extra: object) -> list[dict]:
    return expect(api.request("POST", "/v1/search", key=tenant.admin_key, json_body={"query": query, **extra}), 200)["results"]


def test_inline_document_is_queued_then_indexed_with_chunks(api: ApiClient, tenant_a: TenantHandle, ingest_queue: QueuePump) -> None:
    accepted = add(api, tenant_a, "Refunds", "# Refunds\n\nWithin 30 days.\n\n# Shipping\n\nFive days.", metadata={"dept": "support"})
    assert accepted["status"] == "queued"
    assert document(api, tenant_a, accepted["document_id"])["status"] == "queued"
    ingest_queue.drain()
    indexed = document(api, tenant_a, accepted["document_id"])
    assert (indexed["status"], indexed["chunk_count"], indexed["error"]) == ("indexed", 2, None)
    results = search(api, tenant_a, "shipping days")
    assert results[0]["chunk_id"] == f"{accepted['document_id']}:00001"
    assert results[0]["metadata"] == {"dept": "support", "section": "Shipping"}
    assert results[0]["title"] == "Refunds"


def test_the_object_is_stored_under_the_tenant_prefix_with_its_kms_key(api: ApiClient, tenant_a: TenantHandle) -> None:
    accepted = add(api, tenant_a, "t", "secret text")
    key = tenant_object_key(tenant_a.tenant_id, object_key(accepted["document_id"]))
    assert key.startswith(f"tenants/{tenant_a.tenant_id}/documents/")
    head = services().object_store.clients(None).head_object(Bucket="raas-documents", Key=key)
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"] == services().keyring.key_arn(tenant_a.tenant_id)
    alias = services().keyring.clients(None).describe_key(KeyId=f"alias/raas/tenant/{tenant_a.tenant_id}")
    assert alias["KeyMetadata"]["Arn"] == head["SSEKMSKeyId"]


@pytest.mark.parametrize(
    ("content", "content_type", "expected"),
    [
        (b"<html><body><p>Cats purr softly</p></body></html>", "text/html", "Cats purr softly"),
        (b"animal,sound\ncat,purr", "text/csv", "animal: cat; sound: purr"),
        (b'{"animal": "cat", "sound": "purr"}', "application/json", "animal: cat"),
    ],
)
def test_base64_documents_of_each_type_are_extracted(
    api: ApiClient, tenant_a: TenantHandle, ingest_queue: QueuePump, content: bytes, content_type: str, expected: str
) -> None:
    body = {"title": "file", "content_base64": base64.b64encode(content).decode(), "content_type": content_type}
    accepted = expect(api.request("POST", "/v1/documents", key=tenant_a.admin_key, json_body=body), 202)
    ingest_queue.drain()
    assert document(api, tenant_a, accepted["document_id"])["status"] == "indexed"
    assert expected in search(api, tenant_a, "cat purr")[0]["snippet"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"title": "x"}, 400, "invalid_document"),
        ({"title": "x", "text": "a", "content_base64": "YQ==", "content_type": "text/plain"}, 400, "invalid_document"),
        ({"title": "x", "content_base64": "not base64!!", "content_type": "text/plain"}, 400, "invalid_base64"),
        ({"title": "x", "content_base64": "YQ=="}, 400, "invalid_document"),
        ({"title": "x", "content_base64": "YQ==", "content_type": "image/png"}, 415, "unsupported_media_type"),
        ({"title": "x", "text": "a", "metadata": {"bad key!": 1}}, 422, "invalid_metadata"),
        ({"title": "x", "text": "a", "metadata": {"nested": {"a": 1}}}, 422, "invalid_metadata"),
        ({"title": "", "text": "a"}, 422, "validation_error"),
    ],
)
def test_bad_documents_are_refused_and_nothing_is_written(
    api: ApiClient, tenant_a: TenantHandle, body: dict, status: int, code: str
) -> None:
    reply = api.request("POST", "/v1/documents", key=tenant_a.admin_key, json_body=body)
    assert (reply.status, reply.error_code) == (status, code), reply.text
    assert expect(api.request("GET", "/v1/documents", key=tenant_a.admin_key), 200)["documents"] == []
    assert services().document_store.stats(tenant_a.tenant_id)["documents"] == 0


def test_same_content_is_not_indexed_twice(api: ApiClient, tenant_a: TenantHandle, ingest_queue: QueuePump) -> None:
    first = add(api, tenant_a, "one", "identical words")
    again = api.request("POST", "/v1/documents", key=tenant_a.admin_key, json_body={"title": "two", "text": "identical words"})
    assert again.status == 200
    assert again.json() == {"document_id": first["document_id"], "status": "queued", "duplicate": True}
    ingest_queue.drain()
    assert len(expect(api.request("GET", "/v1/documents", key=tenant_a.admin_key), 200)["documents"]) == 1


def test_concurrent_ingests_of_the_same_content_make_one_document(api: ApiClient, tenant_a: TenantHandle, ingest_queue: QueuePump) -> None:
    barrier = threading.Barrier(6)

    def post(_: int) -> str:
        barrier.wait()
        return add(api, tenant_a, "race", "racing content")["document_id"]

    with ThreadPoolExecutor(6) as pool:
        ids = set(pool.map(post, range(6)))
    assert len(ids) == 1
    ingest_queue.drain()
    assert services().document_store.stats(tenant_a.tenant_id)["documents"] == 1


def test_a_new_version_of_a_source_replaces_the_old_one(api: ApiClient, tenant_a: TenantHandle, ingest_queue: QueuePump) -> None:
    old = add(api, tenant_a, "policy", "refunds take thirty days", source_uri="s3://crm/policy.md")
    ingest_queue.drain()
    new = add(api, tenant_a, "policy", "refunds take sixty days", source_uri="s3://crm/policy.md")
    ingest_queue.drain()
    assert document(api, tenant_a, new["document_id"])["status"] == "indexed"
    assert api.request("GET", f"/v1/documents/{old['document_id']}", key=tenant_a.admin_key).status == 404
    results = search(api, tenant_a, "refunds days")
    assert {r["document_id"] for r in results} == {new["document_id"]}
    assert services().document_store.stats(tenant_a.tenant_id)["documents"] == 1


def test_presigned_upload_then_s3_event_indexes_the_file(api: ApiClient, tenant_a: TenantHandle, ingest_queue: QueuePump) -> None:
    import io

    import docx

    buffer = io.BytesIO()
    word = docx.Document()
    word.add_paragraph("Quarterly revenue grew by twelve percent.")
    word.save(buffer)
    data = buffer.getvalue()
    ticket = expect(
        api.request(
            "POST",
            "/v1/documents/uploads",
            key=tenant_a.admin_key,
            json_body={"filename": "q3.docx", "content_type": DOCX, "size": len(data)},
        ),
        201,
    )
    assert f"tenants/{tenant_a.tenant_id}/documents/{ticket['document_id']}/source" in ticket["upload_url"]
    assert ticket["headers"]["x-amz-server-side-encryption"] == "aws:kms"
    # what the client's PUT does (the e2e tests PUT to the URL over HTTP)
    services().object_store.clients(None).put_object(
        Bucket="raas-documents",
        Key=tenant_object_key(tenant_a.tenant_id, object_key(ticket["document_id"])),
        Body=data,
        ContentType=DOCX,
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId=ticket["headers"]["x-amz-server-side-encryption-aws-kms-key-id"],
    )
    ingest_queue.drain()
    indexed = document(api, tenant_a, ticket["document_id"])
    assert (indexed["status"], indexed["filename"], indexed["title"]) == ("indexed", "q3.docx", "q3.docx")
    assert "twelve percent" in search(api, tenant_a, "revenue growth")[0]["snippet"]


def test_uploads_bigger_than_declared_or_missing_fail_with_a_reason(
    api: ApiClient, tenant_a: TenantHandle, ingest_queue: QueuePump
) -> None:
    ticket = expect(
        api.request(
            "POST",
            "/v1/documents/uploads",
            key=tenant_a.admin_key,
            json_body={"filename": "a.txt", "content_type": "text/plain", "size": 5},
        ),
        201,
    )
    full_key = tenant_object_key(tenant_a.tenant_id, object_key(ticket["document_id"]))
    services().object_store.clients(None).put_object(Bucket="raas-documents", Key=full_key, Body=b"far more than five bytes")
    ingest_queue.drain()
    failed = document(api, tenant_a, ticket["document_id"])
    assert failed["status"] == "failed"
    assert "more than the 5 declared" in failed["error"]
    assert search(api, tenant_a, "bytes") == []


def test_ingest_reads_the_upload_in_one_request_without_a_head_first(
    api: ApiClient, tenant_a: TenantHandle, ingest_queue: QueuePump, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GetObject's length is checked before its body is read, so a HEAD first is one S3 request (and one
    tenant-status read) too many per document."""
    store = services().object_store

    def no_head(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("ingest asked for the object's size before reading it")

    monkeypatch.setattr(store, "size", no_head)
    accepted = expect(
        api.request("POST", "/v1/documents", key=tenant_a.admin_key, json_body={"title": "one read", "text": "kelp forest"}), 202
    )
    ingest_queue.drain()
    assert document(api, tenant_a, accepted["document_id"])["status"] == "indexed"


@pytest.mark.parametrize(
    ("filename", "code"),
    [
        ("../../etc/passwd", "invalid_filename"),
        ("a/b.txt", "invalid_filename"),
        (".hidden", "invalid_filename"),
        ("x" * 300, "validation_error"),
    ],
)
def test_upload_filenames_cannot_traverse(api: ApiClient, tenant_a: TenantHandle, filename: str, code: str) -> None:
    reply = api.request(
        "POST", "/v1/documents/uploads", key=tenant_a.admin_key, json_body={"filename": filename, "content_type": "text/plain", "size": 5}
    )
    assert (reply.status, reply.error_code) == (422, code)


def test_size_and_quota_limits(api: ApiClient, monkeypatch: pytest.MonkeyPatch) -> None:
    tenant = create_tenant(api, "small", "free")
    limit = catalog.tier_limits(Tier.FREE).max_document_bytes
    too_big = api.request(
        "POST",
        "/v1/documents/uploads",
        key=tenant.admin_key,
        json_body={"filename": "big.pdf", "content_type": "application/pdf", "size": limit + 1},
    )
    assert (too_big.status, too_big.error_code) == (413, "document_too_large")
    original = catalog.tiers()
    tiny = {**original, Tier.FREE: original[Tier.FREE].model_copy(update={"max_documents": 2})}
    monkeypatch.setattr(catalog, "tiers", lambda: tiny)
    add(api, tenant, "1", "first")
    add(api, tenant, "2", "second")
    over = api.request("POST", "/v1/documents", key=tenant.admin_key, json_body={"title": "3", "text": "third"})
    assert (over.status, over.error_code) == (429, "quota_exceeded")
    assert "2 documents" in over.json()["error"]["message"]
    assert services().document_store.stats(tenant.tenant_id)["documents"] == 2


def test_files_without_text_fail_and_leave_nothing_indexed(api: ApiClient, tenant_a: TenantHandle, ingest_queue: QueuePump) -> None:
    body = {"title": "lying", "content_base64": base64.b64encode(b"\x00\x01binary\x00").decode(), "content_type": "text/plain"}
    accepted = expect(api.request("POST", "/v1/documents", key=tenant_a.admin_key, json_body=body), 202)
    ingest_queue.drain()
    failed = document(api, tenant_a, accepted["document_id"])
    assert failed["status"] == "failed"
    assert "binary" in failed["error"]
    retry = expect(api.request("POST", "/v1/documents", key=tenant_a.admin_key, json_body=body), 202)  # the hash was released
    assert retry["document_id"] != accepted["document_id"]


def test_a_failed_index_write_leaves_no_partial_chunks(
    api: ApiClient, tenant_a: TenantHandle, ingest_queue: QueuePump, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = services().search_index
    failing = FailingSearch(real, RuntimeError("bulk request half applied"))
    rebuild_services(search_index=failing)
    text = "\n\n".join(f"Paragraph {i} about solar panels and batteries. " * 30 for i in range(6))
    accepted = add(api, tenant_a, "long", text, metadata={"k": "v"})
    ingest_queue.drain()
    assert failing.failures == 1
    failed = document(api, tenant_a, accepted["document_id"])
    assert failed["status"] == "failed"
    assert "internal error" in failed["error"]
    assert real.count(tenant_a.tenant_id) == 0  # type: ignore[attr-defined]  # the half that was written is gone


def test_a_redelivered_event_changes_nothing(api: ApiClient, tenant_a: TenantHandle, ingest_queue: QueuePump) -> None:
    accepted = add(api, tenant_a, "t", "hello twice")
    ingest_queue.drain()
    before = document(api, tenant_a, accepted["document_id"])
    services().ingest_service.ingest(tenant_a.tenant_id, accepted["document_id"])
    assert document(api, tenant_a, accepted["document_id"]) == before
    totals = services().usage_recorder.totals(tenant_a.tenant_id, before["indexed_at"][:7])
    assert totals["documents_indexed"] == 1


def test_delete_removes_chunks_object_and_quota(api: ApiClient, tenant_a: TenantHandle, ingest_queue: QueuePump) -> None:
    accepted = add(api, tenant_a, "t", "ephemeral knowledge about comets")
    ingest_queue.drain()
    assert search(api, tenant_a, "comets")
    assert api.request("DELETE", f"/v1/documents/{accepted['document_id']}", key=tenant_a.admin_key).status == 204
    assert search(api, tenant_a, "comets") == []
    assert api.request("GET", f"/v1/documents/{accepted['document_id']}", key=tenant_a.admin_key).status == 404
    assert services().object_store.size(tenant_a.tenant_id, object_key(accepted["document_id"])) is None
    assert services().document_store.stats(tenant_a.tenant_id)["documents"] == 0
    assert api.request("DELETE", f"/v1/documents/{accepted['document_id']}", key=tenant_a.admin_key).status == 404


def test_listing_filters_by_status_and_pages(api: ApiClient, tenant_a: TenantHandle, ingest_queue: QueuePump) -> None:
    for i in range(3):
        add(api, tenant_a, f"d{i}", f"document number {i}")
    ingest_queue.drain()
    add(api, tenant_a, "pending", "not yet ingested")
    indexed = expect(api.request("GET", "/v1/documents?status=indexed", key=tenant_a.admin_key), 200)["documents"]
    queued = expect(api.request("GET", "/v1/documents?status=queued", key=tenant_a.admin_key), 200)["documents"]
    assert (len(indexed), len(queued)) == (3, 1)
    page = expect(api.request("GET", "/v1/documents?limit=2", key=tenant_a.admin_key), 200)
    rest = expect(api.request("GET", f"/v1/documents?limit=2&cursor={page['next_cursor']}", key=tenant_a.admin_key), 200)
    assert len(page["documents"]) + len(rest["documents"]) == 4
    assert api.request("GET", "/v1/documents?status=bogus", key=tenant_a.admin_key).status == 422


def test_readers_cannot_write_documents(api: ApiClient, tenant_a: TenantHandle) -> None:
    reader = expect(api.request("POST", "/v1/keys", key=tenant_a.admin_key, json_body={"name": "r", "role": "reader"}), 201)["api_key"]
    assert api.request("POST", "/v1/documents", key=reader, json_body={"title": "t", "text": "x"}).error_code == "insufficient_role"
    assert api.request("GET", "/v1/documents", key=reader).status == 200
