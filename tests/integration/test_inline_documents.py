"""Inline documents the ingest would fail later are refused at the API at once (issue 12)."""

from __future__ import annotations

import pytest

from raas.bootstrap import services
from tests.conftest import TenantHandle
from tests.helpers import ApiClient, expect

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def post(api: ApiClient, tenant: TenantHandle, **body: object) -> tuple[int, str | None]:
    reply = api.request("POST", "/v1/documents", key=tenant.admin_key, json_body={"title": "t", **body})
    return reply.status, reply.error_code


@pytest.mark.parametrize("content_type", ["application/pdf", DOCX, "application/pdf; charset=utf-8"])
def test_inline_text_declared_as_a_binary_format_is_refused(api: ApiClient, tenant_a: TenantHandle, content_type: str) -> None:
    assert post(api, tenant_a, text="plain words, not a PDF", content_type=content_type) == (415, "content_type_mismatch")
    assert services().document_store.stats(tenant_a.tenant_id)["documents"] == 0  # nothing reserved


@pytest.mark.parametrize("content_type", [None, "text/plain", "text/markdown", "text/html", "text/csv"])
def test_inline_text_with_nul_characters_is_refused(api: ApiClient, tenant_a: TenantHandle, content_type: str | None) -> None:
    extra = {"content_type": content_type} if content_type else {}
    assert post(api, tenant_a, text="before\x00after", **extra) == (422, "invalid_text")
    assert services().document_store.stats(tenant_a.tenant_id)["documents"] == 0


def test_inline_text_of_a_text_type_is_still_accepted(api: ApiClient, tenant_a: TenantHandle) -> None:
    for content_type in ("text/plain", "text/markdown", "text/html", "text/csv", "application/json"):
        text = '{"a": "json"}' if content_type == "application/json" else f"words in {content_type}"
        body = {"title": "t", "text": text, "content_type": content_type}
        expect(api.request("POST", "/v1/documents", key=tenant_a.admin_key, json_body=body), 202)
