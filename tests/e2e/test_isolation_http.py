from __future__ import annotations

import time

from tests.conftest import TenantHandle
from tests.helpers import HttpClient, expect
from tests.isolation import give_a_document, run_isolation_harness


def wait_indexed(api: HttpClient, tenant: TenantHandle, document_id: str, timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        document = expect(api.request("GET", f"/v1/documents/{document_id}", key=tenant.admin_key), 200)
        if document["status"] in ("indexed", "failed"):
            return document
        time.sleep(0.3)
    raise AssertionError(f"document {document_id} was not indexed within {timeout} s")


def test_isolation_harness_over_http(http_api: HttpClient, http_tenant_a: TenantHandle, http_tenant_b: TenantHandle) -> None:
    document_id = give_a_document(http_api, http_tenant_a)
    assert wait_indexed(http_api, http_tenant_a, document_id)["status"] == "indexed"
    assert run_isolation_harness(http_api, http_tenant_a, http_tenant_b, {"document_id": document_id})
