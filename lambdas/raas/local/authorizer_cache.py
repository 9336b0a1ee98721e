"""API Gateway's authorizer result cache, for the local gateway.

The deployed API caches the REQUEST authorizer's answer (its policy, Allow or Deny, with its context)
for `raas:authorizerCacheSeconds` (60 by default), keyed on the identity source, the `Authorization`
header; a request whose identity source is missing or empty gets a 401 without the authorizer being
called: https://docs.aws.amazon.com/apigateway/latest/api/API_CreateAuthorizer.html (identitySource,
authorizerResultTtlInSeconds), https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-use-lambda-authorizer.html
A refusal the authorizer raises ("Unauthorized") is an error, not a policy, and is not kept.

Locally one thing differs, on purpose: a revocation takes effect on the next request (README,
"Authentication"). A tenant's answers are forgotten as soon as anything is written to its items in the
tenants table, which holds its keys and profile (a key revoked, a tenant suspended, resumed, deleted,
moved to another tier), through the write hook of `raas.local.moto_patches`; a write outside every
tenant's partition (the operator's keys) forgets them all.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from raas.adapters.registry import tenant_of_pk
from raas.local import moto_patches

MAX_ENTRIES = 10_000


def tenants_written(method: str, args: tuple[Any, ...], kwargs: dict[str, Any], table: str) -> set[str | None]:
    """The tenants whose items in `table` a write of moto's DynamoDB backend (as `add_write_listener` reports it)
    changed: their ids, and None for an item in no tenant's partition (the operator's keys). Empty when the write
    changed nothing there: a transaction's ConditionCheck only reads its item
    (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_ConditionCheck.html), and the platform's
    transactions check a tenant's status that way beside every document they write."""
    if method == "transact_write_items":
        operations = kwargs.get("transact_items", args[0] if args else [])
        keys = [
            body.get("Key") or body.get("Item") or {}
            for operation in operations
            for kind, body in operation.items()
            if kind != "ConditionCheck" and body.get("TableName") == table
        ]
    elif kwargs.get("table_name", args[0] if args else None) == table:
        # put_item(table_name, item_attrs, ...), update_item and delete_item(table_name, key, ...)
        keys = [args[1] if len(args) > 1 else kwargs.get("key") or kwargs.get("item_attrs") or {}]
    else:
        return set()
    return {tenant_of_pk((key.get("PK") or {}).get("S")) for key in keys}


class RegistryWatch:
    """Tells `on_written` which tenants each write to the tenants table changed (moto's write hook), for what a local
    process keeps of that table: the authorizer's answers, the tenants' configs. The table holds the keys, the
    tenants' profiles and configs, each in its tenant's partition; one tenant's write leaves the others' kept."""

    def __init__(self, table: str, on_written: Callable[[set[str | None]], None]):
        self.table = table
        self._on_written = on_written

    def start(self) -> None:
        moto_patches.install()
        moto_patches.add_write_listener(self._on_write)

    def stop(self) -> None:
        moto_patches.remove_write_listener(self._on_write)

    def _on_write(self, _backend: Any, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        written = tenants_written(method, args, kwargs, self.table)
        if written:
            self._on_written(written)


def _tenant_of(answer: dict[str, Any]) -> str | None:
    """The tenant an answer is about; None for an operator's key and for a Deny (which names no tenant): those are
    forgotten at every write, as before."""
    return (answer.get("context") or {}).get("tenant_id") or None


class AuthorizerCache:
    def __init__(self, ttl_seconds: float, watched_table: str, clock: Callable[[], float] = time.monotonic):
        self.ttl_seconds = ttl_seconds
        self.watched_table = watched_table
        self._clock = clock
        self._lock = threading.Lock()
        self._answers: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()
        self.generation = 0  # moves at every forgetting: an answer read before it is never kept after it
        self._watch: RegistryWatch | None = None

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

    def forget(self, tenants: set[str | None]) -> None:
        """Forgets the answers about these tenants' keys and those about no tenant; every answer when None is among
        `tenants` (a write outside every tenant's partition)."""
        if None in tenants:
            self.forget_all()
            return
        with self._lock:
            for identity in [i for i, (_, answer) in self._answers.items() if _tenant_of(answer) in {*tenants, None}]:
                del self._answers[identity]
            self.generation += 1

    # --- the tenants table's writes -----------------------------------------------------------------
    def watch(self) -> None:
        """Forgets the answers about a tenant after each write to its items in the watched table."""
        self._watch = RegistryWatch(self.watched_table, self.forget)
        self._watch.start()

    def unwatch(self) -> None:
        if self._watch is not None:
            self._watch.stop()
