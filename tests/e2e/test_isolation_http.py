from __future__ import annotations

from tests.conftest import TenantHandle
from tests.helpers import HttpClient
from tests.isolation import run_isolation_harness


def test_isolation_harness_over_http(http_api: HttpClient, http_tenant_a: TenantHandle, http_tenant_b: TenantHandle) -> None:
    assert run_isolation_harness(http_api, http_tenant_a, http_tenant_b)
