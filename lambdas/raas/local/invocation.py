"""The context object the local platform hands each function, as Lambda would.

It is Powertools' own `LambdaContext` type (what the handlers are typed against), filled in
the way the Lambda runtime fills it, with the remaining time counted down from the function's
timeout. It lives apart from the gateway so that the bus, the queue pump and the schedules can
invoke functions without importing the API.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

ACCOUNT = "000000000000"
REGION = "us-east-1"
DEFAULT_TIMEOUT_SECONDS = 30.0


class LocalLambdaContext(LambdaContext):
    def __init__(self, function_name: str, request_id: str | None = None, timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS):
        self._function_name = function_name
        self._function_version = "$LATEST"
        self._invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function_name}"
        self._memory_limit_in_mb = 512
        self._aws_request_id = request_id or str(uuid.uuid4())
        self._log_group_name = f"/aws/lambda/{function_name}"
        self._log_stream_name = "local"
        self._tenant_id = None
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:  # type: ignore[override]  # Powertools declares it static
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass(frozen=True)
class QueuedMessage:
    """One SQS message as an event source mapping hands it to a function."""

    message_id: str
    body: str
    receipt_handle: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)
    md5_of_body: str = ""


def sqs_event(queue: str, messages: list[QueuedMessage]) -> dict[str, Any]:
    """The event Lambda's SQS event source passes a function for a batch of messages
    (https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html, "Example standard queue message event")."""
    return {
        "Records": [
            {
                "messageId": m.message_id,
                "receiptHandle": m.receipt_handle,
                "body": m.body,
                "attributes": m.attributes,
                "messageAttributes": {},
                "md5OfBody": m.md5_of_body,
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue}",
                "awsRegion": REGION,
            }
            for m in messages
        ]
    }


def lambda_context(function_name: str, request_id: str | None = None) -> LambdaContext:
    return LocalLambdaContext(function_name, request_id)
