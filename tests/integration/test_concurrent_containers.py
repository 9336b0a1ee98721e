"""Several warm containers per function, as in Lambda: requests to one function run side by side,
each in its own copy of the handler module, and never see each other's request or caller."""

from __future__ import annotations

import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType

import pytest

from raas.local.containers import FunctionPool, Throttled
from raas.local.events import QueuePump
from raas.local.gateway import LocalGateway
from tests.conftest import TenantHandle
from tests.helpers import ApiClient, GatewayClient, HashingEmbedder, expect

RENDEZVOUS = "rendezvous-quokka"
WAIT = 10.0


class RendezvousEmbedder(HashingEmbedder):
    """Embeds a query holding RENDEZVOUS only once `parties` such queries are inside it at the same time;
    another text passes, after `delay_seconds` so that requests interleave inside the handler."""

    def __init__(self, parties: int = 2, delay_seconds: float = 0.0):
        super().__init__()
        self.rendezvous = threading.Barrier(parties, timeout=WAIT)
        self.delay_seconds = delay_seconds

    def embed(self, texts: list[str]) -> list[list[float]]:
        if any(RENDEZVOUS in text for text in texts):
            self.rendezvous.wait()  # BrokenBarrierError (the request fails) if the other never arrives
        elif self.delay_seconds and len(texts) == 1:
            time.sleep(self.delay_seconds)
        return super().embed(texts)


@pytest.fixture
def embedder() -> RendezvousEmbedder:
    return RendezvousEmbedder(parties=2, delay_seconds=0.005)


def test_two_requests_to_one_function_run_at_the_same_time(api: ApiClient, tenant_a: TenantHandle, tenant_b: TenantHandle) -> None:
    """Each search waits inside the function until the other one is inside too: with one request at a
    time per function (one container) neither could ever get there."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        replies = list(
            pool.map(
                lambda tenant: api.request("POST", "/v1/search", key=tenant.admin_key, json_body={"query": f"{RENDEZVOUS} harbour"}),
                [tenant_a, tenant_b],
            )
        )
    assert [reply.status for reply in replies] == [200, 200], [reply.text for reply in replies]


def test_concurrent_requests_of_two_tenants_each_get_their_own_answer(
    api: ApiClient, tenant_a: TenantHandle, tenant_b: TenantHandle, ingest_queue: QueuePump
) -> None:
    markers = {tenant_a.tenant_id: "alphamarker", tenant_b.tenant_id: "bravomarker"}
    for tenant in (tenant_a, tenant_b):
        text = f"The shared harbour manual of {markers[tenant.tenant_id]}."
        expect(api.request("POST", "/v1/documents", key=tenant.admin_key, json_body={"title": "manual", "text": text}), 202)
    ingest_queue.drain()
    own_keys = {
        tenant.tenant_id: {k["key_id"] for k in expect(api.request("GET", "/v1/keys", key=tenant.admin_key), 200)["keys"]}
        for tenant in (tenant_a, tenant_b)
    }

    def call(job: tuple[TenantHandle, int]) -> tuple[TenantHandle, str, object]:
        tenant, n = job
        if n % 3 == 2:
            return tenant, "keys", expect(api.request("GET", "/v1/keys", key=tenant.admin_key), 200)
        return tenant, "search", expect(api.request("POST", "/v1/search", key=tenant.admin_key, json_body={"query": "shared harbour"}), 200)

    jobs = [(tenant, n) for n in range(30) for tenant in (tenant_a, tenant_b)]
    # Threads switch every few microseconds instead of every 5 ms, so that a request reading
    # state another request has just set (a shared resolver's current event) would show.
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(call, jobs))
    finally:
        sys.setswitchinterval(switch_interval)

    assert len(answers) == 60
    for tenant, kind, body in answers:
        other = tenant_b if tenant is tenant_a else tenant_a
        assert isinstance(body, dict)
        if kind == "keys":
            assert {k["key_id"] for k in body["keys"]} == own_keys[tenant.tenant_id]
        else:
            texts = " ".join(hit["snippet"] for hit in body["results"])
            assert markers[tenant.tenant_id] in texts
            assert markers[other.tenant_id] not in texts, "an answer carried the other tenant's document"


def test_a_function_starts_containers_only_as_requests_overlap(api: ApiClient, tenant_a: TenantHandle, tenant_b: TenantHandle) -> None:
    gateway = api.gateway  # type: ignore[attr-defined]
    assert isinstance(gateway, LocalGateway)
    for _ in range(3):  # one after another: the one warm container serves them all
        expect(api.request("POST", "/v1/search", key=tenant_a.admin_key, json_body={"query": "harbour"}), 200)
    assert gateway.pools["query"].started == 1
    test_two_requests_to_one_function_run_at_the_same_time(api, tenant_a, tenant_b)
    assert gateway.pools["query"].started == 2


def test_every_container_is_its_own_copy_of_the_handler_module(aws: None) -> None:
    gateway = LocalGateway(rate_limits=False, concurrency=3, tenant_share=3, throttle_wait_seconds=0.1)
    pool = gateway.pools["query"]
    with pool.container("t1") as first, pool.container("t1") as second, pool.container("t1") as third:
        modules = [first, second, third]
        assert len({id(m) for m in modules}) == 3
        assert len({id(m.app) for m in modules}) == 3  # each its own Powertools resolver (the current event lives there)
        assert len({id(m.router) for m in modules}) == 3
    with pool.container("t1") as again:
        assert again in modules  # warm: reused, not started anew


def test_a_function_at_its_concurrency_throttles_with_429(aws: None, api: ApiClient, tenant_a: TenantHandle) -> None:
    """Lambda refuses an invocation past the function's concurrency with a throttling error (429);
    locally the request first waits `throttle_wait_seconds` for a container."""
    gateway = LocalGateway(rate_limits=False, concurrency=1, throttle_wait_seconds=0.2)
    client = GatewayClient(gateway)
    with gateway.pools["query"].container("someone else"):
        reply = client.request("POST", "/v1/search", key=tenant_a.admin_key, json_body={"query": "harbour"})
    assert reply.status == 429
    assert reply.error_code == "too_many_requests"
    assert reply.headers["Retry-After"] == "1"
    assert "concurrency limit (1)" in reply.json()["error"]["message"]
    expect(client.request("POST", "/v1/search", key=tenant_a.admin_key, json_body={"query": "harbour"}), 200)  # free again


def test_a_container_that_fails_to_start_gives_its_place_back() -> None:
    first = ModuleType("f")
    starts: list[str] = []

    def failing_start(name: str) -> ModuleType:
        starts.append(name)
        raise ImportError("the image is broken")

    pool = FunctionPool("f", first, concurrency=2, tenant_share=2, wait_seconds=0.05, start_container=failing_start)
    with pool.container("t") as held:
        assert held is first
        for _ in range(2):  # the failed start did not use up the second place: it is tried again
            with pytest.raises(ImportError), pool.container("t"):
                pass
    assert len(starts) == 2
    assert pool.started == 1
    with pool.container("t") as again:
        assert again is first


def test_a_tenant_at_its_share_waits_while_another_tenant_is_served() -> None:
    pool = FunctionPool("f", ModuleType("f"), concurrency=4, tenant_share=2, wait_seconds=0.1, start_container=ModuleType)
    with pool.container("noisy"), pool.container("noisy"):
        with pytest.raises(Throttled, match=r"share \(2\) of f's 4 containers"), pool.container("noisy"):
            pass
        with pool.container("quiet") as served:
            assert isinstance(served, ModuleType)


def test_metrics_and_log_keys_of_concurrent_requests_stay_with_their_request(capsys: pytest.CaptureFixture[str]) -> None:
    """Powertools buffers metrics (and the logger its appended keys) once per process; with requests
    of two tenants in flight at once, each flush must carry its own metrics and tenant, no other's."""
    import json

    from raas.handlers.api import logger, metrics

    both_inside = threading.Barrier(2, timeout=WAIT)

    def request(tenant: str, metric: str) -> None:
        logger.thread_safe_clear_keys()
        logger.thread_safe_append_keys(tenant_id=tenant)
        metrics.add_metadata(key="tenant_id", value=tenant)
        metrics.add_metric(name=metric, unit="Count", value=1)
        both_inside.wait()  # the other request has added its own by now
        assert logger.thread_safe_get_current_keys()["tenant_id"] == tenant
        metrics.flush_metrics()

    threads = [threading.Thread(target=request, args=args) for args in (("tenant-a", "OnlyA"), ("tenant-b", "OnlyB"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    flushed = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    by_tenant = {blob["tenant_id"]: blob for blob in flushed}
    assert set(by_tenant) == {"tenant-a", "tenant-b"}
    assert "OnlyA" in by_tenant["tenant-a"]
    assert "OnlyB" not in by_tenant["tenant-a"]
    assert "OnlyB" in by_tenant["tenant-b"]
    assert "OnlyA" not in by_tenant["tenant-b"]


def test_each_thread_reads_the_request_it_is_serving_even_across_functions() -> None:
    """Powertools keeps the current event on the BaseRouter class, one per process: a request parked
    in one function read the request another function had started since (another tenant's caller)."""
    from aws_lambda_powertools.event_handler.router import Router

    from raas.handlers.api import lambda_handler, make_app
    from raas.local.invocation import lambda_context

    parked, resumed = threading.Event(), threading.Event()
    seen: dict[str, str] = {}

    def function(path: str, park: bool) -> object:
        router = Router()
        app = make_app()

        @router.get(path)
        def serve() -> dict[str, str]:
            if park:
                parked.set()
                assert resumed.wait(WAIT)
            seen[path] = str(app.current_event.request_context.authorizer.raw_event["tenant_id"])
            return {}

        app.include_router(router)
        return lambda_handler(app)

    def event(path: str, tenant: str) -> dict[str, object]:
        request = {"resourcePath": path, "httpMethod": "GET", "stage": "v1", "requestId": tenant, "authorizer": {"tenant_id": tenant}}
        return {"resource": path, "path": path, "httpMethod": "GET", "headers": {}, "body": None, "requestContext": request}

    first, second = function("/v1/first", park=True), function("/v1/second", park=False)
    waiting = threading.Thread(target=lambda: first(event("/v1/first", "tenant-a"), lambda_context("first")))  # type: ignore[operator]
    waiting.start()
    assert parked.wait(WAIT)
    second(event("/v1/second", "tenant-b"), lambda_context("second"))  # type: ignore[operator]
    resumed.set()
    waiting.join(WAIT)
    assert seen == {"/v1/first": "tenant-a", "/v1/second": "tenant-b"}
