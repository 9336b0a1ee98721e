"""What the sync and async clients share: building requests, the retry decision, reading answers and
parsing Server-Sent Events. Nothing here does I/O, so both transports (and the unit tests) use it as is."""

from __future__ import annotations

import asyncio
import email.utils
import json
import os
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from raas_client import errors
from raas_client.models import DeltaEvent, DoneEvent, RetrievalEvent, StreamEvent
from raas_client.operations import OPERATIONS, Operation

VERSION = "0.1.0"
USER_AGENT = f"raas-client-python/{VERSION}"
IDEMPOTENCY_HEADER = "Idempotency-Key"
SSE_MEDIA_TYPE = "text/event-stream"
M = TypeVar("M", bound=BaseModel)
UPLOAD_CHUNK_BYTES = 256 * 1024

Sleep = Callable[[float], Any]
AsyncSleep = Callable[[float], Awaitable[Any]]
ProgressCallback = Callable[[int, int], Any]  # (bytes sent, total bytes)
sync_sleep: Sleep = time.sleep
async_sleep: AsyncSleep = asyncio.sleep

# What the server reads (README "Ingestion and query"), declared by extension: the server checks the
# bytes against the declared type, and mimetypes does not know every one of these on every system.
CONTENT_TYPES = {
    ".txt": "text/plain",
    ".text": "text/plain",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".html": "text/html",
    ".htm": "text/html",
    ".pdf": "application/pdf",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".csv": "text/csv",
    ".json": "application/json",
}


@dataclass
class Page(Generic[M]):
    """One page of a list: its items, the cursor of the next page (None on the last) and the raw answer."""

    items: list[M]
    next_cursor: str | None
    raw: dict[str, Any]


def check_model(name: str, model: type[BaseModel]) -> None:
    """The model a resource parses with is the one the operation table declares (what the drift test checks)."""
    declared = OPERATIONS[name].response
    if declared is not model:
        raise TypeError(f"operation {name} answers {declared.__name__ if declared else None}, not {model.__name__}")


def settings_from_env(base_url: str | None, api_key: str | None) -> tuple[str, str | None]:
    """`RAAS_URL` and `RAAS_API_KEY` when not given; the URL may carry a stage (`https://…/prod`)."""
    url = base_url or os.environ.get("RAAS_URL")
    if not url:
        raise ValueError("no API URL: pass base_url or set RAAS_URL (e.g. http://127.0.0.1:8080)")
    return url.rstrip("/"), api_key if api_key is not None else os.environ.get("RAAS_API_KEY") or None


# --- retries ---------------------------------------------------------------------------------------

# 429s that only the next month lifts: waiting (Retry-After is the seconds until then) never helps.
NOT_RETRIED_CODES = frozenset({"quota_exceeded", "llm_budget_exceeded"})


@dataclass(frozen=True)
class RetryPolicy:
    """When and how long to wait before trying a request again.

    429 (`rate_limited`, `too_many_requests`), 503 and `409 idempotency_in_progress` are retried up to
    `max_attempts` tries in all, waiting `Retry-After` when the server sends it (seconds or an HTTP
    date), else exponential backoff with jitter. A `Retry-After` longer than `max_retry_after` (a
    monthly quota answers with the seconds to next month) is not waited for: the error is raised with
    its `retry_after`. Connection failures are retried only when nothing can have been done twice: the
    connection was never made, or the request is idempotent (GET/PUT/DELETE, or sent with an
    `Idempotency-Key`).
    """

    max_attempts: int = 4
    backoff_base: float = 0.5
    backoff_max: float = 8.0
    max_retry_after: float = 60.0
    retry_statuses: frozenset[int] = frozenset({429, 503})
    rng: Callable[[], float] = field(default=random.random, compare=False, repr=False)

    def backoff(self, attempt: int) -> float:
        """Wait before try `attempt + 1`: half the exponential step fixed, half random ("equal jitter")."""
        step = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
        return step / 2 + self.rng() * step / 2

    def wait_after_error(self, attempt: int, error: errors.ApiError, *, idempotency_key_sent: bool) -> float | None:
        """Seconds to wait before trying again after `error` on try number `attempt`, or None to raise it."""
        if attempt >= self.max_attempts:
            return None
        if error.code in NOT_RETRIED_CODES:
            return None
        retryable = error.status in self.retry_statuses or (
            error.status == 409 and error.code == "idempotency_in_progress" and idempotency_key_sent
        )
        if not retryable:
            return None
        if error.retry_after is not None:
            if error.retry_after > self.max_retry_after:
                return None
            # A little jitter on top, never below what the server asked, so many clients do not return at once.
            return error.retry_after + self.rng() * min(1.0, error.retry_after * 0.1)
        return self.backoff(attempt)

    def wait_after_transport_error(self, attempt: int, exc: httpx.TransportError, *, safe_to_retry: bool) -> float | None:
        if attempt >= self.max_attempts:
            return None
        never_sent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
        if never_sent or safe_to_retry:
            return self.backoff(attempt)
        return None


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """`Retry-After` as seconds: delay-seconds or an HTTP-date (RFC 9110 section 10.2.3); None if absent or unreadable."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return max(0.0, seconds) if seconds == seconds else None  # NaN is unreadable


# --- requests --------------------------------------------------------------------------------------


@dataclass
class PreparedCall:
    """One logical call: the same method, URL, body and `Idempotency-Key` on every try."""

    operation: Operation
    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    content: bytes | None

    @property
    def idempotency_key_sent(self) -> bool:
        return IDEMPOTENCY_HEADER in self.headers


def prepare(
    operation: Operation,
    *,
    path_params: Mapping[str, str | int] | None = None,
    params: Mapping[str, Any] | None = None,
    body: BaseModel | Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    idempotency_key: str | None = None,
    stream: bool = False,
) -> PreparedCall:
    path = operation.path
    for name, value in (path_params or {}).items():
        path = path.replace("{" + name + "}", quote(str(value), safe=""))
    if "{" in path:
        raise ValueError(f"missing path parameter in {operation.path}")
    query = {k: _query_value(v) for k, v in (params or {}).items() if v is not None}
    unknown = set(query) - set(operation.query)
    if unknown:
        raise ValueError(f"{operation.method} {operation.path} takes no query parameter {sorted(unknown)}")
    sent = {"Accept": SSE_MEDIA_TYPE if stream else "application/json", **(headers or {})}
    content = None
    if body is not None:
        if isinstance(body, BaseModel):
            data = body.model_dump(mode="json", exclude_unset=True)
        else:
            data = dict(body) if operation.body is None else _validated(operation.body, body)
        content = json.dumps(data, separators=(",", ":")).encode()
        sent["Content-Type"] = "application/json"
    if operation.idempotency_key:
        sent[IDEMPOTENCY_HEADER] = idempotency_key or str(uuid.uuid4())
    elif idempotency_key:
        raise ValueError(f"{operation.method} {operation.path} does not accept an Idempotency-Key")
    return PreparedCall(operation, operation.method, path, query, sent, content)


def _validated(model: type[BaseModel], data: Mapping[str, Any]) -> dict[str, Any]:
    """A dict body checked against the request model (unknown fields refused here, not by a round trip)."""
    return model.model_validate(dict(data)).model_dump(mode="json", exclude_unset=True)


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def auth_headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


# --- answers ---------------------------------------------------------------------------------------


def error_for(response: httpx.Response, body: bytes) -> errors.ApiError:
    try:
        parsed: Any = json.loads(body) if body else None
    except ValueError:
        parsed = body[:200].decode("utf-8", "replace")
    return errors.error_from_body(
        response.status_code,
        parsed,
        request_id=response.headers.get("X-Request-Id"),
        retry_after=parse_retry_after(response.headers.get("Retry-After")),
        headers=dict(response.headers),
    )


def json_body(response: httpx.Response) -> Any:
    if response.status_code == 204 or not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        raise errors.ResponseFormatError(
            f"expected JSON from {response.request.method} {response.request.url.path}, got {response.headers.get('Content-Type')}",
            status=response.status_code,
            request_id=response.headers.get("X-Request-Id"),
        ) from None


def parse_model(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise errors.ResponseFormatError(f"the answer does not match {model.__name__}: {exc}") from None


def check_event_stream(response: httpx.Response) -> None:
    kind = response.headers.get("Content-Type", "")
    if not kind.startswith(SSE_MEDIA_TYPE):
        raise errors.ResponseFormatError(
            f"asked for {SSE_MEDIA_TYPE}, got {kind or 'no content type'}",
            status=response.status_code,
            request_id=response.headers.get("X-Request-Id"),
        )


def storage_error(response: httpx.Response) -> errors.ApiError:
    """A presigned PUT refused by the storage (S3 answers XML, not the raas error shape)."""
    cls = errors.error_class(response.status_code, None)
    snippet = response.text[:300].replace("\n", " ")
    return cls(
        f"the storage refused the upload (HTTP {response.status_code}): {snippet}",
        status=response.status_code,
        code="upload_refused",
        retry_after=parse_retry_after(response.headers.get("Retry-After")),
    )


def page_items(operation: Operation, data: Any) -> tuple[list[Any], str | None]:
    """(items, next cursor) of a list answer."""
    if not isinstance(data, dict) or operation.items is None or not isinstance(data.get(operation.items), list):
        raise errors.ResponseFormatError(f"{operation.method} {operation.path} answered without its `{operation.items}` list")
    cursor = data.get("next_cursor") if operation.paginated else None
    return data[operation.items], cursor if isinstance(cursor, str) and cursor else None


# --- Server-Sent Events ----------------------------------------------------------------------------


@dataclass
class SseParser:
    """Incremental parser of `text/event-stream` lines (WHATWG HTML "server-sent events" rules:
    `event:`/`data:` fields, `data` lines joined with newlines, comments and unknown fields ignored,
    an empty line dispatches)."""

    _event: str = ""
    _data: list[str] = field(default_factory=list)

    def feed(self, line: str) -> tuple[str, str] | None:
        """One line without its terminator; returns (event, data) when the line completes an event."""
        if line == "":
            if not self._data:
                self._event = ""
                return None
            event = (self._event or "message", "\n".join(self._data))
            self._event, self._data = "", []
            return event
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        return None

    def close(self) -> tuple[str, str] | None:
        """A stream that ended without a final empty line still completes its last event."""
        return self.feed("") if self._data else None


def stream_event(name: str, data: str, *, request_id: str | None) -> StreamEvent | None:
    """The typed event, or None for an event type this client does not know (a newer server's); raises on `error`."""
    try:
        payload = json.loads(data)
    except ValueError:
        raise errors.ResponseFormatError(f"event {name!r} carries data that is not JSON: {data[:200]!r}", request_id=request_id) from None
    if name == "error":
        info = payload if isinstance(payload, dict) else {}
        code = info.get("code") if isinstance(info.get("code"), str) else None
        known = errors.ERRORS_BY_CODE.get(code or "")
        # The stream's status was 200 already: the error's own status is the one its code is answered with.
        cls = errors.error_class((known.default_status if known else None) or 500, code)
        raise cls(str(info.get("message") or code or "the answer failed"), code=code, request_id=request_id)
    if not isinstance(payload, dict):
        raise errors.ResponseFormatError(f"event {name!r} carries {type(payload).__name__}, not an object", request_id=request_id)
    if name == "retrieval":
        return parse_model(RetrievalEvent, {**payload, "event": name})
    if name == "delta":
        return parse_model(DeltaEvent, {**payload, "event": name})
    if name == "done":
        return parse_model(DoneEvent, {**payload, "event": name})
    return None
