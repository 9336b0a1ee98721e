"""Dead-letter queues: every one encrypted, SSL-only, kept 14 days, and acknowledged for cdk-nag's
"a queue needs its own DLQ" rule with the reason that it is the DLQ."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.nag import acknowledge


def dead_letter_queue(scope: Construct, construct_id: str, of_what: str, queue_name: str | None = None) -> sqs.Queue:
    queue = sqs.Queue(
        scope,
        construct_id,
        queue_name=queue_name,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        retention_period=Duration.days(14),
    )
    acknowledge(queue, "AwsSolutions-SQS3", f"This queue is itself the dead-letter queue of {of_what}; it needs none of its own.")
    return queue
