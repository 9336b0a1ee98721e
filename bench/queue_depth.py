"""What a document's queue requests cost locally with thousands of documents queued (a corpus uploaded at once).

    python bench/queue_depth.py [--depths 100 1000 5000] [--rounds 10]

`raas local`'s ingest pump, for every document, has the S3 notification send a message, receives it (ten at a
time) and deletes it (in batches). moto 5.2.5's SQS walked every queued message several times for each of those
requests; raas.local.moto_sqs makes it walk them at most once. For each depth, the queue is filled to it and kept
there while `--rounds` cycles of "receive ten, delete those ten, send ten" are timed, with moto's own SQS (the
baseline, same run, on the same queue; without the patch's faster clock either) and with the patch.
Milliseconds per request, and per document (a tenth of a cycle).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import local_aws  # noqa: F401 - isolates from real AWS and puts lambdas/ on the path

BATCH = 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--depths", type=int, nargs="+", default=[100, 1000, 5000])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()

    from raas.local import moto_patches, moto_sqs

    moto_patches.install()
    labels = ("moto as is", "raas.local.moto_sqs")
    results: dict[str, list[tuple[float, float, float]]] = {label: [] for label in labels}
    for depth in args.depths:
        for label, costs in _cycle_costs(depth, args.rounds, labels).items():
            results[label].append(costs)
    moto_sqs.install()
    sys.stderr.write("\n")
    print(f"SQS requests of {BATCH} messages, ms each, with the queue kept at each depth ({args.rounds} rounds)")
    print(f"{'depth':>7} {'':<22}{'receive':>9}{'delete':>9}{'send':>9}{'ms/doc':>9}{'x patched':>11}")
    for index, depth in enumerate(args.depths):
        patched_per_document = sum(results["raas.local.moto_sqs"][index]) / BATCH
        for label in results:
            receive, delete, send = results[label][index]
            per_document = (receive + delete + send) / BATCH
            ratio = per_document / patched_per_document
            print(f"{depth:>7} {label:<22}{receive:>9.1f}{delete:>9.1f}{send:>9.1f}{per_document:>9.2f}{ratio:>11.1f}")


def _cycle_costs(depth: int, rounds: int, labels: tuple[str, str]) -> dict[str, tuple[float, float, float]]:
    """One queue filled to `depth` (with the patch: filling is not timed, and moto's own sends are quadratic),
    then each variant timed on it in turn; every cycle deletes ten and sends ten, so the depth holds."""
    import boto3
    from moto import mock_aws

    from raas.local import moto_sqs

    costs: dict[str, tuple[float, float, float]] = {}
    with mock_aws():
        sqs: Any = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="depth")["QueueUrl"]
        moto_sqs.install()
        for start in range(0, depth, BATCH):
            sqs.send_message_batch(QueueUrl=url, Entries=_entries(start))
        sent_so_far = depth
        for label in labels:
            moto_sqs.install() if label == labels[1] else moto_sqs.uninstall()
            receive = delete = send = 0.0
            for _ in range(rounds):
                started = time.perf_counter()
                messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=BATCH, AttributeNames=["All"])["Messages"]
                received = time.perf_counter()
                handles = [{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)]
                sqs.delete_message_batch(QueueUrl=url, Entries=handles)
                deleted = time.perf_counter()
                sqs.send_message_batch(QueueUrl=url, Entries=_entries(sent_so_far))
                sent_so_far += BATCH
                sent = time.perf_counter()
                receive, delete, send = receive + received - started, delete + deleted - received, send + sent - deleted
            costs[label] = (receive / rounds * 1000, delete / rounds * 1000, send / rounds * 1000)
            sys.stderr.write(f"\r  depth {depth}: {label} timed{'':<20}")
    return costs


def _entries(first: int) -> list[dict[str, str]]:
    # about the size of an S3 event notification for one upload
    body = '{{"Records": [{{"s3": {{"object": {{"key": "t/doc-{}"}}}}}}]}}' + " " * 900
    return [{"Id": str(n), "MessageBody": body.format(first + n)} for n in range(BATCH)]


if __name__ == "__main__":
    main()
