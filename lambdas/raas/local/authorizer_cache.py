"""API Gateway's authorizer result cache, for the local gateway.

The deployed API caches the REQUEST authorizer's answer (its policy, Allow or Deny, with its context)
for `raas:authorizerCacheSeconds` (60 by default), keyed on the identity source, the `Authorization`
header; a request whose identity source is missing or empty gets a 401 without the authorizer being
called: https://docs.aws.amazon.com/apigateway/latest/api/API_CreateAuthorizer.html (identitySource,
authorizerResultTtlInSeconds), https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-use-lambda-authorizer.html
A refusal the authorizer raises ("Unauthorized") is an error, not a policy, and is not kept.

Locally one thing differs, on purpose: a revocation takes effect on the next request (README,
"Authentication"). Every answer is forgotten as soon as anything is written to the tenants table,
which holds the keys and the tenants' profiles (a key revoked, a tenant suspended, resumed, deleted,
moved to another tier), through the write hook of `raas.local.moto_patches`.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from raas.local import moto_patches

MAX_ENTRIES = 10_000


def tables_written(method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> set[str]:
    """The tables a write of moto's DynamoDB backend (as `add_write_listener` reports it) changes."""
    if method == "transact_write_items":
        operations = kwargs.get("transact_items", args[0] if args else [])
        return {body["TableName"] for operation in operations for body in operation.values() if "TableName" in body}
    name = kwargs.get("table_name", args[0] if args else None)
    return {name} if isinstance(name, str) else set()


class AuthorizerCache:
    def __init__(self, ttl_seconds: float, watched_table: str, clock: Callable[[], float] = time.monotonic):
        self.ttl_seconds = ttl_seconds
        self.watched_table = watched_table
        self._clock = clock
        self._lock = threading.Lock()
        self._answers: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()
        self.generation = 0  # moves at every forgetting: an answer read before it is never kept after it

    def get(self, identity: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._answers.get(identity)
            if found is None or found[0] <= self._clock():
                self._answers.pop(identity, None)
                return None
            return found[1]

    def put(self, identity: str, answer: dict[str, Any], generation: int) -> None:
        """Keeps an answer the authorizer gave, unless the table changed since `generation` (read before
        calling it): the answer may predate a revocation that has already been forgotten."""
        if self.ttl_seconds <= 0:
            return
        with self._lock:
            if generation != self.generation:
                return
            self._answers[identity] = (self._clock() + self.ttl_seconds, answer)
            self._answers.move_to_end(identity)
            while len(self._answers) > MAX_ENTRIES:
                self._answers.popitem(last=False)

    def forget_all(self) -> None:
        with self._lock:
            self._answers.clear()
            self.generation += 1

    # --- the tenants table's writes -----------------------------------------------------------------
    def watch(self) -> None:
        """Forgets every answer after each write to the watched table (moto's write hook, installed here)."""
        moto_patches.install()
        moto_patches.add_write_listener(self._on_write)

    def unwatch(self) -> None:
        moto_patches.remove_write_listener(self._on_write)

    def _on_write(self, _backend: Any, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if self.watched_table in tables_written(method, args, kwargs):
            self.forget_all()
