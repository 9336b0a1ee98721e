"""Warm containers for the local platform: several copies of each function, one request each, as in Lambda.

Lambda runs one invocation at a time in an execution environment and serves concurrent
invocations from further environments, up to the function's concurrency; past it a
synchronous invocation is throttled (429, TooManyRequestsException):
https://docs.aws.amazon.com/lambda/latest/dg/lambda-concurrency.html
Reserved concurrency caps one function's share of the account:
https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html

The handlers rely on the first fact (the Powertools resolver keeps the current event on the
module's `app`, the ingest module keeps its batch on a module-level processor), so a local
container is its own copy of the handler module, and a pool hands each copy to one request at
a time. Locally a request that finds every container busy waits a bounded time before it is
throttled, where Lambda would throttle at once and leave the retry to the caller.

A per-tenant share keeps one tenant from holding every container of a function. Lambda has no
such setting; in AWS the tenant's usage-plan rate (API Gateway) and the function's reserved
concurrency bound a burst, and SQS fair queues do it for ingest (docs/performance.md,
"Fairness between tenants").
"""

from __future__ import annotations

import importlib
import importlib.util
import itertools
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import ModuleType

CONCURRENCY_ENV = "RAAS_LOCAL_CONCURRENCY"
TENANT_CONCURRENCY_ENV = "RAAS_LOCAL_TENANT_CONCURRENCY"
THROTTLE_WAIT_ENV = "RAAS_LOCAL_THROTTLE_WAIT_SECONDS"
DEFAULT_CONCURRENCY = 4
DEFAULT_THROTTLE_WAIT_SECONDS = 10.0

_copy_serials = itertools.count(1)


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


def default_concurrency() -> int:
    return max(1, env_int(CONCURRENCY_ENV, DEFAULT_CONCURRENCY))


def default_tenant_share(concurrency: int) -> int:
    """What one tenant may hold of a function's containers: half the pool unless configured."""
    return max(1, min(concurrency, env_int(TENANT_CONCURRENCY_ENV, max(1, concurrency // 2))))


def default_throttle_wait() -> float:
    value = os.environ.get(THROTTLE_WAIT_ENV, "").strip()
    return float(value) if value else DEFAULT_THROTTLE_WAIT_SECONDS


def module_copy(name: str) -> ModuleType:
    """A fresh instance of a module under a name of its own (`raas.handlers.query__container3`):
    its own resolver, router and batch processor, as a second execution environment would have.
    Modules it imports (services, the api helpers) stay shared, as the process is."""
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise ImportError(f"cannot find the source of {name} to start another container")
    copy_name = f"{name}__container{next(_copy_serials)}"
    copy_spec = importlib.util.spec_from_file_location(copy_name, spec.origin)
    if copy_spec is None or copy_spec.loader is None:
        raise ImportError(f"cannot load {spec.origin} as {copy_name}")
    module = importlib.util.module_from_spec(copy_spec)
    # Registered before it runs, as an import would: pydantic resolves the module's string
    # annotations (from __future__ import annotations) through sys.modules.
    sys.modules[copy_name] = module
    try:
        copy_spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[copy_name]
        raise
    return module


class Throttled(Exception):
    """No container could be had within the wait: the request is refused, as Lambda throttles."""

    def __init__(self, message: str, retry_after_seconds: float):
        super().__init__(message)
        self.message = message
        self.retry_after_seconds = retry_after_seconds


class FunctionPool:
    """The warm containers of one function: at most `concurrency` of them, each serving one request
    at a time, and at most `tenant_share` of them held by one tenant at once.

    The first container is the module as imported (`first`); further ones are started only when
    requests overlap, each a `module_copy` of it, and stay warm for the next request."""

    def __init__(
        self,
        function_name: str,
        first: ModuleType,
        concurrency: int | None = None,
        tenant_share: int | None = None,
        wait_seconds: float | None = None,
        start_container: Callable[[str], ModuleType] = module_copy,
    ):
        self.function_name = function_name
        self.concurrency = max(1, concurrency if concurrency is not None else default_concurrency())
        share = tenant_share if tenant_share is not None else default_tenant_share(self.concurrency)
        self.tenant_share = max(1, min(self.concurrency, share))
        self.wait_seconds = wait_seconds if wait_seconds is not None else default_throttle_wait()
        self._module_name = first.__name__
        self._start_container = start_container
        self._idle: list[ModuleType] = [first]
        self._started = 1
        self._held_by: Counter[str] = Counter()
        self._ready = threading.Condition()

    @property
    def started(self) -> int:
        """Containers started so far (warm ones included)."""
        with self._ready:
            return self._started

    @contextmanager
    def container(self, tenant: str) -> Iterator[ModuleType]:
        """A container for one invocation on behalf of `tenant`; raises Throttled after the wait."""
        module = self._acquire(tenant)
        try:
            yield module
        finally:
            with self._ready:
                self._idle.append(module)
                self._release(tenant)

    def _acquire(self, tenant: str) -> ModuleType:
        deadline = time.monotonic() + self.wait_seconds
        with self._ready:
            while True:
                own_share_left = self._held_by[tenant] < self.tenant_share
                if own_share_left and self._idle:
                    self._held_by[tenant] += 1
                    return self._idle.pop()  # the most recently used: warm reuse, as Lambda prefers
                if own_share_left and self._started < self.concurrency:
                    self._held_by[tenant] += 1
                    self._started += 1
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise Throttled(self._refusal(own_share_left), retry_after_seconds=1.0)
                self._ready.wait(remaining)
        # A cold start runs outside the lock: warm containers keep serving meanwhile.
        try:
            return self._start_container(self._module_name)
        except BaseException:
            with self._ready:
                self._started -= 1
                self._release(tenant)
            raise

    def _release(self, tenant: str) -> None:
        """Called with the lock held."""
        self._held_by[tenant] -= 1
        if self._held_by[tenant] <= 0:
            del self._held_by[tenant]
        self._ready.notify_all()

    def _refusal(self, own_share_left: bool) -> str:
        if own_share_left:
            return f"{self.function_name} is at its concurrency limit ({self.concurrency}); retry"
        return f"this tenant already holds its share ({self.tenant_share}) of {self.function_name}'s {self.concurrency} containers; retry"
