"""Tenant exports expire (tagged for the bucket's lifecycle rule, swept locally) and count in storage while they live."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from raas.bootstrap import services
from raas.domain import catalog
from raas.domain.export_retention import EXPORT_TAG_KEY, EXPORT_TAG_VALUE, export_expires_at, noncurrent_expires_at
from raas.local.schedules import LocalScheduler, local_export_sweeper
from tests.conftest import TenantHandle
from tests.helpers import ApiClient, expect

pytestmark = pytest.mark.usefixtures("aws")

TEXT = "Customers may request a refund within 30 days."


def _bucket() -> str:
    return str(services().settings.documents_bucket)


def _full_key(tenant: TenantHandle, key: str) -> str:
    return f"tenants/{tenant.tenant_id}/{key}"


def _export(api: ApiClient, tenant: TenantHandle) -> dict[str, Any]:
    exported: dict[str, Any] = expect(api.request("POST", "/v1/export", key=tenant.admin_key), 201)
    return exported


def _usage(api: ApiClient, tenant: TenantHandle) -> dict[str, Any]:
    usage: dict[str, Any] = expect(api.request("GET", "/v1/usage", key=tenant.admin_key), 200)
    return usage


def _size(tenant: TenantHandle, key: str) -> int:
    return int(boto3.client("s3").head_object(Bucket=_bucket(), Key=_full_key(tenant, key))["ContentLength"])


def _versions(tenant: TenantHandle, key: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    listed = boto3.client("s3").list_object_versions(Bucket=_bucket(), Prefix=_full_key(tenant, key))
    return listed.get("Versions", []), listed.get("DeleteMarkers", [])


def _with_document(api: ApiClient, tenant: TenantHandle) -> None:
    expect(api.request("POST", "/v1/documents", key=tenant.admin_key, json_body={"title": "Refunds", "text": TEXT}), 202)


def test_an_export_is_tagged_for_the_lifecycle_rule_and_documents_are_not(api: ApiClient, tenant_a: TenantHandle) -> None:
    _with_document(api, tenant_a)
    exported = _export(api, tenant_a)
    s3 = boto3.client("s3")
    tags = s3.get_object_tagging(Bucket=_bucket(), Key=_full_key(tenant_a, exported["key"]))["TagSet"]
    assert {"Key": EXPORT_TAG_KEY, "Value": EXPORT_TAG_VALUE} in tags
    (document,) = expect(api.request("GET", "/v1/documents", key=tenant_a.admin_key), 200)["documents"]
    listed = s3.list_objects_v2(Bucket=_bucket(), Prefix=f"tenants/{tenant_a.tenant_id}/documents/")["Contents"]
    for obj in listed:
        assert s3.get_object_tagging(Bucket=_bucket(), Key=obj["Key"])["TagSet"] == [], document


def test_a_live_export_counts_in_the_usage_report(api: ApiClient, tenant_a: TenantHandle) -> None:
    _with_document(api, tenant_a)
    before = _usage(api, tenant_a)
    assert (before["exports"], before["export_bytes"], before["stored_bytes"]) == (0, 0, len(TEXT))
    exported = _export(api, tenant_a)
    size = _size(tenant_a, exported["key"])
    after = _usage(api, tenant_a)
    assert (after["exports"], after["export_bytes"]) == (1, size)
    assert after["stored_bytes"] == len(TEXT) + size


def test_the_billed_storage_snapshot_includes_live_exports(api: ApiClient, tenant_a: TenantHandle) -> None:
    _with_document(api, tenant_a)
    exported = _export(api, tenant_a)
    day = datetime.now(UTC)
    services().metering_service.snapshot_storage(day)
    totals = services().usage_recorder.totals(tenant_a.tenant_id, day.strftime("%Y-%m"))
    assert totals["storage_byte_days"] == len(TEXT) + _size(tenant_a, exported["key"])


def test_the_storage_quota_includes_exports(api: ApiClient, tenant_a: TenantHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    _with_document(api, tenant_a)
    exported = _export(api, tenant_a)
    size = _size(tenant_a, exported["key"])
    real = catalog.tier_limits
    room = len(TEXT) + size + 5  # five bytes free once the export is counted; far more without it
    monkeypatch.setattr(catalog, "tier_limits", lambda tier: real(tier).model_copy(update={"max_storage_bytes": room}))
    refused = api.request("POST", "/v1/documents", key=tenant_a.admin_key, json_body={"title": "t", "text": "ten bytes!"})
    assert refused.status == 429
    assert refused.error_code == "quota_exceeded"
    again = api.request("POST", "/v1/export", key=tenant_a.admin_key)
    assert again.status == 429
    assert again.error_code == "quota_exceeded"
    assert _usage(api, tenant_a)["exports"] == 1  # the refused bundle was neither kept nor counted
    assert [k["Key"] for k in boto3.client("s3").list_objects_v2(Bucket=_bucket(), Prefix=_full_key(tenant_a, "exports/"))["Contents"]] == [
        _full_key(tenant_a, exported["key"])
    ]


def test_expiry_follows_s3s_rounding_to_midnight_utc() -> None:
    assert export_expires_at(datetime(2026, 1, 1, 10, 30, tzinfo=UTC)) == datetime(2026, 1, 9, tzinfo=UTC)
    assert export_expires_at(datetime(2026, 1, 1, tzinfo=UTC)) == datetime(2026, 1, 8, tzinfo=UTC)
    assert noncurrent_expires_at(datetime(2026, 1, 2, 11, 30, tzinfo=UTC)) == datetime(2026, 1, 4, tzinfo=UTC)


def test_the_local_sweep_expires_exports_like_the_lifecycle_rule(api: ApiClient, tenant_a: TenantHandle) -> None:
    _with_document(api, tenant_a)
    exported = _export(api, tenant_a)
    key = exported["key"]
    sweeper = local_export_sweeper()
    now = datetime.now(UTC)

    kept = sweeper.sweep(now + timedelta(days=6))
    assert (kept.expired, kept.removed, kept.released) == (0, 0, 0)
    assert _usage(api, tenant_a)["exports"] == 1

    expired = sweeper.sweep(now + timedelta(days=9))
    assert (expired.expired, expired.released) == (1, 1)
    versions, markers = _versions(tenant_a, key)
    assert len(versions) == 1
    assert not versions[0]["IsLatest"]
    assert len(markers) == 1
    assert markers[0]["IsLatest"]
    usage = _usage(api, tenant_a)
    assert (usage["exports"], usage["export_bytes"], usage["stored_bytes"]) == (0, 0, len(TEXT))

    removed = sweeper.sweep(datetime.now(UTC) + timedelta(days=3))
    assert (removed.removed, removed.released) == (1, 0)  # NoncurrentVersionExpiration; the bytes went back once
    versions, markers = _versions(tenant_a, key)
    assert versions == []
    assert len(markers) == 1
    # the tenant's document is untouched
    (document,) = expect(api.request("GET", "/v1/documents", key=tenant_a.admin_key), 200)["documents"]
    assert document["title"] == "Refunds"


def test_an_expired_export_gives_its_storage_back_when_the_tenant_reads_usage(
    api: ApiClient, tenant_a: TenantHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    _with_document(api, tenant_a)
    exported = _export(api, tenant_a)
    later = datetime.now(UTC) + timedelta(days=9)
    monkeypatch.setattr(services().export_service, "_now", lambda: later)
    usage = _usage(api, tenant_a)  # expiry checked at read: no sweep has run
    assert (usage["exports"], usage["export_bytes"], usage["stored_bytes"]) == (0, 0, len(TEXT))
    assert _versions(tenant_a, exported["key"])[1], "the bundle was removed (a delete marker) as S3's rule would"


def test_the_local_scheduler_runs_the_export_sweep(api: ApiClient, tenant_a: TenantHandle) -> None:
    scheduler = LocalScheduler()
    assert scheduler.export_sweeper.sweep_if_due(0.0) is not None
    assert scheduler.export_sweeper.sweep_if_due(1.0) is None  # not due again within the hour


def test_the_daily_snapshot_stops_billing_an_expired_export_even_if_the_tenant_never_returns(
    api: ApiClient, tenant_a: TenantHandle
) -> None:
    _with_document(api, tenant_a)
    _export(api, tenant_a)
    metering = services().metering_service  # the composition root has the snapshot release expired bundles first
    later = datetime.now(UTC) + timedelta(days=9)
    metering.snapshot_storage(later)
    assert services().usage_recorder.totals(tenant_a.tenant_id, later.strftime("%Y-%m"))["storage_byte_days"] == len(TEXT)
