"""The composition root: what it builds, when, from which settings, and what it refuses."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from raas.bootstrap import Services, bootstrap
from raas.domain.events import PlatformEvent
from raas.settings import ConfigurationError, Settings
from tests.helpers import HashingEmbedder


class RecordingPublisher:
    def __init__(self) -> None:
        self.published: list[PlatformEvent] = []

    def publish(self, event: PlatformEvent) -> None:
        self.published.append(event)


LAMBDAS = Path(__file__).resolve().parents[2] / "lambdas"
DEPLOYED = {
    "RAAS_STAGE": "prod",
    "RAAS_EVENT_BUS_NAME": "raas-prod",
    "RAAS_INGEST_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/raas-prod-ingest",
    "RAAS_SEARCH_ENGINE": "opensearch",
    "RAAS_OPENSEARCH_ENDPOINT": "https://abc.us-east-1.aoss.amazonaws.com",
}


def test_each_service_is_built_once_per_container_and_overrides_are_used() -> None:
    fake, bus = HashingEmbedder(), RecordingPublisher()
    services = bootstrap(Settings(), embedder=fake, event_publisher=bus)
    assert services.ingest_service is services.ingest_service
    assert services.ingest_service.embedder is fake
    assert services.query_service.embedder is fake
    assert services.tenant_service.events is bus
    other = bootstrap(Settings(), embedder=fake)
    assert other.tenant_store is not services.tenant_store  # containers share nothing they built


def test_an_unknown_override_is_refused() -> None:
    with pytest.raises(TypeError, match="embeder"):
        bootstrap(Settings(), embeder=HashingEmbedder())


def test_a_misspelt_choice_fails_at_start_naming_the_variable() -> None:
    with pytest.raises(ConfigurationError, match="RAAS_EMBEDDER"):
        Settings.from_env({"RAAS_EMBEDDER": "opneai"})
    with pytest.raises(ConfigurationError, match="RAAS_RERANKER"):
        Settings.from_env({"RAAS_RERANKER": "bedrok"})  # used to mean "no reranker", silently


def test_a_deployed_stage_without_its_cloud_settings_fails_at_start() -> None:
    Settings.from_env(DEPLOYED)
    for name in ("RAAS_EVENT_BUS_NAME", "RAAS_INGEST_QUEUE_URL", "RAAS_OPENSEARCH_ENDPOINT"):
        with pytest.raises(ConfigurationError, match=name):
            Settings.from_env({k: v for k, v in DEPLOYED.items() if k != name})
    with pytest.raises(ConfigurationError, match="embedded engine is local only"):
        Settings.from_env({**DEPLOYED, "RAAS_SEARCH_ENGINE": "embedded"})


def test_no_event_bus_is_an_error_not_a_silent_local_bus() -> None:
    with pytest.raises(ConfigurationError, match="RAAS_EVENT_BUS_NAME"):
        _ = bootstrap(Settings()).event_publisher


def test_platform_and_tenant_scoped_clients_are_distinct_names() -> None:
    services = bootstrap(Settings(tenant_role_arn="arn:aws:iam::123456789012:role/raas-tenant-data"))
    scoped = services.tenant_scoped_client("dynamodb")
    assert scoped.platform is services.platform_client("dynamodb")
    assert scoped.sessions is services.tenant_sessions  # tenant data goes through the tenant role
    registry = services.tenant_store.clients
    assert registry.platform is services.platform_client("dynamodb")
    assert registry.sessions is None  # the registry is platform data: never a tenant session


def _production_modules() -> list[Path]:
    return [p for p in (LAMBDAS / "raas").rglob("*.py") if "local" not in p.relative_to(LAMBDAS / "raas").parts[:1] and p.name != "cli.py"]


def test_no_production_module_imports_the_local_platform() -> None:
    offenders = []
    for path in _production_modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            if any(n == "raas.local" or n.startswith("raas.local.") for n in names):
                offenders.append(f"{path.relative_to(LAMBDAS)}:{node.lineno}")
    assert offenders == []


def _in_fresh_process(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(LAMBDAS), "AWS_DEFAULT_REGION": "us-east-1"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**base, **env}, check=False, timeout=60)


def _printed_by_fresh_process(code: str) -> object:
    """What `code`, run in a fresh interpreter with dummy credentials, printed as JSON."""
    result = _in_fresh_process(code, {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_a_function_builds_only_what_it_uses() -> None:
    """The authorizer's services load no search, document, billing or LLM adapter."""
    code = (
        "import json, sys\n"
        "from raas.bootstrap import bootstrap\n"
        "services = bootstrap()\n"
        "services.authenticator\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('raas.adapters') or m in ('stripe', 'openai', 'opensearchpy'))))\n"
    )
    assert _printed_by_fresh_process(code) == [
        "raas.adapters",
        "raas.adapters.aws",
        "raas.adapters.dynamo",
        "raas.adapters.dynamo_schema",
        "raas.adapters.registry",
    ]


def test_inside_lambda_a_missing_setting_fails_the_cold_start_with_its_name() -> None:
    env = {k: v for k, v in DEPLOYED.items() if k != "RAAS_EVENT_BUS_NAME"} | {"AWS_LAMBDA_FUNCTION_NAME": "raas-prod-query"}
    result = _in_fresh_process("import raas.handlers.query", env)
    assert result.returncode != 0
    assert "ConfigurationError" in result.stderr
    assert "RAAS_EVENT_BUS_NAME" in result.stderr
    assert _in_fresh_process("import raas.handlers.query", {**DEPLOYED, "AWS_LAMBDA_FUNCTION_NAME": "raas-prod-query"}).returncode == 0


def test_every_service_can_be_overridden_by_name() -> None:
    assert {"embedder", "event_publisher", "search_index", "chat_model", "tenant_scoped_client"} <= Services.overridable()


def test_the_first_answer_loads_only_its_own_providers_sdk() -> None:
    """Building the query service loads no provider SDK; the first answer with an OpenAI model loads
    openai and nothing else (anthropic alone costs about a second)."""
    code = (
        "import json, sys\n"
        "from raas.bootstrap import bootstrap\n"
        "from raas.domain.catalog import models\n"
        "from raas.settings import Settings\n"
        "heavy = lambda: sorted(m for m in ('openai', 'anthropic', 'stripe', 'opensearchpy', 'torch') if m in sys.modules)\n"
        "settings = Settings(openai_api_key='sk-test', anthropic_api_key='sk-ant-test', reranker='none')\n"
        "services = bootstrap(settings, event_publisher=object())\n"
        "services.query_service\n"
        "built = heavy()\n"
        "services.chat_model(models()['gpt-4o-mini'])\n"
        "print(json.dumps([built, heavy()]))\n"
    )
    assert _printed_by_fresh_process(code) == [[], ["openai"]]
