"""The streaming answers function as Lambda runs it (raas.handlers.stream_function, issue 14).

Its Runtime API loop talks to `FakeRuntimeApi`, a loopback stand-in for Lambda's Runtime API that
refuses what the real one refuses (https://docs.aws.amazon.com/lambda/latest/dg/runtimes-custom.html#runtimes-custom-response-streaming):
a streamed response without `Transfer-Encoding: chunked`, trailers that were not declared in `Trailer`,
`/error` once a response has begun, unknown or already answered request ids. It also checks what API
Gateway's STREAM integration requires of the body (a JSON prelude with only statusCode / headers /
multiValueHeaders / cookies, then 8 NUL bytes within the first 16 KB:
https://docs.aws.amazon.com/apigateway/latest/developerguide/response-transfer-mode-lambda.html), and
records when each chunk arrived, so "streamed" means "arrived in pieces over time", not "one body".

The events are API Gateway proxy events whose `requestContext.authorizer` is what the real authorizer
returned for the caller's key, as API Gateway fills it.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from raas.bootstrap import services
from raas.domain.streaming import parse_events
from raas.domain.usage import period_of
from raas.handlers import stream_function
from raas.handlers.stream_function import (
    DEADLINE_MARGIN_MS,
    INTEGRATION_RESPONSE_TYPE,
    Invocation,
    RuntimeApi,
    load_handlers,
    serve,
)
from raas.handlers.streaming import current_stream
from raas.local.events import QueuePump
from raas.local.invocation import lambda_context
from tests.conftest import TenantHandle
from tests.helpers import ApiClient, expect, rebuild_services
from tests.integration.test_documents import add
from tests.integration.test_streaming import StreamingChat, library  # noqa: F401 - `library` is a fixture

pytestmark = pytest.mark.usefixtures("aws")
ROOT = Path(__file__).resolve().parents[2]
QUERY = "/v1/query"
MESSAGES = "/v1/conversations/{conversation_id}/messages"
DECLARED_TRAILERS = {"lambda-runtime-function-error-type", "lambda-runtime-function-error-body"}


# --- the Runtime API stand-in -----------------------------------------------------------------------
@dataclass
class Recorded:
    """One invocation's response as the Runtime API received it."""

    headers: dict[str, str]
    chunks: list[tuple[float, bytes]] = field(default_factory=list)
    trailers: dict[str, str] = field(default_factory=dict)
    complete: bool = False

    @property
    def body(self) -> bytes:
        return b"".join(data for _, data in self.chunks)

    def gateway_view(self) -> tuple[dict[str, Any], bytes]:
        """(prelude, payload) as API Gateway reads them; fails as API Gateway would answer 500."""
        head = self.body[: 16 * 1024]
        assert b"\x00" * 8 in head, "no 8-NUL delimiter within the first 16 KB: API Gateway answers 500"
        metadata, _, _ = self.body.partition(b"\x00" * 8)
        prelude = json.loads(metadata)
        assert set(prelude) <= {"statusCode", "headers", "multiValueHeaders", "cookies"}, prelude
        return prelude, self.body[len(metadata) + 8 :]


class FakeRuntimeApi:
    def __init__(self) -> None:
        self.pending: queue.Queue[tuple[str, dict[str, Any], int]] = queue.Queue()
        self.known: set[str] = set()
        self.responses: dict[str, Recorded] = {}
        self.errors: dict[str, tuple[str, dict[str, Any]]] = {}
        self.init_errors: list[tuple[str, dict[str, Any]]] = []
        self.refused: list[str] = []
        self.cut_after_chunks: int | None = None  # close the response connection (RST) after this many chunks
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return

            def _reply(self, status: int, document: dict[str, Any]) -> None:
                body = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _refuse(self, reason: str) -> None:
                fake.refused.append(reason)
                self._reply(400, {"errorMessage": reason, "errorType": "InvalidRequest"})
                self.close_connection = True

            def do_GET(self) -> None:
                if self.path != "/2018-06-01/runtime/invocation/next":
                    self._reply(404, {"errorMessage": "unknown path"})
                    return
                request_id, event, deadline = fake.pending.get()  # blocks, as the real one does, until an invocation arrives
                body = json.dumps(event).encode()
                self.send_response(200)
                self.send_header("Lambda-Runtime-Aws-Request-Id", request_id)
                self.send_header("Lambda-Runtime-Deadline-Ms", str(deadline))
                self.send_header("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:raas-prod-stream")
                self.send_header("Lambda-Runtime-Trace-Id", "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                parts = self.path.split("/")
                if self.path == "/2018-06-01/runtime/init/error":
                    fake.init_errors.append((self.headers.get("Lambda-Runtime-Function-Error-Type", ""), json.loads(self._whole_body())))
                    self._reply(202, {"status": "OK"})
                    return
                if len(parts) != 6 or parts[:4] != ["", "2018-06-01", "runtime", "invocation"] or parts[5] not in ("response", "error"):
                    self._reply(404, {"errorMessage": "unknown path"})
                    return
                request_id, action = parts[4], parts[5]
                if request_id not in fake.known:
                    self._refuse(f"unknown request id {request_id}")
                    return
                if request_id in fake.errors or (request_id in fake.responses and fake.responses[request_id].complete):
                    self._refuse("this invocation has already been answered")
                    return
                if action == "error":
                    if request_id in fake.responses:  # "only before the runtime begins sending an invocation response"
                        self._refuse("/error after the response began")
                        return
                    error_type = self.headers.get("Lambda-Runtime-Function-Error-Type")
                    if not error_type:
                        self._refuse("/error without Lambda-Runtime-Function-Error-Type")
                        return
                    fake.errors[request_id] = (error_type, json.loads(self._whole_body()))
                    self._reply(202, {"status": "OK"})
                    return
                self._response(request_id)

            def _whole_body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _response(self, request_id: str) -> None:
                streaming = self.headers.get("Lambda-Runtime-Function-Response-Mode") == "streaming"
                chunked = (self.headers.get("Transfer-Encoding") or "").lower() == "chunked"
                if streaming and not chunked:
                    self._refuse("streaming mode needs Transfer-Encoding: chunked")
                    return
                recorded = Recorded(headers={k.lower(): v for k, v in self.headers.items()})
                fake.responses[request_id] = recorded
                if not chunked:
                    recorded.chunks.append((time.monotonic(), self._whole_body()))
                    recorded.complete = True
                    self._reply(202, {"status": "OK"})
                    return
                declared = {t.strip().lower() for t in (self.headers.get("Trailer") or "").split(",") if t.strip()}
                while True:
                    line = self.rfile.readline()
                    if not line:
                        return  # the runtime went away mid-response
                    size = int(line.split(b";")[0].strip(), 16)
                    if size == 0:
                        break
                    data = self.rfile.read(size)
                    if self.rfile.read(2) != b"\r\n":
                        self._refuse("malformed chunk")
                        return
                    recorded.chunks.append((time.monotonic(), data))
                    if fake.cut_after_chunks is not None and len(recorded.chunks) >= fake.cut_after_chunks:
                        # the caller has gone: reset the connection, as a dropped stream would
                        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                        self.connection.close()
                        self.close_connection = True
                        return
                while (line := self.rfile.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode().partition(":")
                    if name.strip().lower() not in declared:
                        self._refuse(f"trailer {name.strip()} was not declared in the Trailer header")
                        return
                    recorded.trailers[name.strip().lower()] = value.strip()
                recorded.complete = True
                self._reply(202, {"status": "OK"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def invoke(self, event: dict[str, Any], deadline_in_ms: int = 300_000) -> str:
        request_id = str(uuid.uuid4())
        self.known.add(request_id)
        self.pending.put((request_id, event, int(time.time() * 1000) + deadline_in_ms))
        return request_id

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def runtime() -> Iterator[FakeRuntimeApi]:
    fake = FakeRuntimeApi()
    try:
        yield fake
    finally:
        fake.close()


# --- events as API Gateway builds them ------------------------------------------------------------------
def authorizer_context(key: str, path: str, resource: str) -> dict[str, Any]:
    """What the tenant REQUEST authorizer returns for `key`, as API Gateway puts it in the event."""
    from raas.handlers import authorizer

    result = authorizer.handler(
        {
            "type": "REQUEST",
            "methodArn": f"arn:aws:execute-api:us-east-1:123456789012:api1234567/prod/POST{path}",
            "resource": resource,
            "path": path,
            "httpMethod": "POST",
            "headers": {"Authorization": f"Bearer {key}"},
            "queryStringParameters": {},
            "requestContext": {"stage": "prod", "requestId": str(uuid.uuid4()), "identity": {"sourceIp": "198.51.100.7"}},
        },
        lambda_context("raas-authorizer"),
    )
    assert result["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    return {**result["context"], "principalId": result["principalId"]}


def proxy_event(
    resource: str,
    body: dict[str, Any],
    *,
    key: str | None,
    headers: dict[str, str] | None = None,
    path_parameters: dict[str, str] | None = None,
) -> dict[str, Any]:
    path = resource.format(**(path_parameters or {}))
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    request_context: dict[str, Any] = {
        "resourcePath": resource,
        "httpMethod": "POST",
        "path": f"/prod{path}",
        "stage": "prod",
        "requestId": str(uuid.uuid4()),
        "accountId": "123456789012",
        "apiId": "api1234567",
        "identity": {"sourceIp": "198.51.100.7"},
    }
    if key is not None:
        request_context["authorizer"] = authorizer_context(key, path, resource)
    return {
        "resource": resource,
        "path": path,
        "httpMethod": "POST",
        "headers": all_headers,
        "multiValueHeaders": {k: [v] for k, v in all_headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": path_parameters,
        "stageVariables": None,
        "requestContext": request_context,
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


SSE = {"Accept": "text/event-stream"}


def run_one(runtime: FakeRuntimeApi, event: dict[str, Any], handlers: dict[str, Any] | None = None, **invoke: Any) -> Recorded:
    """One invocation through the loop's own steps: /next, the handler, the streamed response."""
    request_id = runtime.invoke(event, **invoke)
    api = RuntimeApi(runtime.address)
    invocation = api.next_invocation()
    assert invocation.request_id == request_id
    serve(api, handlers if handlers is not None else load_handlers(), invocation)
    return runtime.responses[request_id]


def used(tenant: TenantHandle) -> tuple[int, int]:
    return services().quota_ledger.used(tenant.tenant_id, period_of(datetime.now(UTC)))


def totals(tenant: TenantHandle) -> dict[str, int]:
    return services().usage_recorder.totals(tenant.tenant_id, period_of(datetime.now(UTC)))


# --- tests ----------------------------------------------------------------------------------------------
def test_a_query_streams_in_chunks_retrieval_before_the_first_delta(
    runtime: FakeRuntimeApi,
    tenant_a: TenantHandle,
    library: None,  # noqa: F811
) -> None:
    chat = StreamingChat(pieces=8, delay=0.03)
    rebuild_services(chat_model=lambda model: chat)
    recorded = run_one(runtime, proxy_event(QUERY, {"query": "When can customers request a refund?"}, key=tenant_a.admin_key, headers=SSE))
    # the documented streaming request to the Runtime API
    assert recorded.headers["lambda-runtime-function-response-mode"] == "streaming"
    assert recorded.headers["transfer-encoding"] == "chunked"
    assert recorded.headers["content-type"] == INTEGRATION_RESPONSE_TYPE
    assert {t.strip().lower() for t in recorded.headers["trailer"].split(",")} == DECLARED_TRAILERS
    assert recorded.complete
    assert recorded.trailers == {}
    prelude, payload = recorded.gateway_view()
    assert prelude["statusCode"] == 200
    assert prelude["headers"]["Content-Type"] == "text/event-stream"
    assert "X-Raas-Streamed" not in prelude["headers"]
    events = parse_events(payload.decode())
    assert [kind for kind, _ in events] == ["retrieval", *["delta"] * 8, "done"]
    assert events[0][1]["citations"][0]["title"] == "Refund policy"
    # incremental: the prelude and every event are separate chunks, written as they were produced
    chunks = recorded.chunks
    assert chunks[0][1].endswith(b"\x00" * 8)
    kinds = [parse_events(data.decode())[0][0] for _, data in chunks[1:]]
    assert kinds == ["retrieval", *["delta"] * 8, "done"]
    retrieval_at, first_delta_at, done_at = chunks[1][0], chunks[2][0], chunks[-1][0]
    assert retrieval_at < first_delta_at
    assert done_at - retrieval_at >= 0.15  # eight words at 30 ms: one buffered body would arrive at once
    assert totals(tenant_a)["queries"] == 1
    assert used(tenant_a)[0] == 1


def test_json_answers_and_conversation_messages_take_the_same_stream(
    runtime: FakeRuntimeApi,
    api: ApiClient,
    tenant_a: TenantHandle,
    library: None,  # noqa: F811
) -> None:
    plain = run_one(runtime, proxy_event(QUERY, {"query": "shipping"}, key=tenant_a.admin_key))
    prelude, payload = plain.gateway_view()
    assert prelude["statusCode"] == 200
    headers = {**prelude.get("headers", {}), **{k: v[-1] for k, v in prelude.get("multiValueHeaders", {}).items()}}
    assert headers["Content-Type"] == "application/json"
    assert "answer" in json.loads(payload)
    conversation = expect(api.request("POST", "/v1/conversations", key=tenant_a.admin_key, json_body={}), 201)["conversation_id"]
    streamed = run_one(
        runtime,
        proxy_event(
            MESSAGES,
            {"query": "What is the refund policy?"},
            key=tenant_a.admin_key,
            headers=SSE,
            path_parameters={"conversation_id": conversation},
        ),
    )
    events = parse_events(streamed.gateway_view()[1].decode())
    assert events[0][0] == "retrieval"
    assert events[-1][0] == "done"
    assert events[-1][1]["conversation_id"] == conversation
    stored = expect(api.request("GET", f"/v1/conversations/{conversation}", key=tenant_a.admin_key), 200)
    assert stored["conversation"]["messages"] == 2


def test_a_streamed_answer_carries_cors_for_the_console_as_a_returned_one_does(
    runtime: FakeRuntimeApi,
    tenant_a: TenantHandle,
    library: None,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RAAS_CONSOLE_ORIGIN", "https://d111111abcdef8.cloudfront.net")
    rebuild_services()
    for headers in (SSE, {}):
        prelude, _ = run_one(runtime, proxy_event(QUERY, {"query": "refund"}, key=tenant_a.admin_key, headers=headers)).gateway_view()
        sent = {**prelude.get("headers", {}), **{k: v[-1] for k, v in prelude.get("multiValueHeaders", {}).items()}}
        assert sent["Access-Control-Allow-Origin"] == "https://d111111abcdef8.cloudfront.net", headers


def test_a_request_without_the_authorizers_context_is_refused_whatever_its_headers_say(
    runtime: FakeRuntimeApi,
    tenant_a: TenantHandle,
    library: None,  # noqa: F811
) -> None:
    chat = StreamingChat(pieces=5)
    rebuild_services(chat_model=lambda model: chat)
    genuine = authorizer_context(tenant_a.admin_key, QUERY, QUERY)
    forged = {
        **SSE,
        # what the Lambda Web Adapter would pass the authorizer's context in, and other guesses: never read
        "x-amzn-request-context": json.dumps({"authorizer": genuine}),
        "X-Tenant-Id": tenant_a.tenant_id,
        "Authorization": f"Bearer {tenant_a.admin_key}",
    }
    recorded = run_one(runtime, proxy_event(QUERY, {"query": "refund"}, key=None, headers=forged))
    prelude, payload = recorded.gateway_view()
    assert prelude["statusCode"] == 401
    assert json.loads(payload)["error"]["code"] == "unauthorized"
    assert chat.requests == []  # nothing was generated
    assert totals(tenant_a).get("queries", 0) == 0
    assert used(tenant_a) == (0, 0)


def test_the_tenant_is_the_authorizers_even_when_headers_name_another(
    runtime: FakeRuntimeApi,
    api: ApiClient,
    tenant_a: TenantHandle,
    tenant_b: TenantHandle,
    ingest_queue: QueuePump,
    library: None,  # noqa: F811
) -> None:
    add(api, tenant_b, "B's own notes", "Tenant B keeps parcels for fourteen days.")
    ingest_queue.drain()
    a_context = authorizer_context(tenant_a.admin_key, QUERY, QUERY)
    headers = {**SSE, "x-amzn-request-context": json.dumps({"authorizer": a_context}), "X-Tenant-Id": tenant_a.tenant_id}
    recorded = run_one(runtime, proxy_event(QUERY, {"query": "refund within 30 days"}, key=tenant_b.admin_key, headers=headers))
    prelude, payload = recorded.gateway_view()
    assert prelude["statusCode"] == 200
    events = parse_events(payload.decode())
    titles = {c["title"] for c in events[0][1]["citations"]}
    assert "Refund policy" not in titles  # tenant A's document never reaches tenant B
    assert totals(tenant_b)["queries"] == 1
    assert totals(tenant_a).get("queries", 0) == 0


def test_a_caller_that_goes_away_stops_generation_and_is_settled_once(
    runtime: FakeRuntimeApi,
    tenant_a: TenantHandle,
    library: None,  # noqa: F811
) -> None:
    chat = StreamingChat(pieces=400, delay=0.005)
    rebuild_services(chat_model=lambda model: chat)
    runtime.cut_after_chunks = 4  # the prelude, retrieval and two deltas are read; then the connection is reset
    recorded = run_one(runtime, proxy_event(QUERY, {"query": "refund"}, key=tenant_a.admin_key, headers=SSE))
    assert not recorded.complete
    assert [parse_events(data.decode())[0][0] for _, data in recorded.chunks[1:]] == ["retrieval", "delta", "delta"]
    assert chat.closed.is_set()
    assert chat.produced < 400  # the model's stream was closed: nothing more generated or paid for
    counted = totals(tenant_a)
    assert counted["queries"] == 1  # recorded once
    assert used(tenant_a) == (1, counted["cost_microusd"])  # the reservation settled to what was recorded
    # the loop carries on: the next invocation is answered normally
    runtime.cut_after_chunks = None
    rebuild_services(chat_model=lambda model: StreamingChat(pieces=2))
    again = run_one(runtime, proxy_event(QUERY, {"query": "shipping"}, key=tenant_a.admin_key, headers=SSE))
    assert again.complete
    assert parse_events(again.gateway_view()[1].decode())[-1][0] == "done"
    assert totals(tenant_a)["queries"] == 2


def test_an_answer_near_the_deadline_stops_settles_once_and_ends_with_an_error_trailer(
    runtime: FakeRuntimeApi,
    tenant_a: TenantHandle,
    library: None,  # noqa: F811
) -> None:
    chat = StreamingChat(pieces=400, delay=0.01)
    rebuild_services(chat_model=lambda model: chat)
    event = proxy_event(QUERY, {"query": "refund"}, key=tenant_a.admin_key, headers=SSE)
    recorded = run_one(runtime, event, deadline_in_ms=DEADLINE_MARGIN_MS + 1500)
    assert recorded.complete
    assert recorded.trailers["lambda-runtime-function-error-type"] == "Function.TimeoutError"
    error = json.loads(base64.b64decode(recorded.trailers["lambda-runtime-function-error-body"]))
    assert error["errorType"] == "TimeoutError"
    assert chat.requests
    assert chat.closed.is_set()
    assert chat.produced < 400
    counted = totals(tenant_a)
    assert counted["queries"] == 1
    assert used(tenant_a) == (1, counted["cost_microusd"])


def test_failures_go_to_error_before_the_stream_and_to_trailers_after_it(runtime: FakeRuntimeApi) -> None:
    def fails_at_once(event: dict[str, Any], context: Any) -> dict[str, Any]:
        raise RuntimeError("broken before any byte")

    def fails_midway(event: dict[str, Any], context: Any) -> dict[str, Any]:
        stream = current_stream()
        assert stream is not None
        stream.start(200, {"Content-Type": "text/event-stream"})
        stream.write(b"event: delta\ndata: {}\n\n")
        raise ValueError("broken midway")

    event = proxy_event(QUERY, {"query": "x"}, key=None)
    request_id = runtime.invoke(event)
    api = RuntimeApi(runtime.address)
    serve(api, {QUERY: fails_at_once}, api.next_invocation())
    assert request_id not in runtime.responses
    error_type, document = runtime.errors[request_id]
    assert error_type == "Function.RuntimeError"
    assert (document["errorType"], document["errorMessage"]) == ("RuntimeError", "broken before any byte")
    recorded = run_one(runtime, event, {QUERY: fails_midway})
    assert recorded.complete
    assert recorded.trailers["lambda-runtime-function-error-type"] == "Function.ValueError"
    assert json.loads(base64.b64decode(recorded.trailers["lambda-runtime-function-error-body"]))["errorMessage"] == "broken midway"
    assert parse_events(recorded.gateway_view()[1].decode()) == [("delta", {})]
    assert runtime.refused == []


def test_the_runtime_api_stand_in_refuses_what_lambda_refuses(runtime: FakeRuntimeApi) -> None:
    request_id = runtime.invoke({})
    RuntimeApi(runtime.address).next_invocation()

    def post(path: str, headers: dict[str, str], body: bytes = b"") -> int:
        connection = RuntimeApi(runtime.address).connect()
        connection.request("POST", path, body=body, headers=headers)
        status = connection.getresponse().status
        connection.close()
        return status

    base = f"/2018-06-01/runtime/invocation/{request_id}"
    # streaming mode with a plain (Content-Length) body
    assert post(f"{base}/response", {"Lambda-Runtime-Function-Response-Mode": "streaming"}, b"x") == 400
    # an unknown request id
    assert post("/2018-06-01/runtime/invocation/nope/response", {}, b"x") == 400
    # /error without its error type
    assert post(f"{base}/error", {"Content-Type": "application/json"}, b"{}") == 400
    # a trailer that was not declared
    connection = RuntimeApi(runtime.address).connect()
    connection.putrequest("POST", f"{base}/response")
    connection.putheader("Lambda-Runtime-Function-Response-Mode", "streaming")
    connection.putheader("Transfer-Encoding", "chunked")
    connection.endheaders()
    connection.send(b"2\r\nhi\r\n0\r\nLambda-Runtime-Function-Error-Type: X\r\n\r\n")
    assert connection.getresponse().status == 400
    connection.close()
    # /error once the response has begun
    assert post(f"{base}/error", {"Lambda-Runtime-Function-Error-Type": "X", "Content-Type": "application/json"}, b"{}") == 400
    assert len(runtime.refused) == 5


def test_the_wrapper_script_starts_the_loop_as_lambda_would(runtime: FakeRuntimeApi, tmp_path: Path) -> None:
    """stream_bootstrap, run as AWS_LAMBDA_EXEC_WRAPPER is (interpreter path first, then the runtime's own
    arguments), starts main(): it takes an invocation from the Runtime API and answers it streamed."""
    wrapper = ROOT / "lambdas" / "raas" / "handlers" / "stream_bootstrap"
    assert os.access(wrapper, os.X_OK)
    request_id = runtime.invoke({"resource": "/v1/elsewhere", "httpMethod": "POST", "path": "/v1/elsewhere"})
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        "AWS_LAMBDA_RUNTIME_API": runtime.address,
        "LAMBDA_TASK_ROOT": str(ROOT / "lambdas"),
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    process = subprocess.Popen(
        [str(wrapper), sys.executable, "/var/runtime/bootstrap.py"], env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 60
        while not (request_id in runtime.responses and runtime.responses[request_id].complete):
            assert process.poll() is None, process.communicate()[1].decode()[-2000:]
            assert time.monotonic() < deadline, "the loop never answered"
            time.sleep(0.05)
    finally:
        process.kill()
        process.communicate()
    prelude, payload = runtime.responses[request_id].gateway_view()
    assert prelude["statusCode"] == 404
    assert json.loads(payload)["error"]["code"] == "not_found"
    assert runtime.init_errors == []


def test_the_loop_reports_an_init_failure(runtime: FakeRuntimeApi, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_LAMBDA_RUNTIME_API", runtime.address)
    monkeypatch.setitem(stream_function.HANDLER_MODULES, QUERY, "raas.handlers.no_such_module")
    with pytest.raises(SystemExit):
        stream_function.main()
    assert [(kind, document["errorType"]) for kind, document in runtime.init_errors] == [("Runtime.InitError", "ModuleNotFoundError")]


def test_an_invocation_carries_lambdas_request_headers(runtime: FakeRuntimeApi) -> None:
    request_id = runtime.invoke({"hello": "world"}, deadline_in_ms=60_000)
    invocation: Invocation = RuntimeApi(runtime.address).next_invocation()
    assert (invocation.request_id, invocation.event) == (request_id, {"hello": "world"})
    assert invocation.function_arn.endswith(":function:raas-prod-stream")
    assert (invocation.trace_id or "").startswith("Root=")
    assert 0 < invocation.deadline_ms - time.time() * 1000 <= 60_000
