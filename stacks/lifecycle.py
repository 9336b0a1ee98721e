"""Lifecycle and metering wiring: one EventBridge rule per event function, generated from the
routing table the local platform also dispatches through, plus the metering schedules. Every
target has a dead-letter queue, and every function's own async failures land in it as well."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from raas.domain.events import SOURCE
from raas.handlers.registry import SCHEDULES, routes_by_function
from stacks.queues import dead_letter_queue

# Lambda's own retries of a failed async invocation (EventBridge -> Lambda is asynchronous);
# each deletion step also retries in place, and every step is idempotent.
ASYNC_RETRY_ATTEMPTS = 2
TARGET_RETRY_ATTEMPTS = 8  # EventBridge's delivery retries (throttling, Lambda unavailable)
MAX_EVENT_AGE = Duration.hours(6)


class PlatformEvents(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, bus_name: str, functions: dict[str, lambda_.Function], prefix: str) -> None:
        super().__init__(scope, construct_id)
        self.bus = events.EventBus.from_event_bus_name(self, "Bus", bus_name)
        self.dead_letters: dict[str, sqs.Queue] = {}
        self.rules: dict[str, events.Rule] = {}
        for function, detail_types in sorted(routes_by_function().items()):
            target = self._target(functions[function], function, prefix)
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
