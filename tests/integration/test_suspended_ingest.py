"""A document queued while its tenant is suspended is indexed after the tenant is resumed (issue 12).

The ingest queue here is the local one (moto), with the real handler; its visibility timeout is set to 0
so a message the handler gives back is delivered again at once instead of after 30 seconds.
"""

from __future__ import annotations

import os

from raas.adapters.aws import client
from raas.bootstrap import services
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
