"""What both search adapters share: the per-tenant index name and its guard."""

from __future__ import annotations

from raas.domain import ids


class ForeignIndexError(PermissionError):
    """An index name that is not the calling tenant's own."""


def index_name(tenant_id: str) -> str:
    """`tenant_{id}_documents`: the only index an adapter will touch for this tenant."""
    if not ids.is_tenant_id(tenant_id):
        raise ForeignIndexError(f"refusing index access for {tenant_id!r}: not a tenant id")
    return f"tenant_{tenant_id}_documents"


def check_index(tenant_id: str, name: str) -> str:
    if name != index_name(tenant_id):
        raise ForeignIndexError(f"index {name!r} does not belong to tenant {tenant_id}")
    return name
