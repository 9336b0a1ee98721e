"""The client's pagination, upload helper and generated sync code, against an httpx MockTransport."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from raas_client import AsyncClient, Client, _unasync, errors
from raas_client._core import UPLOAD_CHUNK_BYTES
from raas_client.operations import NOT_IN_SDK, OPERATIONS, PENDING_ROUTES
from tests.helpers import run_coroutine

URL = "http://raas.test"
STORAGE = "http://storage.test"


def doc(document_id: str, status: str, **extra: Any) -> dict[str, Any]:
    return {
        "document_id": document_id,
        "tenant_id": "t1",
        "title": "policy.md",
        "content_type": "text/markdown",
        "size_bytes": 10,
        "status": status,
        "created_at": "2026-12-02T10:00:00Z",
        "updated_at": "2026-12-02T10:00:00Z",
        **extra,
    }


def test_the_sync_client_is_generated_from_the_async_source() -> None:
    assert _unasync.TARGET.read_text() == _unasync.generate(_unasync.SOURCE.read_text()), (
        "run: python clients/python/raas_client/_unasync.py"
    )


def test_the_operation_table_is_consistent() -> None:
    routes = {(op.method, op.path) for op in OPERATIONS.values()}
    assert len(routes) == len(OPERATIONS), "two operations share a route"
    assert routes >= PENDING_ROUTES
    assert not routes & set(NOT_IN_SDK)
    for name, op in OPERATIONS.items():
        assert op.paginated <= (op.items is not None), name
        assert op.paginated == ({"limit", "cursor"} <= set(op.query)), name


class Pages:
    """A list route answered in pages of two, following the cursor."""

    def __init__(self, field: str, items: list[dict[str, Any]]) -> None:
        self.field, self.items = field, items
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        start = int(request.url.params.get("cursor") or 0)
        end = start + 2
        return httpx.Response(200, json={self.field: self.items[start:end], "next_cursor": str(end) if end < len(self.items) else None})


def test_paginators_walk_every_page_sync_and_async() -> None:
    pages = Pages("documents", [doc(f"d{i}", "indexed") for i in range(5)])
    raas = Client(URL, "k", transport=httpx.MockTransport(pages))
    assert [d.document_id for d in raas.documents.list(status="indexed", page_size=2)] == ["d0", "d1", "d2", "d3", "d4"]
    assert [r.url.params.get("cursor") for r in pages.requests] == [None, "2", "4"]
    assert {r.url.params["status"] for r in pages.requests} == {"indexed"}
    whole_pages = list(raas.documents.list().pages())
    assert [len(p.items) for p in whole_pages] == [2, 2, 1]
    assert whole_pages[-1].next_cursor is None
    assert len(raas.documents.list().to_list(max_items=3)) == 3

    async def run() -> list[str]:
        async with AsyncClient(URL, "k", transport=httpx.MockTransport(pages)) as client:
            return [d.document_id async for d in client.documents.list()]

    assert run_coroutine(run()) == ["d0", "d1", "d2", "d3", "d4"]


class Storage:
    """The API (upload ticket, then the document's status) and a presigned storage URL in one transport."""

    def __init__(self, statuses: list[dict[str, Any]], put_status: int = 200) -> None:
        self.statuses, self.put_status = statuses, put_status
        self.api: list[httpx.Request] = []
        self.puts: list[tuple[httpx.Request, bytes]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == "storage.test":
            self.puts.append((request, request.read()))
            return httpx.Response(self.put_status, text="<Error><Code>AccessDenied</Code></Error>")
        self.api.append(request)
        if request.url.path == "/v1/documents/uploads":
            body = json.loads(request.content)
            return httpx.Response(
                201,
                json={
                    "document_id": "d1",
                    "status": "queued",
                    "upload_url": f"{STORAGE}/bucket/tenants/t1/documents/d1/source?X-Amz-Signature=abc",
                    "method": "PUT",
                    "headers": {"Content-Type": body["content_type"], "x-amz-server-side-encryption": "aws:kms"},
                    "expires_at": "2026-12-02T11:00:00Z",
                },
            )
        return httpx.Response(200, json=self.statuses.pop(0))


def test_upload_puts_the_file_in_chunks_with_the_ticket_headers_and_waits_until_indexed(tmp_path: Path) -> None:
    data = b"# Refunds\n\n" + b"x" * (UPLOAD_CHUNK_BYTES * 2 + 10)
    path = tmp_path / "policy.md"
    path.write_bytes(data)
    storage = Storage([doc("d1", "queued"), doc("d1", "processing"), doc("d1", "indexed", chunk_count=4)])
    sleeps: list[float] = []
    progress: list[tuple[int, int]] = []
    raas = Client(URL, "raas_secret", transport=httpx.MockTransport(storage), sleep=sleeps.append)
    document = raas.documents.upload(path, metadata={"dept": "support"}, progress=lambda sent, total: progress.append((sent, total)))
    assert (document.status, document.chunk_count) == ("indexed", 4)
    ticket_request = json.loads(storage.api[0].content)
    assert ticket_request == {"filename": "policy.md", "content_type": "text/markdown", "size": len(data), "metadata": {"dept": "support"}}
    (put, body), *_ = storage.puts
    assert body == data
    assert put.headers["x-amz-server-side-encryption"] == "aws:kms"
    assert put.headers["content-type"] == "text/markdown"
    assert put.headers["content-length"] == str(len(data))
    assert "transfer-encoding" not in put.headers
    assert "authorization" not in put.headers  # the API key never goes to the storage URL
    assert progress[0] == (0, len(data))
    assert progress[-1] == (len(data), len(data))
    assert len(progress) == 4
    assert sleeps == [0.2, pytest.approx(0.3)]  # polls back off


def test_upload_raises_the_reason_of_a_failed_document(tmp_path: Path) -> None:
    path = tmp_path / "broken.pdf"
    path.write_bytes(b"%PDF-1.4 not really")
    storage = Storage([doc("d1", "failed", error="the PDF could not be read")])
    raas = Client(URL, "k", transport=httpx.MockTransport(storage), sleep=lambda s: None)
    with pytest.raises(errors.DocumentFailedError, match="could not be read") as caught:
        raas.documents.upload(path)
    assert caught.value.document_id == "d1"
    assert json.loads(storage.api[0].content)["content_type"] == "application/pdf"


def test_upload_gives_up_waiting_at_the_timeout(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text("hello")
    storage = Storage([doc("d1", "queued")] * 50)
    raas = Client(URL, "k", transport=httpx.MockTransport(storage), sleep=lambda s: None)
    with pytest.raises(errors.WaitTimeoutError, match="still queued"):
        raas.documents.upload(path, timeout=0)


def test_a_refused_storage_put_raises_and_an_async_upload_works(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text("hello")
    raas = Client(URL, "k", transport=httpx.MockTransport(Storage([], put_status=403)))
    with pytest.raises(errors.ForbiddenError, match="AccessDenied") as caught:
        raas.documents.upload(path)
    assert caught.value.code == "upload_refused"

    storage = Storage([doc("d1", "indexed")])

    async def run() -> str:
        async with AsyncClient(URL, "k", transport=httpx.MockTransport(storage)) as client:
            return (await client.documents.upload(path, title="A")).status

    assert run_coroutine(run()) == "indexed"
    assert storage.puts[0][1] == b"hello"
    assert json.loads(storage.api[0].content)["title"] == "A"
