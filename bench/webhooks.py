"""Webhook delivery on the local platform: deliveries per second and event-to-receiver latency.

    python bench/webhooks.py [--events 300] [--endpoints 1]

In process, as `raas local` runs it: moto (DynamoDB, KMS), the local event bus, the delivery
function's handler and the real sender (signing, SSRF checks, pinned connection) to a receiver on
loopback (RAAS_WEBHOOK_ALLOW_LOOPBACK=true). Two phases in the same run:
- baseline: a bare HTTP POST of the same body to the same receiver with http.client (one new
  connection per request, as the sender makes), timed from the call to the receiver's arrival;
- webhooks: a `ConfigChanged` platform event published on the bus, timed from the publish to the
  receiver's arrival (bus -> delivery handler -> endpoint lookup -> delivery record -> KMS decrypt of
  the secret -> sign -> resolve + check -> POST).
Target (issue 15): p50 event-to-delivery under 100 ms locally.
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import local_aws


class Receiver:
    """Records the arrival time of each event id."""

    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}
        self.count = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                now = time.perf_counter()
                key = self.headers.get("Raas-Event-Id") or body[:64].decode(errors="replace")
                with receiver.lock:
                    receiver.arrivals.setdefault(key, now)
                    receiver.count += 1
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, key: str, timeout: float = 10.0) -> float:
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            with self.lock:
                if key in self.arrivals:
                    return self.arrivals[key]
            time.sleep(0.0002)
        raise TimeoutError(f"{key} never arrived")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def report(name: str, latencies_ms: list[float], seconds: float) -> None:
    print(
        f"{name:<28} n={len(latencies_ms):<5} {len(latencies_ms) / seconds:8.1f}/s   "
        f"p50 {statistics.median(latencies_ms):7.2f} ms   p99 {percentile(latencies_ms, 0.99):7.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--endpoints", type=int, default=1, help="endpoints of the tenant subscribed to the event")
    args = parser.parse_args()
    os.environ["RAAS_WEBHOOK_ALLOW_LOOPBACK"] = "true"

    from raas.domain.catalog import Tier
    from raas.domain.events import ConfigChanged

    receiver = Receiver()
    url = f"http://127.0.0.1:{receiver.port}/hook"
    with local_aws("raas-bench-webhooks-") as services:
        tenant, _key, _secret = services.tenant_service.create("bench", Tier.ENTERPRISE)
        for _ in range(args.endpoints):
            services.webhook_service.create(tenant.tenant_id, Tier.ENTERPRISE, "bench", url, ["config.changed"], "bench")
        bus = services.event_publisher

        # warm-up: first KMS key lookup, first connection, imports
        warm = ConfigChanged(tenant_id=tenant.tenant_id, config_version=0, mode="merge", changed_fields=[])
        bus.publish(warm)
        receiver.wait_for(f"evt_{warm.event_id}")

        # baseline: a bare POST of a body of the same size
        body = b'{"id":"evt_x","type":"config.changed","data":{}}' + b" " * 200
        baseline: list[float] = []
        started = time.perf_counter()
        for i in range(args.events):
            key = f"baseline-{i}"
            sent = time.perf_counter()
            connection = http.client.HTTPConnection("127.0.0.1", receiver.port, timeout=10)
            connection.request("POST", "/hook", body=body, headers={"Content-Type": "application/json", "Raas-Event-Id": key})
            connection.getresponse().read()
            connection.close()
            baseline.append((receiver.wait_for(key) - sent) * 1000)
        baseline_seconds = time.perf_counter() - started

        # webhooks: platform event -> receiver
        latencies: list[float] = []
        before = receiver.count
        started = time.perf_counter()
        for i in range(args.events):
            event = ConfigChanged(tenant_id=tenant.tenant_id, config_version=i + 1, mode="merge", changed_fields=["top_k"])
            published = time.perf_counter()
            bus.publish(event)
            latencies.append((receiver.wait_for(f"evt_{event.event_id}") - published) * 1000)
        webhook_seconds = time.perf_counter() - started
        delivered = receiver.count - before

    print(f"webhooks benchmark: {args.events} events, {args.endpoints} endpoint(s), receiver on loopback")
    report("bare HTTP POST (baseline)", baseline, baseline_seconds)
    report("event -> receiver (webhook)", latencies, webhook_seconds)
    print(f"deliveries: {delivered} in {webhook_seconds:.2f} s = {delivered / webhook_seconds:.1f} deliveries/s")
    p50 = statistics.median(latencies)
    overhead = p50 - statistics.median(baseline)
    print(f"target p50 < 100 ms: {'met' if p50 < 100 else 'NOT met'} ({p50:.1f} ms; {overhead:.1f} ms over the bare POST)")
    receiver.server.shutdown()


if __name__ == "__main__":
    main()
