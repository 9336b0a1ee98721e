"""Audit log entries: who did what to which tenant resource, and when. Immutable once written."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ConfigDict

from raas.domain.model import Model


class AuditEntry(Model):
    model_config = ConfigDict(frozen=True)

    entry_id: str
    at: datetime
    actor: str
    action: str
    target: str = ""
    details: dict[str, Any] = {}
