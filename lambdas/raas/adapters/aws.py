"""boto3 clients, created once per container, with retries and timeouts suited to Lambda."""

from __future__ import annotations

import os
import threading
from functools import cache
from typing import Any

from botocore.config import Config

# "standard" retry mode backs off exponentially with jitter on throttling and 5xx.
_CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 5},
    connect_timeout=3,
    read_timeout=10,
)


# Presigned S3 URLs must be SigV4 (KMS-encrypted objects refuse the legacy signature).
_S3_CONFIG = _CLIENT_CONFIG.merge(Config(signature_version="s3v4", s3={"addressing_style": "path"}))


def client_config(service: str) -> Config:
    return _S3_CONFIG if service == "s3" else _CLIENT_CONFIG


def new_session(**options: str | None) -> Any:
    """A boto3 session (`options` as boto3.session.Session takes them: explicit credentials, a region) that
    reads AWS's service descriptions through the process's one loader.

    Each session keeps its own credentials and event handlers, as boto3 asks (sessions are not thread-safe:
    https://boto3.amazonaws.com/v1/documentation/api/latest/guide/session.html#multithreading-or-multiprocessing-with-sessions),
    but a new session comes with a new botocore `Loader`, which parses the endpoint and service JSON again
    (measured: about 0.2 s a client with a session of its own, 0.03 s on a shared loader). botocore's
    maintainers suggest registering one loader in every session (https://github.com/boto/botocore/issues/3078):
    a cold start building four clients parses them once, and a tenant's first scoped client (a new session
    for each tenant's assumed role, raas.security.credentials) no longer parses them on the request path.
    """
    # Imported here, not at the top: every store imports this module at cold start, and boto3 (about
    # 0.1 s) is needed only once the composition root builds the function's first client.
    import boto3
    import botocore.session

    core = botocore.session.Session()
    core.register_component("data_loader", _shared_loader())
    return boto3.session.Session(botocore_session=core, **options)


class _DistinctPaths(list[str]):
    """The shared loader's search paths: every boto3 session appends boto3's own data directory to its
    loader's paths (`boto3.session.Session._setup_loader`), which on a shared loader would add one entry a
    session, for ever. A path already listed is not added again."""

    def append(self, path: str) -> None:
        if path not in self:
            super().append(path)


@cache
def _shared_loader() -> Any:
    from botocore.loaders import Loader

    # AWS_DATA_PATH as botocore's own `create_loader` reads it (the session's `data_path` setting)
    data_path = os.environ.get("AWS_DATA_PATH")
    return Loader(extra_search_paths=_DistinctPaths(data_path.split(os.pathsep) if data_path else []))


class _PlatformSession:
    """The one session the process's own clients are made from, made again when what a session reads once has changed.

    A botocore session registers its ~150 built-in event handlers when it is made, inspecting each one's signature:
    19 ms of CPU, more than half of what a client cost with a session of its own (cProfile over the integration tests:
    docs/performance.md, "The suite's own costs"). Clients are thread-safe, sessions are not (boto3's guide,
    "Multithreading or multiprocessing with sessions", cited above), so clients are made from it one at a time. A
    session keeps the credentials it resolved and the built-in handlers it was given, so a change of either makes a
    new one: the process's `AWS_*` environment (tests and the local platform set credentials and endpoints), and
    botocore's `BUILTIN_HANDLERS` (the local platform adds its in-process transport there). Tenant-scoped clients
    keep a session each (their own credentials).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._made_for: tuple[Any, ...] | None = None
        self._session: Any = None

    def client(self, service: str) -> Any:
        from botocore import handlers

        made_for = (sorted((k, v) for k, v in os.environ.items() if k.startswith("AWS_")), list(handlers.BUILTIN_HANDLERS))
        with self._lock:
            if self._session is None or self._made_for != made_for:  # compared by equality: handlers need not hash
                self._session, self._made_for = new_session(), made_for
            return self._session.client(service, config=client_config(service))


_platform_session = _PlatformSession()


def new_client(service: str) -> Any:
    """A client with the process's own credentials (the composition root keeps one per container).

    The endpoint comes from AWS_ENDPOINT_URL when set (the local platform points it at moto).
    """
    return _platform_session.client(service)


@cache
def client(service: str) -> Any:
    """The local platform's own client for its stand-ins (queues, tables, snapshots); the
    functions' clients come from the composition root instead."""
    return new_client(service)


def reset_clients() -> None:
    """Forget cached clients (tests and the local platform change endpoints)."""
    client.cache_clear()
