"""Tenant-scoped AWS credentials: `sts:AssumeRole` with a `tenant_id` session tag, cached per tenant.

The assumed role's policy (security/tenant_policy.py) is conditioned on that tag, so whatever
our code asks for, AWS only lets the session touch that tenant's items, objects and key.
Credentials live in memory until shortly before they expire; they are never logged and never
leave the process (the authorizer context carries only the tenant id).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from raas.adapters.aws import client_config, new_session
from raas.domain import ids

if TYPE_CHECKING:
    import boto3

SESSION_SECONDS = 900
REFRESH_MARGIN_SECONDS = 120


@dataclass
class _Session:
    session: boto3.session.Session
    expires_at: float
    clients: dict[str, Any]


class TenantSessions:
    def __init__(self, sts: Any, role_arn: str, clock: Callable[[], float] = time.time):
        self.sts = sts
        self.role_arn = role_arn
        self.clock = clock
        self.assumed = 0  # how many times a role was assumed (observability and tests)
        self._sessions: dict[str, _Session] = {}
        self._lock = threading.Lock()

    def client(self, tenant_id: str, service: str) -> Any:
        if not ids.is_tenant_id(tenant_id):
            raise ValueError(f"refusing scoped credentials for {tenant_id!r}")
        with self._lock:
            current = self._sessions.get(tenant_id)
            if current is None or current.expires_at - REFRESH_MARGIN_SECONDS <= self.clock():
                current = self._assume(tenant_id)
                self._sessions[tenant_id] = current
            if service not in current.clients:
                current.clients[service] = current.session.client(service, config=client_config(service))  # type: ignore[call-overload]
            return current.clients[service]

    def _assume(self, tenant_id: str) -> _Session:
        response = self.sts.assume_role(
            RoleArn=self.role_arn,
            RoleSessionName=f"raas-{tenant_id}",
            DurationSeconds=SESSION_SECONDS,
            Tags=[{"Key": "tenant_id", "Value": tenant_id}],
        )
        self.assumed += 1
        credentials = response["Credentials"]
        # on the process's shared loader: a tenant's first client parses no service description again
        session = new_session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
        )
        return _Session(session, credentials["Expiration"].timestamp(), {})


class ClientSource:
    """The client a store should use for a tenant: scoped when a tenant role is configured."""

    def __init__(self, service: str, platform: Any, sessions: TenantSessions | None):
        self.service = service
        self.platform = platform
        self.sessions = sessions

    def __call__(self, tenant_id: str | None) -> Any:
        if self.sessions is None or tenant_id is None:
            return self.platform
        return self.sessions.client(tenant_id, self.service)


def as_source(service: str, client_or_source: Any) -> ClientSource:
    """Stores accept a plain client (always the platform's) or a ClientSource."""
    return client_or_source if isinstance(client_or_source, ClientSource) else ClientSource(service, client_or_source, None)
