"""Handlers touch tenant data only through sessions tagged with the authorizer's tenant id.

moto does not enforce IAM conditions (a session tagged for A could read B there), so this
checks the part our code controls: which tenant every session is requested for. What IAM
does with the tag is checked on the policy document (tests/unit/test_tenant_policy.py), by the
policy double that runs whole requests through it (tests/kms_policy.py,
tests/integration/test_kms_first_use.py) and, against a real account (never from the test suite,
which reaches no AWS endpoint), by scripts/iam_policy_simulator.py.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from raas.local.events import QueuePump
from raas.security.credentials import TenantSessions
from tests.conftest import OPERATOR_KEY, TenantHandle
from tests.helpers import ApiClient, expect, rebuild_services


class RecordingSts:
    def __init__(self, inner: Any):
        self.inner = inner
        self.tags: list[str] = []

    def assume_role(self, **kwargs: Any) -> dict[str, Any]:
        self.tags.append(next(t["Value"] for t in kwargs["Tags"] if t["Key"] == "tenant_id"))
        return dict(self.inner.assume_role(**kwargs))


@pytest.fixture
def sts(aws: None, monkeypatch: pytest.MonkeyPatch) -> RecordingSts:
    iam = boto3.client("iam")
    role = iam.create_role(RoleName="raas-tenant-data", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}))
    recorder = RecordingSts(boto3.client("sts"))
    sessions = TenantSessions(recorder, role["Role"]["Arn"])
    rebuild_services(tenant_sessions=sessions)  # every store is rebuilt on top of the recording sessions
    return recorder


def test_each_request_uses_a_session_for_its_own_tenant_only(
    api: ApiClient, tenant_a: TenantHandle, tenant_b: TenantHandle, ingest_queue: QueuePump, sts: RecordingSts
) -> None:
    expect(api.request("PATCH", "/v1/config", key=tenant_a.admin_key, json_body={"temperature": 0.1}), 200)
    expect(api.request("POST", "/v1/keys", key=tenant_a.admin_key, json_body={"name": "r"}), 201)
    assert set(sts.tags) == {tenant_a.tenant_id}
    expect(api.request("POST", "/v1/documents", key=tenant_b.admin_key, json_body={"title": "t", "text": "b's words"}), 202)
    ingest_queue.drain()
    expect(api.request("POST", "/v1/query", key=tenant_b.admin_key, json_body={"query": "words"}), 200)
    assert set(sts.tags) == {tenant_a.tenant_id, tenant_b.tenant_id}
    assert len(sts.tags) == 2  # one session per tenant, reused by every later request
    assert expect(api.request("GET", "/v1/config", key=tenant_a.admin_key), 200)["config"]["temperature"] == 0.1


def test_the_authorizer_context_never_carries_credentials(api: ApiClient, tenant_a: TenantHandle, sts: RecordingSts) -> None:
    from tests.integration.test_authorizer import authorize

    context = authorize(f"Bearer {tenant_a.admin_key}")["context"]
    assert set(context) == {"tenant_id", "role", "tier", "key_id"}
    assert api.request("GET", "/v1/tenants", key=OPERATOR_KEY).status == 200
    assert sts.tags == []  # the operator's routes and the authorizer use the platform role
