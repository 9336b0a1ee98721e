"""Server-Sent Events of a streamed answer (`Accept: text/event-stream`).

`retrieval` first (the citations), then `delta` events with text, then `done` (usage, cost, config
version, timings) or `error` (the stable error code) if anything fails once the stream has begun.
Event format: https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from raas.domain.answers import QueryResponse

SSE_MEDIA_TYPE = "text/event-stream"


class ClientGone(Exception):
    """The client closed the connection while its answer was streaming."""


@dataclass(frozen=True)
class StreamEvent:
    event: str  # retrieval | delta | done | error
    data: dict[str, Any]
    response: QueryResponse | None = field(default=None, compare=False)  # the whole answer, on `done` (not sent)

    def encode(self) -> bytes:
        # One `data:` line: json.dumps never writes a raw newline, so the event cannot be split or forged.
        return f"event: {self.event}\ndata: {json.dumps(self.data, separators=(',', ':'))}\n\n".encode()

    def with_data(self, **extra: Any) -> StreamEvent:
        return replace(self, data={**self.data, **extra})


def parse_events(body: str) -> list[tuple[str, dict[str, Any]]]:
    """(event, data) pairs of an event stream (what a client reads; the tests use it)."""
    events = []
    for block in body.split("\n\n"):
        if not block.strip():
            continue
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        events.append((fields.get("event", "message"), json.loads(fields.get("data", "{}"))))
    return events
