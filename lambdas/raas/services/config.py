"""Tenant configuration service: versioned writes, rollback and a per-process TTL cache."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger

from raas.domain.catalog import Tier
from raas.domain.config import (
    ConfigVersion,
    TenantConfig,
    apply_update,
    changed_fields,
    check_tier,
    clamp_to_tier,
)
from raas.domain.errors import Conflict, NotFound, ServiceUnavailable
from raas.domain.events import ConfigChanged
from raas.domain.ports import AuditLog, ConfigStore, EventPublisher, VersionConflict
from raas.services.notify import announce

logger = Logger(service="raas")

DEFAULT_VERSION = 0
_WRITE_ATTEMPTS = 8
_BACKOFF_SECONDS = 0.01


def default_version() -> ConfigVersion:
    return ConfigVersion(
        version=DEFAULT_VERSION,
        config=TenantConfig(),
        created_at=datetime(1970, 1, 1, tzinfo=UTC),
        created_by="raas",
        mode="default",
    )


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    stale_reads_ignored: int = 0
    fallbacks: int = 0


@dataclass
class _Entry:
    value: ConfigVersion
    loaded_at: float


@dataclass
class ConfigCache:
    """Per-process cache. Never serves a version older than the newest one it has seen."""

    ttl_seconds: float = 300.0
    clock: Callable[[], float] = time.monotonic
    stats: CacheStats = field(default_factory=CacheStats)
    _entries: dict[str, _Entry] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fresh(self, tenant_id: str) -> ConfigVersion | None:
        with self._lock:
            entry = self._entries.get(tenant_id)
            if entry and self.clock() - entry.loaded_at < self.ttl_seconds:
                self.stats.hits += 1
                return entry.value
            self.stats.misses += 1
            return None

    def last_known(self, tenant_id: str) -> ConfigVersion | None:
        with self._lock:
            entry = self._entries.get(tenant_id)
            return entry.value if entry else None

    def store(self, tenant_id: str, value: ConfigVersion) -> ConfigVersion:
        """Caches `value` unless a newer version is known; returns what callers should use."""
        with self._lock:
            entry = self._entries.get(tenant_id)
            if entry and entry.value.version > value.version:
                self.stats.stale_reads_ignored += 1
                entry.loaded_at = self.clock()
                return entry.value
            self._entries[tenant_id] = _Entry(value, self.clock())
            return value

    def invalidate(self, tenant_id: str) -> None:
        with self._lock:
            self._entries.pop(tenant_id, None)

    def forget(self, tenant_ids: Collection[str | None]) -> None:
        """Forgets these tenants' configs; all of them when None (no tenant in particular) is among them."""
        if None in tenant_ids:
            self.clear()
            return
        with self._lock:
            for tenant_id in tenant_ids:
                self._entries.pop(str(tenant_id), None)

    def clear(self) -> None:
        """Forgets every tenant's config (`raas local`'s workers, when another process wrote the tenants table)."""
        with self._lock:
            self._entries.clear()


class ConfigService:
    def __init__(
        self,
        store: ConfigStore,
        cache: ConfigCache,
        clock: Callable[[], datetime] | None = None,
        audit: AuditLog | None = None,
        events: EventPublisher | None = None,
    ):
        self.events = events  # config.changed for tenants' webhooks (best effort)
        self.store = store
        self.cache = cache
        self.audit = audit
        self._now = clock or (lambda: datetime.now(UTC))

    # --- reads -------------------------------------------------------------------------
    def get(self, tenant_id: str) -> ConfigVersion:
        """Current config: cached, else read; on a storage error the last good value or the defaults."""
        cached = self.cache.fresh(tenant_id)
        if cached is not None:
            return cached
        try:
            loaded = self.store.current(tenant_id) or default_version()
        except Exception:  # storage is down: degrade, never fail a query over config
            self.cache.stats.fallbacks += 1
            fallback = self.cache.last_known(tenant_id)
            logger.exception(
                "config read failed; serving fallback",
                extra={"tenant_id": tenant_id, "fallback": "cached" if fallback else "defaults"},
            )
            return fallback or default_version()
        return self.cache.store(tenant_id, loaded)

    def versions(self, tenant_id: str, limit: int = 50, cursor: str | None = None) -> tuple[list[ConfigVersion], str | None]:
        return self.store.list_versions(tenant_id, limit, cursor)

    def version(self, tenant_id: str, version: int) -> ConfigVersion:
        """One past (or the current) version; 0 is the defaults, as for rollback."""
        if version == DEFAULT_VERSION:
            return default_version()
        found = self.store.get_version(tenant_id, version)
        if found is None:
            raise NotFound(f"configuration version {version} does not exist", code="version_not_found")
        return found

    # --- writes ------------------------------------------------------------------------
    def update(
        self,
        tenant_id: str,
        tier: Tier,
        update: dict[str, Any],
        *,
        merge: bool,
        actor: str,
        expected_version: int | None = None,
    ) -> ConfigVersion:
        """Applies a merge/replace update as a new version.

        Without `expected_version`, a lost race is retried on the fresh current version, so
        concurrent merges both land (no update is lost). With it (If-Match), a mismatch is a 409.
        """

        def build(current: ConfigVersion) -> tuple[TenantConfig, str, int | None]:
            if expected_version is not None and current.version != expected_version:
                raise Conflict(
                    f"configuration is at version {current.version}, not {expected_version}",
                    code="version_conflict",
                    details=[{"field": "If-Match", "message": f"current version is {current.version}"}],
                )
            new_config = apply_update(current.config, update, merge=merge)
            check_tier(new_config, tier)
            return new_config, "merge" if merge else "replace", None

        return self._write(tenant_id, actor, build)

    def rollback(self, tenant_id: str, tier: Tier, version: int, *, actor: str) -> ConfigVersion:
        target = self.version(tenant_id, version)
        check_tier(target.config, tier)
        return self._write(tenant_id, actor, lambda _current: (target.config, "rollback", version))

    def clamp_to_tier(self, tenant_id: str, tier: Tier, *, actor: str) -> ConfigVersion | None:
        """After a tier change: records a clamped version if the config exceeds the new tier."""
        current = self._read_current(tenant_id)
        clamped = clamp_to_tier(current.config, tier)
        if clamped == current.config:
            return None
        return self._write(tenant_id, actor, lambda cur: (clamp_to_tier(cur.config, tier), "tier_clamp", None))

    def _read_current(self, tenant_id: str) -> ConfigVersion:
        try:
            return self.store.current(tenant_id) or default_version()
        except Exception as exc:
            raise ServiceUnavailable("configuration store is unavailable; try again") from exc

    def _write(
        self,
        tenant_id: str,
        actor: str,
        build: Callable[[ConfigVersion], tuple[TenantConfig, str, int | None]],
    ) -> ConfigVersion:
        for attempt in range(_WRITE_ATTEMPTS):
            current = self._read_current(tenant_id)
            new_config, mode, rolled_back_from = build(current)
            new_version = ConfigVersion(
                version=current.version + 1,
                config=new_config,
                created_at=self._now(),
                created_by=actor,
                mode=mode,
                changed_fields=changed_fields(current.config, new_config),
                rolled_back_from=rolled_back_from,
            )
            try:
                self.store.write(tenant_id, new_version, expected_current=current.version)
            except VersionConflict:
                logger.info("config write lost a race; retrying", extra={"tenant_id": tenant_id, "attempt": attempt + 1})
                # full jitter, so writers that collided do not collide again in lockstep
                time.sleep(random.uniform(0, _BACKOFF_SECONDS * 2**attempt))  # noqa: S311 - not cryptographic
                continue
            self.cache.store(tenant_id, new_version)
            if self.audit is not None:
                details = {"changed_fields": new_version.changed_fields, "rolled_back_from": rolled_back_from}
                self.audit.record(tenant_id, actor, f"config.{mode}", f"v{new_version.version}", details)
            announce(
                self.events,
                ConfigChanged(
                    event_id=f"config-changed-{tenant_id}-v{new_version.version}",
                    tenant_id=tenant_id,
                    actor=actor,
                    config_version=new_version.version,
                    mode=mode,
                    changed_fields=list(new_version.changed_fields),
                ),
            )
            return new_version
        raise Conflict("configuration is being changed concurrently; try again", code="version_conflict")
