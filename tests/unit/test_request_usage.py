"""RequestUsage: a request's API call rides on the route's usage event, and is never lost or counted twice."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from raas.domain.errors import ServiceUnavailable
from raas.domain.usage import UsageEvent
from raas.services.request_usage import RequestUsage


class Recorder:
    def __init__(self, fail_times: int = 0):
        self.events: list[UsageEvent] = []
        self.fail_times = fail_times

    def record(self, event: UsageEvent) -> bool:
        if self.fail_times:
            self.fail_times -= 1
            raise ServiceUnavailable("the usage store is unavailable")
        self.events.append(event)
        return True


def _event(tenant_id: str = "tenant-a", counters: dict[str, int] | None = None) -> UsageEvent:
    return UsageEvent(event_id="query-0001", tenant_id=tenant_id, occurred_at=datetime.now(UTC), counters=counters or {"queries": 1})


def test_the_call_rides_on_the_routes_first_event_for_its_tenant() -> None:
    recorder = Recorder()
    usage = RequestUsage(recorder)
    usage.begin("tenant-a", "api-req-1")
    usage.record(_event(counters={"queries": 1}))
    usage.record(_event(counters={"searches": 1}))
    usage.finish()
    assert [e.counters for e in recorder.events] == [{"queries": 1, "api_calls": 1}, {"searches": 1}]
    assert [e.event_id for e in recorder.events] == ["query-0001", "query-0001"]


def test_a_request_that_records_nothing_writes_its_call_alone_under_its_request_id() -> None:
    recorder = Recorder()
    usage = RequestUsage(recorder)
    usage.begin("tenant-a", "api-req-2")
    usage.finish()
    assert [(e.event_id, e.tenant_id, e.counters) for e in recorder.events] == [("api-req-2", "tenant-a", {"api_calls": 1})]
    usage.finish()  # nothing pending any more: nothing written twice
    assert len(recorder.events) == 1


def test_another_tenants_event_never_carries_the_call() -> None:
    recorder = Recorder()
    usage = RequestUsage(recorder)
    usage.begin("tenant-a", "api-req-3")
    usage.record(_event("tenant-b"))
    usage.finish()
    assert [(e.tenant_id, e.counters) for e in recorder.events] == [("tenant-b", {"queries": 1}), ("tenant-a", {"api_calls": 1})]


def test_a_failed_write_leaves_the_call_to_finish() -> None:
    recorder = Recorder(fail_times=1)
    usage = RequestUsage(recorder)
    usage.begin("tenant-a", "api-req-4")
    with pytest.raises(ServiceUnavailable):
        usage.record(_event())
    usage.finish()
    assert [(e.event_id, e.counters) for e in recorder.events] == [("api-req-4", {"api_calls": 1})]


def test_outside_a_request_events_pass_through_unchanged() -> None:
    recorder = Recorder()
    RequestUsage(recorder).record(_event())
    assert [e.counters for e in recorder.events] == [{"queries": 1}]


def test_each_thread_has_its_own_request() -> None:
    recorder = Recorder()
    usage = RequestUsage(recorder)
    usage.begin("tenant-a", "api-req-5")
    other = threading.Thread(target=lambda: usage.record(_event("tenant-a", {"searches": 1})))
    other.start()
    other.join()
    usage.finish()
    assert [e.counters for e in recorder.events] == [{"searches": 1}, {"api_calls": 1}]
