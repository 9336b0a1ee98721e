"""Plays EventBridge's schedules for the local platform, from the same SCHEDULES table the CDK
app turns into rules. `rate(...)` schedules run at their rate; cron schedules (daily metering,
monthly invoicing) run hourly here: their work is idempotent per day and per period, so
running them more often than in AWS changes nothing but how soon their effect shows.
The same thread runs DynamoDB's TTL expiry (raas.local.ttl_sweeper) and the documents bucket's
export lifecycle rule (raas.local.export_expiry), which moto never does, hands the memory the
process freed back to the operating system and keeps full garbage collections off requests (raas.local.memory)."""

from __future__ import annotations

import re
import threading
import time
from datetime import datetime

from aws_lambda_powertools import Logger

from raas.handlers.registry import SCHEDULES, load_event_handler
from raas.local.aws import table_names
from raas.local.export_expiry import ExportExpirySweeper
from raas.local.invocation import lambda_context
from raas.local.memory import FreeMemoryReturner
from raas.local.ttl_sweeper import TtlSweeper

logger = Logger(service="raas")

_UNITS = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}
CRON_INTERVAL_SECONDS = 3600


def interval_seconds(expression: str) -> int:
    match = re.fullmatch(r"rate\((\d+) (\w+)\)", expression)
    if match:
        return int(match.group(1)) * _UNITS[match.group(2)]
    return CRON_INTERVAL_SECONDS


def local_export_sweeper() -> ExportExpirySweeper:
    """The export lifecycle sweep over the platform's bucket, releasing storage for every tenant not deleted."""
    from raas.bootstrap import services
    from raas.domain.tenants import TenantStatus
    from raas.services.metering import all_tenants

    def tenant_ids() -> list[str]:
        return [t.tenant_id for t in all_tenants(services().tenant_store) if t.status is not TenantStatus.DELETED]

    def release(tenant_id: str, now: datetime) -> int:
        return len(services().export_service.release_expired(tenant_id, now))

    return ExportExpirySweeper(lambda: services().settings.documents_bucket, tenant_ids, release)


class LocalScheduler:
    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.next_run = {name: time.monotonic() + min(60, interval_seconds(expr)) for name, (_f, expr, _p) in SCHEDULES.items()}
        # DynamoDB's own background work, which moto does not do: expiring items by TTL
        self.ttl_sweeper = TtlSweeper(lambda: list(table_names()))
        # S3's: the documents bucket's lifecycle rule for export bundles (moto stores rules, never runs them)
        self.export_sweeper = local_export_sweeper()
        # glibc's: free memory kept in malloc's arenas would otherwise grow the resident set with every document;
        # and CPython's: surviving objects frozen, so a full collection does not walk moto's whole state inside a request
        self.memory = FreeMemoryReturner()

    def run_due(self, now: float | None = None) -> list[str]:
        """Runs every schedule that is due; returns their names."""
        now = time.monotonic() if now is None else now
        ran = []
        for name, (function, expression, payload) in SCHEDULES.items():
            if now < self.next_run[name]:
                continue
            self.next_run[name] = now + interval_seconds(expression)
            try:
                load_event_handler(function)(dict(payload), lambda_context(f"raas-{function}"))
                ran.append(name)
            except Exception:  # a failed run is retried at its next turn, as the next scheduled event would
                logger.exception("scheduled run failed", extra={"schedule": name})
        return ran

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="raas-scheduler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(5):
            self.run_due()
            self.ttl_sweeper.sweep_if_due()
            self.export_sweeper.sweep_if_due()
            self.memory.trim_if_due()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)
