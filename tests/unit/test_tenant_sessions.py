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


@pytest.fixture
def sessions_made(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every botocore session made from here on."""
    import botocore.session

    made: list[object] = []
    init = botocore.session.Session.__init__

    def counted(self: Any, *args: Any, **kwargs: Any) -> None:
        made.append(self)
        init(self, *args, **kwargs)

    monkeypatch.setattr(botocore.session.Session, "__init__", counted)
    from raas.adapters import aws

    monkeypatch.setattr(aws, "_platform_session", aws._PlatformSession())  # none made yet
    return made


def test_platform_clients_share_one_session_until_the_aws_environment_or_the_builtin_handlers_change(
    sessions_made: list[object], monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore import handlers

    from raas.adapters.aws import new_client

    first = [new_client(service) for service in ("dynamodb", "s3", "sqs", "dynamodb")]
    assert len(sessions_made) == 1
    assert first[0] is not first[3]  # a client each call: the composition root keeps them, not this function
    assert {c._request_signer._credentials.access_key for c in first} == {"testing"}  # tests/conftest's isolation

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAOTHER")
    moved = new_client("dynamodb")
    assert len(sessions_made) == 2
    assert moved._request_signer._credentials.access_key == "AKIAOTHER"  # not the first session's resolved credentials
    assert new_client("s3")._request_signer._credentials.access_key == "AKIAOTHER"
    assert len(sessions_made) == 2

    class Intercepted(Exception):
        pass

    def before_send(request: Any, **_: Any) -> None:
        raise Intercepted(request.url)  # before anything leaves the process

    monkeypatch.setattr(handlers, "BUILTIN_HANDLERS", [*handlers.BUILTIN_HANDLERS, ("before-send", before_send)])
    hooked = new_client("sts")
    assert len(sessions_made) == 3
    with pytest.raises(Intercepted):  # the handler added after the earlier sessions were made is in the new client
        hooked.get_caller_identity()


def test_platform_clients_made_on_many_threads_at_once_are_each_whole(sessions_made: list[object]) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from raas.adapters.aws import new_client

    with ThreadPoolExecutor(8) as pool:
        made = list(pool.map(new_client, ["dynamodb", "s3", "sqs", "kms"] * 6))
    assert len(sessions_made) == 1
    assert [c.meta.service_model.service_name for c in made] == ["dynamodb", "s3", "sqs", "kms"] * 6
    assert {c.meta.region_name for c in made} == {made[0].meta.region_name}
