"""S3 object store: every key under `tenants/{tenant_id}/`, every object encrypted with the tenant's KMS key."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from raas.adapters.dynamo import storage_errors
from raas.domain import ids
from raas.domain.errors import PayloadTooLarge
from raas.security.credentials import as_source

TENANT_KEY_ALIAS = "alias/raas/tenant/{tenant_id}"
KEY_DELETION_WINDOW_DAYS = 7  # the shortest KMS allows

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


class KmsKeyring:
    """Per-tenant KMS keys behind the alias `alias/raas/tenant/{id}`; ARNs cached per container."""

    def __init__(self, kms: Any, gate: TenantGate = _open_gate):
        self.clients = as_source("kms", kms)
        self.gate = gate
        self._arns: dict[str, str] = {}

    def key_arn(self, tenant_id: str) -> str:
        self.gate(tenant_id)
        if tenant_id not in self._arns:
            alias = TENANT_KEY_ALIAS.format(tenant_id=tenant_id)
            with storage_errors("the key service"):
                self._arns[tenant_id] = self.clients(tenant_id).describe_key(KeyId=alias)["KeyMetadata"]["Arn"]
        return self._arns[tenant_id]

    def ensure(self, tenant_id: str) -> str:
        """Creates the tenant's key and alias unless they exist (idempotent)."""
        alias = TENANT_KEY_ALIAS.format(tenant_id=tenant_id)
        try:
            return self.key_arn(tenant_id)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "NotFoundException":
                raise
        with storage_errors("the key service"):
            kms = self.clients(None)  # provisioning creates keys with the platform's role
            key = kms.create_key(
                Description=f"raas tenant {tenant_id}",
                KeyUsage="ENCRYPT_DECRYPT",
                Tags=[{"TagKey": "raas:tenant_id", "TagValue": tenant_id}],
            )["KeyMetadata"]
            try:
                kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "AlreadyExistsException":
                    raise
                # Another provisioning attempt won the race: use its key, retire ours.
                kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
        self._arns.pop(tenant_id, None)
        return self.key_arn(tenant_id)

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


class S3ObjectStore:
    def __init__(self, s3: Any, bucket: str, keyring: KmsKeyring):
        self.clients = as_source("s3", s3)
        self.bucket = bucket
        self.keyring = keyring
        self.gate = keyring.gate

    def _encryption(self, tenant_id: str) -> dict[str, str]:
        return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.keyring.key_arn(tenant_id)}

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
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return int(head["ContentLength"])

    def get(self, tenant_id: str, key: str, max_bytes: int) -> bytes:
        self.gate(tenant_id)
        with storage_errors("the document store"):
            response = self.clients(tenant_id).get_object(Bucket=self.bucket, Key=tenant_object_key(tenant_id, key))
        if int(response["ContentLength"]) > max_bytes:
            response["Body"].close()
            raise PayloadTooLarge(f"object is larger than {max_bytes} bytes")
        data: bytes = response["Body"].read(max_bytes + 1)
        if len(data) > max_bytes:
            raise PayloadTooLarge(f"object is larger than {max_bytes} bytes")
        return data

    def delete(self, tenant_id: str, key: str) -> None:
        self.gate(tenant_id)
        with storage_errors("the document store"):
            self.clients(tenant_id).delete_object(Bucket=self.bucket, Key=tenant_object_key(tenant_id, key))

    def put_file(self, tenant_id: str, key: str, path: str, content_type: str) -> None:
        """Uploads a local file (multipart when large) under the tenant's prefix with its key."""
        with storage_errors("the document store"):
            self.clients(tenant_id).upload_file(
                path, self.bucket, tenant_object_key(tenant_id, key), ExtraArgs={"ContentType": content_type, **self._encryption(tenant_id)}
            )

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
        headers = {
            "Content-Type": content_type,
            "x-amz-server-side-encryption": "aws:kms",
            "x-amz-server-side-encryption-aws-kms-key-id": encryption["SSEKMSKeyId"],
        }
        return url, headers
