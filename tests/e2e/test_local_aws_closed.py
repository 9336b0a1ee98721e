"""The local AWS stand-in is as closed as AWS: what a tenant learns from its own upload ticket opens nothing else.

An upload ticket is a presigned S3 PUT that shows the local endpoint. These tests send, over HTTP,
what an attacker holding only its own ticket would send, and expect AWS's refusals; then they walk
the platform's own path (ticket -> upload -> ingest -> query) to show it still works.
"""

from __future__ import annotations

import http.client
import os
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from raas.settings import Settings
from tests.conftest import TenantHandle, create_tenant
from tests.e2e.conftest import LocalServer, start_local
from tests.e2e.test_isolation_http import wait_indexed
from tests.helpers import HttpClient, expect

pytestmark = pytest.mark.e2e

TICKET_SECONDS = 8  # short, so that a ticket's expiry can be waited out
ATTEMPTS = 3  # a busy 2-core CI machine once took longer than a ticket's lifetime between issue and upload
POLICY = b"# Refunds\n\nCustomers may request a full refund within 30 days of purchase.\n"


@pytest.fixture(scope="module")
def closed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    previous = os.environ.get("RAAS_PRESIGN_EXPIRES_SECONDS")
    os.environ["RAAS_PRESIGN_EXPIRES_SECONDS"] = str(TICKET_SECONDS)
    try:
        server = start_local(tmp_path_factory.mktemp("closed-state"))
    finally:
        if previous is None:
            os.environ.pop("RAAS_PRESIGN_EXPIRES_SECONDS")
        else:
            os.environ["RAAS_PRESIGN_EXPIRES_SECONDS"] = previous
    yield server
    server.stop()


@pytest.fixture(scope="module")
def api(closed_server: LocalServer) -> HttpClient:
    return HttpClient(closed_server.url)


@pytest.fixture(scope="module")
def tenant_a(api: HttpClient) -> TenantHandle:
    return create_tenant(api, "tenant A", "enterprise")


@pytest.fixture(scope="module")
def tenant_b(api: HttpClient) -> TenantHandle:
    return create_tenant(api, "tenant B", "enterprise")


def new_ticket(api: HttpClient, tenant: TenantHandle, data: bytes = POLICY) -> dict:
    return expect(
        api.request(
            "POST",
            "/v1/documents/uploads",
            key=tenant.admin_key,
            json_body={"filename": "policy.md", "content_type": "text/markdown", "size": len(data)},
        ),
        201,
    )


def send(method: str, url: str, headers: dict[str, str] | None = None, body: bytes | None = None) -> tuple[int, str]:
    """One raw request, as an attacker's own client would send it (no SDK, no signing)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.netloc, timeout=30)
    try:
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        connection.request(method, target, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        connection.close()


def put_unless_expired(issued: float, ticket: dict, data: bytes) -> bool:
    """PUT `data` with `ticket`: True if stored, False if refused only because the ticket outlived its lifetime.

    `issued` is `time.monotonic()` from before the ticket was asked for. X-Amz-Date has whole seconds, so a
    refusal for expiry is right only once more than TICKET_SECONDS - 1 have passed; any earlier refusal fails.
    """
    status, body = send("PUT", ticket["upload_url"], ticket["headers"], data)
    if status == 200:
        return True
    elapsed = time.monotonic() - issued
    assert "Request has expired" in body, (status, body)
    assert elapsed > TICKET_SECONDS - 1, f"refused as expired after only {elapsed:.1f} s: {body}"
    return False


def endpoint_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def bucket_of(url: str) -> str:
    return urlsplit(url).path.split("/")[1]


def with_path_of(url: str, other: str) -> str:
    """`url`'s signed query string on `other`'s object: the same ticket pointed at another key."""
    return endpoint_of(url) + urlsplit(other).path + "?" + urlsplit(url).query


def attacker_client(service: str, endpoint: str, key_id: str = "testing", secret: str = "testing") -> object:  # noqa: S107 - moto's dummy
    session = boto3.session.Session(aws_access_key_id=key_id, aws_secret_access_key=secret, region_name="us-east-1")
    config = Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}, signature_version="s3v4" if service == "s3" else None)
    return session.client(service, endpoint_url=endpoint, config=config)  # type: ignore[call-overload]


def error_code(call: object) -> str:
    with pytest.raises(ClientError) as refused:
        call()  # type: ignore[operator]
    return str(refused.value.response["Error"]["Code"])


def test_unsigned_requests_are_refused(api: HttpClient, tenant_a: TenantHandle, tenant_b: TenantHandle) -> None:
    mine, theirs = new_ticket(api, tenant_a), new_ticket(api, tenant_b)
    endpoint, bucket = endpoint_of(mine["upload_url"]), bucket_of(mine["upload_url"])
    their_key_url = endpoint + urlsplit(theirs["upload_url"]).path

    for method, url in [
        ("GET", f"{endpoint}/"),  # every bucket
        ("GET", f"{endpoint}/{bucket}?list-type=2"),  # every tenant's objects
        ("GET", their_key_url),
        ("PUT", their_key_url),  # overwrite their pending upload
    ]:
        status, body = send(method, url, body=b"mine now" if method == "PUT" else None)
        assert (status, "<Code>AccessDenied</Code>" in body) == (403, True), (method, url, status, body)

    status, body = send(
        "POST",
        f"{endpoint}/",
        {"X-Amz-Target": "DynamoDB_20120810.ListTables", "Content-Type": "application/x-amz-json-1.0"},
        b"{}",
    )
    assert status == 400
    assert "MissingAuthenticationTokenException" in body


def test_forged_credentials_are_refused(api: HttpClient, tenant_a: TenantHandle) -> None:
    ticket = new_ticket(api, tenant_a)
    endpoint, bucket = endpoint_of(ticket["upload_url"]), bucket_of(ticket["upload_url"])
    tenants_table = Settings.from_env({**os.environ, "RAAS_STAGE": "local"}).tenants_table

    s3 = attacker_client("s3", endpoint)
    assert error_code(lambda: s3.list_objects_v2(Bucket=bucket)) == "InvalidAccessKeyId"  # type: ignore[attr-defined]
    assert error_code(lambda: s3.put_object(Bucket=bucket, Key="x", Body=b"x")) == "InvalidAccessKeyId"  # type: ignore[attr-defined]
    dynamodb = attacker_client("dynamodb", endpoint)
    assert error_code(lambda: dynamodb.list_tables()) == "UnrecognizedClientException"  # type: ignore[attr-defined]
    assert error_code(lambda: dynamodb.scan(TableName=tenants_table)) == "UnrecognizedClientException"  # type: ignore[attr-defined]
    forged_key = {"pk": {"S": f"TENANT#{tenant_a.tenant_id}"}, "sk": {"S": "KEY#forged"}, "role": {"S": "admin"}}
    assert error_code(lambda: dynamodb.put_item(TableName=tenants_table, Item=forged_key)) == "UnrecognizedClientException"  # type: ignore[attr-defined]

    # The ticket shows the platform's access key id (as any presigned URL does); without the secret it signs nothing.
    key_id = parse_qs(urlsplit(ticket["upload_url"]).query)["X-Amz-Credential"][0].split("/")[0]
    assert key_id != "testing"
    guessed = "testing" + "0" * 33
    assert error_code(lambda: attacker_client("s3", endpoint, key_id, guessed).list_buckets()) == "SignatureDoesNotMatch"  # type: ignore[attr-defined]
    guessing_dynamodb = attacker_client("dynamodb", endpoint, key_id, guessed)
    assert error_code(lambda: guessing_dynamodb.scan(TableName=tenants_table)) == "InvalidSignatureException"  # type: ignore[attr-defined]


def test_a_ticket_is_good_only_for_its_key_method_headers_and_signature(
    api: HttpClient, tenant_a: TenantHandle, tenant_b: TenantHandle
) -> None:
    for _ in range(ATTEMPTS):
        issued = time.monotonic()
        mine, theirs = new_ticket(api, tenant_a), new_ticket(api, tenant_b)
        url, headers = mine["upload_url"], mine["headers"]
        bucket = bucket_of(url)
        other_last_char = "0" if mine["document_id"][-1] != "0" else "1"
        their_object = f"/{bucket}" + urlsplit(theirs["upload_url"]).path[len(bucket) + 1 :]

        attempts = {
            "another tenant's key": ("PUT", with_path_of(url, theirs["upload_url"]), headers),
            "another key of mine": ("PUT", url.replace(mine["document_id"], mine["document_id"][:-1] + other_last_char, 1), headers),
            "GET instead of PUT": ("GET", url, {}),
            "DELETE instead of PUT": ("DELETE", url, {}),
            "a tampered signature": ("PUT", url[:-1] + ("0" if url[-1] != "0" else "1"), headers),
            "another content type": ("PUT", url, {**headers, "Content-Type": "application/pdf"}),
            "an unsigned copy source": ("PUT", url, {**headers, "x-amz-copy-source": their_object}),
        }
        for name, (method, target, sent_headers) in attempts.items():
            status, body = send(method, target, sent_headers, POLICY if method == "PUT" else None)
            assert status == 403, (name, status, body)
            assert any(code in body for code in ("<Code>SignatureDoesNotMatch</Code>", "<Code>AccessDenied</Code>")), (name, body)

        if put_unless_expired(issued, mine, POLICY):  # the ticket itself, as given, still works
            return
    pytest.fail(f"every ticket expired before its upload, {ATTEMPTS} times")


def test_an_expired_ticket_is_refused(api: HttpClient, tenant_a: TenantHandle) -> None:
    ticket = new_ticket(api, tenant_a)
    time.sleep(TICKET_SECONDS + 1.5)
    status, body = send("PUT", ticket["upload_url"], ticket["headers"], POLICY)
    assert status == 403, body
    assert "<Code>AccessDenied</Code>" in body
    assert "Request has expired" in body


def test_the_platform_path_still_works(api: HttpClient, tenant_a: TenantHandle, tenant_b: TenantHandle) -> None:
    shipping = b"# Shipping\n\nOrders ship worldwide within five business days. Express shipping takes two days.\n"
    for _ in range(ATTEMPTS):
        issued = time.monotonic()
        ticket = new_ticket(api, tenant_a, shipping)
        if put_unless_expired(issued, ticket, shipping):
            break
    else:
        pytest.fail(f"every ticket expired before its upload, {ATTEMPTS} times")
    assert wait_indexed(api, tenant_a, ticket["document_id"])["status"] == "indexed"

    answer = expect(api.request("POST", "/v1/query", key=tenant_a.admin_key, json_body={"query": "How fast is express shipping?"}), 200)
    assert "two days" in answer["answer"]
    assert answer["citations"][0]["document_id"] == ticket["document_id"]
    theirs = expect(api.request("POST", "/v1/search", key=tenant_b.admin_key, json_body={"query": "express shipping"}), 200)["results"]
    assert all(hit["document_id"] != ticket["document_id"] for hit in theirs)


def test_credentials_change_at_each_start(closed_server: LocalServer, api: HttpClient, tenant_a: TenantHandle, tmp_path: Path) -> None:
    first = parse_qs(urlsplit(new_ticket(api, tenant_a)["upload_url"]).query)["X-Amz-Credential"][0].split("/")[0]
    other = start_local(tmp_path / "state")
    try:
        other_api = HttpClient(other.url)
        tenant = create_tenant(other_api, "tenant C", "enterprise")
        second = parse_qs(urlsplit(new_ticket(other_api, tenant)["upload_url"]).query)["X-Amz-Credential"][0].split("/")[0]
    finally:
        other.stop()
    assert first != second
    assert not any(first in line or second in line for line in closed_server.output + other.output)
