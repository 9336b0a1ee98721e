"""API fuzzing with schemathesis against `raas local`'s own OpenAPI document, with valid keys:
no 5xx, and every documented response matches its schema. The fast profile runs in the test
command (RAAS_FUZZ_EXAMPLES, default 3 per operation); `scripts/fuzz.sh` runs a longer one."""

from __future__ import annotations

import os
from typing import Any

import httpx
import hypothesis
import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from raas.handlers.openapi import openapi_document
from tests.conftest import TenantHandle, create_tenant
from tests.e2e.conftest import LocalServer
from tests.helpers import HttpClient

EXAMPLES = int(os.environ.get("RAAS_FUZZ_EXAMPLES", "3"))

# Operations that cannot answer 2xx/4xx on a platform without the matching configuration:
# the Stripe webhook answers 503 billing_not_configured on purpose when billing is off.
NOT_FUZZED = {("POST", "/v1/billing/stripe/webhook")}
OPERATOR_PREFIXES = ("/v1/tenants", "/v1/operator")


@pytest.fixture(scope="module")
def fuzz_tenant(http_api: HttpClient) -> TenantHandle:
    return create_tenant(http_api, "fuzzed", "enterprise")  # the largest burst: throttling is not under test here


# The document the local platform serves at /v1/openapi.json, built from the same routers
# (an e2e test checks the two are equal), so the operations are known at collection time.
schema = schemathesis.openapi.from_dict(openapi_document()).exclude(method="POST", path="/v1/billing/stripe/webhook")


@schema.parametrize()
@hypothesis.settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(hypothesis.HealthCheck),
    database=None,
)
def test_no_5xx_and_responses_match_the_spec(case: Any, local_server: LocalServer, fuzz_tenant: TenantHandle) -> None:
    assert (case.method.upper(), case.path) not in NOT_FUZZED
    key = local_server.operator_key if case.path.startswith(OPERATOR_PREFIXES) else fuzz_tenant.admin_key
    case.call_and_validate(
        base_url=local_server.url,
        headers={"Authorization": f"Bearer {key}"},
        checks=[not_a_server_error, response_schema_conformance],
        timeout=60,
    )


# Classes of well-framed but hostile JSON that schemathesis does not generate (it sends only valid
# JSON, with finite numbers and valid Unicode): each was a 502 somewhere before issue 12.
HOSTILE_VALUES = [
    b"NaN",
    b"-Infinity",
    b"1e999",
    b"1e-300",
    b"9" * 5000,
    b"9" * 39,
    b"[" * 5000 + b"]" * 5000,
    b'{"a": ' * 40 + b"1" + b"}" * 40,
    b'"\\ud800"',
    b'["x\\udfff"]',
    b"true",
]


def _body_operations() -> list[tuple[str, str, list[str]]]:
    """(method, path, top-level fields) of every operation that takes a JSON body."""
    document = openapi_document()
    schemas = document["components"]["schemas"]
    operations = []
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            schema = (operation.get("requestBody") or {}).get("content", {}).get("application/json", {}).get("schema")
            if schema is None or (method.upper(), path) in NOT_FUZZED:
                continue
            refs = [option["$ref"] for option in schema.get("anyOf", [schema]) if "$ref" in option]
            fields = sorted(schemas[refs[0].rsplit("/", 1)[-1]].get("properties", {})) if refs else []
            operations.append((method.upper(), path, fields or ["value"]))
    return operations


@pytest.mark.parametrize(("method", "path", "fields"), _body_operations(), ids=lambda v: v if isinstance(v, str) else None)
@hypothesis.settings(
    max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(hypothesis.HealthCheck), database=None
)
@hypothesis.given(data=st.data())
def test_hostile_json_values_get_a_4xx_in_the_error_shape(
    method: str, path: str, fields: list[str], data: Any, local_server: LocalServer, fuzz_tenant: TenantHandle
) -> None:
    field = data.draw(st.sampled_from(fields), label="field")
    value = data.draw(st.sampled_from(HOSTILE_VALUES), label="value")
    body = b'{"' + field.encode() + b'": ' + value + b"}"
    key = local_server.operator_key if path.startswith(OPERATOR_PREFIXES) else fuzz_tenant.admin_key
    url = local_server.url + path.replace("{tenant_id}", "t0000000000000000")  # no such tenant: nothing real is touched
    reply = httpx.request(
        method, url, content=body, headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"}, timeout=60
    )
    assert reply.status_code < 500, reply.text[:300]
    if reply.status_code >= 400:
        error = reply.json()["error"]
        assert isinstance(error["code"], str)
        assert error["message"]
