"""Audit log entries: who did what to which tenant resource, and when. Immutable once written."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class AuditEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    entry_id: str
    at: datetime
    actor: str
    action: str
    target: str = ""
    details: dict[str, Any] = {}
