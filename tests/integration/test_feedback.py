"""Feedback on answers through the gateway: idempotent per caller and answer, stored with the config
version that produced the answer, audited, listed and summarised per config version, kept by TTL."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from raas.bootstrap import services
from raas.local.events import QueuePump
from tests.conftest import TenantHandle
from tests.helpers import ApiClient, RecordingChat, expect
from tests.integration.test_documents import add

pytestmark = pytest.mark.usefixtures("aws")


@pytest.fixture
def library(api: ApiClient, tenant_a: TenantHandle, ingest_queue: QueuePump) -> None:
    add(api, tenant_a, "Refund policy", "Customers may request a refund within 30 days of purchase.")
    add(api, tenant_a, "Shipping", "We ship worldwide within five business days.")
    ingest_queue.drain()


def ask(api: ApiClient, tenant: TenantHandle, query: str) -> dict[str, Any]:
    return expect(api.request("POST", "/v1/query", key=tenant.admin_key, json_body={"query": query}), 200)


def rate(api: ApiClient, key: str, query_id: str, body: Any) -> Any:
    return api.request("POST", f"/v1/queries/{query_id}/feedback", key=key, json_body=body)


def reader_key(api: ApiClient, tenant: TenantHandle) -> str:
    return str(expect(api.request("POST", "/v1/keys", key=tenant.admin_key, json_body={"name": "r", "role": "reader"}), 201)["api_key"])


def test_feedback_is_idempotent_per_caller_and_answer_and_audited(
    api: ApiClient, tenant_a: TenantHandle, library: None, chat: RecordingChat
) -> None:
    answer = ask(api, tenant_a, "refund days")
    first = rate(api, tenant_a.admin_key, answer["query_id"], {"rating": "up", "comment": "clear"})
    assert first.status == 201
    body = first.json()
    assert (body["query_id"], body["rating"], body["comment"], body["config_version"]) == (answer["query_id"], "up", "clear", 0)
    assert body["actor"] == f"admin:{tenant_a.admin_key_id}"
    again = rate(api, tenant_a.admin_key, answer["query_id"], {"rating": "up", "comment": "clear"})
    assert (again.status, again.json()) == (200, body)  # the same feedback again changes nothing
    changed = expect(rate(api, tenant_a.admin_key, answer["query_id"], {"rating": "down"}), 200)
    assert (changed["rating"], changed["comment"], changed["created_at"]) == ("down", None, body["created_at"])
    # another caller on the same answer is another record
    expect(rate(api, reader_key(api, tenant_a), answer["query_id"], {"rating": "up"}), 201)
    listed = expect(api.request("GET", "/v1/feedback", key=tenant_a.admin_key), 200)
    assert sorted(f["rating"] for f in listed["feedback"]) == ["down", "up"]
    assert listed["next_cursor"] is None
    summary = expect(api.request("GET", "/v1/feedback/summary", key=tenant_a.admin_key), 200)
    assert summary == {"versions": [{"config_version": 0, "answers": 1, "up": 1, "down": 1, "ratio": 0.5}]}
    audit = expect(api.request("GET", "/v1/audit?limit=100", key=tenant_a.admin_key), 200)["entries"]
    actions = [(e["action"], e["target"], e["details"]["rating"]) for e in audit if e["action"].startswith("feedback.")]
    given, changed_action = ("feedback.given", answer["query_id"], "up"), ("feedback.changed", answer["query_id"], "down")
    assert sorted(actions) == sorted([given, changed_action, given])


def test_feedback_is_stored_with_the_config_version_that_answered_and_summarised_per_version(
    api: ApiClient, tenant_a: TenantHandle, library: None, chat: RecordingChat
) -> None:
    old = ask(api, tenant_a, "refund days")
    ask(api, tenant_a, "shipping time")
    expect(api.request("PATCH", "/v1/config", key=tenant_a.admin_key, json_body={"temperature": 0.1}), 200)
    new = ask(api, tenant_a, "refund days")  # a new config version: not served from the cache
    assert (old["config_version"], new["config_version"]) == (0, 1)
    expect(rate(api, tenant_a.admin_key, old["query_id"], {"rating": "down"}), 201)  # rated after the change
    expect(rate(api, tenant_a.admin_key, new["query_id"], {"rating": "up"}), 201)
    listed = expect(api.request("GET", "/v1/feedback", key=tenant_a.admin_key), 200)["feedback"]
    assert {f["query_id"]: f["config_version"] for f in listed} == {old["query_id"]: 0, new["query_id"]: 1}
    summary = expect(api.request("GET", "/v1/feedback/summary", key=tenant_a.admin_key), 200)["versions"]
    assert summary == [
        {"config_version": 1, "answers": 1, "up": 1, "down": 0, "ratio": 1.0},
        {"config_version": 0, "answers": 2, "up": 0, "down": 1, "ratio": 0.0},
    ]
    ups = expect(api.request("GET", "/v1/feedback?rating=up", key=tenant_a.admin_key), 200)["feedback"]
    assert [f["query_id"] for f in ups] == [new["query_id"]]
    bad = api.request("GET", "/v1/feedback?rating=meh", key=tenant_a.admin_key)
    assert bad.status == 422


def test_feedback_pages_with_a_cursor_newest_first(api: ApiClient, tenant_a: TenantHandle, library: None, chat: RecordingChat) -> None:
    ids = []
    for question in ("refund days", "shipping time", "refund window", "ship abroad"):
        query_id = ask(api, tenant_a, question)["query_id"]
        expect(rate(api, tenant_a.admin_key, query_id, {"rating": "up"}), 201)
        ids.append(query_id)
        time.sleep(0.002)  # distinct creation times
    seen: list[str] = []
    cursor = None
    while True:
        path = "/v1/feedback?limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = expect(api.request("GET", path, key=tenant_a.admin_key), 200)
        assert len(page["feedback"]) <= 3
        seen.extend(f["query_id"] for f in page["feedback"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    assert api.request("GET", "/v1/feedback?cursor=not-a-cursor", key=tenant_a.admin_key).error_code == "invalid_cursor"


def test_unknown_or_another_tenants_answer_is_404_and_nothing_is_written(
    api: ApiClient, tenant_a: TenantHandle, tenant_b: TenantHandle, library: None, chat: RecordingChat
) -> None:
    answer = ask(api, tenant_a, "refund days")
    for query_id in (answer["query_id"], str(uuid.uuid4()), "not-a-query-id"):
        reply = rate(api, tenant_b.admin_key, query_id, {"rating": "up"})
        assert (reply.status, reply.error_code) == (404, "query_not_found"), reply.text
        assert answer["query_id"] not in reply.text or query_id == answer["query_id"]
    assert expect(api.request("GET", "/v1/feedback", key=tenant_b.admin_key), 200)["feedback"] == []
    assert expect(api.request("GET", "/v1/feedback/summary", key=tenant_b.admin_key), 200) == {"versions": []}
    assert expect(api.request("GET", "/v1/feedback", key=tenant_a.admin_key), 200)["feedback"] == []
    # A's own counters are untouched by B's attempts
    assert expect(api.request("GET", "/v1/feedback/summary", key=tenant_a.admin_key), 200)["versions"][0]["up"] == 0


def test_bad_feedback_is_422_and_only_admins_read_feedback(
    api: ApiClient, tenant_a: TenantHandle, library: None, chat: RecordingChat
) -> None:
    query_id = ask(api, tenant_a, "refund days")["query_id"]
    for body in ({"rating": "sideways"}, {}, {"rating": "up", "comment": "x" * 2001}, {"rating": "up", "extra": 1}, {"rating": True}):
        assert rate(api, tenant_a.admin_key, query_id, body).status == 422, body
    assert expect(rate(api, tenant_a.admin_key, query_id, {"rating": "up", "comment": "x" * 2000}), 201)["comment"] == "x" * 2000
    reader = reader_key(api, tenant_a)
    assert api.request("GET", "/v1/feedback", key=reader).error_code == "insufficient_role"
    assert api.request("GET", "/v1/feedback/summary", key=reader).error_code == "insufficient_role"


def test_feedback_and_answers_expire_with_the_tiers_history_retention(
    api: ApiClient, tenant_a: TenantHandle, library: None, chat: RecordingChat
) -> None:
    query_id = ask(api, tenant_a, "refund days")["query_id"]
    expect(rate(api, tenant_a.admin_key, query_id, {"rating": "up"}), 201)
    client = services().feedback_store.clients(None)
    items = client.query(
        TableName="raas-queries",
        KeyConditionExpression="PK = :pk",
        ExpressionAttributeValues={":pk": {"S": f"TENANT#{tenant_a.tenant_id}#"}},
    )["Items"]
    kinds = {i["SK"]["S"].split("#")[0]: int(i["expires_at"]["N"]) for i in items if not i["SK"]["S"].startswith(("Q#", "CACHE#"))}
    assert set(kinds) == {"ANSWER", "FBSTATS", "FBKEY", "FB"}
    for expires in kinds.values():
        days = (expires - datetime.now(UTC).timestamp()) / 86400
        assert 364 < days <= 365  # enterprise keeps a year, as its query history
    # Past the TTL (DynamoDB may not have deleted the items yet) nothing is shown or accepted any more.
    later = services().feedback_store
    later._now = lambda: time.time() + 366 * 86400
    try:
        assert expect(api.request("GET", "/v1/feedback", key=tenant_a.admin_key), 200)["feedback"] == []
        assert expect(api.request("GET", "/v1/feedback/summary", key=tenant_a.admin_key), 200) == {"versions": []}
        assert rate(api, tenant_a.admin_key, query_id, {"rating": "down"}).error_code == "query_not_found"
    finally:
        later._now = time.time


def test_a_cached_answer_and_a_conversation_message_can_be_rated_too(
    api: ApiClient, tenant_a: TenantHandle, library: None, chat: RecordingChat
) -> None:
    ask(api, tenant_a, "refund days")
    cached = ask(api, tenant_a, "refund days")
    assert cached["cached"] is True
    expect(rate(api, tenant_a.admin_key, cached["query_id"], {"rating": "up"}), 201)
    conversation = expect(api.request("POST", "/v1/conversations", key=tenant_a.admin_key, json_body={}), 201)
    reply = expect(
        api.request(
            "POST", f"/v1/conversations/{conversation['conversation_id']}/messages", key=tenant_a.admin_key, json_body={"query": "shipping"}
        ),
        200,
    )
    expect(rate(api, tenant_a.admin_key, reply["messages"][1]["query_id"], {"rating": "down"}), 201)
    summary = expect(api.request("GET", "/v1/feedback/summary", key=tenant_a.admin_key), 200)["versions"]
    assert summary == [{"config_version": 0, "answers": 3, "up": 1, "down": 1, "ratio": 0.5}]
