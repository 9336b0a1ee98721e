"""Test helpers: an API client over the in-process gateway or real HTTP, and in-memory fakes."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

from raas.domain.config import ConfigVersion
from raas.domain.ports import VersionConflict


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    text: str

    def json(self) -> Any:
        return json.loads(self.text) if self.text else None

    @property
    def error_code(self) -> str | None:
        body = self.json()
        return body.get("error", {}).get("code") if isinstance(body, dict) else None


class ApiClient(Protocol):
    def request(
        self, method: str, path: str, *, key: str | None = None, json_body: Any = None, headers: dict[str, str] | None = None
    ) -> Reply: ...


def _headers(key: str | None, json_body: Any, headers: dict[str, str] | None) -> dict[str, str]:
    out = {"Content-Type": "application/json"} if json_body is not None else {}
    if key:
        out["Authorization"] = f"Bearer {key}"
    out.update(headers or {})
    return out


class GatewayClient:
    """Calls the local gateway emulator in-process (authorizer + handlers, no sockets)."""

    def __init__(self, gateway: Any):
        self.gateway = gateway

    def request(
        self, method: str, path: str, *, key: str | None = None, json_body: Any = None, headers: dict[str, str] | None = None
    ) -> Reply:
        from urllib.parse import parse_qs, urlsplit

        url = urlsplit(path)
        body = json.dumps(json_body).encode() if json_body is not None else b""
        response = self.gateway.handle(method, url.path, parse_qs(url.query), _headers(key, json_body, headers), body)
        return Reply(response.status, response.headers, response.body.decode())


class HttpClient:
    """Talks HTTP to a running `raas local`."""

    def __init__(self, base_url: str):
        import httpx

        self.http = httpx.Client(base_url=base_url, timeout=30)

    def request(
        self, method: str, path: str, *, key: str | None = None, json_body: Any = None, headers: dict[str, str] | None = None
    ) -> Reply:
        content = json.dumps(json_body).encode() if json_body is not None else None
        response = self.http.request(method, path, content=content, headers=_headers(key, json_body, headers))
        return Reply(response.status_code, dict(response.headers), response.text)


def expect(reply: Reply, status: int) -> Any:
    assert reply.status == status, f"expected {status}, got {reply.status}: {reply.text}"
    return reply.json()


@dataclass
class InMemoryConfigStore:
    """A ConfigStore with the same conditional-write contract as the DynamoDB one."""

    versions: dict[str, dict[int, ConfigVersion]] = field(default_factory=dict)
    fail_reads: bool = False
    conflicts_to_inject: int = 0
    writes: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def current(self, tenant_id: str) -> ConfigVersion | None:
        if self.fail_reads:
            raise ConnectionError("storage down")
        with self._lock:
            versions = self.versions.get(tenant_id) or {}
            return versions[max(versions)] if versions else None

    def write(self, tenant_id: str, version: ConfigVersion, expected_current: int) -> None:
        with self._lock:
            if self.conflicts_to_inject:
                self.conflicts_to_inject -= 1
                raise VersionConflict(tenant_id)
            versions = self.versions.setdefault(tenant_id, {})
            current = max(versions) if versions else 0
            if current != expected_current or version.version in versions:
                raise VersionConflict(tenant_id)
            versions[version.version] = version
            self.writes += 1

    def get_version(self, tenant_id: str, version: int) -> ConfigVersion | None:
        return (self.versions.get(tenant_id) or {}).get(version)

    def list_versions(self, tenant_id: str, limit: int, cursor: str | None) -> tuple[list[ConfigVersion], str | None]:
        ordered = sorted((self.versions.get(tenant_id) or {}).values(), key=lambda v: -v.version)
        start = int(cursor) if cursor else 0
        page = ordered[start : start + limit]
        return page, str(start + limit) if start + limit < len(ordered) else None
