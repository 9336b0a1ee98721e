"""What the lifecycle function does with each tenant event: provision, suspend, resume, move
tier, delete. Every step is idempotent: it reads the tenant's current state and brings the
resources in line with it, so a repeated or reordered event changes nothing twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Protocol, TypeVar

from aws_lambda_powertools import Logger

from raas.domain.errors import NotFound
from raas.domain.events import (
    PlatformEvent,
    TenantCreated,
    TenantDeleted,
    TenantDeletionRequested,
    TenantProvisioned,
    TenantResumed,
    TenantSuspended,
    TenantTierChanged,
)
from raas.domain.ports import BillingProvider, EventPublisher, SearchIndex, TenantPurger, TenantStore, UsagePlans, VersionConflict
from raas.domain.tenants import DeletionReceipt, DeletionStep, Tenant, TenantStatus
from raas.services.config import ConfigService

logger = Logger(service="raas")

Clock = Callable[[], datetime]
T = TypeVar("T")


class Keyring(Protocol):
    def ensure(self, tenant_id: str) -> str: ...

    def schedule_deletion(self, tenant_id: str) -> tuple[str, str] | None: ...


class Exporter(Protocol):
    def export_for_deletion(self, tenant_id: str) -> str:
        """Writes the tenant's export bundle where it outlives the tenant; returns its object key."""


# Deletion steps in the order they run. Keys and configuration go with the tables step.
STEP_ATTEMPTS = 3
STEP_BACKOFF_SECONDS = 0.2

DELETION_STEPS = (
    "export",
    "billing_flush",  # unsent usage reaches the payment provider before the outbox items go
    "search_index",
    "s3_objects",
    "dynamodb_items",
    "usage_plan_key",
    "billing_customer",
    "kms_key",
)


class FinalBilling(Protocol):
    def flush_tenant(self, tenant_id: str, customer_id: str) -> int: ...


class LifecycleService:
    def __init__(
        self,
        tenants: TenantStore,
        configs: ConfigService,
        keyring: Keyring,
        search: SearchIndex,
        purger: TenantPurger,
        events: EventPublisher,
        usage_plans: UsagePlans | None = None,
        billing: BillingProvider | None = None,
        exporter: Exporter | None = None,
        final_billing: FinalBilling | None = None,
        tenants_table: str = "",
        clock: Clock = lambda: datetime.now(UTC),
        sleep: Callable[[float], None] = time.sleep,
    ):
        self._sleep = sleep
        self.tenants = tenants
        self.configs = configs
        self.keyring = keyring
        self.search = search
        self.purger = purger
        self.events = events
        self.usage_plans = usage_plans
        self.billing = billing
        self.exporter = exporter
        self.final_billing = final_billing
        self.tenants_table = tenants_table
        self._now = clock

    def handle(self, event: PlatformEvent) -> str:
        """Runs the work for one event; returns what it did (for logs and the idempotency record)."""
        tenant = self.tenants.get_tenant(event.tenant_id)
        if tenant is None:
            logger.warning("event for an unknown tenant", extra={"tenant_id": event.tenant_id})
            return "unknown_tenant"
        if isinstance(event, TenantCreated):
            return self.provision(tenant)
        if isinstance(event, TenantSuspended | TenantResumed):
            return self.sync_access(tenant)
        if isinstance(event, TenantTierChanged):
            return self.sync_tier(tenant, event)
        if isinstance(event, TenantDeletionRequested):
            return self.delete(tenant)
        return "ignored"

    # --- provisioning ------------------------------------------------------------------------
    def provision(self, tenant: Tenant) -> str:
        if tenant.status is not TenantStatus.PROVISIONING:
            return f"already {tenant.status.value}"
        tenant_id = tenant.tenant_id
        self._retrying(tenant_id, "kms_key", lambda: self.keyring.ensure(tenant_id))
        self._retrying(tenant_id, "search_index", lambda: self.search.ensure_index(tenant_id))
        plans, billing = self.usage_plans, self.billing
        if plans is not None and not tenant.usage_key_id:
            # Saved at once, so a retry after a later failure does not make a second key.
            usage_key = self._retrying(tenant_id, "usage_plan_key", lambda: plans.create(tenant_id, tenant.tier.value))
            tenant = self.tenants.update_tenant(tenant_id, usage_key=usage_key)
        if billing is not None and not tenant.stripe_customer_id:
            customer = self._retrying(tenant_id, "billing_customer", lambda: billing.ensure_customer(tenant_id, tenant.name))
            tenant = self.tenants.update_tenant(tenant_id, fields={"stripe_customer_id": customer})
        try:
            self.tenants.update_tenant(tenant.tenant_id, status=TenantStatus.ACTIVE, expected_status=(TenantStatus.PROVISIONING,))
        except VersionConflict:
            return "status moved on meanwhile"
        self.events.publish(TenantProvisioned(tenant_id=tenant.tenant_id, tier=tenant.tier))
        return "provisioned"

    # --- suspend, resume, tier ---------------------------------------------------------------
    def sync_access(self, tenant: Tenant) -> str:
        """The usage-plan key follows the tenant's status, whichever event arrives last."""
        if tenant.status not in (TenantStatus.ACTIVE, TenantStatus.SUSPENDED):
            return f"skipped ({tenant.status.value})"
        enabled = tenant.status is TenantStatus.ACTIVE
        if self.usage_plans is not None and tenant.usage_key_id:
            self.usage_plans.set_enabled(tenant.usage_key_id, enabled)
        return "usage key enabled" if enabled else "usage key disabled"

    def sync_tier(self, tenant: Tenant, event: TenantTierChanged) -> str:
        if tenant.status.gone:
            return f"skipped ({tenant.status.value})"
        if self.usage_plans is not None and tenant.usage_key_id and event.previous_tier != tenant.tier:
            self.usage_plans.move(tenant.usage_key_id, event.previous_tier.value, tenant.tier.value)
        clamped = self.configs.clamp_to_tier(tenant.tenant_id, tenant.tier, actor=event.actor)
        return f"tier {tenant.tier.value}" + (f", config clamped to v{clamped.version}" if clamped else "")

    # --- deletion ----------------------------------------------------------------------------
    def delete(self, tenant: Tenant) -> str:
        if tenant.status is TenantStatus.DELETED:
            return "already deleted"
        if tenant.status is not TenantStatus.DELETING:
            return f"skipped ({tenant.status.value})"
        tenant_id = tenant.tenant_id
        done = dict(tenant.deletion_steps)
        for name in DELETION_STEPS:
            if name in done:
                continue
            count, detail = self._retrying(tenant_id, name, partial(self._run_step, tenant, name))
            step = DeletionStep(step=name, count=count, completed_at=self._now(), detail=detail)
            self.tenants.record_deletion_step(tenant_id, step)
            done[name] = step
            logger.info("deletion step done", extra={"tenant_id": tenant_id, "step": name, "count": count})
        # Once more before the receipt says the index is gone: an ingest that checked the tenant before it turned
        # `deleting` may have written (and so re-created the index) after the search_index step. Such an ingest
        # also drops it itself when it sees the status (services/ingest.py); this covers one that crashed first.
        self._retrying(tenant_id, "search_index", lambda: self.search.drop_index(tenant_id))
        export = done.get("export")
        receipt = DeletionReceipt(
            tenant_id=tenant_id,
            requested_at=tenant.deletion_requested_at or self._now(),
            completed_at=self._now(),
            steps=[done[name] for name in DELETION_STEPS],
            export_key=export.detail if export and export.count else None,
            notes=[
                "S3 objects (every version) are deleted and were encrypted with the tenant's own KMS key, now scheduled for "
                "deletion: any copy or backup of them becomes unreadable when the key is deleted.",
                "DynamoDB items and the search index are deleted outright; those stores are encrypted per table or collection, "
                "not per tenant, so they are not crypto-shredded.",
            ],
        )
        try:
            self.tenants.update_tenant(
                tenant_id,
                status=TenantStatus.DELETED,
                expected_status=(TenantStatus.DELETING,),
                fields={"deletion_receipt": receipt},
                remove=("usage_key_id", "usage_key_value", "stripe_customer_id", "deletion_steps"),
            )
        except VersionConflict:
            return "already deleted"
        self.events.publish(TenantDeleted(tenant_id=tenant_id))
        return "deleted"

    def _retrying(self, tenant_id: str, step: str, work: Callable[[], T]) -> T:
        """A step that fails is tried again with backoff; after the last try the event fails and
        Lambda's own retries (then the function's DLQ) take over, resuming at this step."""
        for attempt in range(1, STEP_ATTEMPTS + 1):
            try:
                return work()
            except Exception as exc:
                if attempt == STEP_ATTEMPTS:
                    raise
                logger.warning("lifecycle step failed; retrying", extra={"tenant_id": tenant_id, "step": step, "error": str(exc)})
                self._sleep(STEP_BACKOFF_SECONDS * 2 ** (attempt - 1))
        raise AssertionError("unreachable")

    def _run_step(self, tenant: Tenant, name: str) -> tuple[int, str]:
        tenant_id = tenant.tenant_id
        if name == "export":
            if not tenant.deletion_export or self.exporter is None:
                return 0, "not requested"
            return 1, self.exporter.export_for_deletion(tenant_id)
        if name == "billing_flush":
            if self.final_billing is None or not tenant.stripe_customer_id:
                return 0, "none"
            return self.final_billing.flush_tenant(tenant_id, tenant.stripe_customer_id), "usage entries reported"
        if name == "search_index":
            self.search.drop_index(tenant_id)
            return 1, f"tenant_{tenant_id}_documents"
        if name == "s3_objects":
            return self.purger.delete_objects(tenant_id), f"tenants/{tenant_id}/ (all versions)"
        if name == "dynamodb_items":
            counts = self.purger.delete_items(tenant_id, keep=((self.tenants_table, "PROFILE"),))
            return sum(counts.values()), ", ".join(f"{table}: {n}" for table, n in sorted(counts.items()))
        if name == "usage_plan_key":
            if self.usage_plans is None or not tenant.usage_key_id:
                return 0, "none"
            return int(self.usage_plans.delete(tenant.usage_key_id)), tenant.usage_key_id
        if name == "billing_customer":
            if self.billing is None or not tenant.stripe_customer_id:
                return 0, "none"
            return int(self.billing.archive_customer(tenant.stripe_customer_id)), tenant.stripe_customer_id
        if name == "kms_key":
            scheduled = self.keyring.schedule_deletion(tenant_id)
            if scheduled is None:
                return 0, "none"
            key_id, when = scheduled
            return 1, f"{key_id} deletion scheduled for {when}"
        raise NotFound(f"unknown deletion step {name}")
