"""The local platform expires items by TTL as DynamoDB does (moto never does), so tables that
AWS keeps bounded by TTL, like the usage dedupe markers, stay bounded locally too.

Rules: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/howitworks-ttl.html and
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/time-to-live-ttl-before-you-start.html
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest

from raas.adapters.aws import client
from raas.local.aws import table_names
from raas.local.ttl_sweeper import TtlSweeper
from raas.settings import Settings
from tests.conftest import TenantHandle
from tests.helpers import ApiClient, expect

NOW = 1_900_000_000
DAY = 24 * 3600
FIVE_YEARS_SECONDS = 5 * 365 * DAY  # the documented limit, written out rather than taken from the code under test


class FakeClock:
    def __init__(self, now: float):
        self.now = now

    def time(self) -> float:
        return self.now


def sweeper(clock: FakeClock) -> TtlSweeper:
    return TtlSweeper(lambda: list(table_names()), clock=clock.time)


def put(table: str, sk: str, **attributes: dict[str, str]) -> None:
    client("dynamodb").put_item(TableName=table, Item={"PK": {"S": "TENANT#t-ttl#"}, "SK": {"S": sk}, **attributes})


def keys_left(table: str) -> set[str]:
    pages = client("dynamodb").get_paginator("scan").paginate(TableName=table, ConsistentRead=True)
    return {item["SK"]["S"] for page in pages for item in page["Items"] if item["PK"]["S"] == "TENANT#t-ttl#"}


@pytest.mark.usefixtures("aws")
def test_only_items_whose_ttl_number_has_passed_are_deleted() -> None:
    settings = Settings.from_env()
    usage, documents = settings.usage_table, settings.documents_table
    # Given items of every kind in a table with TTL on `expires_at`
    put(usage, "past", expires_at={"N": str(NOW - 1)})
    put(usage, "long past but within five years", expires_at={"N": str(NOW - FIVE_YEARS_SECONDS + DAY)})
    put(usage, "now", expires_at={"N": str(NOW)})  # "less than the current time": not yet
    put(usage, "future", expires_at={"N": str(NOW + 60)})
    put(usage, "more than five years past", expires_at={"N": str(NOW - FIVE_YEARS_SECONDS - DAY)})
    put(usage, "a string", expires_at={"S": str(NOW - 1)})
    put(usage, "no ttl attribute")
    put(usage, "ttl under another name", expiration={"N": str(NOW - 1)})
    # and an expired-looking item in a table without TTL
    put(documents, "past", expires_at={"N": str(NOW - 1)})

    # When the sweep runs
    deleted = sweeper(FakeClock(NOW)).sweep()

    # Then only the expired Numbers within five years went
    assert deleted == 2
    assert keys_left(usage) == {"now", "future", "more than five years past", "a string", "no ttl attribute", "ttl under another name"}
    assert keys_left(documents) == {"past"}


@pytest.mark.usefixtures("aws")
def test_an_item_given_a_later_expiry_after_the_scan_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    usage = Settings.from_env().usage_table
    put(usage, "renewed", expires_at={"N": str(NOW - 1)})
    dynamodb = client("dynamodb")
    delete_item = dynamodb.delete_item

    def renewed_first(**kwargs: Any) -> Any:
        # the item is extended between the sweep's scan and its delete
        put(usage, "renewed", expires_at={"N": str(NOW + DAY)})
        return delete_item(**kwargs)

    monkeypatch.setattr(dynamodb, "delete_item", renewed_first)
    assert sweeper(FakeClock(NOW)).sweep() == 0
    assert keys_left(usage) == {"renewed"}


@pytest.mark.usefixtures("aws")
def test_sweeps_run_at_their_interval() -> None:
    usage = Settings.from_env().usage_table
    ttl = sweeper(FakeClock(NOW))
    put(usage, "first", expires_at={"N": str(NOW - 1)})
    assert ttl.sweep_if_due(monotonic_now=1000.0) == 1
    put(usage, "second", expires_at={"N": str(NOW - 1)})
    assert ttl.sweep_if_due(monotonic_now=1001.0) == 0  # not due yet
    assert ttl.sweep_if_due(monotonic_now=1000.0 + 300) == 1


def usage_markers(tenant_id: str) -> int:
    response = client("dynamodb").query(
        TableName=Settings.from_env().usage_table,
        KeyConditionExpression="PK = :pk AND begins_with(SK, :event)",
        ExpressionAttributeValues={":pk": {"S": f"TENANT#{tenant_id}#"}, ":event": {"S": "EVENT#"}},
        ConsistentRead=True,
    )
    return int(response["Count"])


def test_usage_markers_stay_bounded_while_the_platform_keeps_serving(
    api: ApiClient, tenant_a: TenantHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    from raas.adapters import usage
    from raas.bootstrap import services

    # Given a clock the usage recorder and the sweeper share, starting now
    clock = FakeClock(time.time())
    monkeypatch.setattr(usage, "time", clock)
    ttl = sweeper(clock)
    requests_per_round, days_per_round, rounds = 3, 5, 20
    retention_days = usage.MARKER_RETENTION_SECONDS // DAY
    bound = (retention_days // days_per_round + 1) * requests_per_round
    period = datetime.now(UTC).strftime("%Y-%m")  # events carry their real time; only the TTL clock moves
    counted_before = services().usage_recorder.totals(tenant_a.tenant_id, period)["api_calls"]

    # When the tenant keeps calling the API for 100 days, with a sweep after each round
    seen = []
    for _ in range(rounds):
        for _ in range(requests_per_round):
            expect(api.request("GET", "/v1/keys", key=tenant_a.admin_key), 200)
        ttl.sweep()
        seen.append(usage_markers(tenant_a.tenant_id))
        clock.now += days_per_round * DAY

    # Then the markers never outnumber what 35 days of requests leave, though many more were made
    assert rounds * requests_per_round > 2 * bound
    assert max(seen) <= bound + 1  # + the marker of the request that created the tenant's key list
    assert seen[-1] == seen[-4]  # steady state: as many expire as arrive
    # and the counters, which carry no TTL, still count every call
    counted = services().usage_recorder.totals(tenant_a.tenant_id, period)["api_calls"]
    assert counted - counted_before == rounds * requests_per_round
