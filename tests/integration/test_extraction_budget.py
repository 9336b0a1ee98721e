"""A DOCX that expands past its tier's extraction budget fails with the reason, through the real upload,
S3 event and ingest handler, while another tenant's document indexes as usual."""

from __future__ import annotations

import base64

import pytest

from raas.domain import catalog
from raas.local.events import QueuePump
from tests.conftest import TenantHandle, create_tenant
from tests.helpers import ApiClient, expect
from tests.unit.test_chunking_extraction import DOCX, MIB, docx_of, whitespace_body

pytestmark = pytest.mark.usefixtures("aws")


def _upload(api: ApiClient, tenant: TenantHandle, data: bytes) -> str:
    body = {"title": "report", "content_base64": base64.b64encode(data).decode(), "content_type": DOCX}
    return str(expect(api.request("POST", "/v1/documents", key=tenant.admin_key, json_body=body), 202)["document_id"])


def _document(api: ApiClient, tenant: TenantHandle, document_id: str) -> dict:
    return expect(api.request("GET", f"/v1/documents/{document_id}", key=tenant.admin_key), 200)


def test_a_docx_past_the_tier_budget_fails_and_others_still_index(api: ApiClient, tenant_b: TenantHandle, ingest_queue: QueuePump) -> None:
    free = create_tenant(api, "free tenant", "free")
    smb = create_tenant(api, "smb tenant", "smb")
    # 24 MiB of XML in a 0.6 MB file: within the free tier's 5 MB upload limit and the 100x ratio check.
    expanding = docx_of(whitespace_body(24 * MIB), padding=300_000)
    assert len(expanding) < catalog.tier_limits("free").max_document_bytes
    refused = _upload(api, free, expanding)
    allowed = _upload(api, smb, expanding)  # within the smb tier's 50 MiB
    normal = expect(
        api.request("POST", "/v1/documents", key=tenant_b.admin_key, json_body={"title": "notes", "text": "Otters hold hands."}), 202
    )["document_id"]
    ingest_queue.drain()

    failed = _document(api, free, refused)
    assert (failed["status"], failed["chunk_count"]) == ("failed", 0)
    budget = catalog.tier_limits("free").max_extracted_bytes
    assert failed["error"] == f"the document expands to more than {budget} bytes of XML/text"
    assert expect(api.request("POST", "/v1/search", key=free.admin_key, json_body={"query": "canary"}), 200)["results"] == []
    assert _document(api, smb, allowed)["status"] == "indexed"
    assert _document(api, tenant_b, normal)["status"] == "indexed"
    hits = expect(api.request("POST", "/v1/search", key=tenant_b.admin_key, json_body={"query": "otters"}), 200)["results"]
    assert hits
    assert "Otters" in hits[0]["snippet"]
