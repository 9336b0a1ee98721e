"""`raas local` on the OpenSearch adapter, against the strict Serverless stand-in, over HTTP.

`RAAS_SEARCH_ENGINE=opensearch` with `RAAS_OPENSEARCH_ENDPOINT` at a loopback stand-in that, like a
VECTORSEARCH collection, generates ids, refuses `refresh`, wants SigV4 for `aoss` (signed here with the local
dummy credentials) and makes writes searchable only after its refresh interval (0.2 s here, 60 s in AWS).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from tests.conftest import TenantHandle, create_tenant
from tests.e2e.conftest import LocalServer, start_local
from tests.e2e.test_isolation_http import wait_indexed
from tests.helpers import HttpClient, expect
from tests.serverless_standin import ServerlessStandin, running_standin

pytestmark = pytest.mark.e2e
REFRESH_SECONDS = 0.2


@pytest.fixture(scope="module")
def standin() -> Iterator[ServerlessStandin]:
    with running_standin(refresh_interval=REFRESH_SECONDS, require_sigv4=True) as server:
        yield server


@pytest.fixture(scope="module")
def local_on_opensearch(standin: ServerlessStandin, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    with pytest.MonkeyPatch.context() as patch:  # start_local hands the current environment to the subprocess
        patch.setenv("RAAS_SEARCH_ENGINE", "opensearch")
        patch.setenv("RAAS_OPENSEARCH_ENDPOINT", standin.url)
        patch.setenv("RAAS_OPENSEARCH_SERVICE", "aoss")
        server = start_local(tmp_path_factory.mktemp("state"))
    yield server
    server.stop()


def eventually(check: Callable[[], bool], what: str, timeout: float = 30) -> None:
    """Polls until `check()` holds: the stand-in's refresh interval passes in the background."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(REFRESH_SECONDS / 2)
    raise AssertionError(f"{what} did not happen within {timeout} s")


def test_ingest_query_and_delete_on_the_serverless_standin(local_on_opensearch: LocalServer, standin: ServerlessStandin) -> None:
    api = HttpClient(local_on_opensearch.url)
    tenant: TenantHandle = create_tenant(api, "search tenant", "enterprise")
    key = tenant.admin_key

    def results(query: str, alpha: float) -> list[dict]:
        found: list[dict] = expect(api.request("POST", "/v1/search", key=key, json_body={"query": query, "alpha": alpha}), 200)["results"]
        return found

    texts = {
        "Refunds": "Customers may request a full refund within 30 days of purchase. Refunds go back to the original card.",
        "Shipping": "Orders ship worldwide within five business days. Express shipping takes two days.",
    }
    ids = {}
    for title, text in texts.items():
        accepted = expect(api.request("POST", "/v1/documents", key=key, json_body={"title": title, "text": text}), 202)
        ids[title] = accepted["document_id"]
    for document_id in ids.values():
        assert wait_indexed(api, tenant, document_id)["status"] == "indexed"
    eventually(lambda: {r["document_id"] for r in results("refund shipping", 0)} == set(ids.values()), "both documents searchable")

    answer = expect(api.request("POST", "/v1/query", key=key, json_body={"query": "How long do I have to ask for a refund?"}), 200)
    assert answer["citations"][0]["document_id"] == ids["Refunds"]  # hybrid retrieval (the tenant's default alpha 0.5)
    assert results("how fast is express delivery", 1)[0]["document_id"] == ids["Shipping"]  # k-NN with the real MiniLM

    assert api.request("DELETE", f"/v1/documents/{ids['Refunds']}", key=key).status == 204
    eventually(lambda: ids["Refunds"] not in {r["document_id"] for r in results("refund purchase card", 0.5)}, "the deleted document gone")
    stored = standin.stored(f"tenant_{tenant.tenant_id}_documents")
    assert {source["document_id"] for source in stored.values()} == {ids["Shipping"]}
    assert all("refresh" not in params for _method, _path, params in standin.requests)
