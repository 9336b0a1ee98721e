"""boto3 clients, created once per container, with retries and timeouts suited to Lambda."""

from __future__ import annotations

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


def new_client(service: str) -> Any:
    """A client with the process's own credentials (the composition root keeps one per container).

    The endpoint comes from AWS_ENDPOINT_URL when set (the local platform points it at moto).
    """
    # Imported here, not at the top: every store imports this module at cold start, and boto3 (about
    # 0.1 s) is needed only once the composition root builds the function's first client.
    import boto3

    return boto3.session.Session().client(service, config=client_config(service))  # type: ignore[call-overload]


@cache
def client(service: str) -> Any:
    """The local platform's own client for its stand-ins (queues, tables, snapshots); the
    functions' clients come from the composition root instead."""
    return new_client(service)


def reset_clients() -> None:
    """Forget cached clients (tests and the local platform change endpoints)."""
    client.cache_clear()
