from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from raas.bootstrap import services
from raas.domain import ids
from raas.domain.catalog import Tier
from raas.domain.config import ConfigVersion, TenantConfig
from raas.domain.errors import BadRequest, NotFound
from raas.domain.ports import VersionConflict
from raas.domain.tenants import ApiKey, Role, Tenant, TenantStatus, hash_secret

pytestmark = pytest.mark.usefixtures("aws")


def make_tenant(name: str = "acme") -> Tenant:
    now = datetime.now(UTC)
    return Tenant(tenant_id=ids.new_tenant_id(), name=name, tier=Tier.SMB, status=TenantStatus.ACTIVE, created_at=now, updated_at=now)


def make_key(tenant_id: str | None, role: Role = Role.ADMIN) -> ApiKey:
    return ApiKey(key_id=ids.new_key_id(), tenant_id=tenant_id, name="k", role=role, prefix="raas_abcdefg", created_at=datetime.now(UTC))


def test_tenant_and_first_key_are_written_together_and_read_back() -> None:
    tenant, key = make_tenant(), None
    key = make_key(tenant.tenant_id)
    services().tenant_store.create_tenant(tenant, key, hash_secret("secret-1"))
    assert services().tenant_store.get_tenant(tenant.tenant_id) == tenant
    found = services().key_store.find_by_hash(hash_secret("secret-1"))
    assert found is not None
    assert (found.key_id, found.tenant_id) == (key.key_id, tenant.tenant_id)


def test_create_tenant_is_all_or_nothing() -> None:
    first = make_tenant()
    key = make_key(first.tenant_id)
    services().tenant_store.create_tenant(first, key, hash_secret("s"))
    second = make_tenant("other")
    clashing_key = key.model_copy(update={"tenant_id": second.tenant_id})
    # Same key id under a new tenant is fine; re-using the *tenant* must fail and write nothing.
    with pytest.raises(Exception, match=r"ConditionalCheckFailed|TransactionCanceled"):
        services().tenant_store.create_tenant(first.model_copy(update={"name": "dup"}), make_key(first.tenant_id), hash_secret("s2"))
    assert services().tenant_store.get_tenant(first.tenant_id).name == "acme"  # type: ignore[union-attr]
    assert services().key_store.find_by_hash(hash_secret("s2")) is None
    services().tenant_store.create_tenant(second, clashing_key, hash_secret("s3"))


def test_list_tenants_pages_with_opaque_cursors() -> None:
    created = []
    for i in range(5):
        tenant = make_tenant(f"t{i}")
        services().tenant_store.create_tenant(tenant, make_key(tenant.tenant_id), hash_secret(f"k{i}"))
        created.append(tenant.tenant_id)
    seen: list[str] = []
    cursor = None
    while True:
        page, cursor = services().tenant_store.list_tenants(2, cursor)
        seen.extend(t.tenant_id for t in page)
        if cursor is None:
            break
    assert sorted(seen) == sorted(created)
    with pytest.raises(BadRequest):
        services().tenant_store.list_tenants(2, "not-a-cursor!!")


def test_status_update_is_conditional() -> None:
    tenant = make_tenant()
    services().tenant_store.create_tenant(tenant, make_key(tenant.tenant_id), hash_secret("s"))
    store = services().tenant_store
    assert (
        store.update_tenant(tenant.tenant_id, status=TenantStatus.SUSPENDED, expected_status=(TenantStatus.ACTIVE,)).status
        is TenantStatus.SUSPENDED
    )
    with pytest.raises(VersionConflict):
        store.update_tenant(tenant.tenant_id, status=TenantStatus.SUSPENDED, expected_status=(TenantStatus.ACTIVE,))
    with pytest.raises(NotFound):
        store.update_tenant(ids.new_tenant_id(), name="ghost")


def test_the_status_alone_is_read_consistently_and_follows_every_change() -> None:
    tenant = make_tenant()
    store = services().tenant_store
    store.create_tenant(tenant, make_key(tenant.tenant_id), hash_secret("s"))
    assert store.tenant_status(tenant.tenant_id) is tenant.status
    store.update_tenant(tenant.tenant_id, status=TenantStatus.DELETING)
    assert store.tenant_status(tenant.tenant_id) is TenantStatus.DELETING
    assert store.tenant_status(ids.new_tenant_id()) is None


def test_revocation_is_seen_by_the_next_lookup() -> None:
    tenant = make_tenant()
    key = make_key(tenant.tenant_id)
    services().tenant_store.create_tenant(tenant, key, hash_secret("s"))
    keys = services().key_store
    revoked = keys.revoke_key(tenant.tenant_id, key.key_id)
    assert revoked.revoked_at is not None
    found = keys.find_by_hash(hash_secret("s"))
    assert found is not None
    assert not found.active
    # revoking again keeps the first revocation time
    assert keys.revoke_key(tenant.tenant_id, key.key_id).revoked_at == revoked.revoked_at
    with pytest.raises(NotFound):
        keys.revoke_key(ids.new_tenant_id(), key.key_id)  # another tenant cannot address it


def test_touch_records_last_use_at_most_once_per_interval() -> None:
    tenant = make_tenant()
    key = make_key(tenant.tenant_id)
    services().tenant_store.create_tenant(tenant, key, hash_secret("s"))
    keys = services().key_store
    keys.touch(key)
    first = keys.get_key(tenant.tenant_id, key.key_id)
    assert first is not None
    assert first.last_used_at is not None
    keys.touch(key)  # the in-memory copy has no last_used_at, but the stored one is recent
    assert keys.get_key(tenant.tenant_id, key.key_id).last_used_at == first.last_used_at  # type: ignore[union-attr]


def _version(n: int, temperature: float) -> ConfigVersion:
    return ConfigVersion(
        version=n, config=TenantConfig(temperature=temperature), created_at=datetime.now(UTC), created_by="t", mode="merge"
    )


def test_config_writes_are_conditional_on_the_current_version() -> None:
    store = services().config_service.store
    tenant_id = ids.new_tenant_id()
    assert store.current(tenant_id) is None
    store.write(tenant_id, _version(1, 0.1), expected_current=0)
    with pytest.raises(VersionConflict):
        store.write(tenant_id, _version(1, 0.9), expected_current=0)  # a concurrent first write loses
    with pytest.raises(VersionConflict):
        store.write(tenant_id, _version(2, 0.9), expected_current=5)
    store.write(tenant_id, _version(2, 0.2), expected_current=1)
    assert store.current(tenant_id).version == 2  # type: ignore[union-attr]
    assert store.get_version(tenant_id, 1).config.temperature == 0.1  # type: ignore[union-attr]


def test_config_versions_page_newest_first_and_cursor_cannot_leave_the_tenant() -> None:
    store = services().config_service.store
    tenant_id, other = ids.new_tenant_id(), ids.new_tenant_id()
    for n in range(1, 6):
        store.write(tenant_id, _version(n, n / 10), expected_current=n - 1)
    store.write(other, _version(1, 1.0), expected_current=0)
    page, cursor = store.list_versions(tenant_id, 3, None)
    assert [v.version for v in page] == [5, 4, 3]
    page2, cursor2 = store.list_versions(tenant_id, 3, cursor)
    assert [v.version for v in page2] == [2, 1]
    assert cursor2 is None
    # The cursor carries only the sort key; the partition is always the caller's.
    other_page, _ = store.list_versions(other, 3, cursor)
    assert all(v.config.temperature == 1.0 for v in other_page)


def test_the_authorizers_lookup_reads_key_and_tenant_consistently_in_one_batch() -> None:
    tenant = make_tenant()
    key = make_key(tenant.tenant_id)
    services().tenant_store.create_tenant(tenant, key, hash_secret("batch-1"))
    keys = services().key_store
    found = keys.find_with_tenant(hash_secret("batch-1"))
    assert found is not None
    assert (found[0].key_id, found[1]) == (key.key_id, tenant)
    keys.revoke_key(tenant.tenant_id, key.key_id)
    revoked = keys.find_with_tenant(hash_secret("batch-1"))
    assert revoked is not None
    assert not revoked[0].active  # the revocation is seen at once: the base item, not the index
    operator = make_key(None, Role.OPERATOR)
    keys.put_key(operator, hash_secret("batch-op"))
    assert keys.find_with_tenant(hash_secret("batch-op")) == (operator, None)
    assert keys.find_with_tenant(hash_secret("no such key")) is None


class _Unprocessed:
    """A DynamoDB client whose BatchGetItem leaves every key unprocessed `times` times, as AWS may
    (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchGetItem.html)."""

    def __init__(self, real: Any, times: int):
        self.real = real
        self.times = times
        self.batches = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        self.batches += 1
        if self.times:
            self.times -= 1
            return {"Responses": {}, "UnprocessedKeys": RequestItems}
        return dict(self.real.batch_get_item(RequestItems=RequestItems))


def test_unprocessed_keys_are_asked_for_again_and_an_endless_backlog_is_a_503(monkeypatch: pytest.MonkeyPatch) -> None:
    from raas.adapters.registry import DynamoKeyStore
    from raas.domain.errors import ServiceUnavailable

    monkeypatch.setattr("raas.adapters.registry.time.sleep", lambda _seconds: None)
    tenant = make_tenant()
    key = make_key(tenant.tenant_id)
    services().tenant_store.create_tenant(tenant, key, hash_secret("batch-2"))
    flaky = _Unprocessed(services().platform_client("dynamodb"), times=2)
    store = DynamoKeyStore(flaky, services().settings.tenants_table)
    found = store.find_with_tenant(hash_secret("batch-2"))
    assert found is not None
    assert (found[0].key_id, found[1], flaky.batches) == (key.key_id, tenant, 3)
    stuck = DynamoKeyStore(_Unprocessed(services().platform_client("dynamodb"), times=99), services().settings.tenants_table)
    with pytest.raises(ServiceUnavailable):
        stuck.find_with_tenant(hash_secret("batch-2"))
