"""The local SQS pump keeps read-ahead messages invisible, and a stale one never stalls it."""

from __future__ import annotations

import os
import threading

import boto3

from raas.handlers import ingest
from raas.local.events import VISIBILITY_TIMEOUT_SECONDS, QueuePump


def test_a_read_ahead_message_deleted_meanwhile_is_dropped_and_the_others_kept(aws: object) -> None:
    # Given two messages read ahead into the pump's backlog
    queue_url = os.environ["RAAS_INGEST_QUEUE_URL"]
    sqs = boto3.client("sqs")
    sqs.purge_queue(QueueUrl=queue_url)  # S3's test event from setting up the notification
    for name in ("first", "second"):
        sqs.send_message(QueueUrl=queue_url, MessageBody=f'{{"Records": [], "name": "{name}"}}')
    pump = QueuePump(queue_url, ingest.handler, wait_seconds=0)
    for message in pump._receive(0):
        pump._backlog.add(message, "t-any")
    assert len(pump._backlog) == 2
    # When one is deleted behind the pump's back (its handle goes stale) and both are due for extension
    stale = pump._backlog.waiting_since(float("inf"))[0]
    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=stale.message["ReceiptHandle"])
    for waiting in pump._backlog.waiting_since(float("inf")):
        waiting.received_at -= VISIBILITY_TIMEOUT_SECONDS
    pump._keep_invisible()  # SQS refuses the stale handle (ReceiptHandleIsInvalid); it used to raise here, every loop
    # Then the stale one is dropped and the other is still held, its visibility extended
    assert len(pump._backlog) == 1
    kept = pump._backlog.waiting_since(float("inf"))[0]
    assert kept.message["MessageId"] != stale.message["MessageId"]
    assert sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=0).get("Messages") is None  # still invisible to others


def test_a_worker_takes_up_to_a_batch_of_one_tenants_messages_and_tenants_keep_their_turns() -> None:
    from raas.local.events import _TenantBacklog

    backlog = _TenantBacklog(tenant_share=1)
    for tenant, count in (("a", 3), ("b", 2)):
        for i in range(count):
            backlog.add({"MessageId": f"{tenant}{i}"}, tenant)
    stop = threading.Event()

    first = backlog.take(stop, batch_size=2)
    assert [w.message["MessageId"] for w in first] == ["a0", "a1"]  # one invocation's batch, one tenant's
    second = backlog.take(stop, batch_size=2)
    assert [w.message["MessageId"] for w in second] == ["b0", "b1"]  # b's turn; a is at its share meanwhile
    backlog.done(first)
    assert [w.message["MessageId"] for w in backlog.take(stop, batch_size=2)] == ["a2"]
    stop.set()
    assert backlog.take(stop, batch_size=2) == []  # stopped: nothing more


def test_the_pump_tells_waiting_messages_from_those_in_flight(aws: object) -> None:
    """drain() stops when nothing waits; a caller that waits for the work itself counts what is in flight too."""
    queue_url = os.environ["RAAS_INGEST_QUEUE_URL"]
    sqs = boto3.client("sqs")
    sqs.purge_queue(QueueUrl=queue_url)
    pump = QueuePump(queue_url, ingest.handler, wait_seconds=0)
    assert (pump.holds_messages(), pump.holds_messages(in_flight=True)) == (False, False)
    sqs.send_message(QueueUrl=queue_url, MessageBody='{"Records": []}')
    assert (pump.holds_messages(), pump.holds_messages(in_flight=True)) == (True, True)
    [received] = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=0, VisibilityTimeout=60)["Messages"]
    assert (pump.holds_messages(), pump.holds_messages(in_flight=True)) == (False, True)  # received, not yet deleted
    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=received["ReceiptHandle"])
    assert (pump.holds_messages(), pump.holds_messages(in_flight=True)) == (False, False)


def test_a_stop_does_not_wait_for_the_long_poll_and_what_it_brings_goes_back_to_the_queue(
    aws: object,
) -> None:
    """The reading thread long-polls SQS (up to a second, which every stop of `raas local` used to wait for). A stop
    now waits for the ingests in flight only; what the poll brings afterwards goes straight back to the queue."""
    queue_url = os.environ["RAAS_INGEST_QUEUE_URL"]
    sqs = boto3.client("sqs")
    sqs.purge_queue(QueueUrl=queue_url)
    pump = QueuePump(queue_url, ingest.handler, wait_seconds=1, workers=1)
    polling, release = threading.Event(), threading.Event()
    receive = pump._receive

    def held_poll(wait_seconds: int, most: int = 10) -> list[dict[str, object]]:
        polling.set()
        release.wait(30)  # a poll that is still waiting when the pump stops, and then receives a message
        return receive(0, most)

    pump._receive = held_poll  # type: ignore[method-assign]
    pump.start()
    assert polling.wait(10)
    stopped = threading.Thread(target=pump.stop)
    stopped.start()
    stopped.join(timeout=10)
    assert not stopped.is_alive(), "the stop waited for the reading thread's poll"
    reader = pump._reader
    assert reader is not None
    assert reader.is_alive()

    sqs.send_message(QueueUrl=queue_url, MessageBody='{"Records": []}')
    release.set()
    reader.join(timeout=10)
    assert not reader.is_alive()
    counts = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=counts)["Attributes"]
    assert attributes == {"ApproximateNumberOfMessages": "1", "ApproximateNumberOfMessagesNotVisible": "0"}  # visible again
    assert len(pump._backlog) == 0


def test_a_closed_backlog_takes_nothing_more() -> None:
    from raas.local.events import _TenantBacklog

    backlog = _TenantBacklog(tenant_share=1)
    assert backlog.add({"MessageId": "kept"}, "a")
    assert [w.message["MessageId"] for w in backlog.drop_all()] == ["kept"]
    assert not backlog.add({"MessageId": "late"}, "a")
    assert len(backlog) == 0
