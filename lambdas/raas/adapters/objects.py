"""S3 object store: every key under `tenants/{tenant_id}/`, every object encrypted with the tenant's KMS key.

How KMS authorizes a tenant's objects without waiting for tags (issue 10, defect 4)
------------------------------------------------------------------------------------
Tenant keys are created at run time, when a tenant is provisioned. A policy that matches keys by
their `raas:tenant_id` tag (or alias) lags: "It might take up to five minutes for tag and alias
changes to affect KMS key authorization"
(https://docs.aws.amazon.com/kms/latest/developerguide/tag-authorization.html,
https://docs.aws.amazon.com/kms/latest/developerguide/abac.html), so a new tenant's first
upload was refused. Instead, the tenant data role's KMS statement (security/tenant_policy.py)
matches what S3 itself puts in every KMS request it makes for an object:

- S3 sends the encryption context `aws:s3:arn` = the object's ARN, or the bucket's ARN when an S3
  Bucket Key is used, and validates that value itself, so a caller cannot forge it
  (https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html#encryption-context,
  https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucket-key.html#bucket-key-policies).
  The policy allows GenerateDataKey/Decrypt only when that ARN is under
  `tenants/${aws:PrincipalTag/tenant_id}/`, and only via S3 (`kms:ViaService`,
  https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-via-service).
  Both are properties of the request, so they hold the moment the key exists.
- Every tenant object is therefore written with `BucketKeyEnabled=False` (object level; the
  bucket's default stays on for the platform-key objects under `retained/`): with a Bucket Key
  the context would be the bucket ARN, the same for every tenant. The object-level header
  overrides the bucket default
  (https://docs.aws.amazon.com/AmazonS3/latest/userguide/configuring-bucket-key-object.html).
- Cost: without a Bucket Key, S3 calls KMS once per PUT and once per GET of a tenant object
  (https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucket-key.html). Documents are written
  once and read by ingestion and export, so this is a few requests per document at KMS's
  per-request price (https://aws.amazon.com/kms/pricing/: $0.03 per 10,000), a negligible sum.
- Security: the condition fences the *data* a key may protect, not the key. Tenant A's session
  could ask S3 to encrypt one of A's own objects under B's key (our code never does; it always
  sends the session tenant's key), but that exposes nothing of B: B's objects carry B's object
  ARN as context, which A's condition never matches, and the context is bound to the ciphertext as
  additional authenticated data, so it cannot be swapped
  (https://docs.aws.amazon.com/kms/latest/developerguide/encrypt_context.html). The S3
  statement, which refuses A every object under `tenants/<B>/`, is a second, independent wall.
- A custom context (`SSEKMSEncryptionContext` with a `tenant_id` pair) would also work without
  tags, but every writer, browsers with presigned URLs included, would have to send and sign a
  base64 JSON header, and S3 describes the Bucket Key context only as the bucket ARN, so a custom
  pair would not let us keep Bucket Keys either: it buys nothing over the object ARN.

Key ARNs are looked up with the platform client, never with the tenant session: DescribeKey
carries no encryption context, so the tenant role has no statement that allows it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from raas.adapters.dynamo import error_code, storage_errors
from raas.domain import ids
from raas.domain.errors import PayloadTooLarge, ServiceUnavailable
from raas.security.credentials import as_source

TENANT_KEY_ALIAS = "alias/raas/tenant/{tenant_id}"
TENANT_KEY_TAG = "raas:tenant_id"
KEY_DELETION_WINDOW_DAYS = 7  # the shortest KMS allows
# Files above this go up in parts. boto3's upload_file cannot be used: its transfer manager does
# not pass BucketKeyEnabled through (s3transfer's ALLOWED_UPLOAD_ARGS), and parts are at most
# 10,000 of at least 5 MiB (https://docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html).
MULTIPART_PART_BYTES = 64 * 1024 * 1024

# The documents bucket's CORS configuration (S3 API shape), deployed by stacks/data.py and put on the
# local bucket by raas local: browsers (the console) PUT to presigned URLs with the headers `presign_put`
# signs, so a preflight asks for exactly these. Any origin: the presigned URL is the authorisation.
# S3 answers a preflight from the first rule whose origin, method and every requested header match, and
# 403 otherwise (https://docs.aws.amazon.com/AmazonS3/latest/userguide/cors.html,
# https://docs.aws.amazon.com/AmazonS3/latest/API/RESTOPTIONSobject.html).
UPLOAD_CORS_RULES: list[dict[str, Any]] = [
    {
        "AllowedMethods": ["PUT"],
        "AllowedOrigins": ["*"],
        "AllowedHeaders": [
            "content-type",
            "x-amz-server-side-encryption",
            "x-amz-server-side-encryption-aws-kms-key-id",
            # tenant objects carry no S3 Bucket Key (see above)
            "x-amz-server-side-encryption-bucket-key-enabled",
        ],
        "MaxAgeSeconds": 3000,
    }
]

# Raises when the tenant's data may no longer be touched (it is being deleted). KMS key state
# alone is not enough (a scheduled deletion still decrypts until the window ends, and moto
# ignores key state), so the adapters ask the registry before every S3 and KMS use.
TenantGate = Callable[[str], None]


def _open_gate(_tenant_id: str) -> None:
    return None


def tenant_prefix(tenant_id: str) -> str:
    if not ids.is_tenant_id(tenant_id):
        raise ValueError(f"not a tenant id: {tenant_id!r}")
    return f"tenants/{tenant_id}/"


def tenant_object_key(tenant_id: str, key: str) -> str:
    """The full S3 key of a tenant-relative key; refuses anything that could escape the prefix."""
    if key.startswith("/") or ".." in key.split("/") or "\\" in key:
        raise ValueError(f"unsafe object key {key!r}")
    return tenant_prefix(tenant_id) + key


def tenant_of_object_key(full_key: str) -> tuple[str, str] | None:
    """(tenant id, tenant-relative key) of an S3 key we wrote, else None."""
    parts = full_key.split("/", 2)
    if len(parts) != 3 or parts[0] != "tenants" or not ids.is_tenant_id(parts[1]):
        return None
    return parts[1], parts[2]


def _key_not_visible_yet() -> ServiceUnavailable:
    return ServiceUnavailable("the tenant's encryption key is not available yet; try again", code="storage_unavailable")


class KmsKeyring:
    """Per-tenant KMS keys behind the alias `alias/raas/tenant/{id}`; ARNs cached per container.

    Every KMS call here uses the platform client (`clients(None)`): the tenant data role may use
    a key only through S3 for that tenant's objects (see the module docstring), so it cannot
    describe one. `kms` may still be a tenant-aware ClientSource (the composition root passes one); only its
    platform client is used."""

    def __init__(self, kms: Any, gate: TenantGate = _open_gate):
        self.clients = as_source("kms", kms)
        self.gate = gate
        self._arns: dict[str, str] = {}

    def _lookup(self, tenant_id: str) -> str | None:
        """The key ARN behind the tenant's alias, or None when there is no such alias."""
        alias = TENANT_KEY_ALIAS.format(tenant_id=tenant_id)
        try:
            with storage_errors("the key service"):
                return str(self.clients(None).describe_key(KeyId=alias)["KeyMetadata"]["Arn"])
        except ClientError as exc:
            if error_code(exc) == "NotFoundException":
                return None
            raise

    def key_arn(self, tenant_id: str) -> str:
        self.gate(tenant_id)
        if tenant_id not in self._arns:
            arn = self._lookup(tenant_id)
            if arn is None:
                # KMS is eventually consistent: a just-created alias can be missing for a few
                # seconds (https://docs.aws.amazon.com/kms/latest/developerguide/programming-eventual-consistency.html).
                raise _key_not_visible_yet()
            self._arns[tenant_id] = arn
        return self._arns[tenant_id]

    def ensure(self, tenant_id: str) -> str:
        """Creates the tenant's key and alias unless they exist (idempotent); returns the key ARN."""
        existing = self._lookup(tenant_id)
        if existing is not None:
            self._arns[tenant_id] = existing
            return existing
        alias = TENANT_KEY_ALIAS.format(tenant_id=tenant_id)
        with storage_errors("the key service"):
            kms = self.clients(None)  # provisioning creates keys with the platform's role
            # No Policy: KMS's default key policy lets this account's IAM policies grant use of the
            # key, which is how the tenant and handler roles get it
            # (https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html).
            key = kms.create_key(
                Description=f"raas tenant {tenant_id}",
                KeyUsage="ENCRYPT_DECRYPT",
                Tags=[{"TagKey": TENANT_KEY_TAG, "TagValue": tenant_id}],
            )["KeyMetadata"]
            try:
                kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
            except ClientError as exc:
                if error_code(exc) != "AlreadyExistsException":
                    raise
                # Another provisioning attempt won the race: use its key, retire ours.
                kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=KEY_DELETION_WINDOW_DAYS)
                winner = self._lookup(tenant_id)
                if winner is None:
                    raise _key_not_visible_yet() from exc
                self._arns[tenant_id] = winner
                return winner
        # The ARN comes from CreateKey itself, not from a lookup of the alias just made (which
        # KMS may not show yet).
        self._arns[tenant_id] = str(key["Arn"])
        return self._arns[tenant_id]

    def schedule_deletion(self, tenant_id: str, window_days: int = KEY_DELETION_WINDOW_DAYS) -> tuple[str, str] | None:
        """Schedules the tenant's key for deletion (crypto-shredding); idempotent.

        Returns (key id, deletion date), or None when the tenant never had a key."""
        alias = TENANT_KEY_ALIAS.format(tenant_id=tenant_id)
        kms = self.clients(None)
        try:
            with storage_errors("the key service"):
                metadata = kms.describe_key(KeyId=alias)["KeyMetadata"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "NotFoundException":
                return None
            raise
        self._arns.pop(tenant_id, None)
        if metadata.get("KeyState") == "PendingDeletion":
            return str(metadata["KeyId"]), str(metadata.get("DeletionDate", ""))
        with storage_errors("the key service"):
            scheduled = kms.schedule_key_deletion(KeyId=metadata["KeyId"], PendingWindowInDays=window_days)
        return str(metadata["KeyId"]), str(scheduled.get("DeletionDate", ""))


# What S3 answers for a missing object: HEAD has no body, so only its status ("404"); GET says NoSuchKey.
_MISSING_CODES = ("404", "NoSuchKey", "NotFound")


class S3ObjectStore:
    def __init__(self, s3: Any, bucket: str, keyring: KmsKeyring):
        self.clients = as_source("s3", s3)
        self.bucket = bucket
        self.keyring = keyring
        self.gate = keyring.gate

    def _encryption(self, tenant_id: str) -> dict[str, Any]:
        # No S3 Bucket Key: S3 then sends KMS this object's own ARN as encryption context, which
        # is what the tenant role's KMS condition matches (see the module docstring).
        return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.keyring.key_arn(tenant_id), "BucketKeyEnabled": False}

    def put(self, tenant_id: str, key: str, data: bytes, content_type: str) -> None:
        with storage_errors("the document store"):
            self.clients(tenant_id).put_object(
                Bucket=self.bucket,
                Key=tenant_object_key(tenant_id, key),
                Body=data,
                ContentType=content_type,
                **self._encryption(tenant_id),
            )

    def size(self, tenant_id: str, key: str) -> int | None:
        self.gate(tenant_id)
        try:
            with storage_errors("the document store"):
                head = self.clients(tenant_id).head_object(Bucket=self.bucket, Key=tenant_object_key(tenant_id, key))
        except ClientError as exc:
            if error_code(exc) in _MISSING_CODES:
                return None
            raise
        return int(head["ContentLength"])

    def get(self, tenant_id: str, key: str, max_bytes: int) -> bytes:
        self.gate(tenant_id)
        return self._get(tenant_id, key, max_bytes)

    def _get(self, tenant_id: str, key: str, max_bytes: int) -> bytes:
        with storage_errors("the document store"):
            response = self.clients(tenant_id).get_object(Bucket=self.bucket, Key=tenant_object_key(tenant_id, key))
        # GetObject's Content-Length is the object's size, known before a byte of the body is read:
        # https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html#API_GetObject_ResponseSyntax
        if int(response["ContentLength"]) > max_bytes:
            response["Body"].close()
            raise PayloadTooLarge(f"object is {int(response['ContentLength'])} bytes, larger than {max_bytes}")
        data: bytes = response["Body"].read(max_bytes + 1)
        if len(data) > max_bytes:
            raise PayloadTooLarge(f"object is larger than {max_bytes} bytes")
        return data

    def read_upload(self, tenant_id: str, key: str, max_bytes: int) -> bytes | None:
        try:
            return self._get(tenant_id, key, max_bytes)  # ungated: see the port (ObjectStore.read_upload)
        except ClientError as exc:
            if error_code(exc) in _MISSING_CODES:
                return None
            raise

    def delete(self, tenant_id: str, key: str) -> None:
        self.gate(tenant_id)
        with storage_errors("the document store"):
            self.clients(tenant_id).delete_object(Bucket=self.bucket, Key=tenant_object_key(tenant_id, key))

    def put_file(self, tenant_id: str, key: str, path: str, content_type: str, part_bytes: int = MULTIPART_PART_BYTES) -> None:
        """Uploads a local file (in parts when large) under the tenant's prefix with its key."""
        full_key = tenant_object_key(tenant_id, key)
        encryption = self._encryption(tenant_id)
        s3 = self.clients(tenant_id)
        size = os.path.getsize(path)
        with open(path, "rb") as source, storage_errors("the document store"):
            if size <= part_bytes:
                s3.put_object(Bucket=self.bucket, Key=full_key, Body=source, ContentType=content_type, **encryption)
                return
            # The encryption settings go on CreateMultipartUpload; the parts inherit them.
            upload_id = s3.create_multipart_upload(Bucket=self.bucket, Key=full_key, ContentType=content_type, **encryption)["UploadId"]
            try:
                parts = []
                for number in range(1, -(-size // part_bytes) + 1):
                    etag = s3.upload_part(
                        Bucket=self.bucket, Key=full_key, UploadId=upload_id, PartNumber=number, Body=source.read(part_bytes)
                    )["ETag"]
                    parts.append({"ETag": etag, "PartNumber": number})
                s3.complete_multipart_upload(Bucket=self.bucket, Key=full_key, UploadId=upload_id, MultipartUpload={"Parts": parts})
            except Exception:
                s3.abort_multipart_upload(Bucket=self.bucket, Key=full_key, UploadId=upload_id)
                raise

    def put_retained_file(self, tenant_id: str, name: str, path: str) -> str:
        """Stores a file that must outlive the tenant (its deletion export): outside the tenant's
        prefix and under the bucket's platform key, since the tenant's own key is being shredded."""
        key = f"retained/{tenant_id}/{name}"
        with storage_errors("the document store"):
            self.clients(None).upload_file(path, self.bucket, key, ExtraArgs={"ContentType": "application/zip"})
        return key

    def presign_get(self, tenant_id: str, key: str, expires_seconds: int) -> str:
        self.gate(tenant_id)
        url: str = self.clients(None).generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": tenant_object_key(tenant_id, key)}, ExpiresIn=expires_seconds
        )
        return url

    def presign_put(self, tenant_id: str, key: str, content_type: str, expires_seconds: int) -> tuple[str, dict[str, str]]:
        encryption = self._encryption(tenant_id)
        # Signed with the platform role, so the URL lives its full expiry (a tenant session may end sooner).
        url = self.clients(None).generate_presigned_url(
            "put_object",
            Params={"Bucket": self.bucket, "Key": tenant_object_key(tenant_id, key), "ContentType": content_type, **encryption},
            ExpiresIn=expires_seconds,
        )
        # SigV4 signs these headers into the URL (X-Amz-SignedHeaders): the upload must send each
        # of them with exactly these values or S3 answers SignatureDoesNotMatch
        # (https://repost.aws/knowledge-center/s3-presigned-url-signature-mismatch).
        headers = {
            "Content-Type": content_type,
            "x-amz-server-side-encryption": "aws:kms",
            "x-amz-server-side-encryption-aws-kms-key-id": encryption["SSEKMSKeyId"],
            "x-amz-server-side-encryption-bucket-key-enabled": "false",
        }
        return url, headers
