"""A new tenant's key works the moment it exists, and only for that tenant's objects.

Tenant keys are created at run time (provisioning). AWS takes up to five minutes before a new
tag or alias counts for authorization, so a policy keyed on the `raas:tenant_id` tag refused a
new tenant's first upload (issue 10, defect 4). moto enforces no policy, so these tests run the
requests through tests/kms_policy.py: the KMS request S3 makes for each object (encryption
context, ViaService), decided against the real policy documents, with tags invisible for five
minutes on a fake clock that never moves unless a test moves it.
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from raas.adapters import aws
from raas.adapters.objects import S3ObjectStore
from raas.bootstrap import services
from raas.local.events import QueuePump
from raas.security.credentials import TenantSessions, _Session
from raas.security.tenant_policy import handler_tenant_key_statements, tenant_data_policy
from tests.conftest import TenantHandle, create_tenant
from tests.helpers import ApiClient, expect, rebuild_services
from tests.kms_policy import PLATFORM, PROPAGATION_SECONDS, FakeClock, KmsAuthorization, Principal

BUCKET_ARN = "arn:aws:s3:::raas-documents"
TABLE_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/*"

# The tenant and handler statements as they were before this fix (HEAD's tenant_policy.py and
# stacks/api.py): keys recognised by their tag, which AWS applies up to five minutes late.
TAG_BASED_TENANT_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        *[s for s in tenant_data_policy([TABLE_ARN], BUCKET_ARN)["Statement"] if s["Sid"] != "TenantKeyOnly"],
        {
            "Sid": "TenantKeyOnly",
            "Effect": "Allow",
            "Action": ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:DescribeKey"],
            "Resource": ["*"],
            "Condition": {"StringEquals": {"aws:ResourceTag/raas:tenant_id": "${aws:PrincipalTag/tenant_id}"}},
        },
    ],
}
TAG_BASED_HANDLER_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {  # documents, ingest, account, lifecycle
            "Effect": "Allow",
            "Action": ["kms:DescribeKey", "kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey"],
            "Resource": ["*"],
            "Condition": {"StringLike": {"aws:ResourceTag/raas:tenant_id": "t*"}},
        },
        {"Effect": "Allow", "Action": ["kms:DescribeKey"], "Resource": ["*"]},  # lifecycle (provisioning)
    ],
}


def current_policies() -> dict[str, dict[str, Any]]:
    return {
        "tenant": tenant_data_policy([TABLE_ARN], BUCKET_ARN),
        "platform": {"Version": "2012-10-17", "Statement": handler_tenant_key_statements(BUCKET_ARN)},
    }


class PolicedSessions(TenantSessions):
    """Real tenant sessions (moto STS) whose clients go through the authorization double."""

    def __init__(self, sts: Any, role_arn: str, authorization: KmsAuthorization):
        super().__init__(sts, role_arn)
        self.authorization = authorization

    def client(self, tenant_id: str, service: str) -> Any:
        scoped = super().client(tenant_id, service)
        self.authorization.watch(scoped, Principal.tenant(tenant_id))
        return scoped

    def _assume(self, tenant_id: str) -> _Session:
        session = super()._assume(tenant_id)
        credentials = session.session.get_credentials()
        assert credentials is not None
        self.authorization.register_access_key(credentials.access_key, Principal.tenant(tenant_id))
        return session


def police(monkeypatch: pytest.MonkeyPatch, policies: dict[str, dict[str, Any]]) -> KmsAuthorization:
    """Every tenant-data request from here on is decided by `policies` at the fake clock's time."""
    authorization = KmsAuthorization(policies, FakeClock())
    authorization.install(monkeypatch)
    role = boto3.client("iam").create_role(RoleName="raas-tenant-data", AssumeRolePolicyDocument=json.dumps({"Statement": []}))
    sessions = PolicedSessions(boto3.client("sts"), role["Role"]["Arn"], authorization)
    rebuild_services(tenant_sessions=sessions)
    authorization.watch(aws.client("s3"), PLATFORM)  # handler roles: presigning, provisioning
    authorization.watch(aws.client("kms"), PLATFORM)
    return authorization


@pytest.fixture
def policed(api: ApiClient, monkeypatch: pytest.MonkeyPatch) -> KmsAuthorization:
    return police(monkeypatch, current_policies())


def tenant_decisions(authorization: KmsAuthorization, tenant_id: str, action: str) -> list[bool]:
    principal = Principal.tenant(tenant_id)
    return [d.allowed for d in authorization.decisions if d.principal == principal and d.action == action]


def upload_ticket(api: ApiClient, tenant: TenantHandle, data: bytes) -> dict[str, Any]:
    body = {"filename": "notes.txt", "content_type": "text/plain", "size": len(data)}
    return expect(api.request("POST", "/v1/documents/uploads", key=tenant.admin_key, json_body=body), 201)


def status(api: ApiClient, tenant: TenantHandle, document_id: str) -> str:
    return str(expect(api.request("GET", f"/v1/documents/{document_id}", key=tenant.admin_key), 200)["status"])


def test_a_new_tenants_first_put_get_upload_and_export_work_at_once(
    api: ApiClient, policed: KmsAuthorization, ingest_queue: QueuePump
) -> None:
    # Given a tenant provisioned just now (its key and tag are younger than five minutes)
    tenant = create_tenant(api, "brand new", "enterprise")

    # When it stores a document, has it ingested, uploads a file and exports, all at t=0
    inline = expect(
        api.request("POST", "/v1/documents", key=tenant.admin_key, json_body={"title": "t", "text": "refunds in thirty days"}), 202
    )
    data = b"the warranty lasts two years"
    ticket = upload_ticket(api, tenant, data)
    assert policed.presigned_put(ticket["upload_url"], ticket["headers"], data).status_code == 200
    ingest_queue.drain()
    exported = expect(api.request("POST", "/v1/export", key=tenant.admin_key), 201)
    download = policed.presigned_get(exported["url"])

    # Then every step was allowed by the policies as AWS would apply them at t=0
    assert status(api, tenant, inline["document_id"]) == "indexed"
    assert status(api, tenant, ticket["document_id"]) == "indexed"
    assert download.status_code == 200
    assert json.loads(zipfile.ZipFile(io.BytesIO(download.content)).read("manifest.json"))["documents"] == 2
    assert tenant_decisions(policed, tenant.tenant_id, "kms:GenerateDataKey") == [True, True]  # the inline put, the export
    assert tenant_decisions(policed, tenant.tenant_id, "kms:Decrypt") == [True, True, True, True]  # ingest x2, export x2
    platform = [(d.action, d.allowed) for d in policed.decisions if d.principal == PLATFORM and d.action != "kms:DescribeKey"]
    assert platform == [("kms:GenerateDataKey", True), ("kms:Decrypt", True)]  # the presigned upload and download
    assert all(d.allowed for d in policed.decisions if d.action == "kms:DescribeKey")  # alias lookups, platform role
    # the key's tag was not yet visible to any of these decisions, and no tenant session described a key
    assert all("aws:ResourceTag/raas:tenant_id" not in d.context for d in policed.decisions)
    assert not any(d.action == "kms:DescribeKey" and d.principal.policy == "tenant" for d in policed.decisions)


def test_the_tag_based_policy_refused_a_new_tenant_until_its_tag_propagated(api: ApiClient, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the policies as they were: keys matched by their raas:tenant_id tag
    authorization = police(monkeypatch, {"tenant": TAG_BASED_TENANT_POLICY, "platform": TAG_BASED_HANDLER_POLICY})
    tenant = create_tenant(api, "brand new", "enterprise")

    # When it stores its first document at once, it is refused: the key's tag does not count yet
    first = api.request("POST", "/v1/documents", key=tenant.admin_key, json_body={"title": "t", "text": "first words"})
    assert first.status >= 500
    refused = [d for d in authorization.decisions if not d.allowed]
    assert refused
    assert all(d.action.startswith("kms:") and "aws:ResourceTag/raas:tenant_id" not in d.context for d in refused)
    data = b"uploaded bytes"
    ticket = upload_ticket(api, tenant, data)  # the documents role signs it (DescribeKey needs no tag)
    with pytest.raises(ClientError, match="AccessDenied"):  # but S3's GenerateDataKey as that role does
        authorization.presigned_put(ticket["upload_url"], ticket["headers"], data)

    # Then five minutes later, once the tag counts, the same requests go through
    authorization.clock.advance(PROPAGATION_SECONDS)
    second = api.request("POST", "/v1/documents", key=tenant.admin_key, json_body={"title": "t2", "text": "second words"})
    expect(second, 202)
    assert authorization.presigned_put(ticket["upload_url"], ticket["headers"], data).status_code == 200


def test_tenant_a_can_never_decrypt_tenant_bs_objects(api: ApiClient, policed: KmsAuthorization, ingest_queue: QueuePump) -> None:
    a = create_tenant(api, "tenant A", "enterprise")
    b = create_tenant(api, "tenant B", "enterprise")
    accepted = expect(api.request("POST", "/v1/documents", key=b.admin_key, json_body={"title": "b", "text": "b's secret"}), 202)
    b_object = f"tenants/{b.tenant_id}/documents/{accepted['document_id']}/source"
    store: S3ObjectStore = services().object_store
    a_s3 = store.clients(a.tenant_id)
    b_key_arn = services().keyring.key_arn(b.tenant_id)

    for _ in range(2):  # at t=0, and after every tag has long propagated
        with pytest.raises(Exception, match="AccessDenied"):
            a_s3.get_object(Bucket=store.bucket, Key=b_object)
        # KMS alone refuses too, whatever the S3 statement says: B's object ARN is the context
        with pytest.raises(Exception, match="AccessDenied"):
            policed.kms_via_s3(Principal.tenant(a.tenant_id), "kms:Decrypt", b_key_arn, store.bucket, b_object, False, "GetObject")
        # and B's key cannot be called directly, with any context A might claim
        with pytest.raises(Exception, match="AccessDenied"):
            store.keyring.clients(a.tenant_id).decrypt(
                CiphertextBlob=b"x" * 32,
                KeyId=b_key_arn,
                EncryptionContext={"aws:s3:arn": f"arn:aws:s3:::{store.bucket}/tenants/{a.tenant_id}/x"},
            )
        policed.clock.advance(PROPAGATION_SECONDS * 12)
    # B still reads its own object
    ingest_queue.drain()
    assert status(api, b, accepted["document_id"]) == "indexed"


def test_large_files_go_up_in_parts_under_the_tenants_key_without_a_bucket_key(
    api: ApiClient, policed: KmsAuthorization, tmp_path: Any
) -> None:
    tenant = create_tenant(api, "big files", "enterprise")
    store: S3ObjectStore = services().object_store
    part = 5 * 1024 * 1024  # S3's smallest part (https://docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html)
    path = tmp_path / "bundle.zip"
    path.write_bytes(bytes(range(256)) * (part * 2 // 256) + b"tail")
    store.put_file(tenant.tenant_id, "exports/big.zip", str(path), "application/zip", part_bytes=part)
    assert store.get(tenant.tenant_id, "exports/big.zip", 3 * part) == path.read_bytes()
    head = boto3.client("s3").head_object(Bucket=store.bucket, Key=f"tenants/{tenant.tenant_id}/exports/big.zip")
    assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", services().keyring.key_arn(tenant.tenant_id))
    # CreateMultipartUpload asks for a data key, each of the three parts for a decrypt, all allowed at t=0
    assert tenant_decisions(policed, tenant.tenant_id, "kms:GenerateDataKey") == [True]
    assert tenant_decisions(policed, tenant.tenant_id, "kms:Decrypt") == [True, True, True, True]  # 3 parts + the read


def test_a_presigned_upload_must_send_every_signed_encryption_header(api: ApiClient, policed: KmsAuthorization) -> None:
    tenant = create_tenant(api, "uploader", "enterprise")
    data = b"bytes"
    ticket = upload_ticket(api, tenant, data)
    assert ticket["headers"]["x-amz-server-side-encryption-bucket-key-enabled"] == "false"
    without = {k: v for k, v in ticket["headers"].items() if k != "x-amz-server-side-encryption-bucket-key-enabled"}
    with pytest.raises(AssertionError, match="SignatureDoesNotMatch"):
        policed.presigned_put(ticket["upload_url"], without, data)
