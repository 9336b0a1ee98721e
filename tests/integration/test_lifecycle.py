"""Tenant lifecycle on the platform bus: provisioning, suspend/resume, tier change, deletion,
the routing table, idempotent and retried steps, audit log and export (moto + embedded search)."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import boto3
import pytest

from raas.adapters.objects import TENANT_KEY_ALIAS
from raas.adapters.registry import tenant_pk
from raas.bootstrap import services
from raas.domain.errors import NotFound
from raas.domain.events import EVENT_TYPES, TenantCreated, TenantDeletionRequested, eventbridge_envelope
from raas.domain.tenants import TenantStatus
from raas.handlers.registry import EVENT_HANDLERS, EVENT_ROUTES, load_event_handler
from raas.local.invocation import lambda_context
from raas.services.documents import object_key
from raas.services.lifecycle import DELETION_STEPS, LifecycleService
from tests.conftest import OPERATOR_KEY, TenantHandle, create_tenant
from tests.helpers import ApiClient, expect, local_bus, rebuild_services

pytestmark = pytest.mark.usefixtures("aws")


def test_every_event_type_has_a_route_and_every_route_a_function() -> None:
    assert set(EVENT_ROUTES) == set(EVENT_TYPES)
    for functions in EVENT_ROUTES.values():
        assert set(functions) <= set(EVENT_HANDLERS)
    for function in {f for fs in EVENT_ROUTES.values() for f in fs}:
        assert callable(load_event_handler(function))


def test_creating_a_tenant_provisions_it_through_the_bus(api: ApiClient) -> None:
    tenant = create_tenant(api, "acme", "smb")
    shown = expect(api.request("GET", f"/v1/tenants/{tenant.tenant_id}", key=OPERATOR_KEY), 200)
    assert shown["status"] == "active"
    kms = boto3.client("kms").describe_key(KeyId=TENANT_KEY_ALIAS.format(tenant_id=tenant.tenant_id))["KeyMetadata"]
    assert kms["KeyState"] == "Enabled"
    delivered = local_bus().delivered
    assert ("lifecycle", "TenantCreated") in delivered
    assert ("audit", "TenantCreated") in delivered
    assert ("audit", "TenantProvisioned") in delivered
    actions = [e["action"] for e in expect(api.request("GET", "/v1/audit", key=tenant.admin_key), 200)["entries"]]
    assert {"lifecycle.TenantCreated", "lifecycle.TenantProvisioned"} <= set(actions)


def test_suspend_and_resume_gate_the_tenants_keys(api: ApiClient, tenant_a: TenantHandle) -> None:
    expect(api.request("POST", f"/v1/tenants/{tenant_a.tenant_id}/suspend", key=OPERATOR_KEY), 200)
    refused = api.request("GET", "/v1/config", key=tenant_a.admin_key)
    assert (refused.status, refused.json()["error"]["code"]) == (403, "tenant_suspended")
    expect(api.request("POST", f"/v1/tenants/{tenant_a.tenant_id}/resume", key=OPERATOR_KEY), 200)
    expect(api.request("GET", "/v1/config", key=tenant_a.admin_key), 200)
    actions = [e["action"] for e in expect(api.request("GET", "/v1/audit", key=tenant_a.admin_key), 200)["entries"]]
    assert actions[:2] == ["lifecycle.TenantResumed", "lifecycle.TenantSuspended"]  # newest first


def test_a_tier_change_clamps_the_config_with_a_recorded_version(api: ApiClient, tenant_a: TenantHandle) -> None:
    expect(api.request("PATCH", "/v1/config", key=tenant_a.admin_key, json_body={"top_k": 18, "model": "claude-opus-4"}), 200)
    expect(api.request("PATCH", f"/v1/tenants/{tenant_a.tenant_id}", key=OPERATOR_KEY, json_body={"tier": "smb"}), 200)
    config = expect(api.request("GET", "/v1/config", key=tenant_a.admin_key), 200)
    assert config["config"]["top_k"] == 10
    versions = expect(api.request("GET", "/v1/config/versions", key=tenant_a.admin_key), 200)["versions"]
    assert versions[0]["mode"] == "tier_clamp"
    assert versions[0]["created_by"].startswith("operator:")


def _give_data(api: ApiClient, tenant: TenantHandle, ingest: Any) -> str:
    document = expect(api.request("POST", "/v1/documents", key=tenant.admin_key, json_body={"title": "t", "text": "alpha beta gamma"}), 202)
    ingest.drain()
    # a second version of the same object, and a query with history, usage and cache entries
    expect(api.request("POST", "/v1/query", key=tenant.admin_key, json_body={"query": "alpha"}), 200)
    expect(api.request("PATCH", "/v1/config", key=tenant.admin_key, json_body={"top_k": 3}), 200)
    expect(api.request("POST", "/v1/keys", key=tenant.admin_key, json_body={"name": "second", "role": "reader"}), 201)
    return str(document["document_id"])


def _items_of(tenant_id: str) -> dict[str, list[str]]:
    dynamodb = boto3.client("dynamodb")
    found: dict[str, list[str]] = {}
    for table in services().settings.table_names().values():
        items = dynamodb.scan(TableName=table).get("Items", [])
        found[table] = [i["SK"]["S"] for i in items if i.get("PK", {}).get("S") == tenant_pk(tenant_id)]
    return found


def _object_versions(tenant_id: str) -> int:
    listed = boto3.client("s3").list_object_versions(Bucket=services().settings.documents_bucket, Prefix=f"tenants/{tenant_id}/")
    return len(listed.get("Versions", [])) + len(listed.get("DeleteMarkers", []))


@pytest.mark.usefixtures("chat")
def test_deleting_a_tenant_removes_everything_and_leaves_a_receipt(
    api: ApiClient, tenant_a: TenantHandle, tenant_b: TenantHandle, ingest_queue: Any
) -> None:
    _give_data(api, tenant_a, ingest_queue)
    _give_data(api, tenant_b, ingest_queue)
    assert _object_versions(tenant_a.tenant_id) > 0
    b_items_before = _items_of(tenant_b.tenant_id)

    accepted = api.request("DELETE", f"/v1/tenants/{tenant_a.tenant_id}", key=OPERATOR_KEY, json_body={"export_first": True})
    assert accepted.status == 202
    assert accepted.json()["status"] in ("deleting", "deleted")

    shown = expect(api.request("GET", f"/v1/tenants/{tenant_a.tenant_id}", key=OPERATOR_KEY), 200)
    assert shown["status"] == "deleted"
    receipt = shown["deletion_receipt"]
    steps = {s["step"]: s for s in receipt["steps"]}
    assert list(steps) == list(DELETION_STEPS)
    assert steps["s3_objects"]["count"] >= 1
    assert steps["dynamodb_items"]["count"] >= 5
    assert steps["kms_key"]["count"] == 1
    assert receipt["export_key"].startswith(f"retained/{tenant_a.tenant_id}/")
    assert any("crypto" in note or "KMS" in note for note in receipt["notes"])

    # Nothing of A is left but its tombstone; B is untouched.
    assert _object_versions(tenant_a.tenant_id) == 0
    leftovers = {t: sks for t, sks in _items_of(tenant_a.tenant_id).items() if sks}
    assert leftovers == {services().settings.tenants_table: ["PROFILE"]}
    assert _items_of(tenant_b.tenant_id) == b_items_before
    key = boto3.client("kms").describe_key(KeyId=TENANT_KEY_ALIAS.format(tenant_id=tenant_a.tenant_id))["KeyMetadata"]
    assert key["KeyState"] == "PendingDeletion"
    assert api.request("GET", "/v1/config", key=tenant_a.admin_key).status == 401
    assert expect(api.request("GET", "/v1/documents", key=tenant_b.admin_key), 200)["documents"]
    # The export bundle outlived the tenant and holds its documents.
    bundle = boto3.client("s3").get_object(Bucket=services().settings.documents_bucket, Key=receipt["export_key"])["Body"].read()
    assert "documents.jsonl" in zipfile.ZipFile(io.BytesIO(bundle)).namelist()
    # A second DELETE starts nothing new.
    again = api.request("DELETE", f"/v1/tenants/{tenant_a.tenant_id}", key=OPERATOR_KEY)
    assert (again.status, again.json()["status"]) == (202, "deleted")


def test_a_deleting_tenants_objects_and_key_cannot_be_used(api: ApiClient, tenant_a: TenantHandle, ingest_queue: Any) -> None:
    document_id = _give_data_without_query(api, tenant_a, ingest_queue)
    objects = services().object_store
    key = object_key(document_id)
    assert objects.size(tenant_a.tenant_id, key)
    # moto still decrypts with a key scheduled for deletion, so the adapters ask the registry first.
    services().tenant_store.update_tenant(tenant_a.tenant_id, status=TenantStatus.DELETING)
    with pytest.raises(NotFound):
        objects.get(tenant_a.tenant_id, key, 10_000)
    with pytest.raises(NotFound):
        services().keyring.key_arn(tenant_a.tenant_id)
    with pytest.raises(NotFound):
        objects.put(tenant_a.tenant_id, "documents/new", b"x", "text/plain")


def _give_data_without_query(api: ApiClient, tenant: TenantHandle, ingest: Any) -> str:
    document = expect(api.request("POST", "/v1/documents", key=tenant.admin_key, json_body={"title": "t", "text": "alpha beta"}), 202)
    ingest.drain()
    return str(document["document_id"])


class FailOnce:
    """Wraps an adapter so each named method raises on its first call, then works."""

    def __init__(self, inner: Any, methods: tuple[str, ...]):
        self.inner = inner
        self.pending = set(methods)

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.inner, name)
        if name not in self.pending:
            return attribute

        def failing(*args: Any, **kwargs: Any) -> Any:
            self.pending.discard(name)
            raise ConnectionError(f"injected failure in {name}")

        return failing


@pytest.mark.usefixtures("chat")
def test_each_deletion_step_failing_once_and_each_event_twice_ends_the_same(
    api: ApiClient, tenant_a: TenantHandle, ingest_queue: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _give_data(api, tenant_a, ingest_queue)
    real = services().lifecycle_service
    flaky = LifecycleService(
        real.tenants,
        real.configs,
        FailOnce(real.keyring, ("schedule_deletion",)),
        FailOnce(real.search, ("drop_index",)),
        FailOnce(real.purger, ("delete_objects", "delete_items")),
        real.events,
        exporter=FailOnce(real.exporter, ("export_for_deletion",)),
        tenants_table=real.tenants_table,
        sleep=lambda _seconds: None,
    )
    rebuild_services(lifecycle_service=flaky)
    services().tenant_service.request_deletion(tenant_a.tenant_id, export_first=True, actor="operator:test")
    # Each failing step was retried in place until it passed.
    tenant = services().tenant_store.get_tenant(tenant_a.tenant_id)
    assert tenant is not None
    assert tenant.status is TenantStatus.DELETED
    assert not local_bus().dead_letters
    first_receipt = tenant.deletion_receipt
    assert first_receipt is not None
    assert next(s for s in first_receipt.steps if s.step == "s3_objects").count >= 1

    # Deliver the same deletion event again, through the handler: nothing changes, nothing is redone.
    handler = load_event_handler("lifecycle")
    envelope = eventbridge_envelope(TenantDeletionRequested(tenant_id=tenant_a.tenant_id, export_first=True), "raas-local")
    handler(envelope, lambda_context("raas-lifecycle"))
    handler(envelope, lambda_context("raas-lifecycle"))
    again = services().tenant_store.get_tenant(tenant_a.tenant_id)
    assert again is not None
    assert again.deletion_receipt == first_receipt
    assert {t: sks for t, sks in _items_of(tenant_a.tenant_id).items() if sks} == {services().settings.tenants_table: ["PROFILE"]}
    assert _object_versions(tenant_a.tenant_id) == 0


def test_a_repeated_creation_event_provisions_once(api: ApiClient) -> None:
    tenant = create_tenant(api, "twice", "free")
    handler = load_event_handler("lifecycle")
    envelope = eventbridge_envelope(TenantCreated(tenant_id=tenant.tenant_id, tier="free"), "raas-local")
    first = handler(envelope, lambda_context("raas-lifecycle"))
    second = handler(envelope, lambda_context("raas-lifecycle"))
    assert first == second == {"outcome": "already active"}
    aliases = [a["AliasName"] for a in boto3.client("kms").list_aliases()["Aliases"] if tenant.tenant_id in a["AliasName"]]
    assert len(aliases) == 1


def test_idempotency_records_are_keyed_by_tenant(api: ApiClient) -> None:
    """Two tenants' events with the same event id must not share a cached outcome."""
    a = create_tenant(api, "a", "free")
    b = create_tenant(api, "b", "free")
    handler = load_event_handler("audit")
    for tenant in (a, b):
        handler(
            eventbridge_envelope(TenantCreated(event_id="same-event-id-1", tenant_id=tenant.tenant_id, tier="free"), "x"),
            lambda_context("raas-audit"),
        )
    for tenant in (a, b):
        entries = expect(api.request("GET", "/v1/audit?limit=100", key=tenant.admin_key), 200)["entries"]
        assert sum(1 for e in entries if e["action"] == "lifecycle.TenantCreated") == 2  # the bus's and ours, not one shared


def test_a_failing_target_is_dead_lettered_after_its_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    bus = local_bus()

    def broken(_event: Any) -> str:
        raise RuntimeError("lifecycle is broken")

    rebuild_services(lifecycle_service=type("S", (), {"handle": staticmethod(broken)})())
    bus.publish(TenantCreated(tenant_id="t000000000000001", tier="free"))
    assert [d.function for d in bus.dead_letters] == ["lifecycle"]
    assert "lifecycle is broken" in bus.dead_letters[0].error


def test_queued_targets_never_hold_up_the_publisher(monkeypatch: pytest.MonkeyPatch) -> None:
    """In AWS webhook delivery is fed through SQS: whoever published does not wait for a slow receiver."""
    import threading
    import time

    from raas.domain.events import ConfigChanged
    from raas.local.bus import LocalEventBus

    released, seen = threading.Event(), list[str]()

    def slow_delivery(event: dict[str, Any], _context: Any) -> None:
        released.wait(10)
        seen.extend(json.loads(record["body"])["detail"]["tenant_id"] for record in event["Records"])  # an SQS batch, as in AWS

    monkeypatch.setattr("raas.local.bus.load_event_handler", lambda function: slow_delivery)
    bus = LocalEventBus()  # as `raas local` makes it: webhook delivery queued
    started = time.monotonic()
    bus.publish(ConfigChanged(tenant_id="t000000000000001", config_version=2, mode="merge", changed_fields=["top_k"]))
    assert time.monotonic() - started < 1.0, "publish returned before the slow target finished"
    assert (seen, bus.wait_idle(timeout=0.2)) == ([], False)
    released.set()
    assert bus.wait_idle(timeout=10)
    assert seen == ["t000000000000001"]
    assert bus.delivered == [("webhook_delivery", "ConfigChanged")]


def test_queued_targets_get_what_queued_up_as_one_batch_and_only_failed_records_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """As the queue's event source: events published while the function was busy come as one SQS batch; a record the
    function reports failed (partial batch response) comes back alone, and one that keeps failing is dead-lettered."""
    import threading

    from raas.domain.events import ConfigChanged
    from raas.local.bus import LocalEventBus

    busy, release, batches = threading.Event(), threading.Event(), list[list[int]]()

    def delivery(event: dict[str, Any], _context: Any) -> dict[str, Any]:
        versions = {record["messageId"]: json.loads(record["body"])["detail"]["config_version"] for record in event["Records"]}
        batches.append(sorted(versions.values()))
        busy.set()
        release.wait(10)
        failing = [m for m, version in versions.items() if version == 4 or (version == 3 and len(batches) < 4)]
        return {"batchItemFailures": [{"itemIdentifier": m} for m in failing]}

    monkeypatch.setattr("raas.local.bus.load_event_handler", lambda function: delivery)
    bus = LocalEventBus()
    event = lambda version: ConfigChanged(tenant_id="t000000000000001", config_version=version, mode="merge", changed_fields=["top_k"])  # noqa: E731
    bus.publish(event(1))
    assert busy.wait(5)  # the first event is being delivered alone; the next four queue up meanwhile
    for version in (2, 3, 4, 5):
        bus.publish(event(version))
    release.set()
    assert bus.wait_idle(timeout=10)
    # 1 alone; 2-5 together; 3 and 4 again (failed); 3 succeeds at its third attempt, 4 never does
    assert batches == [[1], [2, 3, 4, 5], [3, 4], [3, 4]]
    assert sorted(e for _f, e in bus.delivered) == ["ConfigChanged"] * 4
    assert [(d.function, d.envelope["detail"]["config_version"]) for d in bus.dead_letters] == [("webhook_delivery", 4)]


def test_an_event_for_queued_targets_never_waits_behind_another_events_synchronous_delivery(monkeypatch: pytest.MonkeyPatch) -> None:
    """A slow synchronous target of one event (lifecycle) must not hold up a publisher whose event only queues."""
    import threading
    import time

    from raas.domain.events import ConfigChanged
    from raas.local.bus import LocalEventBus

    in_lifecycle, release = threading.Event(), threading.Event()

    def slow_lifecycle(_envelope: dict[str, Any], _context: Any) -> None:
        in_lifecycle.set()
        release.wait(10)

    handlers = {"lifecycle": slow_lifecycle}
    monkeypatch.setattr("raas.local.bus.load_event_handler", lambda function: handlers.get(function, lambda _e, _c: None))
    bus = LocalEventBus()
    first = threading.Thread(target=bus.publish, args=(TenantCreated(tenant_id="t000000000000001", tier="free"),))
    first.start()
    assert in_lifecycle.wait(5)
    started = time.monotonic()
    bus.publish(ConfigChanged(tenant_id="t000000000000002", config_version=2, mode="merge", changed_fields=["top_k"]))
    waited = time.monotonic() - started
    release.set()
    first.join(10)
    assert waited < 1.0, f"the queued-only publish waited {waited:.1f} s behind lifecycle"
    assert bus.wait_idle(timeout=10)


def test_the_audit_log_records_config_key_and_document_actions(api: ApiClient, tenant_a: TenantHandle, ingest_queue: Any) -> None:
    document_id = _give_data_without_query(api, tenant_a, ingest_queue)
    expect(api.request("PATCH", "/v1/config", key=tenant_a.admin_key, json_body={"top_k": 4}), 200)
    key = expect(api.request("POST", "/v1/keys", key=tenant_a.admin_key, json_body={"name": "r", "role": "reader"}), 201)
    expect(api.request("DELETE", f"/v1/keys/{key['key']['key_id']}", key=tenant_a.admin_key), 204)
    expect(api.request("DELETE", f"/v1/documents/{document_id}", key=tenant_a.admin_key), 204)
    entries = expect(api.request("GET", "/v1/audit", key=tenant_a.admin_key), 200)["entries"]
    actions = [e["action"] for e in entries]
    assert actions[:4] == ["document.deleted", "key.revoked", "key.created", "config.merge"]
    assert entries[3]["details"]["changed_fields"] == ["top_k"]
    assert all(e["actor"].startswith("admin:") for e in entries[:4])
    assert api.request("GET", "/v1/audit", key=key["api_key"]).status == 401  # revoked
    reader = expect(api.request("POST", "/v1/keys", key=tenant_a.admin_key, json_body={"name": "r2", "role": "reader"}), 201)
    assert api.request("GET", "/v1/audit", key=reader["api_key"]).status == 403


def test_export_bundles_the_tenants_data_behind_a_presigned_link(api: ApiClient, tenant_a: TenantHandle, ingest_queue: Any) -> None:
    _give_data_without_query(api, tenant_a, ingest_queue)
    expect(api.request("PATCH", "/v1/config", key=tenant_a.admin_key, json_body={"top_k": 4}), 200)
    exported = expect(api.request("POST", "/v1/export", key=tenant_a.admin_key), 201)
    assert exported["url"].startswith("https://")
    assert "Signature" in exported["url"]
    body = boto3.client("s3").get_object(Bucket=services().settings.documents_bucket, Key=f"tenants/{tenant_a.tenant_id}/{exported['key']}")
    bundle = zipfile.ZipFile(io.BytesIO(body["Body"].read()))
    names = set(bundle.namelist())
    assert {"manifest.json", "documents.jsonl", "config_versions.json", "usage.json", "audit.jsonl"} <= names
    assert any(n.startswith("documents/") and n.endswith(".txt") for n in names)
    manifest = json.loads(bundle.read("manifest.json"))
    assert manifest["documents"] == 1
    assert manifest["config_versions"] == 1
    assert body["ServerSideEncryption"] == "aws:kms"


def test_export_leaves_out_a_document_being_deleted(api: ApiClient, tenant_a: TenantHandle, ingest_queue: Any) -> None:
    # A deletion marks the document `deleting` before it removes the bytes; an export in between
    # must not list it (its bytes may be gone by the time the bundle reads them).
    _give_data_without_query(api, tenant_a, ingest_queue)
    (document,) = expect(api.request("GET", "/v1/documents", key=tenant_a.admin_key), 200)["documents"]
    services().document_store.mark_deleting(tenant_a.tenant_id, document["document_id"])
    exported = expect(api.request("POST", "/v1/export", key=tenant_a.admin_key), 201)
    body = boto3.client("s3").get_object(Bucket=services().settings.documents_bucket, Key=f"tenants/{tenant_a.tenant_id}/{exported['key']}")
    bundle = zipfile.ZipFile(io.BytesIO(body["Body"].read()))
    assert json.loads(bundle.read("manifest.json"))["documents"] == 0
    assert not any(name.startswith("documents/") for name in bundle.namelist())


def test_each_provisioning_step_failing_once_still_provisions_once(api: ApiClient, monkeypatch: pytest.MonkeyPatch) -> None:
    real = services().lifecycle_service
    flaky = LifecycleService(
        real.tenants,
        real.configs,
        FailOnce(real.keyring, ("ensure",)),
        FailOnce(real.search, ("ensure_index",)),
        real.purger,
        real.events,
        tenants_table=real.tenants_table,
        sleep=lambda _seconds: None,
    )
    rebuild_services(lifecycle_service=flaky)
    tenant = create_tenant(api, "flaky start", "smb")
    assert expect(api.request("GET", f"/v1/tenants/{tenant.tenant_id}", key=OPERATOR_KEY), 200)["status"] == "active"
    assert not local_bus().dead_letters
    aliases = [a for a in boto3.client("kms").list_aliases()["Aliases"] if tenant.tenant_id in a["AliasName"]]
    assert len(aliases) == 1
