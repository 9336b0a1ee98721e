"""EMF metrics buffered per thread.

Powertools buffers metrics, dimensions and metadata in one set per process and flushes it at the
end of the invocation (`log_metrics`); in Lambda one invocation runs at a time per execution
environment (https://docs.aws.amazon.com/lambda/latest/dg/lambda-concurrency.html), so the set is
that invocation's. The local platform serves several invocations at once in threads of one
process (raas.local.containers): with one shared set, one request's flush would print and clear
another's metrics, label them with the other's `tenant_id` metadata, or fail mid-flush because
the set changed size. Here each thread has its own set; with one thread, as in Lambda, nothing
changes.
"""

from __future__ import annotations

import threading
from typing import Any

from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider


class _Buffers(threading.local):
    def __init__(self) -> None:
        self.metric_set: dict[str, Any] = {}
        self.dimension_set: dict[str, str] | None = None  # the defaults, filled on first use
        self.dimension_sets: list[dict[str, str]] = []
        self.metadata_set: dict[str, Any] = {}
        self.timestamp: int | None = None


class PerThreadEMFProvider(AmazonCloudWatchEMFProvider):
    """The EMF provider with the metric, dimension and metadata sets of the calling thread.
    Default dimensions (set once, at import) stay shared."""

    def __init__(self, **kwargs: Any):
        self._buffers = _Buffers()
        super().__init__(**kwargs)

    @property
    def metric_set(self) -> dict[str, Any]:
        return self._buffers.metric_set

    @metric_set.setter
    def metric_set(self, value: dict[str, Any]) -> None:
        self._buffers.metric_set = value

    @property
    def dimension_set(self) -> dict[str, str]:
        if self._buffers.dimension_set is None:
            self._buffers.dimension_set = {name: str(value) for name, value in self.default_dimensions.items()}
        return self._buffers.dimension_set

    @dimension_set.setter
    def dimension_set(self, value: dict[str, str]) -> None:
        self._buffers.dimension_set = value

    @property
    def dimension_sets(self) -> list[dict[str, str]]:
        return self._buffers.dimension_sets

    @dimension_sets.setter
    def dimension_sets(self, value: list[dict[str, str]]) -> None:
        self._buffers.dimension_sets = value

    @property
    def metadata_set(self) -> dict[str, Any]:
        return self._buffers.metadata_set

    @metadata_set.setter
    def metadata_set(self, value: dict[str, Any]) -> None:
        self._buffers.metadata_set = value

    @property
    def timestamp(self) -> int | None:
        return self._buffers.timestamp

    @timestamp.setter
    def timestamp(self, value: int | None) -> None:
        self._buffers.timestamp = value
