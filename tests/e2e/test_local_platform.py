"""The local platform as a newcomer uses it: start, use, stop, start again with the same state."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.conftest import create_tenant
from tests.e2e.conftest import LocalServer, start_local
from tests.helpers import HttpClient, expect


def test_state_survives_a_restart_and_the_operator_key_is_kept(tmp_path: Path) -> None:
    first = start_local(tmp_path, operator_key=None)  # no RAAS_OPERATOR_KEY: one is generated and saved
    try:
        assert first.operator_key.startswith("raasop_")
        api = HttpClient(first.url)
        tenant = create_tenant(api, "persistent", "smb", operator_key=first.operator_key)
        expect(api.request("PATCH", "/v1/config", key=tenant.admin_key, json_body={"temperature": 1.234}), 200)
    finally:
        assert first.stop() == 0
    assert "raas local platform stopped" in "".join(first.output)

    second = start_local(tmp_path, operator_key=None)
    try:
        assert second.operator_key == first.operator_key
        api = HttpClient(second.url)
        config = expect(api.request("GET", "/v1/config", key=tenant.admin_key), 200)
        assert (config["version"], config["config"]["temperature"]) == (1, 1.234)
        listed = expect(api.request("GET", "/v1/tenants", key=second.operator_key), 200)["tenants"]
        assert tenant.tenant_id in [t["tenant_id"] for t in listed]
    finally:
        second.stop()


def test_without_a_state_dir_nothing_is_kept(tmp_path: Path) -> None:
    first = start_local()
    try:
        tenant = create_tenant(HttpClient(first.url), "ephemeral", "free")
    finally:
        first.stop()
    second = start_local()
    try:
        assert HttpClient(second.url).request("GET", "/v1/config", key=tenant.admin_key).status == 401
    finally:
        second.stop()


def test_the_server_answers_http_errors_cleanly(local_server: LocalServer) -> None:
    response = httpx.post(f"{local_server.url}/v1/tenants", content=b"x" * (11 * 1024 * 1024), headers={"Authorization": "Bearer x"})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert httpx.get(f"{local_server.url}/v1/nope").status_code == 404
    assert "x-request-id" in httpx.get(f"{local_server.url}/v1/health").headers
