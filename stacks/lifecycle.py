"""Lifecycle and metering wiring: one EventBridge rule per event function, generated from the
routing table the local platform also dispatches through, plus the metering schedules. Every
target has a dead-letter queue, and every function's own async failures land in it as well."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from raas.domain.events import SOURCE
from raas.handlers.registry import QUEUED_FUNCTIONS, SCHEDULES, routes_by_function
from stacks.queues import dead_letter_queue

# Lambda's own retries of a failed async invocation (EventBridge -> Lambda is asynchronous);
# each deletion step also retries in place, and every step is idempotent.
ASYNC_RETRY_ATTEMPTS = 2
TARGET_RETRY_ATTEMPTS = 8  # EventBridge's delivery retries (throttling, Lambda unavailable)
MAX_EVENT_AGE = Duration.hours(6)

# Functions whose rule delivers through an SQS queue rather than invoking them directly.
#
# Tenant webhooks (issue 15) go EventBridge rule -> SQS (+ DLQ, alarmed by the Observability stack) ->
# the delivery function, which signs and POSTs to each tenant's endpoints itself, rather than through
# EventBridge API destinations: an API destination is per URL with a connection per credential, both
# account-wide quotas of 3,000 per Region, and 300 rules per bus with 5 targets per rule
# (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-quota.html), so one destination per
# tenant endpoint would cap the platform at a few thousand endpoints, and every endpoint change
# would be an infrastructure change at run time. API destinations also time out after 5 seconds
# (https://repost.aws/knowledge-center/eventbridge-api-destination-target-failure), support none of
# our SSRF checks at send time, and sign with a connection's static credential, not a per-endpoint
# rotating HMAC secret. The queue absorbs bursts and gives partial batch retries; the function's own
# retry schedule covers the 24 hours of backoff.
# QUEUED_FUNCTIONS (function -> SQS batch size) lives in raas.handlers.registry: the local bus batches the same way.
QUEUE_MAX_RECEIVES = 5


class PlatformEvents(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, bus_name: str, functions: dict[str, lambda_.Function], prefix: str) -> None:
        super().__init__(scope, construct_id)
        self.bus = events.EventBus.from_event_bus_name(self, "Bus", bus_name)
        self.dead_letters: dict[str, sqs.Queue] = {}
        self.rules: dict[str, events.Rule] = {}
        self.queues: dict[str, sqs.Queue] = {}
        for function, detail_types in sorted(routes_by_function().items()):
            target: events.IRuleTarget = (
                self._queued_target(functions[function], function, prefix)
                if function in QUEUED_FUNCTIONS
                else self._target(functions[function], function, prefix)
            )
            self.rules[function] = events.Rule(
                self,
                f"{function.capitalize()}Rule",
                rule_name=f"{prefix}-{function}",
                event_bus=self.bus,
                event_pattern=events.EventPattern(source=[SOURCE], detail_type=sorted(detail_types)),
                targets=[target],
            )
        for name, (function, expression, payload) in sorted(SCHEDULES.items()):
            self.rules[name] = events.Rule(
                self,
                f"Schedule{name.title().replace('-', '')}",
                rule_name=f"{prefix}-{name}",
                schedule=events.Schedule.expression(expression),
                targets=[self._target(functions[function], function, prefix, payload)],
            )

    def _dead_letters(self, function: str, prefix: str) -> sqs.Queue:
        if function not in self.dead_letters:
            self.dead_letters[function] = dead_letter_queue(
                self,
                f"{function.capitalize()}DeadLetters",
                f"the {function} function's event deliveries",
                queue_name=f"{prefix}-{function}-dlq",
            )
        return self.dead_letters[function]

    def _queued_target(self, fn: lambda_.Function, function: str, prefix: str) -> targets.SqsQueue:
        """Rule -> queue -> function. The queue's visibility timeout is six times the function's timeout, as
        Lambda's guide asks (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html); a
        message that keeps failing moves to the function's dead-letter queue after QUEUE_MAX_RECEIVES."""
        dlq = self._dead_letters(function, prefix)
        timeout = fn.timeout.to_seconds() if fn.timeout else 29
        queue = sqs.Queue(
            self,
            f"{function.title().replace('_', '')}Queue",
            queue_name=f"{prefix}-{function}",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=Duration.seconds(6 * timeout),
            retention_period=Duration.days(4),
            dead_letter_queue=sqs.DeadLetterQueue(queue=dlq, max_receive_count=QUEUE_MAX_RECEIVES),
        )
        self.queues[function] = queue
        fn.add_event_source(sources.SqsEventSource(queue, batch_size=QUEUED_FUNCTIONS[function], report_batch_item_failures=True))
        return targets.SqsQueue(queue, dead_letter_queue=dlq, retry_attempts=TARGET_RETRY_ATTEMPTS, max_event_age=MAX_EVENT_AGE)

    def _target(self, fn: lambda_.Function, function: str, prefix: str, payload: dict[str, str] | None = None) -> targets.LambdaFunction:
        dlq = self._dead_letters(function, prefix)
        if not any(isinstance(c, lambda_.EventInvokeConfig) for c in fn.node.children):
            fn.configure_async_invoke(
                retry_attempts=ASYNC_RETRY_ATTEMPTS, max_event_age=MAX_EVENT_AGE, on_failure=destinations.SqsDestination(dlq)
            )
        return targets.LambdaFunction(
            fn,
            dead_letter_queue=dlq,
            retry_attempts=TARGET_RETRY_ATTEMPTS,
            max_event_age=MAX_EVENT_AGE,
            event=events.RuleTargetInput.from_object(payload) if payload else None,
        )
