"""A tenant's whole life over HTTP against `raas local`: usage, invoices' calculator, export
downloaded through its presigned link, throttling, deletion with its receipt."""

from __future__ import annotations

import io
import zipfile

import httpx

from tests.conftest import OPERATOR_KEY, create_tenant
from tests.e2e.test_isolation_http import wait_indexed
from tests.helpers import HttpClient, expect


def test_a_tenant_from_creation_to_deletion(http_api: HttpClient) -> None:
    tenant = create_tenant(http_api, "short-lived", "smb")
    accepted = expect(
        http_api.request("POST", "/v1/documents", key=tenant.admin_key, json_body={"title": "n", "text": "otters hold hands"}), 202
    )
    wait_indexed(http_api, tenant, accepted["document_id"])
    usage = expect(http_api.request("GET", "/v1/usage", key=tenant.admin_key), 200)
    assert usage["bytes_ingested"] == len("otters hold hands")
    assert usage["api_calls"] >= 2

    exported = expect(http_api.request("POST", "/v1/export", key=tenant.admin_key), 201)
    bundle = zipfile.ZipFile(io.BytesIO(httpx.get(exported["url"], timeout=30).raise_for_status().content))
    assert "manifest.json" in bundle.namelist()

    accepted = http_api.request("DELETE", f"/v1/tenants/{tenant.tenant_id}", key=OPERATOR_KEY)
    assert accepted.status == 202
    shown = expect(http_api.request("GET", f"/v1/tenants/{tenant.tenant_id}", key=OPERATOR_KEY), 200)
    assert shown["status"] == "deleted"
    assert [s["step"] for s in shown["deletion_receipt"]["steps"]][-1] == "kms_key"
    assert http_api.request("GET", "/v1/config", key=tenant.admin_key).status == 401
    assert httpx.get(exported["url"], timeout=30).status_code in (403, 404)  # the bundle went with the tenant


def test_the_pricing_calculator_needs_no_key(http_api: HttpClient) -> None:
    quote = expect(http_api.request("POST", "/v1/pricing/estimate", json_body={"tier": "midmarket", "queries": 150000}), 200)
    assert quote["total_cents"] == 200_000 + 50_000 * 2


def test_a_free_tenant_is_throttled_at_its_tier_rate(http_api: HttpClient) -> None:
    tenant = create_tenant(http_api, "bursty", "free")
    statuses = [http_api.request("GET", "/v1/config", key=tenant.admin_key).status for _ in range(12)]
    assert 429 in statuses
    assert statuses[0] == 200
