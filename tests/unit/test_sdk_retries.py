"""The client's retries against an httpx MockTransport: 429/503 retried with backoff, `Retry-After` honoured
(seconds and HTTP dates), a monthly quota never waited for, the same `Idempotency-Key` on every try, and
connection failures retried only when nothing can be done twice."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from raas_client import AsyncClient, Client, RetryPolicy, _core, errors, parse_retry_after
from raas_client.operations import OPERATIONS
from tests.helpers import run_coroutine

URL = "http://raas.test"
TENANT = {
    "tenant_id": "t123456789012345",
    "name": "Acme",
    "tier": "smb",
    "status": "active",
    "created_at": "2026-12-02T10:00:00Z",
    "updated_at": "2026-12-02T10:00:00Z",
}


def error(status: int, code: str, headers: dict[str, str] | None = None) -> httpx.Response:
    body = {"error": {"code": code, "message": f"{code} happened", "details": []}}
    return httpx.Response(status, json=body, headers={"X-Request-Id": "req-1", **(headers or {})})


class Script:
    """Answers each request with the next scripted response (or raises it) and records the requests."""

    def __init__(self, *answers: httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            return answer(request)
        return answer


def client(script: Script, sleeps: list[float], **policy: float) -> Client:
    retry = RetryPolicy(rng=lambda: 0.5, **policy)  # type: ignore[arg-type]
    return Client(URL, "raas_key", transport=httpx.MockTransport(script), retry=retry, sleep=sleeps.append)


def test_rate_limited_is_retried_after_retry_after_seconds_with_the_same_idempotency_key() -> None:
    created = {"tenant": TENANT, "api_key": "raas_new"}
    script = Script(error(429, "rate_limited", {"Retry-After": "2"}), error(503, "storage_unavailable"), httpx.Response(201, json=created))
    sleeps: list[float] = []
    result = client(script, sleeps).tenants.create("Acme")
    assert result.api_key == "raas_new"
    assert len(script.requests) == 3
    keys = {r.headers["Idempotency-Key"] for r in script.requests}
    assert len(keys) == 1
    assert len(keys.pop()) == 36
    assert [json.loads(r.content) for r in script.requests] == [{"name": "Acme", "tier": "smb"}] * 3
    # Retry-After 2 honoured (plus at most 10 % jitter), then backoff: base 0.5 -> step 1.0 on try 2, equal jitter at rng 0.5
    assert 2.0 <= sleeps[0] <= 2.2
    assert sleeps[1] == pytest.approx(0.75)


def test_retry_after_as_an_http_date_is_honoured() -> None:
    when = datetime.now(UTC) + timedelta(seconds=30)
    assert parse_retry_after(format_datetime(when, usegmt=True)) == pytest.approx(30, abs=1.5)
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past: no wait
    assert parse_retry_after("soon") is None
    assert parse_retry_after("1.5") == 1.5
    script = Script(error(503, "shutting_down", {"Retry-After": format_datetime(when, usegmt=True)}), httpx.Response(200, json=TENANT))
    sleeps: list[float] = []
    assert client(script, sleeps).tenants.get(TENANT["tenant_id"]).name == "Acme"
    assert 28 <= sleeps[0] <= 33


def test_a_monthly_quota_is_raised_at_once_with_its_retry_after() -> None:
    month = str(20 * 86400)
    script = Script(error(429, "quota_exceeded", {"Retry-After": month, "X-Quota-Queries-Remaining": "0"}))
    sleeps: list[float] = []
    with pytest.raises(errors.QuotaExceededError) as caught:
        client(script, sleeps).query("anything?")
    assert sleeps == []
    assert (caught.value.status, caught.value.code, caught.value.retry_after) == (429, "quota_exceeded", 20 * 86400)
    assert caught.value.headers["x-quota-queries-remaining"] == "0"
    assert caught.value.request_id == "req-1"
    assert str(caught.value) == "quota_exceeded: quota_exceeded happened"


def test_a_retry_after_beyond_the_maximum_wait_is_raised_not_slept() -> None:
    script = Script(error(429, "rate_limited", {"Retry-After": "120"}))
    sleeps: list[float] = []
    with pytest.raises(errors.RateLimitedError) as caught:
        client(script, sleeps, max_retry_after=60).tenants.get("t1")
    assert sleeps == []
    assert caught.value.retry_after == 120


def test_attempts_are_capped() -> None:
    script = Script(*(error(503, "storage_unavailable") for _ in range(3)))
    sleeps: list[float] = []
    with pytest.raises(errors.StorageUnavailableError):
        client(script, sleeps, max_attempts=3).tenants.get("t1")
    assert len(script.requests) == 3
    assert sleeps == [pytest.approx(0.375), pytest.approx(0.75)]  # 0.5 * 2**(n-1), half fixed half random


def test_errors_that_retrying_cannot_fix_are_raised_at_once() -> None:
    for response, cls in (
        (error(404, "tenant_not_found"), errors.TenantNotFoundError),
        (error(409, "version_conflict"), errors.VersionConflictError),
        (error(502, "upstream_error"), errors.UpstreamError),
        (error(429, "llm_budget_exceeded", {"Retry-After": "5"}), errors.LlmBudgetExceededError),
    ):
        script, sleeps = Script(response), list[float]()
        with pytest.raises(cls):
            client(script, sleeps).tenants.get("t1")
        assert (len(script.requests), sleeps) == (1, [])


def test_idempotency_in_progress_is_retried_only_with_a_key() -> None:
    answer = {"document_id": "d1", "status": "queued", "duplicate": False}
    script = Script(error(409, "idempotency_in_progress", {"Retry-After": "1"}), httpx.Response(202, json=answer))
    sleeps: list[float] = []
    assert client(script, sleeps).documents.create("T", text="x", idempotency_key="my-key").document_id == "d1"
    assert [r.headers["Idempotency-Key"] for r in script.requests] == ["my-key", "my-key"]
    assert 1.0 <= sleeps[0] <= 1.1


def test_connection_failures_are_retried_only_when_nothing_can_happen_twice() -> None:
    request = httpx.Request("GET", URL)
    # GET: a read failure is retried
    script, sleeps = Script(httpx.ReadError("reset", request=request), httpx.Response(200, json=TENANT)), list[float]()
    assert client(script, sleeps).tenants.get("t1").tenant_id == TENANT["tenant_id"]
    # POST /v1/keys (no Idempotency-Key on this route): a read failure may have created the key, so it is raised
    script, sleeps = Script(httpx.ReadError("reset", request=request)), []
    with pytest.raises(errors.TransportError):
        client(script, sleeps).keys.create("ci")
    assert len(script.requests) == 1
    # ... but a connection that was never made is retried for any method
    key = {"key": {"key_id": "k1", "name": "ci", "role": "reader", "prefix": "raas_abc", "created_at": "2026-12-02T10:00:00Z"}}
    script, sleeps = Script(httpx.ConnectError("refused", request=request), httpx.Response(201, json={**key, "api_key": "raas_x"})), []
    assert client(script, sleeps).keys.create("ci").api_key == "raas_x"
    assert len(sleeps) == 1


def test_unknown_codes_map_to_their_status_class_and_odd_bodies_still_raise() -> None:
    script, sleeps = Script(error(404, "brand_new_thing_not_found")), list[float]()
    with pytest.raises(errors.NotFoundError) as caught:
        client(script, sleeps).tenants.get("t1")
    assert type(caught.value) is errors.NotFoundError
    assert caught.value.code == "brand_new_thing_not_found"
    script = Script(httpx.Response(500, text="<html>oops</html>"))
    with pytest.raises(errors.ServerError) as server:
        client(script, sleeps).tenants.get("t1")
    assert server.value.status == 500
    assert "oops" in server.value.message


def test_the_api_key_is_sent_as_a_bearer_token_and_query_parameters_are_checked() -> None:
    page = {"tenants": [TENANT], "next_cursor": None}
    script, sleeps = Script(httpx.Response(200, json=page)), list[float]()
    tenants = client(script, sleeps).tenants.list(tier="smb", page_size=10).to_list()
    assert [t.name for t in tenants] == ["Acme"]
    sent = script.requests[0]
    assert sent.headers["Authorization"] == "Bearer raas_key"
    assert dict(sent.url.params) == {"tier": "smb", "limit": "10"}
    with pytest.raises(ValueError, match="does not accept an Idempotency-Key"):
        _core.prepare(OPERATIONS["keys.create"], body={"name": "x"}, idempotency_key="k")
    with pytest.raises(ValueError, match="takes no query parameter"):
        _core.prepare(OPERATIONS["keys.list"], params={"limit": 5})
    with pytest.raises(ValueError, match="Extra inputs"):
        _core.prepare(OPERATIONS["keys.create"], body={"name": "x", "rol": "admin"})  # a misspelt field never reaches the server


def test_the_async_client_retries_the_same_way() -> None:
    script = Script(error(429, "too_many_requests", {"Retry-After": "1"}), httpx.Response(200, json=TENANT))
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    async def run() -> str:
        async with AsyncClient(
            URL, "raas_key", transport=httpx.MockTransport(script), retry=RetryPolicy(rng=lambda: 0.0), sleep=sleep
        ) as raas:
            return (await raas.tenants.get("t1")).name

    assert run_coroutine(run()) == "Acme"
    assert sleeps == [1.0]


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAAS_URL", "http://env.test/prod/")
    monkeypatch.setenv("RAAS_API_KEY", "raas_env")
    script = Script(httpx.Response(200, json={"status": "ok", "version": "1", "stage": "prod"}))
    raas = Client(transport=httpx.MockTransport(script))
    assert raas.health().stage == "prod"
    assert str(script.requests[0].url) == "http://env.test/prod/v1/health"  # a stage prefix in the URL is kept
    assert script.requests[0].headers["Authorization"] == "Bearer raas_env"
    monkeypatch.delenv("RAAS_URL")
    with pytest.raises(ValueError, match="RAAS_URL"):
        Client()
