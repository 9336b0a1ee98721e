"""`raas local` delivers tenant webhooks from its local bus, as the deployed delivery function does."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import create_tenant
from tests.e2e.conftest import LocalServer, start_local
from tests.helpers import HttpClient, expect
from tests.webhook_receiver import LoopbackReceiver


@pytest.fixture
def webhook_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalServer]:
    monkeypatch.setenv("RAAS_WEBHOOK_ALLOW_LOOPBACK", "true")
    server = start_local()
    yield server
    server.stop()


def test_raas_local_delivers_a_signed_config_change_to_a_loopback_receiver(webhook_server: LocalServer) -> None:
    api = HttpClient(webhook_server.url)
    tenant = create_tenant(api, "hooks", "smb", operator_key=webhook_server.operator_key)
    receiver = LoopbackReceiver()
    try:
        created = expect(
            api.request("POST", "/v1/webhooks", key=tenant.admin_key, json_body={"url": receiver.url, "events": ["config.changed"]}), 201
        )
        endpoint_id, secret = created["endpoint"]["endpoint_id"], created["secret"]
        expect(api.request("PATCH", "/v1/config", key=tenant.admin_key, json_body={"temperature": 0.3}), 200)
        [got] = receiver.wait_for(1)  # the PATCH did not wait for it: delivery is queued, as in AWS
        receiver.verify(got, secret)
        assert got.json()["type"] == "config.changed"
        assert got.json()["tenant_id"] == tenant.tenant_id
        log = expect(api.request("GET", f"/v1/webhooks/{endpoint_id}/deliveries", key=tenant.admin_key), 200)["deliveries"]
        assert [d["status"] for d in log] == ["succeeded"]
        assert log[0]["event_id"] == got.json()["id"]
        assert log[0]["attempts"][0]["status_code"] == 200
    finally:
        receiver.stop()
