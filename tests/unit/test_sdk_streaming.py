"""Server-Sent Events parsing and the streaming iterators (sync and async) against an httpx MockTransport."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from raas_client import AsyncClient, Client, DeltaEvent, DoneEvent, RetrievalEvent, RetryPolicy, errors
from raas_client._core import SseParser, stream_event
from tests.helpers import run_coroutine

URL = "http://raas.test"
RETRIEVAL = {
    "query_id": "q1",
    "citations": [{"document_id": "d1", "chunk_id": "d1:00000", "title": "Refunds", "score": 1.0, "snippet": "within 30 days"}],
    "retrieval": {"top_k": 5, "alpha": 0.5, "reranked": False, "screened_out": 0},
    "rewritten_query": "refund?",
    "rewrite": "unchanged",
}
DONE = {
    "query_id": "q1",
    "model": "offline-extractive",
    "offline": True,
    "cached": False,
    "config_version": 3,
    "usage": {"prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0},
    "cost_usd": 0.0,
    "latency_ms": 12.5,
    "timings": {"embedding_ms": 5.0, "generation_ms": 1.0},
}


def sse(*events: tuple[str, Any], newline: str = "\n") -> bytes:
    return "".join(f"event: {name}{newline}data: {json.dumps(data)}{newline}{newline}" for name, data in events).encode()


def test_the_parser_follows_the_event_stream_rules() -> None:
    parser = SseParser()
    lines = [": a comment", "event: delta", 'data: {"text":', 'data: "a"}', "id: 7", "", "", 'data:{"x":1}', ""]
    completed = [event for line in lines if (event := parser.feed(line))]
    assert completed == [("delta", '{"text":\n"a"}'), ("message", '{"x":1}')]  # data lines joined by \n; no space after ':' is fine
    parser.feed("event: done")
    parser.feed('data: {"y": 2}')
    assert parser.close() == ("done", '{"y": 2}')  # the last event completes without its blank line
    assert parser.close() is None


def test_an_error_event_raises_the_class_of_its_code() -> None:
    with pytest.raises(errors.LlmTimeoutError) as caught:
        stream_event("error", json.dumps({"code": "llm_timeout", "message": "the model took too long"}), request_id="r1")
    assert (caught.value.status, caught.value.code, caught.value.request_id) == (504, "llm_timeout", "r1")
    with pytest.raises(errors.InternalError):
        stream_event("error", json.dumps({"code": "never_heard_of_it", "message": "?"}), request_id=None)
    assert stream_event("heartbeat", "{}", request_id=None) is None  # a newer server's event type is skipped
    with pytest.raises(errors.ResponseFormatError):
        stream_event("delta", "not json", request_id=None)


def _stream_transport(requests: list[httpx.Request], *bodies: httpx.Response) -> httpx.MockTransport:
    answers = list(bodies)

    def handle(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return answers.pop(0)

    return httpx.MockTransport(handle)


def test_ask_stream_yields_typed_events_and_retries_before_the_stream_starts() -> None:
    body = sse(("retrieval", RETRIEVAL), ("delta", {"text": "Within"}), ("delta", {"text": " 30 days."}), ("done", DONE), newline="\r\n")
    refused = httpx.Response(503, json={"error": {"code": "shutting_down", "message": "bye", "details": []}}, headers={"Retry-After": "0"})
    ok = httpx.Response(200, content=body, headers={"Content-Type": "text/event-stream", "X-Request-Id": "r9"})
    requests: list[httpx.Request] = []
    raas = Client(URL, "raas_k", transport=_stream_transport(requests, refused, ok), sleep=lambda s: None)
    events = list(raas.ask_stream("refund?", top_k=3))
    assert [type(e) for e in events] == [RetrievalEvent, DeltaEvent, DeltaEvent, DoneEvent]
    first, last = events[0], events[-1]
    assert isinstance(first, RetrievalEvent)
    assert first.citations[0].title == "Refunds"
    assert "".join(e.text for e in events if isinstance(e, DeltaEvent)) == "Within 30 days."
    assert isinstance(last, DoneEvent)
    assert (last.config_version, last.usage.cost_usd) == (3, 0.0)
    assert [r.headers["Accept"] for r in requests] == ["text/event-stream"] * 2
    assert requests[0].headers["Idempotency-Key"] == requests[1].headers["Idempotency-Key"]
    assert json.loads(requests[1].content) == {"query": "refund?", "top_k": 3}


def test_an_error_in_the_middle_of_a_stream_raises_after_the_events_before_it() -> None:
    body = sse(("retrieval", RETRIEVAL), ("delta", {"text": "Wi"}), ("error", {"code": "llm_unavailable", "message": "provider down"}))
    requests: list[httpx.Request] = []
    ok = httpx.Response(200, content=body, headers={"Content-Type": "text/event-stream"})
    raas = Client(URL, "raas_k", transport=_stream_transport(requests, ok))
    seen: list[str] = []

    def read_all() -> None:
        seen.extend(event.event for event in raas.ask_stream("refund?"))

    with pytest.raises(errors.LlmUnavailableError, match="provider down"):
        read_all()
    assert seen == ["retrieval", "delta"]


def test_a_stream_refused_with_a_json_error_raises_it() -> None:
    requests: list[httpx.Request] = []
    refused = httpx.Response(404, json={"error": {"code": "conversation_not_found", "message": "no", "details": []}})
    raas = Client(URL, "raas_k", transport=_stream_transport(requests, refused))
    with pytest.raises(errors.ConversationNotFoundError):
        list(raas.conversations.ask_stream("c1", "and then?"))
    assert requests[0].url.path == "/v1/conversations/c1/messages"
    wrong = httpx.Response(200, json={"answer": "buffered"})
    with pytest.raises(errors.ResponseFormatError, match="text/event-stream"):
        list(Client(URL, "k", transport=_stream_transport(requests, wrong)).ask_stream("x"))


def test_the_async_stream_reads_the_same_events() -> None:
    body = sse(("retrieval", RETRIEVAL), ("delta", {"text": "Within 30 days."}), ("done", {**DONE, "conversation_id": "c1"}))
    requests: list[httpx.Request] = []
    ok = httpx.Response(200, content=body, headers={"Content-Type": "text/event-stream"})

    async def run() -> list[str]:
        async with AsyncClient(URL, "raas_k", transport=_stream_transport(requests, ok), retry=RetryPolicy()) as raas:
            return [event.event async for event in raas.conversations.ask_stream("c1", "refund?")]

    assert run_coroutine(run()) == ["retrieval", "delta", "done"]
