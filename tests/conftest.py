"""Shared fixtures: AWS emulated in-process by moto, the gateway emulator, tenants and keys."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from raas.local import moto_patches
from raas.local.aws import isolate_from_real_aws

# Never let a test reach real AWS, whatever the developer's shell has.
isolate_from_real_aws()
moto_patches.install()  # transactions that cost what they touch, and writes atomic across threads as DynamoDB's
os.environ.update({"POWERTOOLS_METRICS_NAMESPACE": "raas-test", "POWERTOOLS_LOG_LEVEL": "WARNING"})
# No test delivers a webhook beyond this machine, whatever URL a test (or the fuzzer) registers.
os.environ["RAAS_WEBHOOK_LOOPBACK_ONLY"] = "true"

from tests.helpers import ApiClient, FakeProviderServer, GatewayClient, HashingEmbedder, RecordingChat, expect, rebuild_services  # noqa: E402

if TYPE_CHECKING:
    from raas.bootstrap import Services
    from raas.local.events import QueuePump

OPERATOR_KEY = "raasop_test_operator_key_0123456789"


@pytest.fixture
def embedder() -> HashingEmbedder:
    """Tests embed with a small deterministic embedder unless they ask for the real model."""
    return HashingEmbedder()


@pytest.fixture
def chat(aws: Services) -> RecordingChat:
    recorder = RecordingChat()
    rebuild_services(chat_model=lambda model: recorder)
    return recorder


@pytest.fixture
def aws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, embedder: HashingEmbedder) -> Iterator[Services]:
    """moto in-process with the platform's tables, bucket and ingest queue, and a container of
    services installed for the handlers (the local event bus and the fake embedder passed in).
    The bus delivers every target at once, queued ones too, so a test sees a webhook when the call returns."""
    from moto import mock_aws

    from raas.bootstrap import bootstrap, install, uninstall
    from raas.local.aws import ensure_resources
    from raas.local.bus import LocalEventBus
    from raas.settings import Settings

    monkeypatch.setenv("RAAS_SEARCH_DIR", str(tmp_path / "search"))
    monkeypatch.setenv("RAAS_RESPONSE_CACHE_TTL_SECONDS", "600")
    with mock_aws():
        monkeypatch.setenv("RAAS_INGEST_QUEUE_URL", ensure_resources())
        yield install(bootstrap(Settings.from_env(), event_publisher=LocalEventBus(queued_targets=frozenset()), embedder=embedder))
        uninstall()


@pytest.fixture
def ingest_queue(aws: None) -> QueuePump:
    """Delivers S3 events to the real ingest handler; call `.drain()` to wait for ingestion."""
    from raas.handlers import ingest
    from raas.local.events import QueuePump

    return QueuePump(os.environ["RAAS_INGEST_QUEUE_URL"], ingest.handler, wait_seconds=0)


@pytest.fixture
def api(aws: None) -> ApiClient:
    """The local gateway (real authorizer + handlers) in-process, with a known operator key."""
    from raas.bootstrap import services
    from raas.local.gateway import LocalGateway

    services().key_service.create_operator_key("test operator", secret=OPERATOR_KEY)
    return GatewayClient(LocalGateway(rate_limits=False))  # throttling has its own tests


@dataclass
class TenantHandle:
    tenant_id: str
    admin_key: str
    admin_key_id: str
    tier: str


def create_tenant(api: ApiClient, name: str = "acme", tier: str = "smb", operator_key: str = OPERATOR_KEY) -> TenantHandle:
    created = expect(api.request("POST", "/v1/tenants", key=operator_key, json_body={"name": name, "tier": tier}), 201)
    keys = expect(api.request("GET", "/v1/keys", key=created["api_key"]), 200)["keys"]
    return TenantHandle(created["tenant"]["tenant_id"], created["api_key"], keys[0]["key_id"], tier)


@pytest.fixture
def tenant_a(api: ApiClient) -> TenantHandle:
    return create_tenant(api, "tenant A", "enterprise")


@pytest.fixture
def tenant_b(api: ApiClient) -> TenantHandle:
    return create_tenant(api, "tenant B", "enterprise")


@pytest.fixture
def openai_fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProviderServer]:
    """The OpenAI path against a scripted loopback server: the SDK's own transport, retries and timeout run."""
    server = FakeProviderServer()
    monkeypatch.setenv("RAAS_OPENAI_API_KEY", "sk-fake")
    monkeypatch.setenv("RAAS_OPENAI_BASE_URL", f"{server.url}/v1")
    monkeypatch.setenv("RAAS_LLM_MAX_RETRIES", "1")
    monkeypatch.setenv("RAAS_LLM_TIMEOUT_SECONDS", "1.5")
    rebuild_services()
    yield server
    server.close()
