"""HTTP framing at `raas local`'s front: raw bytes on a socket to the real HTTP server and gateway
(in-process on a free port, moto in-process). Every refusal is the platform's JSON error with a
stable code, sent before the body is read, and the connection is closed after it; a slow client
gets a 408 instead of holding a thread."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from raas.local.server import make_http_server
from tests.conftest import TenantHandle
from tests.helpers import GatewayClient

READ_TIMEOUT = 0.5  # the server's; short, so the slow-client cases end quickly
CLIENT_TIMEOUT = 20  # the test's own patience: far above READ_TIMEOUT, never asserted on


@dataclass
class RawReply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def error_code(self) -> str:
        return str(json.loads(self.body)["error"]["code"])


@pytest.fixture
def front(api: GatewayClient) -> Iterator[tuple[str, int]]:
    server = make_http_server(api.gateway, "127.0.0.1", 0, read_timeout=READ_TIMEOUT)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield "127.0.0.1", server.server_address[1]
    server.shutdown()
    server.server_close()


def _read_reply(stream: Any) -> RawReply:
    status_line = stream.readline()
    assert status_line.startswith(b"HTTP/1.1 "), f"not an HTTP/1.1 status line: {status_line[:200]!r}"
    headers: dict[str, str] = {}
    while (line := stream.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    body = stream.read(int(headers.get("content-length", "0")))
    return RawReply(int(status_line.split()[1]), headers, body)


def _exchange(address: tuple[str, int], *parts: bytes, replies: int = 1) -> tuple[list[RawReply], bool]:
    """Sends the parts, reads `replies` responses, then whether the server closed the connection."""
    with socket.create_connection(address, timeout=CLIENT_TIMEOUT) as sock:
        for part in parts:
            sock.sendall(part)
        stream = sock.makefile("rb")
        answers = [_read_reply(stream) for _ in range(replies)]
        closed = stream.read(1) == b""
    return answers, closed


def _post(headers: str) -> bytes:
    return f"POST /v1/documents HTTP/1.1\r\nHost: raas\r\nContent-Type: application/json\r\n{headers}\r\n".encode()


def _assert_refused(reply: RawReply, status: int, code: str) -> None:
    assert (reply.status, reply.error_code) == (status, code), reply.body[:300]
    assert reply.headers["content-type"] == "application/json"
    assert json.loads(reply.body)["error"]["message"]


@pytest.mark.parametrize(
    "length",
    ["-1", "ten", "1e3", "0x10", "", "5, 6", "+5"],
    ids=["negative", "not a number", "exponent", "hex", "empty", "a list", "signed"],
)
def test_a_malformed_content_length_is_a_400_before_the_body_is_read(front: tuple[str, int], length: str) -> None:
    # Before: "-1" read the socket to its end (before authentication and the size limit), "ten"
    # raised inside the server and dropped the connection, "5, 6" raised too.
    (reply,), closed = _exchange(front, _post(f"Content-Length: {length}\r\n"))
    _assert_refused(reply, 400, "malformed_request")
    assert closed
    assert reply.headers["connection"] == "close"


def test_two_different_content_lengths_are_a_400(front: tuple[str, int]) -> None:
    (reply,), closed = _exchange(front, _post("Content-Length: 2\r\nContent-Length: 30\r\n"))
    _assert_refused(reply, 400, "malformed_request")
    assert closed


def test_a_length_of_thousands_of_digits_is_too_large_not_a_crash(front: tuple[str, int]) -> None:
    # int() of a 5000-digit string raises (Python's int-string limit); the length is compared as text first.
    (reply,), closed = _exchange(front, _post(f"Content-Length: {'9' * 5000}\r\n"))
    _assert_refused(reply, 413, "payload_too_large")
    assert closed


def test_transfer_encoding_with_content_length_is_a_400(front: tuple[str, int]) -> None:
    # Before: the Content-Length framed the body and the chunked framing was ignored (a smuggling vector).
    (reply,), closed = _exchange(front, _post("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n"))
    _assert_refused(reply, 400, "malformed_request")
    assert closed


def test_a_chunked_body_without_a_length_is_a_411(front: tuple[str, int]) -> None:
    # Before: the body was taken as empty and its chunks were parsed as the next request.
    (reply,), closed = _exchange(front, _post("Transfer-Encoding: chunked\r\n"))
    _assert_refused(reply, 411, "length_required")
    assert closed


def test_an_oversize_body_announced_with_expect_100_is_refused_without_inviting_it(front: tuple[str, int]) -> None:
    (reply,), closed = _exchange(front, _post(f"Content-Length: {11 * 1024 * 1024}\r\nExpect: 100-continue\r\n"))
    _assert_refused(reply, 413, "payload_too_large")  # not "100 Continue" first
    assert closed


def test_bytes_without_framing_are_refused_in_json_not_html(front: tuple[str, int], tenant_a: TenantHandle) -> None:
    # No Content-Length means no body (RFC 9112 section 6.3); bytes sent anyway are a request line
    # that is not one. Before: http.server answered it with an HTML page and no status line.
    request = _post(f"Authorization: Bearer {tenant_a.admin_key}\r\n") + b'{"title": "t", "text": "x"}\r\n'
    (first, second), closed = _exchange(front, request, replies=2)
    assert (first.status, first.error_code) == (422, "validation_error")  # the body-less POST
    _assert_refused(second, 400, "malformed_request")
    assert closed


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        (b"NOT A REQUEST LINE AT ALL\r\n\r\n", 400, "malformed_request"),
        (b"GET /v1/health HTTP/2.0\r\n\r\n", 505, "http_version_not_supported"),
        (b"GET /v1/health HTTP/1.1\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n", 431, "headers_too_large"),
        (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n", 414, "uri_too_long"),
    ],
    ids=["not HTTP", "HTTP/2 on a 1.1 socket", "header line too long", "request line too long"],
)
def test_what_http_cannot_parse_is_refused_in_json(front: tuple[str, int], raw: bytes, status: int, code: str) -> None:
    (reply,), closed = _exchange(front, raw)
    _assert_refused(reply, status, code)
    assert closed


def test_a_body_that_stops_arriving_gets_a_408(front: tuple[str, int]) -> None:
    # Ten of the announced hundred bytes, then silence. Before: the thread waited forever.
    (reply,), closed = _exchange(front, _post("Content-Length: 100\r\n"), b'{"title": ')
    _assert_refused(reply, 408, "request_timeout")
    assert closed


def test_headers_that_stop_arriving_get_a_408(front: tuple[str, int]) -> None:
    (reply,), closed = _exchange(front, b"POST /v1/documents HTTP/1.1\r\nHost: raas\r\n")
    _assert_refused(reply, 408, "request_timeout")
    assert closed


def test_a_well_framed_connection_is_kept_for_the_next_request(front: tuple[str, int]) -> None:
    health = b"GET /v1/health HTTP/1.1\r\nHost: raas\r\n\r\n"
    estimate = b'{"tier": "smb", "queries": 10}'
    pricing = (
        f"POST /v1/pricing/estimate HTTP/1.1\r\nHost: raas\r\nContent-Type: application/json\r\nContent-Length: {len(estimate)}\r\n\r\n"
    )
    with socket.create_connection(front, timeout=CLIENT_TIMEOUT) as sock:
        stream = sock.makefile("rb")
        sock.sendall(health)
        assert _read_reply(stream).status == 200
        sock.sendall(pricing.encode() + estimate)
        assert _read_reply(stream).status == 200
