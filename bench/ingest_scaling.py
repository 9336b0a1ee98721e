"""Does a document cost the same with 10,000 documents in the tenant as with the first 250?

    python bench/ingest_scaling.py [--documents 10000] [--quick] [--moto-as-is]

One process, the whole path: POST /v1/documents through the local gateway (authorizer, handler,
DynamoDB claims and quota, S3 put, usage) = "accept"; then the S3 event -> SQS -> ingest handler
-> extract -> chunk -> embed -> embedded index -> DynamoDB status and usage = "ingest", drained
after every document so each is timed alone. The embedder is a trivial hashing one, so only the
platform's own cost shows. The first 250 documents are the run's own baseline; every checkpoint
reports the mean per-document cost over the 250 documents before it, and its ratio to the
baseline (issue 11's target: at most 1.3 at 10,000 documents), both in wall-clock time and in
the process's CPU time (the latter is what to compare on a machine shared with other work).

--moto-as-is leaves moto unpatched (raas.local.moto_patches not installed), to show what the
patch changes. --quick runs 1,000 documents.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import local_aws  # also isolates from real AWS, quiets logs, puts lambdas/ on the path

OPERATOR_KEY = "raasop_bench_operator_key_0123456789"
WINDOW = 250
CHECKPOINTS = (500, 1000, 1500, 2500, 5000, 7500, 10000)
WORDS = ["otter", "river", "kelp", "tide", "estuary", "salmon", "heron", "marsh", "delta", "reed", "current", "pebble"]


class TrivialEmbedder:
    """Deterministic and nearly free: one hashed bucket per word, so the platform's cost is what shows."""

    name = "bench-trivial"
    dimension = 384

    def embed(self, texts: list[str]) -> list[list[float]]:
        vectors = []
        for text in texts:
            vector = [0.0] * self.dimension
            for word in text.split():
                vector[int(hashlib.md5(word.encode(), usedforsecurity=False).hexdigest()[:8], 16) % self.dimension] += 1.0
            norm = math.sqrt(sum(v * v for v in vector)) or 1.0
            vectors.append([v / norm for v in vector])
        return vectors


@dataclass
class Local:
    gateway: Any
    pump: Any
    api_key: str
    tenant_id: str

    def post(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {self.api_key}"}
        response = self.gateway.handle("POST", path, {}, headers, json.dumps(body).encode())
        return response.status, json.loads(response.body or b"{}")


@contextmanager
def local_platform(patched: bool) -> Iterator[Local]:
    from raas.handlers import ingest
    from raas.local.events import QueuePump
    from raas.local.gateway import LocalGateway

    with local_aws("raas-scaling-", patched=patched, embedder=TrivialEmbedder()) as services:
        services.key_service.create_operator_key("bench operator", secret=OPERATOR_KEY)
        gateway = LocalGateway(rate_limits=False)
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {OPERATOR_KEY}"}
        created = gateway.handle("POST", "/v1/tenants", {}, headers, json.dumps({"name": "scaling", "tier": "enterprise"}).encode())
        if created.status != 201:
            raise RuntimeError(f"tenant not created: {created.status} {created.body!r}")
        pump = QueuePump(os.environ["RAAS_INGEST_QUEUE_URL"], ingest.handler, wait_seconds=0)
        tenant = json.loads(created.body)
        yield Local(gateway, pump, tenant["api_key"], tenant["tenant"]["tenant_id"])


def document(number: int) -> dict[str, Any]:
    words = " ".join(WORDS[(number * 7 + i) % len(WORDS)] for i in range(60))
    return {"title": f"document {number}", "text": f"Document {number}. {words}. The end of document {number}."}


def progress(done: int, total: int, started: float) -> None:
    width = 40
    filled = width * done // total
    elapsed = time.perf_counter() - started
    eta = elapsed / done * (total - done) if done else 0.0
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} documents, {elapsed:.0f}s elapsed, ~{eta:.0f}s left ")
    sys.stderr.flush()


def table_items(name: str) -> int:
    from raas.bootstrap import services

    container = services()
    table = container.settings.table_names()[name]
    return int(container.platform_client("dynamodb").describe_table(TableName=table)["Table"]["ItemCount"])


class ItemCopies:
    """Counts moto's DynamoDB item deep copies: unlike time, the count does not depend on what
    else the machine is doing, and it is what moto's whole-table transaction snapshots inflate."""

    def __init__(self) -> None:
        from moto.dynamodb.models.dynamo_type import Item

        self.count = 0
        uncounted = Item.__deepcopy__

        def counting(item: Item, memo: dict[int, Any]) -> Item:
            self.count += 1
            return uncounted(item, memo)

        setattr(Item, "__deepcopy__", counting)  # noqa: B010 - a method swapped in for counting


def resident_mib() -> float:
    """This process's resident set now (Linux /proc), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_resident_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true", help="1,000 documents")
    parser.add_argument("--moto-as-is", action="store_true", help="do not install raas.local.moto_patches")
    args = parser.parse_args()
    total = 1000 if args.quick else args.documents
    if total < WINDOW:
        parser.error(f"--documents must be at least {WINDOW} (the baseline window)")
    checkpoints = sorted({c for c in CHECKPOINTS if c <= total} | {total})

    from raas.local.aws import release_moto_tracking

    accept_ms: list[float] = []
    ingest_ms: list[float] = []
    cpu_ms: list[float] = []
    copies: list[int] = []
    item_copies = ItemCopies()
    moto = "as is" if args.moto_as_is else "with raas.local.moto_patches"
    print(f"moto {moto}; {total} documents; per-document mean over the {WINDOW} documents before each point")
    print(f"{'documents':>10}{'accept ms':>11}{'ingest ms':>11}{'total ms':>10}{'x first 250':>13}", end="")
    print(f"{'cpu ms':>9}{'x first 250':>13}{'item copies':>13}{'usage items':>13}", flush=True)
    baseline: tuple[float, float] | None = None
    with local_platform(patched=not args.moto_as_is) as local:
        started = time.perf_counter()
        for number in range(1, total + 1):
            copies0, cpu0, t0 = item_copies.count, time.process_time(), time.perf_counter()
            status, body = local.post("/v1/documents", document(number))
            t1 = time.perf_counter()
            if status != 202:
                raise RuntimeError(f"document {number}: {status} {body}")
            if local.pump.drain() < 1:
                raise RuntimeError(f"document {number}: nothing to ingest")
            t2, cpu2 = time.perf_counter(), time.process_time()
            cpu_ms.append((cpu2 - cpu0) * 1000)
            copies.append(item_copies.count - copies0)
            accept_ms.append((t1 - t0) * 1000)
            ingest_ms.append((t2 - t1) * 1000)
            if number % 50 == 0:
                release_moto_tracking()  # moto as is tracks every instance (the patches stop that)
            if number % 10 == 0 or number == total:
                progress(number, total, started)
            if number == WINDOW or number in checkpoints:
                window = slice(number - WINDOW, number)
                accept, ingest, cpu = mean(accept_ms[window]), mean(ingest_ms[window]), mean(cpu_ms[window])
                baseline = baseline or (accept + ingest, cpu)
                sys.stderr.write("\r")
                print(
                    f"{number:>10}{accept:>11.1f}{ingest:>11.1f}{accept + ingest:>10.1f}{(accept + ingest) / baseline[0]:>13.2f}"
                    f"{cpu:>9.1f}{cpu / baseline[1]:>13.2f}{mean(copies[window]):>13.1f}{table_items('usage'):>13}",
                    flush=True,
                )
        sys.stderr.write("\n")
        from raas.bootstrap import services

        indexed = services().document_store.stats(local.tenant_id)["documents"]
        if indexed != total:
            raise RuntimeError(f"expected {total} documents in the tenant, found {indexed}")
        # The process holds all of the local platform but its HTTP front: moto's state, the embedded
        # engine's index and the handlers (with the trivial embedder; MiniLM adds its ~0.3 GB model).
        print(f"memory: {resident_mib():.0f} MiB resident now, {peak_resident_mib():.0f} MiB at peak (target: under 2048 MiB)")
    print("ms: wall clock per document (accept = POST /v1/documents; ingest = S3 event to indexed and counted);")
    print("cpu ms: this process's CPU time per document (less sensitive than wall time to other load on the machine);")
    print("item copies: DynamoDB items moto deep-copies per document (independent of machine load)")


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


if __name__ == "__main__":
    main()
