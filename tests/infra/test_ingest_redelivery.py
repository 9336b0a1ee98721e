"""The deployed ingest queue redelivers as often as the ingest service expects (issue 12).

A document of a suspended tenant waits through `MAX_DELIVERIES` deliveries and fails on the last one; if the
queue's maxReceiveCount were larger the document would fail while SQS could still deliver it, and if smaller
the message would reach the dead-letter queue with the document still `queued`.
"""

from __future__ import annotations

from typing import Any

from raas.services.ingest import MAX_DELIVERIES
from tests.infra.conftest import resources


def test_the_ingest_queue_max_receive_count_is_what_ingest_waits_through(templates: dict[str, dict[str, Any]]) -> None:
    queues = resources(templates["data"], "AWS::SQS::Queue")
    ingest = next(q["Properties"] for q in queues.values() if str(q["Properties"].get("QueueName", "")).endswith("ingest"))
    assert ingest["RedrivePolicy"]["maxReceiveCount"] == MAX_DELIVERIES
