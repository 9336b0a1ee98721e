"""Fairness between tenants on the local platform, over HTTP: does a noisy neighbour slow the others?

    python bench/fairness.py [--quick] [--seconds 15] [--compare]

Starts `raas local` as its own process (as bench/load.py does: moto, embedded search, offline
MiniLM, extractive answerer), creates 8 tenants with a few documents each, then in one run:

1. tenant B's query latency alone (one client, back to back), then again while tenant A runs
   16 concurrent query clients: B's p50/p95 both ways, and how many of A's requests were
   served or refused (429 `too_many_requests`);
2. throughput of mixed queries over the 8 tenants with 1 client and with 8 clients.

`--compare` runs everything twice, the second time with RAAS_LOCAL_CONCURRENCY=1, which is the
platform as it was before warm containers (one request at a time per function).
`--quick` shortens each phase so the whole run stays under about two minutes.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.load import OPERATOR_KEY, WORDS, percentile, start_platform

NOISY_CLIENTS = 16
TENANTS = 8


@dataclass
class Latencies:
    ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, seconds: float, status: int) -> None:
        with self.lock:
            self.ms.append(seconds * 1000)
            self.statuses[status] = self.statuses.get(status, 0) + 1

    def summary(self) -> str:
        ok = self.statuses.get(200, 0)
        refused = self.statuses.get(429, 0)
        other = sum(self.statuses.values()) - ok - refused
        return (
            f"{len(self.ms):>5} requests  p50 {percentile(self.ms, 0.5):>7.0f} ms  p95 {percentile(self.ms, 0.95):>7.0f} ms  "
            f"ok {ok}, throttled {refused}, other {other}"
        )


def query(client: httpx.Client, key: str, rng: random.Random, into: Latencies) -> None:
    text = " ".join(rng.choices(WORDS, k=3)) + f" {rng.randrange(10**9)}"  # distinct: no cache hits
    started = time.perf_counter()
    response = client.post("/v1/query", json={"query": text}, headers={"Authorization": f"Bearer {key}"})
    into.add(time.perf_counter() - started, response.status_code)


def spread_over(keys: list[str], into: Latencies) -> Callable[[httpx.Client, random.Random], None]:
    """Queries of a tenant picked at random for each request."""
    return lambda client, rng: query(client, keys[rng.randrange(len(keys))], rng, into)


def clients(url: str, count: int, seconds: float, body: Callable[[httpx.Client, random.Random], None]) -> float:
    """`count` client threads running `body` back to back for `seconds`; returns the elapsed time."""
    deadline = time.monotonic() + seconds

    def run(index: int) -> None:
        rng = random.Random(index)
        with httpx.Client(base_url=url, timeout=120) as client:
            while time.monotonic() < deadline:
                body(client, rng)

    started = time.monotonic()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.monotonic() - started


def setup(url: str) -> list[str]:
    with httpx.Client(base_url=url, timeout=120) as http:
        operator = {"Authorization": f"Bearer {OPERATOR_KEY}"}
        created = [
            http.post("/v1/tenants", json={"name": f"fair-{i}", "tier": "enterprise"}, headers=operator).raise_for_status().json()
            for i in range(TENANTS)
        ]
        keys = [tenant["api_key"] for tenant in created]
        for i, key in enumerate(keys):
            for j in range(3):
                text = " ".join(random.Random(i * 10 + j).choices(WORDS, k=40))
                http.post("/v1/documents", json={"title": f"seed {j}", "text": text}, headers={"Authorization": f"Bearer {key}"})
        for key in keys:  # warm the model and every tenant's index
            http.post("/v1/search", json={"query": "otter"}, headers={"Authorization": f"Bearer {key}"})
        time.sleep(3)  # let the seeded ingests drain
    return keys


def measure(seconds: float, concurrency: int | None) -> None:
    if concurrency is not None:
        os.environ["RAAS_LOCAL_CONCURRENCY"] = str(concurrency)
    process, url = start_platform()
    try:
        keys = setup(url)
        noisy_key, quiet_key = keys[0], keys[1]
        label = f"RAAS_LOCAL_CONCURRENCY={os.environ.get('RAAS_LOCAL_CONCURRENCY', 'default (4)')}"
        print(f"\n== raas local, {label}, {seconds:.0f} s per phase")

        alone = Latencies()
        clients(url, 1, seconds, lambda client, rng: query(client, quiet_key, rng, alone))
        print(f"  tenant B alone              {alone.summary()}")

        beside, noisy = Latencies(), Latencies()
        noise = threading.Thread(
            target=clients, args=(url, NOISY_CLIENTS, seconds + 2, lambda client, rng: query(client, noisy_key, rng, noisy)), daemon=True
        )
        noise.start()
        time.sleep(1.0)  # the burst is in full swing
        clients(url, 1, seconds, lambda client, rng: query(client, quiet_key, rng, beside))
        noise.join()
        print(f"  tenant B beside A's {NOISY_CLIENTS:>2}      {beside.summary()}")
        print(f"  tenant A ({NOISY_CLIENTS} clients)       {noisy.summary()}")

        for count in (1, 8):
            spread = Latencies()
            elapsed = clients(url, count, seconds, spread_over(keys, spread))
            served = spread.statuses.get(200, 0)
            print(f"  {count} client(s), 8 tenants    {served / elapsed:>5.1f} queries/s  {spread.summary()}")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        if concurrency is not None:
            os.environ.pop("RAAS_LOCAL_CONCURRENCY", None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--quick", action="store_true", help="6 s phases")
    parser.add_argument("--compare", action="store_true", help="run again with one request at a time per function")
    args = parser.parse_args()
    seconds = 6.0 if args.quick else args.seconds
    measure(seconds, None)
    if args.compare:
        measure(seconds, 1)


if __name__ == "__main__":
    main()
