"""The streaming answers function in AWS: POST /v1/query and POST /v1/conversations/{id}/messages.

API Gateway invokes it with InvokeWithResponseStream (a REST API Lambda proxy integration whose
response transfer mode is STREAM, stacks/streaming.py) and hands it the ordinary proxy event, with the
authorizer's context in `requestContext.authorizer`, which only API Gateway can fill. The same
handlers as the query and conversations functions answer it (raas.handlers.query, .conversations);
this module only gives them a response stream that reaches the client as it is written.

Python's managed runtime cannot stream a response (Lambda streams natively on Node.js only; other
languages "use a custom runtime with a custom Runtime API integration ... or the Lambda Web Adapter":
https://docs.aws.amazon.com/lambda/latest/dg/configuration-response-streaming.html). So the function
keeps the python3.12 runtime and its layer, and its wrapper script (AWS_LAMBDA_EXEC_WRAPPER,
`stream_bootstrap` beside this file; https://docs.aws.amazon.com/lambda/latest/dg/runtimes-modify.html#runtime-wrapper)
starts `python -m raas.handlers.stream_function` in place of the runtime's own client: `main()` below
is a Runtime API loop that posts each answer in streaming mode, as documented at
https://docs.aws.amazon.com/lambda/latest/dg/runtimes-custom.html#runtimes-custom-response-streaming :
`Lambda-Runtime-Function-Response-Mode: streaming`, `Transfer-Encoding: chunked`, HTTP/1.1 chunks,
errors before the first byte to `/error`, errors after it as the declared trailers
`Lambda-Runtime-Function-Error-Type` / `-Body` (base64). Standard library only.

What is written is the format API Gateway requires of a streaming Lambda proxy integration
(https://docs.aws.amazon.com/apigateway/latest/developerguide/response-transfer-mode-lambda.html):
a JSON prelude with only `statusCode`, `headers`, `multiValueHeaders`, `cookies`, then 8 NUL bytes
(within the first 16 KB), then the body as it is produced. JSON answers (no `Accept: text/event-stream`)
and refusals take the same path: the prelude, then the whole body.

A client that goes away: the only signal a function gets is its response connection failing; a
failed write raises ClientGone, the answer's generator is closed, and the reservation is settled and
usage recorded once, for what was generated (raas.handlers.streaming.sse_response). Lambda does not
promise to cut that connection when the caller leaves (API Gateway: "the Lambda function might
continue to execute", https://docs.aws.amazon.com/apigateway/latest/developerguide/response-transfer-mode.html),
so the stream also stops itself a few seconds before the invocation's deadline: generation ends and
settles before Lambda would kill the process mid-answer, and the stream ends with an error trailer.
"""

from __future__ import annotations

import base64
import http.client
import importlib
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from raas.domain.errors import error_body
from raas.domain.streaming import ClientGone
from raas.handlers.streaming import STREAMING_RESOURCES, response_stream

RUNTIME_API = "/2018-06-01/runtime"
PRELUDE_DELIMITER = b"\x00" * 8
PRELUDE_LIMIT = 16 * 1024  # the delimiter must come within the first 16 KB of the stream
# The Content-Type the Runtime API passes on for an HTTP integration response (prelude + delimiter + body),
# what Lambda's Node.js runtime sends for awslambda.HttpResponseStream.
INTEGRATION_RESPONSE_TYPE = "application/vnd.awslambda.http-integration-response"
ERROR_TYPE_TRAILER = "Lambda-Runtime-Function-Error-Type"
ERROR_BODY_TRAILER = "Lambda-Runtime-Function-Error-Body"
# Stop generating this long before the invocation's deadline, so closing the answer (settling the
# reservation, recording usage: a few DynamoDB writes) finishes before Lambda ends the process.
DEADLINE_MARGIN_MS = 3000

# resource -> the module whose `handler` answers it (the same handlers as the query and conversations functions)
HANDLER_MODULES: dict[str, str] = {
    "/v1/query": "raas.handlers.query",
    "/v1/conversations/{conversation_id}/messages": "raas.handlers.conversations",
}
if set(HANDLER_MODULES) != STREAMING_RESOURCES:  # the streaming routes and this table cannot drift
    raise ImportError("HANDLER_MODULES must name a handler for every route in STREAMING_RESOURCES")

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


class RuntimeApiError(Exception):
    """The Runtime API refused a request of ours (a bug here, or the environment is going away)."""


@dataclass
class InvocationContext:
    """The Lambda context object the handlers (Powertools' logger) read, built from the Runtime API's headers."""

    aws_request_id: str
    invoked_function_arn: str
    deadline_ms: int
    function_name: str = field(default_factory=lambda: os.environ.get("AWS_LAMBDA_FUNCTION_NAME", ""))
    function_version: str = field(default_factory=lambda: os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"))
    memory_limit_in_mb: int = field(default_factory=lambda: int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "0") or 0))
    log_group_name: str = field(default_factory=lambda: os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", ""))
    log_stream_name: str = field(default_factory=lambda: os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", ""))

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self.deadline_ms - int(time.time() * 1000))


@dataclass
class Invocation:
    request_id: str
    deadline_ms: int
    function_arn: str
    trace_id: str | None
    event: dict[str, Any]


def _error_document(exc: BaseException) -> dict[str, Any]:
    return {
        "errorMessage": str(exc),
        "errorType": type(exc).__name__,
        "stackTrace": traceback.format_exception(type(exc), exc, exc.__traceback__),
    }


class RuntimeApi:
    """The Lambda Runtime API at AWS_LAMBDA_RUNTIME_API (https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html)."""

    def __init__(self, address: str):
        host, _, port = address.rpartition(":")
        self.host, self.port = host, int(port)

    def connect(self) -> http.client.HTTPConnection:
        # No timeout: /next blocks until an invocation arrives (the documentation says not to set one).
        return http.client.HTTPConnection(self.host, self.port)

    def next_invocation(self) -> Invocation:
        connection = self.connect()
        try:
            connection.request("GET", f"{RUNTIME_API}/invocation/next")
            response = connection.getresponse()
            body = response.read()
            if response.status != 200:
                raise RuntimeApiError(f"/invocation/next answered {response.status}: {body[:200]!r}")
            return Invocation(
                request_id=response.headers["Lambda-Runtime-Aws-Request-Id"],
                deadline_ms=int(response.headers.get("Lambda-Runtime-Deadline-Ms") or 0),
                function_arn=response.headers.get("Lambda-Runtime-Invoked-Function-Arn") or "",
                trace_id=response.headers.get("Lambda-Runtime-Trace-Id"),
                event=json.loads(body),
            )
        finally:
            connection.close()

    def _post_error(self, path: str, exc: BaseException, error_type: str) -> None:
        connection = self.connect()
        try:
            body = json.dumps(_error_document(exc)).encode()
            headers = {"Content-Type": "application/json", ERROR_TYPE_TRAILER: error_type}
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            if response.status != 202:
                raise RuntimeApiError(f"{path} answered {response.status}")
        finally:
            connection.close()

    def init_error(self, exc: BaseException) -> None:
        self._post_error(f"{RUNTIME_API}/init/error", exc, "Runtime.InitError")

    def invocation_error(self, request_id: str, exc: BaseException) -> None:
        """Only before any byte of the response has been sent (the documented rule)."""
        self._post_error(f"{RUNTIME_API}/invocation/{request_id}/error", exc, f"Function.{type(exc).__name__}")


class InvocationStream:
    """One invocation's response, sent to the Runtime API in streaming mode as it is written.

    Implements raas.handlers.streaming.ResponseStream: `start` sends the prelude API Gateway reads the
    status and headers from, `write` sends one chunk at once, and raises ClientGone when the connection
    has failed (or the invocation is about to run out of time)."""

    def __init__(self, api: RuntimeApi, invocation: Invocation):
        self.api = api
        self.invocation = invocation
        self.connection: http.client.HTTPConnection | None = None
        self.started = False
        self.gone = False
        self.out_of_time = False

    # --- ResponseStream ---------------------------------------------------------------------------
    def start(self, status: int, headers: dict[str, str], multi_value_headers: dict[str, list[str]] | None = None) -> None:
        if self.started:
            raise RuntimeError("the response has already started")
        # only statusCode, headers, multiValueHeaders and cookies are allowed in the prelude
        metadata: dict[str, Any] = {"statusCode": status, "headers": dict(headers)}
        if multi_value_headers:
            metadata["multiValueHeaders"] = {name: list(values) for name, values in multi_value_headers.items()}
        prelude = json.dumps(metadata, separators=(",", ":")).encode() + PRELUDE_DELIMITER
        if len(prelude) > PRELUDE_LIMIT:
            raise ValueError("response headers exceed the 16 KB API Gateway reads the prelude from")
        connection = self.api.connect()
        path = f"{RUNTIME_API}/invocation/{self.invocation.request_id}/response"
        connection.putrequest("POST", path, skip_accept_encoding=True)
        connection.putheader("Content-Type", INTEGRATION_RESPONSE_TYPE)
        connection.putheader("Lambda-Runtime-Function-Response-Mode", "streaming")
        connection.putheader("Transfer-Encoding", "chunked")
        connection.putheader("Trailer", f"{ERROR_TYPE_TRAILER}, {ERROR_BODY_TRAILER}")  # declared up front, as chunked encoding requires
        connection.endheaders()  # a failure here leaves nothing sent: the invocation's error goes to /error
        self.connection, self.started = connection, True
        self._chunk(prelude)

    def write(self, data: bytes) -> None:
        if not self.started:
            raise RuntimeError("start the response before writing to it")
        if self.gone:
            raise ClientGone("the response connection has closed")
        if self.invocation.deadline_ms and self.invocation.deadline_ms - int(time.time() * 1000) < DEADLINE_MARGIN_MS:
            self.out_of_time = True
            raise ClientGone("the invocation is about to reach its timeout")
        if data:
            self._chunk(data)

    # --- the Runtime API's side ---------------------------------------------------------------------
    def _chunk(self, data: bytes) -> None:
        if self.connection is None:
            raise RuntimeError("start the response before writing to it")
        try:
            self.connection.send(b"%x\r\n%s\r\n" % (len(data), data))
        except OSError as exc:  # reset or closed: nobody reads this response any more
            self.gone = True
            raise ClientGone("the response connection has closed") from exc

    def finish(self, error: BaseException | None = None) -> None:
        """Ends the chunked body (with the error trailers when the answer failed after it began) and
        reads the Runtime API's acknowledgement; closes the connection either way, as documented."""
        if error is None and self.out_of_time:
            error = TimeoutError("the answer was cut short before the invocation's timeout")
        connection, self.connection = self.connection, None
        if connection is None:
            return
        try:
            if self.gone:
                return
            trailers = b""
            if error is not None:
                error_type = f"Function.{type(error).__name__}"
                error_json = base64.b64encode(json.dumps(_error_document(error)).encode())
                trailers = b"".join(
                    b"%s: %s\r\n" % (name.encode(), value)
                    for name, value in ((ERROR_TYPE_TRAILER, error_type.encode()), (ERROR_BODY_TRAILER, error_json))
                )
            try:
                connection.send(b"0\r\n" + trailers + b"\r\n")
                response = connection.getresponse()
                body = response.read()
            except OSError:
                self.gone = True
                return
            if response.status != 202:
                raise RuntimeApiError(f"the streamed response was refused: {response.status} {body[:200]!r}")
        finally:
            connection.close()


def send_whole(stream: InvocationStream, result: dict[str, Any]) -> None:
    """A proxy response the handler returned (JSON answers, refusals): the prelude, then the body."""
    headers = {str(k): str(v) for k, v in (result.get("headers") or {}).items()}
    multi = {str(k): [str(v) for v in values] for k, values in (result.get("multiValueHeaders") or {}).items()}
    body = result.get("body") or ""
    data = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode()
    stream.start(int(result.get("statusCode") or 200), headers, multi)
    try:
        stream.write(data)
    except ClientGone:
        return


def load_handlers() -> dict[str, Handler]:
    """Imported during the init phase, as the managed runtime imports a function's handler module."""
    return {resource: importlib.import_module(module).handler for resource, module in HANDLER_MODULES.items()}


def dispatch(handlers: dict[str, Handler], event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The route's own handler; API Gateway sends only the two streaming routes here."""
    handler = handlers.get(str(event.get("resource") or ""))
    if handler is None or event.get("httpMethod") != "POST":
        body = json.dumps(error_body("not_found", "no streaming route for this method and path"))
        return {"statusCode": 404, "headers": {"Content-Type": "application/json"}, "body": body, "isBase64Encoded": False}
    return handler(event, context)


def serve(api: RuntimeApi, handlers: dict[str, Handler], invocation: Invocation) -> None:
    """Answers one invocation: the handler writes to the stream (an event stream) or returns a response."""
    if invocation.trace_id:
        os.environ["_X_AMZN_TRACE_ID"] = invocation.trace_id  # what the X-Ray SDK reads, as the managed runtime sets it
    else:
        os.environ.pop("_X_AMZN_TRACE_ID", None)
    context = InvocationContext(invocation.request_id, invocation.function_arn, invocation.deadline_ms)
    stream = InvocationStream(api, invocation)
    try:
        with response_stream(stream):
            result = dispatch(handlers, invocation.event, context)
        if not stream.started:
            send_whole(stream, result)
    except Exception as exc:  # noqa: BLE001 - every failure is reported to Lambda, never lost
        print(json.dumps({"level": "ERROR", "message": "the invocation failed", **_error_document(exc)}), file=sys.stderr)
        if stream.started:
            stream.finish(exc)  # mid-stream: the documented error trailers
        else:
            api.invocation_error(invocation.request_id, exc)
        return
    stream.finish()


def main() -> None:
    """The Runtime API loop the wrapper script starts: init (import the handlers), then one invocation at a time."""
    api = RuntimeApi(os.environ["AWS_LAMBDA_RUNTIME_API"])
    try:
        handlers = load_handlers()
    except Exception as exc:
        api.init_error(exc)
        raise SystemExit(1) from exc
    while True:
        serve(api, handlers, api.next_invocation())


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The function's configured handler (the managed runtime needs one): the buffered proxy response, for
    tools that call a handler directly. In AWS the wrapper script runs main() instead, and only main()
    writes the streaming format API Gateway's STREAM integration requires."""
    return dispatch(load_handlers(), event, context)


if __name__ == "__main__":
    main()
