"""Streamed answers from the handlers: `Accept: text/event-stream` on POST /v1/query and on the
conversation message route.

Where the platform can stream (the local gateway binds a response stream for the invocation, as
Lambda's response streaming hands a function its stream), events are written as they are produced
and a client that goes away stops the generation: the answer's generator is closed, which settles
the quota reservation and records usage once, for what was generated. Where it cannot (a buffered
Lambda proxy response), the same events are returned as one `text/event-stream` body.

In AWS the Python managed runtime has no native response streaming (Node.js only; other languages
need a custom runtime or the Lambda Web Adapter:
https://docs.aws.amazon.com/lambda/latest/dg/configuration-response-streaming.html). The two routes
are therefore served by the streaming function (raas.handlers.stream_function, behind a STREAM
integration: stacks/streaming.py), whose own Runtime API loop binds a response stream per invocation
as the local gateway does; the functions behind buffered integrations return the buffered form.
"""

from __future__ import annotations

import contextlib
import inspect
import threading
from collections.abc import Callable, Generator, Iterator
from typing import Any, NoReturn, Protocol

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response

from raas.domain.streaming import SSE_MEDIA_TYPE, ClientGone, StreamEvent

STREAMED_HEADER = "X-Raas-Streamed"  # tells the local gateway the body has been written already
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class ResponseStream(Protocol):
    def start(self, status: int, headers: dict[str, str]) -> None: ...

    def write(self, data: bytes) -> None:
        """Sends `data` at once; raises ClientGone when the client has closed the connection."""


_bound = threading.local()


@contextlib.contextmanager
def response_stream(stream: ResponseStream | None) -> Iterator[None]:
    """Binds `stream` to this thread's invocation (the local gateway calls the handler in it)."""
    previous = getattr(_bound, "stream", None)
    _bound.stream = stream
    try:
        yield
    finally:
        _bound.stream = previous


def current_stream() -> ResponseStream | None:
    stream: ResponseStream | None = getattr(_bound, "stream", None)
    return stream


def wants_stream(app: APIGatewayRestResolver) -> bool:
    accept = str(app.current_event.headers.get("Accept") or "")  # Powertools' headers are case insensitive
    return SSE_MEDIA_TYPE in accept.lower()


# The routes that answer with events when asked (the API Gateway resource of each).
STREAMING_RESOURCES = frozenset({"/v1/query", "/v1/conversations/{conversation_id}/messages"})


def streaming_now(app: APIGatewayRestResolver) -> bool:
    """True when this request's answer will be written as it is produced (not returned as one body)."""
    event = app.current_event
    return current_stream() is not None and event.http_method == "POST" and event.resource in STREAMING_RESOURCES and wants_stream(app)


def sse_response(events: Generator[StreamEvent, None, None]) -> Response[Any]:
    stream = current_stream()
    if stream is None:
        body = b"".join(event.encode() for event in events).decode()
        return Response(200, SSE_MEDIA_TYPE, body, headers=dict(SSE_HEADERS))
    try:
        from raas.handlers.api import with_cors  # a written stream skips lambda_handler's finishing: add CORS here

        stream.start(200, with_cors({"headers": {"Content-Type": SSE_MEDIA_TYPE, **SSE_HEADERS}})["headers"])
        for event in events:
            stream.write(event.encode())
    except ClientGone:
        if inspect.getgeneratorstate(events) == inspect.GEN_CREATED:
            next(events, None)  # gone before the first event: run to it, so that closing settles the reservation
        events.close()  # stops generating; the answer settles what it used, once
    return Response(200, SSE_MEDIA_TYPE, "", headers={**SSE_HEADERS, STREAMED_HEADER: "1"})


class _Streamed(Exception):
    """Takes a streamed answer out of its route past the response validation, which types the JSON answer."""

    def __init__(self, response: Response[Any]):
        super().__init__("streamed")
        self.response = response


def answer_as_events(events: Generator[StreamEvent, None, None]) -> NoReturn:
    """Ends the route with the events as its response (the route needs the `sse_route` middleware)."""
    raise _Streamed(sse_response(events))


def sse_route(app: APIGatewayRestResolver, next_middleware: Callable[[APIGatewayRestResolver], Response[Any]]) -> Response[Any]:
    """Route middleware (innermost): Powertools validates a route's response against its return type, a
    JSON model; a streamed answer is `text/event-stream`, so it leaves the handler as an exception and
    becomes the response here, past that validation."""
    try:
        return next_middleware(app)
    except _Streamed as streamed:
        return streamed.response
