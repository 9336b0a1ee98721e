"""Faults injected through the adapters (a flaky client or store behind the same port): each
gives a clear 503/504 or a retry, never a wrong answer, a lost document or a lost usage event.

Covered elsewhere: Stripe down (test_billing_stripe: the outbox keeps usage until Stripe is
back), lifecycle steps failing (test_lifecycle), LLM 5xx on the OpenAI path (test_query)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from raas.adapters.aws import client as aws_client
from raas.bootstrap import services
from raas.handlers.registry import load_event_handler
from raas.local.invocation import lambda_context
from raas.security.credentials import ClientSource
from tests.conftest import TenantHandle
from tests.helpers import ApiClient, FakeProviderServer, ScriptedReply, expect, rebuild_services, services_replaced

pytestmark = pytest.mark.usefixtures("aws")


class Throttled:
    """A DynamoDB client whose named operations fail as DynamoDB does under throttling."""

    def __init__(self, inner: Any, operations: set[str], code: str = "ThrottlingException", message: str = "Rate exceeded"):
        self.inner = inner
        self.operations = operations
        self.code = code
        self.message = message
        self.failed = 0

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.inner, name)
        if name not in self.operations:
            return attribute

        def fail(*_args: Any, **_kwargs: Any) -> Any:
            self.failed += 1
            raise ClientError({"Error": {"Code": self.code, "Message": self.message}}, name)

        return fail


def with_dynamodb(dynamodb: Any) -> Callable[[str], ClientSource]:
    """Tenant-scoped clients with the DynamoDB client replaced (the other services untouched)."""

    def clients(service: str) -> ClientSource:
        return ClientSource(service, dynamodb if service == "dynamodb" else aws_client(service), None)

    return clients


def _documents(api: ApiClient, tenant: TenantHandle) -> list[Any]:
    return list(expect(api.request("GET", "/v1/documents", key=tenant.admin_key), 200)["documents"])


def test_dynamodb_throttling_is_a_503_and_writes_nothing(api: ApiClient, tenant_a: TenantHandle) -> None:
    throttled = Throttled(boto3.client("dynamodb"), {"transact_write_items"})
    with services_replaced(tenant_scoped_client=with_dynamodb(throttled)):
        reply = api.request("POST", "/v1/documents", key=tenant_a.admin_key, json_body={"title": "t", "text": "throttled"})
        assert (reply.status, reply.json()["error"]["code"]) == (503, "storage_unavailable")
        assert throttled.failed >= 1
    assert _documents(api, tenant_a) == []
    assert services().document_store.stats(tenant_a.tenant_id)["documents"] == 0
    # the same content goes in cleanly once DynamoDB recovers: no stale hash claim is left
    expect(api.request("POST", "/v1/documents", key=tenant_a.admin_key, json_body={"title": "t", "text": "throttled"}), 202)


def test_a_record_dynamodb_finds_too_large_is_a_413_and_writes_nothing(api: ApiClient, tenant_a: TenantHandle) -> None:
    # DynamoDB refuses items over 400 KB with a ValidationException
    # (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Constraints.html): the caller's 413, not a 502.
    too_large = Throttled(
        boto3.client("dynamodb"), {"transact_write_items"}, "ValidationException", "Item size has exceeded the maximum allowed size"
    )
    with services_replaced(tenant_scoped_client=with_dynamodb(too_large)):
        reply = api.request("POST", "/v1/documents", key=tenant_a.admin_key, json_body={"title": "t", "text": "big"})
        assert (reply.status, reply.json()["error"]["code"]) == (413, "record_too_large")
    assert _documents(api, tenant_a) == []


class FailingPuts:
    """An object store whose puts fail (S3 500 after botocore's retries)."""

    def __init__(self, inner: Any):
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def put(self, *_args: Any, **_kwargs: Any) -> None:
        from raas.domain.errors import ServiceUnavailable

        raise ServiceUnavailable("the document store is temporarily unavailable; try again", code="storage_unavailable")


def test_an_s3_failure_leaves_no_document_record_or_quota(api: ApiClient, tenant_a: TenantHandle) -> None:
    real = services().object_store
    with services_replaced(object_store=FailingPuts(real)):
        reply = api.request("POST", "/v1/documents", key=tenant_a.admin_key, json_body={"title": "t", "text": "s3 is down"})
        assert (reply.status, reply.json()["error"]["code"]) == (503, "storage_unavailable")
    assert _documents(api, tenant_a) == []
    assert services().document_store.stats(tenant_a.tenant_id) == {"documents": 0, "bytes": 0, "generation": 0}


def _closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def slow_search_server() -> Iterator[str]:
    class Slow(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            time.sleep(2)
            self.send_response(200)
            self.end_headers()

        do_GET = do_HEAD = do_POST

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _opensearch_at(url: str, timeout: float) -> Any:
    from opensearchpy import OpenSearch

    from raas.adapters.search_opensearch import OpenSearchIndex

    return OpenSearchIndex(OpenSearch(hosts=[url], timeout=timeout, max_retries=0), dimension=384)


@pytest.mark.usefixtures("chat")
def test_search_engine_down_is_a_503_and_slow_is_a_504(api: ApiClient, tenant_a: TenantHandle, slow_search_server: str) -> None:
    down = _opensearch_at(f"http://127.0.0.1:{_closed_port()}", timeout=1)
    rebuild_services(search_index=down)
    reply = api.request("POST", "/v1/search", key=tenant_a.admin_key, json_body={"query": "anything"})
    assert (reply.status, reply.json()["error"]["code"]) == (503, "search_unavailable")

    slow = _opensearch_at(slow_search_server, timeout=0.3)
    rebuild_services(search_index=slow)
    reply = api.request("POST", "/v1/query", key=tenant_a.admin_key, json_body={"query": "anything"})
    assert (reply.status, reply.json()["error"]["code"]) == (504, "search_timeout")
    period = datetime.now(UTC).strftime("%Y-%m")
    assert services().usage_recorder.totals(tenant_a.tenant_id, period)["queries"] == 0  # nothing answered, nothing billed


@pytest.mark.parametrize(
    ("reply", "status", "code"),
    [
        (ScriptedReply(429, {"error": {"message": "rate limited"}}, {"retry-after-ms": "1"}), 503, "llm_unavailable"),
        (ScriptedReply(500, {"error": {"message": "boom"}}, {"retry-after-ms": "1"}), 503, "llm_unavailable"),
        (ScriptedReply(200, {}, delay_seconds=4.0), 504, "llm_timeout"),
    ],
    ids=["429", "500", "timeout"],
)
def test_llm_failures_are_503_or_504_and_cost_nothing(
    api: ApiClient, tenant_a: TenantHandle, openai_fake: FakeProviderServer, reply: ScriptedReply, status: int, code: str
) -> None:
    openai_fake.defaults["/v1/chat/completions"] = reply
    failed = api.request("POST", "/v1/query", key=tenant_a.admin_key, json_body={"query": "refund window?"})
    assert (failed.status, failed.json()["error"]["code"]) == (status, code)
    period = datetime.now(UTC).strftime("%Y-%m")
    assert services().usage_recorder.totals(tenant_a.tenant_id, period)["queries"] == 0
    assert services().quota_ledger.used(tenant_a.tenant_id, period) == (0, 0)  # the reservation was given back


@pytest.mark.usefixtures("chat")
def test_concurrent_config_updates_lose_nothing(api: ApiClient, tenant_a: TenantHandle) -> None:
    fields = [("top_k", 3), ("alpha", 0.25), ("temperature", 0.3), ("max_tokens", 300), ("enable_reranking", True), ("top_k", 4)]
    barrier = threading.Barrier(len(fields))
    statuses: list[int] = []

    def patch(field: str, value: Any) -> None:
        barrier.wait()
        statuses.append(api.request("PATCH", "/v1/config", key=tenant_a.admin_key, json_body={field: value}).status)

    threads = [threading.Thread(target=patch, args=pair) for pair in fields]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * len(fields)
    config = expect(api.request("GET", "/v1/config", key=tenant_a.admin_key), 200)
    assert config["version"] == len(fields)
    assert config["config"]["alpha"] == 0.25
    assert config["config"]["temperature"] == 0.3
    assert config["config"]["max_tokens"] == 300
    assert config["config"]["enable_reranking"] is True
    versions = expect(api.request("GET", "/v1/config/versions?limit=50", key=tenant_a.admin_key), 200)["versions"]
    assert sorted(v["version"] for v in versions) == list(range(1, len(fields) + 1))


@pytest.mark.usefixtures("chat")
def test_usage_is_buffered_while_the_usage_table_is_down_and_replayed_once(api: ApiClient, tenant_a: TenantHandle) -> None:
    throttled = Throttled(boto3.client("dynamodb"), {"transact_write_items"})

    with services_replaced(tenant_scoped_client=with_dynamodb(throttled)):
        answered = api.request("POST", "/v1/query", key=tenant_a.admin_key, json_body={"query": "anything at all"})
        assert answered.status == 200  # the answer is not held hostage to the usage table
    period = datetime.now(UTC).strftime("%Y-%m")
    assert services().usage_recorder.totals(tenant_a.tenant_id, period)["queries"] == 0
    handler = load_event_handler("metering")
    first = handler({"action": "replay_usage"}, lambda_context("raas-metering"))
    assert first["replayed"] == 1  # the query's usage, carrying its API call (one event: RequestUsage)
    assert handler({"action": "replay_usage"}, lambda_context("raas-metering")) == {"replayed": 0}
    totals = services().usage_recorder.totals(tenant_a.tenant_id, period)
    assert totals["queries"] == 1
    assert totals["api_calls"] >= 1


def test_the_local_scheduler_runs_every_schedule_and_survives_failures() -> None:
    from raas.handlers.registry import SCHEDULES
    from raas.local.schedules import LocalScheduler, interval_seconds

    scheduler = LocalScheduler()
    assert set(scheduler.run_due(now=10**9)) == set(SCHEDULES)  # all due: each ran without raising
    assert scheduler.run_due(now=10**9 + 1) == []  # and none again until its interval has passed
    assert interval_seconds("rate(15 minutes)") == 900
    assert interval_seconds("cron(30 0 1 * ? *)") == 3600
