"""POSTs a signed webhook to a tenant's URL, refusing destinations an attacker could aim us at (SSRF).

At every send (not only when the endpoint is saved):
- the host is resolved here and *every* address it resolves to must be public (no loopback,
  link-local, private, reserved or metadata address; loopback only with RAAS_WEBHOOK_ALLOW_LOOPBACK);
- the connection goes to the address that was checked, not to the name again, so a DNS answer that
  changes between the check and the connect (DNS rebinding) cannot redirect it. TLS still verifies the
  certificate against the host name (SNI and hostname check), and `Host` is the URL's;
- redirects are not followed (http.client never follows them; a 3xx is a failed attempt);
- the whole attempt is bounded by a 10 s deadline and the body read is capped.
"""

from __future__ import annotations

import functools
import http.client
import ipaddress
import socket
import ssl
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from raas.domain.webhooks import DELIVERY_TIMEOUT_SECONDS, MAX_RESPONSE_BYTES, DestinationRefused, SendResult, check_address, check_url

Resolver = Callable[[str, int], list[str]]


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """Connects to `address` while verifying the certificate for the URL's host name."""

    def __init__(self, host: str, port: int, address: str, timeout: float, context: ssl.SSLContext):
        super().__init__(host, port, timeout=timeout, context=context)
        self._address = address
        self._context = context

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class WebhookSender:
    def __init__(
        self,
        *,
        allow_loopback: bool = False,
        loopback_only: bool = False,
        resolver: Resolver = system_resolver,
        timeout: float = DELIVERY_TIMEOUT_SECONDS,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
        ssl_context: ssl.SSLContext | None = None,
    ):
        self.allow_loopback = allow_loopback
        self.loopback_only = loopback_only
        self.resolver = resolver
        self.timeout = timeout
        self.max_response_bytes = max_response_bytes
        self._given_context = ssl_context

    @functools.cached_property
    def ssl_context(self) -> ssl.SSLContext:
        """The given context, else the system's trust store with host name checks, loaded at the first HTTPS
        delivery: loading it costs 22 ms of CPU, which every container that builds a sender paid at its start."""
        return self._given_context or ssl.create_default_context()

    def resolve_checked(self, url: str) -> str:
        """The address to connect to, after every address of the host passed the checks."""
        check_url(url, allow_loopback=self.allow_loopback)
        parts = urlsplit(url)
        host = (parts.hostname or "").strip("[]")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            addresses = self.resolver(host, port)
        except (OSError, UnicodeError) as exc:
            raise DestinationRefused(f"{host} does not resolve: {exc}") from None
        if not addresses:
            raise DestinationRefused(f"{host} does not resolve")
        for address in addresses:
            parsed = ipaddress.ip_address(address.split("%")[0])
            check_address(parsed, allow_loopback=self.allow_loopback)
            if self.loopback_only and not parsed.is_loopback:
                raise DestinationRefused(f"{host} is not a loopback receiver, and RAAS_WEBHOOK_LOOPBACK_ONLY is set")
        return addresses[0]

    def send(self, url: str, body: bytes, headers: dict[str, str]) -> SendResult:
        """One attempt. Raises DestinationRefused before any connection when the destination is not allowed."""
        address = self.resolve_checked(url)
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        started = time.monotonic()
        deadline = started + self.timeout
        connection: http.client.HTTPConnection
        if parts.scheme == "https":
            connection = _PinnedHTTPSConnection(host, port, address, self.timeout, self.ssl_context)
        else:
            connection = _PinnedHTTPConnection(host, port, address, self.timeout)
        try:
            connection.request("POST", path, body=body, headers={**headers, "Content-Type": "application/json"})
            response = connection.getresponse()
            received = bytearray()
            while len(received) < self.max_response_bytes:
                if time.monotonic() > deadline:
                    raise TimeoutError("the receiver did not answer within the timeout")
                chunk = response.read1(min(8192, self.max_response_bytes - len(received)))
                if not chunk:
                    break
                received += chunk
            status = response.status
        except (OSError, http.client.HTTPException) as exc:
            return SendResult(None, (time.monotonic() - started) * 1000, b"", f"{type(exc).__name__}: {exc}"[:300])
        finally:
            connection.close()
        return SendResult(status, (time.monotonic() - started) * 1000, bytes(received))
