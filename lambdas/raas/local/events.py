"""Plays Lambda's SQS event source for the local platform: queue -> handler, partial failures, DLQ.

S3 (moto) sends `ObjectCreated` notifications to the ingest queue exactly as the deployed
bucket does; this pump long-polls that queue and calls the real ingest handler with the
same event shape Lambda would, deleting only the messages the handler reports as done.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

from aws_lambda_powertools import Logger

from raas.adapters.aws import client
from raas.domain.documents import SOURCE_OBJECT_SUFFIX
from raas.local.aws import release_moto_tracking
from raas.local.gateway import LambdaContext

logger = Logger(service="raas")

INGEST_QUEUE = "raas-ingest"
INGEST_DLQ = "raas-ingest-dlq"
MAX_RECEIVES = 5


def ensure_ingest_queue(bucket: str) -> str:
    """The queue (with its DLQ) and the bucket notification that feeds it; returns the queue URL."""
    sqs, s3 = client("sqs"), client("s3")
    dlq_url = sqs.create_queue(QueueName=INGEST_DLQ)["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = f'{{"deadLetterTargetArn": "{dlq_arn}", "maxReceiveCount": "{MAX_RECEIVES}"}}'
    queue_url = sqs.create_queue(QueueName=INGEST_QUEUE, Attributes={"VisibilityTimeout": "30", "RedrivePolicy": redrive})["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": queue_arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {
                        "Key": {"FilterRules": [{"Name": "prefix", "Value": "tenants/"}, {"Name": "suffix", "Value": SOURCE_OBJECT_SUFFIX}]}
                    },
                }
            ]
        },
    )
    return str(queue_url)


class QueuePump:
    def __init__(self, queue_url: str, handler: Any, function_name: str = "raas-ingest", wait_seconds: int = 1):
        self.queue_url = queue_url
        self.handler = handler
        self.function_name = function_name
        self.wait_seconds = wait_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _event(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "Records": [
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": m.get("Attributes", {}),
                    "messageAttributes": {},
                    "md5OfBody": m.get("MD5OfBody", ""),
                    "eventSource": "aws:sqs",
                    "eventSourceARN": f"arn:aws:sqs:us-east-1:000000000000:{INGEST_QUEUE}",
                    "awsRegion": "us-east-1",
                }
                for m in messages
            ]
        }

    def pump_once(self, wait_seconds: int | None = None) -> int:
        """Delivers one batch; returns how many messages were handled successfully."""
        sqs = client("sqs")
        received = sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=self.wait_seconds if wait_seconds is None else wait_seconds,
            AttributeNames=["All"],
        ).get("Messages", [])
        if not received:
            return 0
        try:
            result = self.handler(self._event(received), LambdaContext(function_name=self.function_name, aws_request_id=str(uuid.uuid4())))
        except Exception:  # the whole batch failed: every message returns after its visibility timeout
            logger.exception("ingest batch failed")
            return 0
        release_moto_tracking()
        failed = {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])}
        done = [m for m in received if m["MessageId"] not in failed]
        if done:
            sqs.delete_message_batch(
                QueueUrl=self.queue_url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)]
            )
        return len(done)

    def drain(self, max_batches: int = 100) -> int:
        """Delivers until the queue is empty (tests use this to wait for ingestion)."""
        total = 0
        for _ in range(max_batches):
            handled = self.pump_once(wait_seconds=0)
            if handled == 0 and not self._has_visible_messages():
                break
            total += handled
        return total

    def _has_visible_messages(self) -> bool:
        attributes = client("sqs").get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["ApproximateNumberOfMessages"])[
            "Attributes"
        ]
        return int(attributes.get("ApproximateNumberOfMessages", "0")) > 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="raas-ingest-pump", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.pump_once()
            except Exception:
                logger.exception("ingest pump error")
                self._stop.wait(1)

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)
