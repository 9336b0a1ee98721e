"""`raas local`: moto on loopback + the gateway emulator behind a threaded HTTP server."""

from __future__ import annotations

import logging
import os
import signal
import sys
import tempfile
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from raas.local.aws import StateDir, ensure_resources, isolate_from_real_aws, release_moto_tracking, start_moto_server
from raas.local.events import QueuePump
from raas.local.gateway import LocalGateway, payload_too_large
from raas.local.schedules import LocalScheduler

MUTATING = {"POST", "PUT", "PATCH", "DELETE"}


@dataclass
class LocalPlatform:
    url: str
    operator_key: str
    http: ThreadingHTTPServer
    moto: Any
    state: StateDir | None
    pump: QueuePump
    scheduler: LocalScheduler
    scratch: tempfile.TemporaryDirectory[str] | None

    def serve_forever(self) -> None:
        self.http.serve_forever()

    def close(self) -> None:
        """Stops the background work and persists state (after the HTTP server has stopped)."""
        self.pump.stop()
        self.scheduler.stop()
        if self.state:
            self.state.stop()
        self.moto.stop()
        if self.scratch:
            self.scratch.cleanup()


def _make_handler(gateway: LocalGateway, state: StateDir | None) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "raas-local"
        # Headers and body go out in two writes; with Nagle on, a keep-alive client's delayed ACK
        # would hold the body back ~40 ms on every response.
        disable_nagle_algorithm = True

        def _serve(self) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            if length > gateway.max_body_bytes:
                # Answer without reading the body, and close: draining it would cost what the limit saves.
                response = payload_too_large(gateway.max_body_bytes)
                self.close_connection = True
                response.headers["Connection"] = "close"
            else:
                body = self.rfile.read(length) if length else b""
                headers = dict(self.headers.items())
                query = parse_qs(url.query, keep_blank_values=True)
                response = gateway.handle(self.command, url.path, query, headers, body, self.client_address[0])
            if self.command in MUTATING:
                release_moto_tracking()
                if state and response.status < 500:
                    state.mark_dirty()
            self.send_response(response.status)
            for key, value in response.headers.items():
                if key.lower() != "content-length":
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

        def __getattr__(self, name: str) -> Any:
            # Any other method (TRACE, CONNECT, made-up ones) goes to the gateway too, which
            # answers 405/404 as API Gateway does, instead of http.server's 501.
            if name.startswith("do_"):
                return self._serve
            raise AttributeError(name)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            if os.environ.get("RAAS_LOCAL_ACCESS_LOG", "1") != "0":
                sys.stderr.write(f"{self.address_string()} {format % args}\n")

    return Handler


def start(host: str = "127.0.0.1", port: int = 8080, state_dir: Path | None = None) -> LocalPlatform:
    """Starts moto, the tables, the operator key and the HTTP server (not yet serving)."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's own access log is noise here
    moto, endpoint = start_moto_server(host="127.0.0.1")
    isolate_from_real_aws(endpoint)
    os.environ.setdefault("RAAS_STAGE", "local")
    state = StateDir(state_dir) if state_dir else None
    scratch = None if state else tempfile.TemporaryDirectory(prefix="raas-local-")
    os.environ["RAAS_SEARCH_DIR"] = str(state.search_dir if state else scratch.name)  # type: ignore[union-attr]
    from raas import wiring

    wiring.reset()
    os.environ["RAAS_INGEST_QUEUE_URL"] = ensure_resources()
    wiring.reset()
    if state:
        state.restore()
        _reprovision_tenants()
    operator_key = _operator_key(state_dir)
    wiring.key_service().create_operator_key("local operator", secret=operator_key)
    gateway = LocalGateway(rate_limits=wiring.get_settings().local_rate_limits)
    from raas.handlers import ingest

    pump = QueuePump(os.environ["RAAS_INGEST_QUEUE_URL"], ingest.handler)
    pump.start()
    scheduler = LocalScheduler()
    scheduler.start()
    # Load the embedding model now rather than on the first upload or query.
    threading.Thread(target=lambda: wiring.embedder().embed(["warm up"]), name="raas-warm-up", daemon=True).start()
    http = ThreadingHTTPServer((host, port), _make_handler(gateway, state))
    http.daemon_threads = True
    if state:
        state.save()
        state.start()
    bound_port = http.server_address[1]
    return LocalPlatform(f"http://{host}:{bound_port}", operator_key, http, moto, state, pump, scheduler, scratch)


def _reprovision_tenants() -> None:
    """moto keeps no KMS state across restarts: give every restored tenant its key alias again."""
    from raas import wiring
    from raas.services.metering import all_tenants

    for tenant in all_tenants(wiring.tenant_store()):
        if not tenant.status.gone:  # shredded keys stay shredded
            wiring.keyring().ensure(tenant.tenant_id)


def _operator_key(state_dir: Path | None) -> str:
    """RAAS_OPERATOR_KEY if set; else the key saved in the state dir; else a new one (saved there)."""
    from_env = os.environ.get("RAAS_OPERATOR_KEY")
    if from_env:
        if len(from_env) < 20:
            raise SystemExit("RAAS_OPERATOR_KEY must be at least 20 characters")
        return from_env
    from raas.domain.tenants import generate_secret

    saved = state_dir / "operator_key" if state_dir else None
    if saved and saved.exists():
        return saved.read_text(encoding="utf-8").strip()
    key = generate_secret(operator=True)
    if saved:
        saved.parent.mkdir(parents=True, exist_ok=True)
        saved.write_text(key, encoding="utf-8")
        saved.chmod(0o600)
    return key


def run(host: str, port: int, state_dir: Path | None) -> None:
    platform = start(host, port, state_dir)
    print(f"raas local platform listening on {platform.url}", flush=True)
    print(f"operator key: {platform.operator_key}", flush=True)
    print(f"try: curl -s {platform.url}/v1/health", flush=True)
    if state_dir:
        print(f"state directory: {state_dir} (data survives restarts)", flush=True)

    def _stop(_signum: int, _frame: Any) -> None:
        threading.Thread(target=platform.http.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        platform.serve_forever()
    finally:
        platform.close()
        print("raas local platform stopped", flush=True)
