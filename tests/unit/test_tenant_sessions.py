from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from raas.security.credentials import REFRESH_MARGIN_SECONDS, SESSION_SECONDS, ClientSource, TenantSessions

TENANT_A, TENANT_B = "taaaaaaaaaaaaaaa", "tbbbbbbbbbbbbbbb"


class FakeSts:
    def __init__(self, clock: list[float]):
        self.clock = clock
        self.calls: list[dict[str, Any]] = []

    def assume_role(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        expires = datetime.fromtimestamp(self.clock[0] + kwargs["DurationSeconds"], tz=UTC)
        n = len(self.calls)
        return {"Credentials": {"AccessKeyId": f"AKIA{n}", "SecretAccessKey": "secret", "SessionToken": f"token{n}", "Expiration": expires}}


@pytest.fixture
def clock() -> list[float]:
    return [1_000_000.0]


def test_sessions_are_tagged_cached_per_tenant_and_refreshed_before_expiry(clock: list[float]) -> None:
    sts = FakeSts(clock)
    sessions = TenantSessions(sts, "arn:aws:iam::1:role/tenant-data", clock=lambda: clock[0])
    first = sessions.client(TENANT_A, "dynamodb")
    assert sessions.client(TENANT_A, "dynamodb") is first
    assert sts.calls == [
        {
            "RoleArn": "arn:aws:iam::1:role/tenant-data",
            "RoleSessionName": f"raas-{TENANT_A}",
            "DurationSeconds": SESSION_SECONDS,
            "Tags": [{"Key": "tenant_id", "Value": TENANT_A}],
        }
    ]
    sessions.client(TENANT_B, "s3")
    assert sts.calls[-1]["Tags"] == [{"Key": "tenant_id", "Value": TENANT_B}]
    clock[0] += SESSION_SECONDS - REFRESH_MARGIN_SECONDS - 1
    assert sessions.client(TENANT_A, "dynamodb") is first  # still fresh enough
    clock[0] += 2
    assert sessions.client(TENANT_A, "dynamodb") is not first  # renewed shortly before expiry
    assert sessions.assumed == 3


def test_only_tenant_ids_get_sessions(clock: list[float]) -> None:
    sessions = TenantSessions(FakeSts(clock), "arn", clock=lambda: clock[0])
    for bad in ("", "*", "acme", "t0000000000000000"):
        with pytest.raises(ValueError, match="refusing"):
            sessions.client(bad, "s3")


def test_client_source_uses_the_platform_client_without_a_role_or_a_tenant(clock: list[float]) -> None:
    platform = object()
    assert ClientSource("s3", platform, None)(TENANT_A) is platform
    scoped = ClientSource("s3", platform, TenantSessions(FakeSts(clock), "arn", clock=lambda: clock[0]))
    assert scoped(None) is platform
    assert scoped(TENANT_A) is not platform


def test_every_session_reads_service_descriptions_through_one_loader(clock: list[float], monkeypatch: pytest.MonkeyPatch) -> None:
    """A tenant's first scoped client, and each platform client, parse no AWS service description a
    session before them parsed: the JSON files are read once a process (raas.adapters.aws.new_session)."""
    from botocore.loaders import JSONFileLoader

    from raas.adapters.aws import new_client

    new_client("dynamodb")  # whatever this process parsed before, the descriptions dynamodb needs are loaded now
    parsed: list[str] = []
    load_file = JSONFileLoader.load_file

    def recorded(self: JSONFileLoader, path: str) -> Any:
        parsed.append(path)
        return load_file(self, path)

    monkeypatch.setattr(JSONFileLoader, "load_file", recorded)
    sessions = TenantSessions(FakeSts(clock), "arn:aws:iam::1:role/tenant-data", clock=lambda: clock[0])
    scoped = [sessions.client(tenant, "dynamodb") for tenant in (TENANT_A, TENANT_B)]
    platform = new_client("dynamodb")
    assert parsed == []
    assert scoped[0] is not scoped[1]
    # each session still has its own credentials
    assert [c._request_signer._credentials.access_key for c in scoped] == ["AKIA1", "AKIA2"]
    assert platform._request_signer._credentials.access_key != "AKIA1"


def test_the_shared_loader_search_paths_do_not_grow_with_sessions() -> None:
    """boto3 appends its data directory to the loader of every session it makes; on the one shared loader
    that would be one more path a session, for the life of the process."""
    from raas.adapters.aws import new_session

    first = new_session()._loader.search_paths
    before = list(first)
    for _ in range(5):
        assert new_session()._loader.search_paths is first
    assert first == before
    assert len(set(first)) == len(first)
