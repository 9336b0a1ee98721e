"""raas.local.moto_sqs: moto's SQS without walking every queued message several times a request, with moto's
answers. The same scenario runs against moto as is and patched; every answer is compared."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.sqs.models import Message

from raas.local import moto_patches, moto_sqs

# Values that differ between two runs by nature (random ids, clocks); everything else must be equal.
_RUN_SPECIFIC = {"MessageId", "ReceiptHandle", "SentTimestamp", "ApproximateFirstReceiveTimestamp", "SequenceNumber"}
_RUN_SPECIFIC |= {"CreatedTimestamp", "LastModifiedTimestamp"}
ATTRIBUTE_QUERIES: list[list[str]] = [
    ["All"],
    ["ApproximateNumberOfMessages"],
    ["ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed", "ApproximateNumberOfMessages"],
    ["MessageRetentionPeriod", "Policy", "MessageRetentionPeriod"],
    ["RedrivePolicy", "VisibilityTimeout", "SqsManagedSseEnabled"],
    ["ContentBasedDeduplication", "FifoQueue", "DeduplicationScope"],
    ["KmsMasterKeyId", "KmsDataKeyReusePeriodSeconds", "QueueArn"],
    ["NoSuchAttribute"],
    [],
]


@pytest.fixture
def moto_as_is() -> Iterator[Callable[[], None]]:
    """Takes raas's SQS patches off when called; they are back after the test."""
    try:
        yield moto_sqs.uninstall
    finally:
        moto_patches.install()


def _masked(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: "*" if key in _RUN_SPECIFIC else _masked(item) for key, item in value.items() if key != "ResponseMetadata"}
    if isinstance(value, list):
        return [_masked(item) for item in value]
    return value


def _call(record: list[Any], label: str, operation: Callable[..., Any], **arguments: Any) -> Any:
    try:
        answer = operation(**arguments)
    except ClientError as error:
        record.append((label, "refused", error.response["Error"]["Code"]))
        return None
    record.append((label, _masked(answer)))
    return answer


def _scenario() -> list[Any]:
    """Standard, dead-letter, redriven, FIFO and KMS queues; delayed, in-flight and redelivered messages;
    deletes of live, deleted and unknown handles; every attribute, asked for in several ways."""
    record: list[Any] = []
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        plain = sqs.create_queue(QueueName="plain", Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
        dead = sqs.create_queue(QueueName="dead")["QueueUrl"]
        dead_arn = sqs.get_queue_attributes(QueueUrl=dead, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "sqs:SendMessage"}]}
        redrive = {"deadLetterTargetArn": dead_arn, "maxReceiveCount": "2"}
        redriven = sqs.create_queue(QueueName="redriven", Attributes={"RedrivePolicy": json.dumps(redrive), "Policy": json.dumps(policy)})[
            "QueueUrl"
        ]
        fifo = sqs.create_queue(QueueName="orders.fifo", Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"})["QueueUrl"]
        sealed = sqs.create_queue(QueueName="sealed", Attributes={"KmsMasterKeyId": "alias/aws/sqs"})["QueueUrl"]
        queues = [plain, dead, redriven, fifo, sealed]

        def attributes(step: str) -> None:
            for url in queues:
                for names in ATTRIBUTE_QUERIES:
                    _call(record, f"{step} {url.rsplit('/', 1)[1]} {names}", sqs.get_queue_attributes, QueueUrl=url, AttributeNames=names)

        for number in range(12):
            delay = 60 if number % 4 == 0 else 0
            _call(record, f"send {number}", sqs.send_message, QueueUrl=plain, MessageBody=f"m{number}", DelaySeconds=delay)
        entries = [{"Id": str(n), "MessageBody": f"b{n}"} for n in range(5)]
        _call(record, "send batch", sqs.send_message_batch, QueueUrl=plain, Entries=entries)
        attributes("sent")

        first = _call(record, "receive", sqs.receive_message, QueueUrl=plain, MaxNumberOfMessages=5, AttributeNames=["All"])
        handles = [message["ReceiptHandle"] for message in first["Messages"]]
        attributes("received")
        _call(record, "delete", sqs.delete_message, QueueUrl=plain, ReceiptHandle=handles[0])
        _call(record, "delete again", sqs.delete_message, QueueUrl=plain, ReceiptHandle=handles[0])
        _call(record, "delete unknown", sqs.delete_message, QueueUrl=plain, ReceiptHandle="no-such-handle")
        batch = [{"Id": "1", "ReceiptHandle": handles[1]}, {"Id": "x", "ReceiptHandle": "unknown"}]
        batch.append({"Id": "0", "ReceiptHandle": handles[0]})
        _call(record, "delete batch", sqs.delete_message_batch, QueueUrl=plain, Entries=batch)
        _call(record, "visible again", sqs.change_message_visibility, QueueUrl=plain, ReceiptHandle=handles[2], VisibilityTimeout=0)
        again = _call(record, "receive again", sqs.receive_message, QueueUrl=plain, MaxNumberOfMessages=10, AttributeNames=["All"])
        redelivered = next(m for m in again["Messages"] if m["Attributes"]["ApproximateReceiveCount"] == "2")
        _call(record, "delete by the older handle", sqs.delete_message, QueueUrl=plain, ReceiptHandle=handles[2])
        _call(record, "delete by the newer handle", sqs.delete_message, QueueUrl=plain, ReceiptHandle=redelivered["ReceiptHandle"])
        attributes("deleted")

        for number in range(3):
            _call(record, f"send redriven {number}", sqs.send_message, QueueUrl=redriven, MessageBody=f"r{number}")
        for attempt in range(3):
            label = f"receive redriven {attempt}"
            _call(record, label, sqs.receive_message, QueueUrl=redriven, MaxNumberOfMessages=10, VisibilityTimeout=0)
        _call(record, "receive dead", sqs.receive_message, QueueUrl=dead, MaxNumberOfMessages=10)

        for body, group in (("a", "g1"), ("a", "g1"), ("b", "g2"), ("c", "g1")):
            _call(record, f"send fifo {body}", sqs.send_message, QueueUrl=fifo, MessageBody=body, MessageGroupId=group)
        _call(record, "receive fifo", sqs.receive_message, QueueUrl=fifo, MaxNumberOfMessages=10, AttributeNames=["All"])
        _call(record, "send sealed", sqs.send_message, QueueUrl=sealed, MessageBody="s")
        attributes("end")
    return record


def test_the_patched_sqs_answers_every_step_as_moto_does(moto_as_is: Callable[[], None]) -> None:
    assert moto_sqs.installed()
    patched = _scenario()
    moto_as_is()
    assert not moto_sqs.installed()
    assert _scenario() == patched
    assert len(patched) > 200  # the scenario really ran (5 queues x 9 attribute queries x 4 steps, and 35 more steps)


def test_a_request_to_a_deep_queue_reads_the_visibility_of_the_messages_it_returns_not_of_every_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """moto read each queued message's `visible`/`delayed` properties (each a clock reading) several times for
    every message returned or sent; now a receive reads them only for the messages it returns."""
    reads: list[str] = []

    def counted(name: str) -> property:
        moto_property = Message.__dict__[name]

        def read(message: Message) -> bool:
            reads.append(name)
            return bool(moto_property.fget(message))

        return property(read)

    for name in ("visible", "delayed"):
        monkeypatch.setattr(Message, name, counted(name))
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="deep")["QueueUrl"]
        for start in range(0, 500, 10):
            sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(n), "MessageBody": f"d{start + n}"} for n in range(10)])
        received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"])["Messages"]
        handles = [{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(received)]
        sqs.delete_message_batch(QueueUrl=url, Entries=handles)
        counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    assert [m["Body"] for m in received] == [f"d{n}" for n in range(10)]
    assert counts == {"ApproximateNumberOfMessages": "490"}
    assert len(reads) <= len(received)


def test_counts_are_made_only_when_one_is_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    counted: list[int] = []
    moto_counts = moto_sqs.message_counts

    def counting(queue: Any) -> dict[str, int]:
        counted.append(1)
        return moto_counts(queue)

    monkeypatch.setattr(moto_sqs, "message_counts", counting)
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="counted")["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody="one")  # moto reads every attribute (counts too) to send
        counted.clear()
        sqs.receive_message(QueueUrl=url, VisibilityTimeout=30)  # reads MessageRetentionPeriod for the message
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout", "QueueArn"])
        assert counted == []
        every = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert len(counted) == 1
    assert (every["ApproximateNumberOfMessages"], every["ApproximateNumberOfMessagesNotVisible"]) == ("0", "1")
