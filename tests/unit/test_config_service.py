from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from raas.domain.catalog import Tier
from raas.domain.config import TierLimitExceeded
from raas.domain.errors import Conflict, NotFound
from raas.services.config import ConfigCache, ConfigService
from tests.helpers import FakeClock, InMemoryConfigStore

TENANT = "t000000000000001"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store() -> InMemoryConfigStore:
    return InMemoryConfigStore()


@pytest.fixture
def service(store: InMemoryConfigStore, clock: FakeClock) -> ConfigService:
    return ConfigService(store, ConfigCache(ttl_seconds=300, clock=clock))


def test_a_tenant_without_config_gets_the_defaults_as_version_0(service: ConfigService) -> None:
    current = service.get(TENANT)
    assert current.version == 0
    assert current.config.model == "gpt-3.5-turbo"


def test_each_update_writes_a_new_version_with_who_and_what(service: ConfigService, store: InMemoryConfigStore) -> None:
    v1 = service.update(TENANT, Tier.SMB, {"temperature": 0.9}, merge=True, actor="admin:k1")
    v2 = service.update(TENANT, Tier.SMB, {"top_k": 7}, merge=True, actor="admin:k2")
    assert (v1.version, v2.version) == (1, 2)
    assert (v2.config.temperature, v2.config.top_k) == (0.9, 7)
    assert v2.created_by == "admin:k2"
    assert v2.changed_fields == ["top_k"]
    versions, _ = service.versions(TENANT)
    assert [v.version for v in versions] == [2, 1]
    first = store.get_version(TENANT, 1)
    assert first is not None
    assert first.config.top_k == 5  # earlier versions are immutable


def test_replace_resets_unnamed_fields(service: ConfigService) -> None:
    service.update(TENANT, Tier.SMB, {"temperature": 0.9, "top_k": 8}, merge=True, actor="a")
    replaced = service.update(TENANT, Tier.SMB, {"temperature": 0.3}, merge=False, actor="a")
    assert (replaced.config.temperature, replaced.config.top_k) == (0.3, 5)
    assert replaced.mode == "replace"


def test_updates_beyond_the_tier_are_rejected_and_not_written(service: ConfigService, store: InMemoryConfigStore) -> None:
    with pytest.raises(TierLimitExceeded):
        service.update(TENANT, Tier.FREE, {"model": "gpt-4"}, merge=True, actor="a")
    assert store.writes == 0


def test_a_lost_race_is_retried_on_the_fresh_version_so_no_update_is_lost(service: ConfigService, store: InMemoryConfigStore) -> None:
    store.conflicts_to_inject = 2
    result = service.update(TENANT, Tier.SMB, {"temperature": 1.1}, merge=True, actor="a")
    assert result.version == 1
    assert result.config.temperature == 1.1


def test_persistent_conflicts_end_in_409(service: ConfigService, store: InMemoryConfigStore) -> None:
    store.conflicts_to_inject = 100
    with pytest.raises(Conflict) as caught:
        service.update(TENANT, Tier.SMB, {"temperature": 1.1}, merge=True, actor="a")
    assert caught.value.code == "version_conflict"


def test_if_match_mismatch_is_a_409_and_match_succeeds(service: ConfigService) -> None:
    service.update(TENANT, Tier.SMB, {"temperature": 0.1}, merge=True, actor="a")
    with pytest.raises(Conflict):
        service.update(TENANT, Tier.SMB, {"temperature": 0.2}, merge=True, actor="a", expected_version=0)
    assert service.update(TENANT, Tier.SMB, {"temperature": 0.2}, merge=True, actor="a", expected_version=1).version == 2


def test_concurrent_merges_of_different_fields_all_land(store: InMemoryConfigStore) -> None:
    service = ConfigService(store, ConfigCache(ttl_seconds=0))
    fields = [("temperature", 1.3), ("top_k", 9), ("alpha", 0.9), ("max_tokens", 321), ("enable_reranking", True), ("model", "gpt-4o")]
    barrier = threading.Barrier(len(fields))

    def write(field: str, value: object) -> None:
        barrier.wait()
        service.update(TENANT, Tier.SMB, {field: value}, merge=True, actor=field)

    with ThreadPoolExecutor(len(fields)) as pool:
        for future in [pool.submit(write, f, v) for f, v in fields]:
            future.result()
    final = service.get(TENANT)
    assert final.version == len(fields)
    for field, value in fields:
        assert getattr(final.config, field) == value


def test_rollback_restores_an_old_version_as_a_new_one(service: ConfigService) -> None:
    service.update(TENANT, Tier.SMB, {"temperature": 0.1}, merge=True, actor="a")
    service.update(TENANT, Tier.SMB, {"temperature": 0.2, "top_k": 9}, merge=True, actor="a")
    restored = service.rollback(TENANT, Tier.SMB, 1, actor="a")
    assert restored.version == 3
    assert restored.mode == "rollback"
    assert restored.rolled_back_from == 1
    assert (restored.config.temperature, restored.config.top_k) == (0.1, 5)
    assert service.rollback(TENANT, Tier.SMB, 0, actor="a").config.temperature == 0.7  # version 0 = defaults
    with pytest.raises(NotFound):
        service.rollback(TENANT, Tier.SMB, 99, actor="a")


def test_rollback_to_a_version_the_current_tier_forbids_is_rejected(service: ConfigService) -> None:
    service.update(TENANT, Tier.ENTERPRISE, {"model": "claude-3-opus"}, merge=True, actor="a")
    service.update(TENANT, Tier.FREE, {"model": "gpt-3.5-turbo"}, merge=True, actor="a")
    with pytest.raises(TierLimitExceeded):
        service.rollback(TENANT, Tier.FREE, 1, actor="a")


def test_clamp_to_tier_records_a_version_only_when_needed(service: ConfigService) -> None:
    assert service.clamp_to_tier(TENANT, Tier.FREE, actor="op") is None
    service.update(TENANT, Tier.ENTERPRISE, {"model": "claude-3-opus", "top_k": 15, "temperature": 0.3}, merge=True, actor="a")
    clamped = service.clamp_to_tier(TENANT, Tier.FREE, actor="op")
    assert clamped is not None
    assert clamped.mode == "tier_clamp"
    assert (clamped.config.model, clamped.config.top_k, clamped.config.temperature) == ("gpt-3.5-turbo", 5, 0.3)


# --- cache -----------------------------------------------------------------------------------


def test_cache_serves_hits_within_ttl_and_reloads_after(service: ConfigService, store: InMemoryConfigStore, clock: FakeClock) -> None:
    service.get(TENANT)
    service.get(TENANT)
    assert (service.cache.stats.misses, service.cache.stats.hits) == (1, 1)
    # another process writes a new version: within the TTL this process may still serve the old one...
    other = ConfigService(store, ConfigCache(ttl_seconds=300, clock=clock))
    other.update(TENANT, Tier.SMB, {"temperature": 1.5}, merge=True, actor="elsewhere")
    assert service.get(TENANT).version == 0
    # ...and after the TTL it must see it.
    clock.now += 301
    assert service.get(TENANT).config.temperature == 1.5
    assert service.cache.stats.misses == 2


def test_an_update_in_this_process_is_visible_immediately(service: ConfigService) -> None:
    service.get(TENANT)
    service.update(TENANT, Tier.SMB, {"temperature": 0.2}, merge=True, actor="a")
    assert service.get(TENANT).config.temperature == 0.2
    assert service.cache.stats.hits == 1


def test_cache_never_goes_back_to_an_older_version(clock: FakeClock) -> None:
    cache = ConfigCache(ttl_seconds=10, clock=clock)
    store = InMemoryConfigStore()
    service = ConfigService(store, cache)
    service.update(TENANT, Tier.SMB, {"temperature": 0.2}, merge=True, actor="a")
    service.update(TENANT, Tier.SMB, {"temperature": 0.3}, merge=True, actor="a")
    # A lagging read returns version 1 after we have seen version 2.
    stale = store.get_version(TENANT, 1)
    assert stale is not None
    clock.now += 11
    assert cache.store(TENANT, stale).version == 2
    assert cache.stats.stale_reads_ignored == 1


def test_storage_errors_fall_back_to_last_good_value_then_defaults(store: InMemoryConfigStore, clock: FakeClock) -> None:
    service = ConfigService(store, ConfigCache(ttl_seconds=1, clock=clock))
    service.update(TENANT, Tier.SMB, {"temperature": 0.2}, merge=True, actor="a")
    store.fail_reads = True
    clock.now += 5
    assert service.get(TENANT).config.temperature == 0.2  # last good value, though expired
    assert service.get("t000000000000002").version == 0  # never cached: defaults
    assert service.cache.stats.fallbacks == 2


def test_writes_fail_loudly_when_storage_is_down(service: ConfigService, store: InMemoryConfigStore) -> None:
    from raas.domain.errors import ServiceUnavailable

    store.fail_reads = True
    with pytest.raises(ServiceUnavailable):
        service.update(TENANT, Tier.SMB, {"temperature": 0.2}, merge=True, actor="a")
