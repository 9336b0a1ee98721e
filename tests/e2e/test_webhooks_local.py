"""`raas local` delivers tenant webhooks from its local bus, as the deployed delivery function does."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

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


def settled_deliveries(api: HttpClient, key: str, endpoint_id: str, timeout: float = 15) -> list[dict[str, Any]]:
    """The endpoint's delivery log once none of it is pending: the delivery records its outcome after the receiver
    has answered, so the receiver can hold the request while the log still says `pending`."""
    deadline = time.monotonic() + timeout
    while True:
        log: list[dict[str, Any]] = expect(api.request("GET", f"/v1/webhooks/{endpoint_id}/deliveries", key=key), 200)["deliveries"]
        if all(d["status"] != "pending" for d in log) or time.monotonic() > deadline:
            return log
        time.sleep(0.1)


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
        log = settled_deliveries(api, tenant.admin_key, endpoint_id)
        assert [d["status"] for d in log] == ["succeeded"]
        assert log[0]["event_id"] == got.json()["id"]
        assert log[0]["attempts"][0]["status_code"] == 200
    finally:
        receiver.stop()
