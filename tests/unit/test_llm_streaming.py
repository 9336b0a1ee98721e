"""The OpenAI and Anthropic adapters stream through their SDKs' own streaming, against a loopback
provider that streams Server-Sent Events as the real APIs do; closing the stream early closes the
connection, and the provider stops writing."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from raas.adapters.llm import AnthropicChat, OfflineExtractive, OpenAIChat
from raas.domain import catalog
from raas.domain.errors import ServiceUnavailable
from raas.domain.generation import Generation, GenerationRequest
from tests.helpers import serve_on_loopback

WORDS = ["Within", " 30", " days", " [1]", "."]


def _openai_events(words: list[str], usage: bool = True) -> list[bytes]:
    base = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o"}
    events = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": w}, "finish_reason": None}]} for w in words]
    if usage:
        events.append({**base, "choices": [], "usage": {"prompt_tokens": 120, "completion_tokens": 7, "total_tokens": 127}})
    return [f"data: {json.dumps(e)}\n\n".encode() for e in events] + [b"data: [DONE]\n\n"]


def _anthropic_events(words: list[str]) -> list[bytes]:
    message: dict[str, Any] = {
        "id": "m",
        "type": "message",
        "role": "assistant",
        "model": "claude-3-haiku-20240307",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 120, "output_tokens": 1},
    }
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": message}),
        ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        *[("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": w}}) for w in words],
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": {"output_tokens": 7}},
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    return [f"event: {name}\ndata: {json.dumps(data)}\n\n".encode() for name, data in events]


class StreamingProvider:
    """Streams the scripted events, `delay` apart, counting what it managed to write before the client left."""

    def __init__(self, events: list[bytes], delay: float = 0.0, status: int = 200):
        self.events = events
        self.delay = delay
        self.status = status
        self.written = 0
        self.gone = threading.Event()
        self.bodies: list[dict[str, Any]] = []
        provider = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                provider.bodies.append(json.loads(self.rfile.read(length)))
                if provider.status != 200:
                    body = json.dumps({"error": {"message": "down", "type": "overloaded_error"}}).encode()
                    self.send_response(provider.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                try:
                    for event in provider.events:
                        time.sleep(provider.delay)
                        self.wfile.write(event)
                        self.wfile.flush()
                        provider.written += 1
                except OSError:
                    provider.gone.set()
                self.close_connection = True

            def log_message(self, *args: Any) -> None:
                pass

        self.server, self.url = serve_on_loopback(Handler)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def provider_factory() -> Iterator[Any]:
    made: list[StreamingProvider] = []

    def make(events: list[bytes], **kwargs: Any) -> StreamingProvider:
        made.append(StreamingProvider(events, **kwargs))
        return made[-1]

    yield make
    for provider in made:
        provider.close()


def request_for(model_name: str) -> GenerationRequest:
    return GenerationRequest(
        model_name=model_name, model=catalog.models()[model_name], prompt="Q and context", max_tokens=50, temperature=0.2
    )


def test_openai_streams_deltas_then_the_providers_usage(provider_factory: Any) -> None:
    provider = provider_factory(_openai_events(WORDS))
    chat = OpenAIChat("sk-test", timeout=5, max_retries=0, base_url=f"{provider.url}/v1")
    pieces = list(chat.stream(request_for("gpt-4o")))
    assert pieces[:-1] == WORDS
    final = pieces[-1]
    assert isinstance(final, Generation)
    assert (final.text, final.prompt_tokens, final.completion_tokens, final.model) == ("Within 30 days [1].", 120, 7, "gpt-4o")
    sent = provider.bodies[-1]
    assert (sent["stream"], sent["stream_options"], sent["model"]) == (True, {"include_usage": True}, "gpt-4o")


def test_anthropic_streams_deltas_then_the_final_messages_usage(provider_factory: Any) -> None:
    provider = provider_factory(_anthropic_events(WORDS))
    chat = AnthropicChat("ak-test", timeout=5, max_retries=0, base_url=provider.url)
    pieces = list(chat.stream(request_for("claude-3-haiku")))
    assert pieces[:-1] == WORDS
    final = pieces[-1]
    assert isinstance(final, Generation)
    assert (final.text, final.prompt_tokens, final.completion_tokens) == ("Within 30 days [1].", 120, 7)
    sent = provider.bodies[-1]
    assert (sent["stream"], sent["model"], sent["temperature"]) == (True, "claude-3-haiku-20240307", 0.2)


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_closing_the_stream_closes_the_connection_and_the_provider_stops(provider_factory: Any, kind: str) -> None:
    words = [f" w{i}" for i in range(400)]
    events = _openai_events(words) if kind == "openai" else _anthropic_events(words)
    provider = provider_factory(events, delay=0.01)
    chat: OpenAIChat | AnthropicChat = (
        OpenAIChat("sk-test", timeout=5, max_retries=0, base_url=f"{provider.url}/v1")
        if kind == "openai"
        else AnthropicChat("ak-test", timeout=5, max_retries=0, base_url=provider.url)
    )
    stream = chat.stream(request_for("gpt-4o" if kind == "openai" else "claude-3-haiku"))
    assert [next(stream) for _ in range(3)] == [" w0", " w1", " w2"]
    stream.close()  # the client went away: the adapter closes the provider's response
    assert provider.gone.wait(5), "the provider kept streaming to nobody"
    assert provider.written < len(events)


def test_a_provider_refusal_before_the_stream_is_llm_unavailable(provider_factory: Any) -> None:
    provider = provider_factory([], status=529)
    chat = AnthropicChat("ak-test", timeout=5, max_retries=0, base_url=provider.url)
    with pytest.raises(ServiceUnavailable) as refused:
        list(chat.stream(request_for("claude-3-haiku")))
    assert refused.value.code == "llm_unavailable"


def test_the_offline_answerer_streams_its_answer_word_by_word() -> None:
    request = GenerationRequest(
        model_name="gpt-4o",
        model=catalog.models()["gpt-4o"],
        prompt="p",
        max_tokens=50,
        temperature=0,
        query="refund days",
        passages=["Customers may request a refund within 30 days."],
    )
    pieces = list(OfflineExtractive().stream(request))
    final = pieces[-1]
    assert isinstance(final, Generation)
    assert final.offline
    assert "".join(p for p in pieces[:-1] if isinstance(p, str)) == final.text
    assert len(pieces) > 3
