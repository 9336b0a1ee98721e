"""A document queued while its tenant is suspended is indexed after the tenant is resumed (issue 12), and one
whose every delivery meets a transient error fails on the last delivery instead of staying `processing`.

The ingest queue here is the local one (moto), with the real handler; its visibility timeout is set to 0
so a message the handler gives back is delivered again at once instead of after 30 seconds.
"""

from __future__ import annotations

import os

import pytest

from raas.adapters.aws import client
from raas.bootstrap import services
from raas.domain.errors import ServiceUnavailable
from raas.local.events import INGEST_DLQ, MAX_RECEIVES, QueuePump
from raas.services import ingest as ingest_service
from tests.conftest import OPERATOR_KEY, TenantHandle
from tests.helpers import ApiClient, expect


def redeliver_at_once(ingest_queue: QueuePump) -> None:
    ingest_queue.drain()  # S3's test event, sent when the bucket notification was set up
    client("sqs").set_queue_attributes(QueueUrl=os.environ["RAAS_INGEST_QUEUE_URL"], Attributes={"VisibilityTimeout": "0"})


def messages_in(queue_url: str) -> int:
    attributes = client("sqs").get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def add(api: ApiClient, tenant: TenantHandle, text: str) -> str:
    body = {"title": "waiting", "text": text}
    return str(expect(api.request("POST", "/v1/documents", key=tenant.admin_key, json_body=body), 202)["document_id"])


def operator(api: ApiClient, tenant: TenantHandle, action: str) -> None:
    expect(api.request("POST", f"/v1/tenants/{tenant.tenant_id}/{action}", key=OPERATOR_KEY), 200)


def test_a_document_refused_while_suspended_is_indexed_after_resume(
    api: ApiClient, tenant_a: TenantHandle, ingest_queue: QueuePump
) -> None:
    redeliver_at_once(ingest_queue)
    document_id = add(api, tenant_a, "notes about comets written just before the suspension")
    operator(api, tenant_a, "suspend")

    assert ingest_queue.pump_once(wait_seconds=0) == 0  # the handler gives the message back
    waiting = services().document_service.get(tenant_a.tenant_id, document_id)
    assert waiting.status == "queued"
    assert "suspended" in (waiting.error or "")

    operator(api, tenant_a, "resume")
    ingest_queue.drain()
    indexed = expect(api.request("GET", f"/v1/documents/{document_id}", key=tenant_a.admin_key), 200)
    assert (indexed["status"], indexed["error"]) == ("indexed", None)
    assert indexed["chunk_count"] >= 1
    hits = expect(api.request("POST", "/v1/search", key=tenant_a.admin_key, json_body={"query": "comets"}), 200)["results"]
    assert [hit["document_id"] for hit in hits][:1] == [document_id]


def test_a_suspension_longer_than_the_queue_retries_fails_the_document_instead_of_losing_it(
    api: ApiClient, tenant_a: TenantHandle, ingest_queue: QueuePump
) -> None:
    """The last delivery SQS makes before the dead-letter queue fails the document with a reason, and its
    quota goes back; it is not left `queued` forever behind a message no one reads."""
    max_deliveries = ingest_service.MAX_DELIVERIES
    assert max_deliveries == MAX_RECEIVES  # the local queue's redrive policy
    redeliver_at_once(ingest_queue)
    document_id = add(api, tenant_a, "a document whose tenant stays suspended")
    operator(api, tenant_a, "suspend")

    handled = [ingest_queue.pump_once(wait_seconds=0) for _ in range(max_deliveries)]
    assert handled == [0] * (max_deliveries - 1) + [1]
    failed = services().document_service.get(tenant_a.tenant_id, document_id)
    assert failed.status == "failed"
    assert "suspended" in (failed.error or "")
    assert "upload it again" in (failed.error or "")
    assert services().document_store.stats(tenant_a.tenant_id)["documents"] == 0
    dlq_url = client("sqs").get_queue_url(QueueName=INGEST_DLQ)["QueueUrl"]
    assert (messages_in(os.environ["RAAS_INGEST_QUEUE_URL"]), messages_in(dlq_url)) == (0, 0)


class EmbedderDown:
    """An embedding provider in an outage: every call fails with the transient error the adapters raise."""

    name, dimension = "down", 384

    def __init__(self) -> None:
        self.calls = 0

    def embed(self, texts: list[str]) -> list[list[float]]:
        self.calls += 1
        raise ServiceUnavailable("the embedding provider is unavailable; try again", code="embedder_unavailable")


def test_a_transient_error_on_every_delivery_fails_the_document_on_the_last_one_instead_of_leaving_it_processing(
    api: ApiClient, tenant_a: TenantHandle, ingest_queue: QueuePump, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before the last delivery the event comes back (the outage may pass); on the last one, whose failure would
    send the event to the dead-letter queue and leave the document `processing` for good with its quota held, the
    document fails with the reason, holds no chunks and gives its quota back."""
    max_deliveries = ingest_service.MAX_DELIVERIES
    redeliver_at_once(ingest_queue)
    down = EmbedderDown()
    monkeypatch.setattr(services().ingest_service, "embedder", down)
    document_id = add(api, tenant_a, "lichens grow slowly on the north face of granite boulders")

    for _ in range(max_deliveries - 1):
        assert ingest_queue.pump_once(wait_seconds=0) == 0  # given back: delivered again
        waiting = services().document_service.get(tenant_a.tenant_id, document_id)
        assert waiting.status == "processing"
    assert ingest_queue.pump_once(wait_seconds=0) == 1  # the last delivery settles it
    assert down.calls == max_deliveries

    failed = expect(api.request("GET", f"/v1/documents/{document_id}", key=tenant_a.admin_key), 200)
    assert failed["status"] == "failed"
    assert f"each of {max_deliveries} deliveries" in failed["error"]
    assert "embedding provider is unavailable" in failed["error"]
    assert "upload it again" in failed["error"]
    assert services().document_store.stats(tenant_a.tenant_id)["documents"] == 0
    assert services().search_index.count(tenant_a.tenant_id) == 0  # type: ignore[attr-defined]
    dlq_url = client("sqs").get_queue_url(QueueName=INGEST_DLQ)["QueueUrl"]
    assert (messages_in(os.environ["RAAS_INGEST_QUEUE_URL"]), messages_in(dlq_url)) == (0, 0)

    # The same text uploaded again once the provider is back is indexed: the failed one released its content hash.
    monkeypatch.undo()
    again = add(api, tenant_a, "lichens grow slowly on the north face of granite boulders")
    ingest_queue.drain()
    assert expect(api.request("GET", f"/v1/documents/{again}", key=tenant_a.admin_key), 200)["status"] == "indexed"
