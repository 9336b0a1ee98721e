"""A loopback HTTP server that plays the parts of Stripe's API raas uses, with Stripe's own
semantics where they matter: idempotency keys replay the first response, meter events with a
known identifier are refused as duplicates, deleted customers answer 404. Failures can be
injected (`fail_next`). The stripe SDK reaches it over real HTTP through `base_addresses`."""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl

from tests.helpers import serve_on_loopback


def _unflatten(form: list[tuple[str, str]]) -> dict[str, Any]:
    """`payload[value]=3` -> {"payload": {"value": "3"}} (Stripe's form encoding, one level deep)."""
    result: dict[str, Any] = {}
    for key, value in form:
        if "[" in key:
            outer, inner = key.split("[", 1)
            result.setdefault(outer, {})[inner.rstrip("]")] = value
        else:
            result[key] = value
    return result


@dataclass
class FakeStripe:
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    meter_events: list[dict[str, Any]] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    failures: int = 0
    _idempotent: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode() if length else ""
                status, body = fake.handle(self.command, self.path.split("?")[0], raw, self.headers.get("Idempotency-Key"))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(data)

            do_GET = do_POST = do_DELETE = _serve

            def log_message(self, *args: Any) -> None:
                pass

        self.server, self.url = serve_on_loopback(Handler)

    def fail_next(self, count: int) -> None:
        """The next `count` requests answer 500 (the SDK's retries count too)."""
        self.failures = count

    def handle(self, method: str, path: str, raw: str, idempotency_key: str | None) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.requests.append((method, path))
            if self.failures:
                self.failures -= 1
                return 500, {"error": {"type": "api_error", "message": "injected failure"}}
            if idempotency_key and method == "POST" and idempotency_key in self._idempotent:
                return self._idempotent[idempotency_key]
            params = _unflatten(parse_qsl(raw, keep_blank_values=True))
            reply = self._route(method, path, params)
            if idempotency_key and method == "POST":
                self._idempotent[idempotency_key] = reply
            return reply

    def _route(self, method: str, path: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        parts = path.strip("/").split("/")
        if method == "POST" and path == "/v1/customers":
            customer = {
                "id": f"cus_{next(self._ids):06d}",
                "object": "customer",
                "name": params.get("name"),
                "metadata": params.get("metadata", {}),
            }
            self.customers[customer["id"]] = customer
            return 200, customer
        if len(parts) == 3 and parts[:2] == ["v1", "customers"]:
            found = self.customers.get(parts[2])
            if found is None or found.get("deleted"):
                return 404, {"error": {"type": "invalid_request_error", "code": "resource_missing", "message": "No such customer"}}
            customer = found
            if customer is None or customer.get("deleted"):
                return 404, {"error": {"type": "invalid_request_error", "code": "resource_missing", "message": "No such customer"}}
            if method == "DELETE":
                customer["deleted"] = True
                return 200, {"id": customer["id"], "object": "customer", "deleted": True}
            return 200, customer
        if method == "POST" and path == "/v1/billing/meter_events":
            identifier = str(params.get("identifier"))
            if any(e["identifier"] == identifier for e in self.meter_events):
                # Stripe accepts the call and drops the repeat when it aggregates.
                self.duplicates.append(identifier)
                return 200, {"object": "billing.meter_event", **params}
            event = {"object": "billing.meter_event", **params}
            self.meter_events.append(event)
            return 200, event
        return 404, {"error": {"type": "invalid_request_error", "message": f"no route {method} {path}"}}

    def totals(self) -> dict[tuple[str, str], int]:
        """Sum of meter event values per (customer, event name)."""
        sums: dict[tuple[str, str], int] = {}
        for event in self.meter_events:
            key = (event["payload"]["stripe_customer_id"], event["event_name"])
            sums[key] = sums.get(key, 0) + int(event["payload"]["value"])
        return sums

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
