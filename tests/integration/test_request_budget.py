"""What one document costs in AWS requests, from upload to `indexed`: every request the accept path, the
ingest handler and the event it publishes make, by service, operation and table.

Each request is a round trip in AWS and a pass through moto's emulation locally (where it is most of the
platform's own time per document: bench/ingest_throughput.py), so the list is held here exactly. A change
that adds a request fails this test and has to say why it is needed; one that removes one updates it.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import botocore.client
import pytest

from raas.bootstrap import services
from raas.domain.catalog import Tier
from raas.local.events import QueuePump
from raas.services.documents import NewDocument
from tests.conftest import TenantHandle

pytestmark = pytest.mark.usefixtures("aws")


@pytest.fixture
def requests(monkeypatch: pytest.MonkeyPatch) -> Counter[tuple[str, str, str]]:
    seen: Counter[tuple[str, str, str]] = Counter()
    make_api_call = botocore.client.BaseClient._make_api_call  # type: ignore[attr-defined]

    def counting(client: Any, operation: str, params: dict[str, Any]) -> Any:
        tables = {params.get("TableName", "")} | {
            next(iter(item.values()))["TableName"] for item in params.get("TransactItems", []) if isinstance(item, dict)
        }
        seen[(client.meta.service_model.service_name, operation, "+".join(sorted(t for t in tables if t)))] += 1
        return make_api_call(client, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", counting)
    return seen


def _accept(tenant: TenantHandle, text: str) -> str:
    new = NewDocument("Refunds", text.encode(), "text/plain", {}, None)
    document, _created = services().document_service.create_inline(tenant.tenant_id, Tier(tenant.tier), new)
    return document.document_id


def test_one_document_costs_these_requests_and_no_more(
    tenant_a: TenantHandle, ingest_queue: QueuePump, requests: Counter[tuple[str, str, str]]
) -> None:
    _accept(tenant_a, "warm up: the tenant's key and index exist before the counting starts")
    ingest_queue.drain()
    requests.clear()

    document_id = _accept(tenant_a, "Refunds are paid within 30 days of a return.")
    accepted = dict(requests)
    requests.clear()
    ingest_queue.drain()
    ingested = {key: count for key, count in requests.items() if key[0] != "sqs"}  # the queue's own polling aside

    settings = services().settings
    tenants, documents, usage = settings.tenants_table, settings.documents_table, settings.usage_table
    assert accepted == {
        ("dynamodb", "TransactWriteItems", documents): 1,  # the record, the quota reservation and the content hash
        ("dynamodb", "GetItem", tenants): 1,  # the data gate before the tenant's KMS key is used
        ("s3", "PutObject", ""): 1,
    }
    assert ingested == {
        (
            "dynamodb",
            "GetItem",
            tenants,
        ): 3,  # the tenant (no data-gate read before GetObject: this one); live before and after the index write
        ("dynamodb", "UpdateItem", documents): 2,  # claim (no read first: its condition is the check), answer generation
        ("s3", "GetObject", ""): 1,
        # `indexed` and the usage event's marker, month and day: counted exactly when marked
        ("dynamodb", "TransactWriteItems", "+".join(sorted((documents, usage)))): 1,
        ("dynamodb", "Query", tenants): 1,  # the webhook endpoints (none: the tier is not read)
    }
    assert services().document_store.get(tenant_a.tenant_id, document_id).status.value == "indexed"  # type: ignore[union-attr]


def test_a_batch_of_documents_shares_the_tenant_reads_and_the_generation_bump(
    tenant_a: TenantHandle, ingest_queue: QueuePump, requests: Counter[tuple[str, str, str]]
) -> None:
    _accept(tenant_a, "warm up: the tenant's key and index exist before the counting starts")
    ingest_queue.drain()
    document_ids = [_accept(tenant_a, f"Refund rule {i}: returns within {i + 10} days are paid back.") for i in range(5)]
    requests.clear()

    assert ingest_queue.pump_once(wait_seconds=0) == 5  # the five in one invocation, as the event source batches them
    ingested = {key: count for key, count in requests.items() if key[0] != "sqs"}

    settings = services().settings
    tenants, documents, usage = settings.tenants_table, settings.documents_table, settings.usage_table
    assert ingested == {
        ("dynamodb", "GetItem", tenants): 3,  # the tenant, live before the wave's first write and after its last: once for all
        ("dynamodb", "UpdateItem", documents): 6,  # a claim each, and one answer-generation bump for the wave
        ("s3", "GetObject", ""): 5,
        ("dynamodb", "TransactWriteItems", "+".join(sorted((documents, usage)))): 5,  # each one's own mark and usage event
        # each announcement's webhook endpoints: the tests' bus hands events over one at a time; through the queue (AWS,
        # raas local) a batch reads them once a tenant (test_webhooks.py::test_an_sqs_batch_reads_each_tenants_endpoints_once)
        ("dynamodb", "Query", tenants): 5,
    }
    assert {services().document_store.get(tenant_a.tenant_id, d).status.value for d in document_ids} == {"indexed"}  # type: ignore[union-attr]


def test_an_answer_costs_these_requests_and_no_more(
    tenant_a: TenantHandle, ingest_queue: QueuePump, requests: Counter[tuple[str, str, str]]
) -> None:
    from raas.services.query import QueryRequest

    _accept(tenant_a, "Refunds are paid within 30 days of a return.")
    ingest_queue.drain()
    query = services().query_service
    query.answer(tenant_a.tenant_id, Tier(tenant_a.tier), QueryRequest(query="warm up: the config is read once a container"))
    requests.clear()

    answer = query.answer(tenant_a.tenant_id, Tier(tenant_a.tier), QueryRequest(query="when are refunds paid?"))

    settings = services().settings
    assert not answer.cached
    assert dict(requests) == {
        ("dynamodb", "GetItem", settings.documents_table): 1,  # the answer generation, in the cache key
        ("dynamodb", "GetItem", settings.queries_table): 1,  # the response cache
        ("dynamodb", "UpdateItem", settings.usage_table): 1,  # the quota reservation
        ("dynamodb", "TransactWriteItems", settings.usage_table): 1,  # the usage event's marker, month and day
        # its history line, its feedback record and version counter, and the cached copy: one request, not three
        ("dynamodb", "TransactWriteItems", settings.queries_table): 1,
    }
    history = services().query_log.list(tenant_a.tenant_id, 10, None)[0]
    assert answer.query_id in [entry.query_id for entry in history]
    assert services().feedback_store.answer_version(tenant_a.tenant_id, answer.query_id) == answer.config_version
    again = query.answer(tenant_a.tenant_id, Tier(tenant_a.tier), QueryRequest(query="when are refunds paid?"))
    assert again.cached
    assert again.answer == answer.answer
