"""The API resolver, with the request it is serving kept per thread.

Powertools' resolver keeps the current event and Lambda context on the `BaseRouter` class
(`BaseRouter.current_event = ...` in `resolve`), one value for the whole process. In Lambda that
is right: an execution environment serves one invocation at a time
(https://docs.aws.amazon.com/lambda/latest/dg/lambda-concurrency.html). The local platform serves
several invocations at once, in threads of one process (raas.local.containers), so there two
functions' resolvers would read each other's request, and with it each other's caller. Here
each thread sees the request it is serving; with one thread, as in Lambda, nothing changes.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
from aws_lambda_powertools.utilities.typing import LambdaContext


class PerThreadResolver(APIGatewayRestResolver):
    _serving = threading.local()

    def resolve(self, event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        raw = event.raw_event if isinstance(event, APIGatewayProxyEvent) else event
        outer = getattr(self._serving, "event", None), getattr(self._serving, "context", None)
        self._serving.event = self._to_proxy_event(dict(raw))
        self._serving.context = context
        try:
            return super().resolve(event, context)
        finally:
            self._serving.event, self._serving.context = outer  # a resolve nested in another's route, if any

    @property  # type: ignore[override]  # Powertools declares it a plain attribute
    def current_event(self) -> APIGatewayProxyEvent:
        event: APIGatewayProxyEvent | None = getattr(self._serving, "event", None)
        if event is None:
            raise RuntimeError("no request is being served on this thread")
        return event

    @current_event.setter
    def current_event(self, value: APIGatewayProxyEvent) -> None:
        self._serving.event = value

    @property
    def lambda_context(self) -> LambdaContext:
        context: LambdaContext = self._serving.context
        return context

    @lambda_context.setter
    def lambda_context(self, value: LambdaContext) -> None:
        self._serving.context = value
