"""Webhook endpoints, their signing secrets and delivery logs on DynamoDB; secrets sealed with the tenant's KMS key.

Layout (adapters/dynamo_schema.py):
- endpoints in the tenants table, `PK=TENANT#{id}#`, `SK=WEBHOOK#{endpoint id}`: the URL, subscribed types,
  state, failure streak and the signing secrets, each a KMS ciphertext (current first, a rotated one with
  its expiry);
- deliveries in the queries table, `SK=WHDLV#{endpoint id}#{delivery id}` (delivery ids sort by time, so
  a page is newest first), removed by TTL after the tier's `webhook_log_days`; a marker
  `WHEVT#{endpoint id}#{event id}` written in the same transaction makes one event one delivery per
  endpoint however often the bus hands it over;
- a delivery waiting for a retry carries `due_shard`/`due_at`, the keys of the sparse `webhook_due`
  index the retry schedule reads across tenants (platform role). Shards spread the index's partition.

Secrets: KMS Encrypt takes up to 4,096 bytes of plaintext and binds the encryption context to the
ciphertext, so Decrypt fails with another context
(https://docs.aws.amazon.com/sdk-for-python/v4/reference/clients/kms/operations/encrypt/,
https://docs.aws.amazon.com/kms/latest/developerguide/encrypt_context.html). The context names the
tenant, the endpoint and the purpose: a ciphertext copied to another tenant's or endpoint's item does
not decrypt, and the role's KMS statement can be conditioned on `raas:purpose`. Deleting the tenant
schedules its key's deletion, which shreds these secrets with everything else.
"""

from __future__ import annotations

import base64
import json
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from raas.adapters.dynamo import from_item, is_condition_failure, query_all, query_partition, storage_errors, to_item, transact_write
from raas.adapters.dynamo_schema import WEBHOOK_DUE_INDEX
from raas.adapters.objects import KmsKeyring
from raas.adapters.registry import tenant_pk
from raas.domain.errors import NotFound
from raas.domain.ports import VersionConflict
from raas.domain.webhooks import DeliveryStatus, DueDelivery, SealedSecret, StoredEndpoint, WebhookDelivery, WebhookEndpoint
from raas.security.credentials import as_source

DUE_SHARDS = 4
SECRET_PURPOSE = "webhook-signing-secret"  # noqa: S105 - a label, not a secret
KMS_MAX_PLAINTEXT = 4096
DEDUPE_DAYS = 7


def endpoint_sk(endpoint_id: str) -> str:
    return f"WEBHOOK#{endpoint_id}"


def delivery_prefix(endpoint_id: str) -> str:
    return f"WHDLV#{endpoint_id}#"


def _epoch(value: datetime) -> int:
    return int(value.timestamp())


class KmsSecretBox:
    """Seals secrets with the tenant's key (platform role: the tenant data role uses keys only via S3)."""

    def __init__(self, kms: Any, keyring: KmsKeyring):
        self.clients = as_source("kms", kms)
        self.keyring = keyring

    @staticmethod
    def _context(tenant_id: str, endpoint_id: str) -> dict[str, str]:
        return {"raas:tenant_id": tenant_id, "raas:endpoint_id": endpoint_id, "raas:purpose": SECRET_PURPOSE}

    def seal(self, tenant_id: str, endpoint_id: str, secret: str) -> str:
        plaintext = secret.encode("utf-8")
        if len(plaintext) > KMS_MAX_PLAINTEXT:
            raise ValueError("KMS Encrypt takes at most 4,096 bytes")
        with storage_errors("the key service"):
            sealed = self.clients(None).encrypt(
                KeyId=self.keyring.key_arn(tenant_id), Plaintext=plaintext, EncryptionContext=self._context(tenant_id, endpoint_id)
            )
        return base64.b64encode(sealed["CiphertextBlob"]).decode("ascii")

    def open(self, tenant_id: str, endpoint_id: str, ciphertext: str) -> str:
        self.keyring.gate(tenant_id)
        with storage_errors("the key service"):
            opened = self.clients(None).decrypt(
                CiphertextBlob=base64.b64decode(ciphertext), EncryptionContext=self._context(tenant_id, endpoint_id)
            )
        return bytes(opened["Plaintext"]).decode("utf-8")


class DynamoWebhookStore:
    def __init__(self, dynamodb: Any, tenants_table: str, log_table: str):
        self.clients = as_source("dynamodb", dynamodb)
        self.tenants_table = tenants_table
        self.log_table = log_table

    # --- endpoints ---------------------------------------------------------------------------

    def _endpoint_item(self, stored: StoredEndpoint) -> dict[str, Any]:
        endpoint = stored.endpoint
        return {
            "PK": tenant_pk(stored.tenant_id),
            "SK": endpoint_sk(endpoint.endpoint_id),
            "endpoint": endpoint.model_dump_json(),
            "secrets": json.dumps([s.model_dump(mode="json") for s in stored.secrets]),
            "revision": stored.revision + 1,
        }

    @staticmethod
    def _from_item(tenant_id: str, item: dict[str, Any]) -> StoredEndpoint:
        return StoredEndpoint(
            tenant_id=tenant_id,
            endpoint=WebhookEndpoint.model_validate_json(item["endpoint"]),
            secrets=[SealedSecret.model_validate(s) for s in json.loads(item["secrets"])],
            revision=int(item.get("revision", 0)),
        )

    def put_endpoint(self, stored: StoredEndpoint, *, create: bool) -> None:
        """Creates the endpoint, or replaces it if it is still at the revision `stored` was read at
        (VersionConflict when another write came first, NotFound when it was deleted)."""
        extra: dict[str, Any] = {}
        if create:
            condition = "attribute_not_exists(PK)"
        else:
            condition = "attribute_exists(PK) AND revision = :r"
            extra = {"ExpressionAttributeValues": to_item({":r": stored.revision})}
        try:
            with storage_errors("the webhook store"):
                self.clients(stored.tenant_id).put_item(
                    TableName=self.tenants_table, Item=to_item(self._endpoint_item(stored)), ConditionExpression=condition, **extra
                )
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise
            if create or self.get_endpoint(stored.tenant_id, stored.endpoint.endpoint_id) is not None:
                raise VersionConflict(f"webhook endpoint {stored.endpoint.endpoint_id} changed meanwhile") from None
            raise NotFound(f"webhook endpoint {stored.endpoint.endpoint_id} not found", code="webhook_not_found") from None

    def get_endpoint(self, tenant_id: str, endpoint_id: str) -> StoredEndpoint | None:
        with storage_errors("the webhook store"):
            item = (
                self.clients(tenant_id)
                .get_item(
                    TableName=self.tenants_table,
                    Key=to_item({"PK": tenant_pk(tenant_id), "SK": endpoint_sk(endpoint_id)}),
                    ConsistentRead=True,
                )
                .get("Item")
            )
        return self._from_item(tenant_id, from_item(item)) if item else None

    def list_endpoints(self, tenant_id: str) -> list[StoredEndpoint]:
        items = query_all(
            self.clients(tenant_id),
            "the webhook store",
            TableName=self.tenants_table,
            KeyConditionExpression="PK = :pk AND begins_with(SK, :prefix)",
            ExpressionAttributeValues=to_item({":pk": tenant_pk(tenant_id), ":prefix": "WEBHOOK#"}),
            ConsistentRead=True,
        )
        return [self._from_item(tenant_id, from_item(i)) for i in items]

    def delete_endpoint(self, tenant_id: str, endpoint_id: str) -> None:
        with storage_errors("the webhook store"):
            self.clients(tenant_id).delete_item(
                TableName=self.tenants_table, Key=to_item({"PK": tenant_pk(tenant_id), "SK": endpoint_sk(endpoint_id)})
            )

    # --- deliveries --------------------------------------------------------------------------

    def _delivery_item(self, tenant_id: str, delivery: WebhookDelivery, body: str | None, expires_at: datetime | None) -> dict[str, Any]:
        item: dict[str, Any] = {
            "PK": tenant_pk(tenant_id),
            "SK": delivery_prefix(delivery.endpoint_id) + delivery.delivery_id,
            "delivery": delivery.model_dump_json(),
        }
        if body is not None:
            item["body"] = body
        if expires_at is not None:
            item["expires_at"] = _epoch(expires_at)
        if delivery.status is DeliveryStatus.PENDING and delivery.next_attempt_at is not None:
            item["due_shard"] = f"due#{zlib.crc32(delivery.delivery_id.encode()) % DUE_SHARDS}"
            item["due_at"] = f"{delivery.next_attempt_at.astimezone(UTC).isoformat()}#{tenant_id}#{delivery.endpoint_id}"
        return item

    def create_delivery(self, tenant_id: str, delivery: WebhookDelivery, body: str, retention_days: int, *, dedupe: bool) -> bool:
        """Writes a new delivery; with `dedupe`, only if this endpoint has no delivery of this event yet
        (False then: the event was handed over before)."""
        expires = delivery.created_at + timedelta(days=retention_days)
        put = {
            "Put": {
                "TableName": self.log_table,
                "Item": to_item(self._delivery_item(tenant_id, delivery, body, expires)),
                "ConditionExpression": "attribute_not_exists(PK)",
            }
        }
        items: list[dict[str, Any]] = [put]
        if dedupe:
            marker = {
                "PK": tenant_pk(tenant_id),
                "SK": f"WHEVT#{delivery.endpoint_id}#{delivery.event_id}",
                "delivery_id": delivery.delivery_id,
                "expires_at": _epoch(delivery.created_at + timedelta(days=max(DEDUPE_DAYS, retention_days))),
            }
            items.append({"Put": {"TableName": self.log_table, "Item": to_item(marker), "ConditionExpression": "attribute_not_exists(PK)"}})
        try:
            transact_write(self.clients(tenant_id), items, "the webhook delivery log")
        except ClientError as exc:
            if is_condition_failure(exc):
                return False
            raise
        return True

    def save_delivery(self, tenant_id: str, delivery: WebhookDelivery) -> None:
        """Records an attempt's outcome; keeps the body and the expiry; sets or clears the due keys."""
        item = self._delivery_item(tenant_id, delivery, None, None)
        names = {"#d": "delivery"}
        values: dict[str, Any] = {":d": item["delivery"]}
        if "due_shard" in item:
            update = "SET #d = :d, due_shard = :s, due_at = :a"
            values |= {":s": item["due_shard"], ":a": item["due_at"]}
        else:
            update = "SET #d = :d REMOVE due_shard, due_at"
        with storage_errors("the webhook delivery log"):
            self.clients(tenant_id).update_item(
                TableName=self.log_table,
                Key=to_item({"PK": item["PK"], "SK": item["SK"]}),
                UpdateExpression=update,
                ConditionExpression="attribute_exists(PK)",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=to_item(values),
            )

    def get_delivery(self, tenant_id: str, endpoint_id: str, delivery_id: str) -> tuple[WebhookDelivery, str] | None:
        with storage_errors("the webhook delivery log"):
            item = (
                self.clients(tenant_id)
                .get_item(
                    TableName=self.log_table,
                    Key=to_item({"PK": tenant_pk(tenant_id), "SK": delivery_prefix(endpoint_id) + delivery_id}),
                    ConsistentRead=True,
                )
                .get("Item")
            )
        if not item:
            return None
        plain = from_item(item)
        return WebhookDelivery.model_validate_json(plain["delivery"]), str(plain.get("body", ""))

    def list_deliveries(self, tenant_id: str, endpoint_id: str, limit: int, cursor: str | None) -> tuple[list[WebhookDelivery], str | None]:
        items, next_cursor = query_partition(
            self.clients(tenant_id),
            self.log_table,
            tenant_pk(tenant_id),
            delivery_prefix(endpoint_id),
            limit=limit,
            cursor=cursor,
            what="the webhook delivery log",
            newest_first=True,
        )
        return [WebhookDelivery.model_validate_json(i["delivery"]) for i in items], next_cursor

    def due(self, now: datetime, limit: int) -> list[DueDelivery]:
        """Deliveries whose next attempt is due, across tenants (the platform role reads the index)."""
        found: list[DueDelivery] = []
        bound = f"{now.astimezone(UTC).isoformat()}#~"
        for shard in range(DUE_SHARDS):
            with storage_errors("the webhook delivery log"):
                page = self.clients(None).query(
                    TableName=self.log_table,
                    IndexName=WEBHOOK_DUE_INDEX,
                    KeyConditionExpression="due_shard = :s AND due_at <= :now",
                    ExpressionAttributeValues=to_item({":s": f"due#{shard}", ":now": bound}),
                    Limit=limit,
                )
            for raw in page.get("Items", []):
                item = from_item(raw)
                _when, tenant_id, endpoint_id = str(item["due_at"]).split("#")
                delivery_id = str(item["SK"]).rsplit("#", 1)[1]
                found.append(DueDelivery(tenant_id=tenant_id, endpoint_id=endpoint_id, delivery_id=delivery_id))
        return found[:limit]
