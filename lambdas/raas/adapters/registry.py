"""DynamoDB implementation of the tenant, key and configuration stores (one table)."""

from __future__ import annotations

import json
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel

from raas.adapters.dynamo import (
    decode_cursor,
    encode_cursor,
    from_item,
    is_condition_failure,
    query_all,
    query_partition,
    storage_errors,
    to_item,
    transact_write,
)
from raas.adapters.dynamo_schema import KEY_HASH_INDEX, TENANT_LIST_INDEX
from raas.domain.catalog import Tier
from raas.domain.config import ConfigVersion
from raas.domain.errors import NotFound, ServiceUnavailable
from raas.domain.ports import VersionConflict
from raas.domain.tenants import ApiKey, DeletionStep, SuspensionReason, Tenant, TenantStatus
from raas.security.credentials import as_source

OPERATOR_PK = "OPERATOR"
PROFILE_SK = "PROFILE"
CURRENT_CONFIG_SK = "CONFIG#current"
_LIST_PK = "TENANTS"
# Tenants one filtered listing request reads at most before it answers a short page (see list_tenants).
_FILTER_READ_BUDGET = 1000


def tenant_pk(tenant_id: str) -> str:
    # The trailing delimiter keeps LeadingKeys prefix conditions from matching a longer id.
    return f"TENANT#{tenant_id}#"


def tenant_of_pk(pk: str | None) -> str | None:
    """The tenant whose partition `pk` is (`tenant_pk`); None for any other (the operator's keys)."""
    if pk and pk.startswith("TENANT#") and pk.endswith("#") and len(pk) > len("TENANT##"):
        return pk[len("TENANT#") : -1]
    return None


def owner_pk(owner: str | None) -> str:
    return OPERATOR_PK if owner is None else tenant_pk(owner)


def config_sk(version: int) -> str:
    return f"CONFIG#v{version:010d}"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


class _Table:
    def __init__(self, dynamodb: Any, table_name: str):
        self.clients = as_source("dynamodb", dynamodb)
        self.table = table_name

    def _get(self, pk: str, sk: str, tenant_id: str | None = None) -> dict[str, Any] | None:
        with storage_errors("the tenant registry"):
            item = (
                self.clients(tenant_id).get_item(TableName=self.table, Key=to_item({"PK": pk, "SK": sk}), ConsistentRead=True).get("Item")
            )
        return from_item(item) if item else None


class DynamoTenantStore(_Table):
    def create_tenant(self, tenant: Tenant, admin_key: ApiKey, key_hash: str) -> None:
        profile = {
            "PK": tenant_pk(tenant.tenant_id),
            "SK": PROFILE_SK,
            "list_pk": _LIST_PK,
            "list_sk": f"{_iso(tenant.created_at)}#{tenant.tenant_id}",
            **_tenant_attrs(tenant),
        }
        transact_write(
            self.clients(None),
            [
                {"Put": {"TableName": self.table, "Item": to_item(profile), "ConditionExpression": "attribute_not_exists(PK)"}},
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": to_item(_key_item(admin_key, key_hash)),
                        "ConditionExpression": "attribute_not_exists(PK)",
                    }
                },
            ],
            "the tenant registry",
        )

    def get_tenant(self, tenant_id: str) -> Tenant | None:
        item = self._get(tenant_pk(tenant_id), PROFILE_SK)
        return Tenant.model_validate(item) if item else None

    def tenant_status(self, tenant_id: str) -> TenantStatus | None:
        """The status alone, strongly consistent: what the data gate and ingestion re-check on every object
        and document. A projection returns only the named attribute
        (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ProjectionExpressions.html);
        the read still costs the whole item's size in capacity, but no longer moves and parses the profile."""
        with storage_errors("the tenant registry"):
            item = (
                self.clients(None)
                .get_item(
                    TableName=self.table,
                    Key=to_item({"PK": tenant_pk(tenant_id), "SK": PROFILE_SK}),
                    ConsistentRead=True,
                    ProjectionExpression="#status",
                    ExpressionAttributeNames={"#status": "status"},
                )
                .get("Item")
            )
        return TenantStatus(from_item(item)["status"]) if item else None

    def list_tenants(
        self,
        limit: int,
        cursor: str | None,
        *,
        status: TenantStatus | None = None,
        tier: Tier | None = None,
        name_contains: str | None = None,
    ) -> tuple[list[Tenant], str | None]:
        """A page of tenants in creation order, optionally only those with `status`, `tier` and a name containing
        `name_contains` (case-insensitive).

        DynamoDB applies `Limit` to the items it reads and the FilterExpression after reading them, so a filtered
        query page can hold fewer matches than `Limit`, or none, and still have a LastEvaluatedKey
        (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Query.FilterExpression.html,
        https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Query.Pagination.html). So this reads on
        until `limit` tenants match, the index ends, or _FILTER_READ_BUDGET tenants were read (then the page is
        short and the cursor goes on from the last tenant read). When the page fills mid-way through a query page,
        the cursor is the key of the last tenant returned, so the next page starts right after it and none is
        skipped. The name test runs here: DynamoDB's `contains` is case-sensitive."""
        keep = ("PK", "SK", "list_pk", "list_sk")
        conditions, names, values = [], {}, {":p": _LIST_PK}
        for attribute, wanted in (("status", status), ("tier", tier)):
            if wanted is not None:
                conditions.append(f"#{attribute} = :{attribute}")
                names[f"#{attribute}"] = attribute
                values[f":{attribute}"] = wanted.value
        needle = name_contains.casefold() if name_contains else None
        filtered = bool(conditions or needle)
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": TENANT_LIST_INDEX,
            "KeyConditionExpression": "list_pk = :p",
            "ExpressionAttributeValues": to_item(values),
            # Filtered, read more per call than the page needs: most of what is read may not match.
            "Limit": min(max(limit, 100), _FILTER_READ_BUDGET) if filtered else limit,
        }
        if conditions:
            kwargs["FilterExpression"] = " AND ".join(conditions)
            kwargs["ExpressionAttributeNames"] = names
        start = decode_cursor(cursor, keep)
        tenants: list[Tenant] = []
        read = 0
        while True:
            if start:
                kwargs["ExclusiveStartKey"] = start
            with storage_errors("the tenant registry"):
                page = self.clients(None).query(**kwargs)
            items = page.get("Items", [])
            read += int(page.get("ScannedCount", len(items)))
            last_key = page.get("LastEvaluatedKey")
            for index, raw in enumerate(items):
                tenant = Tenant.model_validate(from_item(raw))
                if needle and needle not in tenant.name.casefold():
                    continue
                tenants.append(tenant)
                if len(tenants) == limit:
                    ended = index == len(items) - 1 and not last_key
                    return tenants, None if ended else encode_cursor(raw, keep)
            if not last_key or read >= _FILTER_READ_BUDGET:
                return tenants, encode_cursor(last_key, keep)
            start = last_key

    def update_tenant(
        self,
        tenant_id: str,
        *,
        name: str | None = None,
        tier: Tier | None = None,
        status: TenantStatus | None = None,
        expected_status: tuple[TenantStatus, ...] | None = None,
        usage_key: tuple[str, str] | None = None,
        fields: dict[str, Any] | None = None,
        remove: tuple[str, ...] = (),
    ) -> Tenant:
        values: dict[str, Any] = {
            **{k: _plain(v) for k, v in (fields or {}).items()},
            "updated_at": _iso(datetime.now(UTC)),
            "name": name,
            "tier": tier and tier.value,
            "status": status and status.value,
            "usage_key_id": usage_key[0] if usage_key else None,
            "usage_key_value": usage_key[1] if usage_key else None,
        }
        sets = [f"#{k} = :{k}" for k, v in values.items() if v is not None]
        names = {f"#{k}": k for k, v in values.items() if v is not None} | {f"#{k}": k for k in remove}
        expr_values = {f":{k}": v for k, v in values.items() if v is not None}
        condition = "attribute_exists(PK)"
        if expected_status:
            placeholders = [f":expected{i}" for i in range(len(expected_status))]
            condition += f" AND #status IN ({', '.join(placeholders)})"
            names["#status"] = "status"
            expr_values.update({p: s.value for p, s in zip(placeholders, expected_status, strict=True)})
        try:
            with storage_errors("the tenant registry"):
                result = self.clients(None).update_item(
                    TableName=self.table,
                    Key=to_item({"PK": tenant_pk(tenant_id), "SK": PROFILE_SK}),
                    UpdateExpression="SET " + ", ".join(sets) + (" REMOVE " + ", ".join(f"#{k}" for k in remove) if remove else ""),
                    ConditionExpression=condition,
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=to_item(expr_values),
                    ReturnValues="ALL_NEW",
                )
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise
            if expected_status and self.get_tenant(tenant_id) is not None:
                raise VersionConflict(tenant_id) from None
            raise NotFound(f"tenant {tenant_id} not found", code="tenant_not_found") from None
        return Tenant.model_validate(from_item(result["Attributes"]))

    # --- suspension reasons ------------------------------------------------------------------
    # `suspension_reasons` is a string set. ADD and DELETE change a set's members atomically, so
    # two remedies acting at once cannot lose each other's reason; the status moves in the same
    # update, under a condition on the set's size and members. DynamoDB removes a set emptied by
    # DELETE (sets cannot be empty).
    # https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.UpdateExpressions.html
    # https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.OperatorsAndFunctions.html
    def add_suspension_reason(self, tenant_id: str, reason: SuspensionReason, *, while_payment_failed: bool = False) -> tuple[Tenant, bool]:
        """Suspends the tenant for `reason` (active or already suspended); returns the tenant and
        whether this suspended it. `while_payment_failed` adds the reason only while the failed
        payment is still recorded (a payment that lands meanwhile wins)."""
        condition = "#status IN (:active, :suspended)" + (" AND attribute_exists(payment_failed_at)" if while_payment_failed else "")
        now = datetime.now(UTC)
        added = {reason.value}
        item = self._get(tenant_pk(tenant_id), PROFILE_SK)
        if item is not None and item.get("status") == TenantStatus.SUSPENDED.value and not item.get("suspension_reasons"):
            # Suspended before reasons were stored: keep its inferred reason alongside the new one.
            added |= {r.value for r in Tenant.model_validate(item).suspension_reasons}
        try:
            with storage_errors("the tenant registry"):
                result = self.clients(None).update_item(
                    TableName=self.table,
                    Key=to_item({"PK": tenant_pk(tenant_id), "SK": PROFILE_SK}),
                    UpdateExpression="ADD suspension_reasons :reason SET #status = :suspended, updated_at = :now",
                    ConditionExpression=condition,
                    ExpressionAttributeNames={"#status": "status"},
                    ExpressionAttributeValues=to_item(
                        {
                            ":reason": added,
                            ":active": TenantStatus.ACTIVE.value,
                            ":suspended": TenantStatus.SUSPENDED.value,
                            ":now": _iso(now),
                        }
                    ),
                    ReturnValues="ALL_OLD",
                )
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise
            current = self.get_tenant(tenant_id)
            if current is None:
                raise NotFound(f"tenant {tenant_id} not found", code="tenant_not_found") from None
            if while_payment_failed and current.status in (TenantStatus.ACTIVE, TenantStatus.SUSPENDED):
                return current, False  # the payment arrived first
            raise VersionConflict(tenant_id) from None
        before = from_item(result["Attributes"])
        reasons = set(before.get("suspension_reasons") or ()) | added
        after = {**before, "status": TenantStatus.SUSPENDED.value, "suspension_reasons": reasons, "updated_at": _iso(now)}
        return Tenant.model_validate(after), before["status"] == TenantStatus.ACTIVE.value

    def remove_suspension_reason(self, tenant_id: str, reason: SuspensionReason) -> tuple[Tenant, bool]:
        """Lifts one reason; the tenant becomes active only when it was the last. Returns the
        tenant and whether this made it active. Lifting `payment` also clears the recorded
        payment failure in the same update (else the next grace check would suspend again)."""
        settles_payment = reason is SuspensionReason.PAYMENT
        for _ in range(5):  # another reason added or lifted meanwhile: read again and retry
            item = self._get(tenant_pk(tenant_id), PROFILE_SK)
            if item is None:
                raise NotFound(f"tenant {tenant_id} not found", code="tenant_not_found")
            current = Tenant.model_validate(item)
            stored = set(item.get("suspension_reasons") or ())
            values: dict[str, Any] = {":now": _iso(datetime.now(UTC)), ":reason": reason.value}
            removes = " REMOVE payment_failed_at" if settles_payment else ""
            if current.status is not TenantStatus.SUSPENDED or reason not in current.suspension_reasons:
                if not (settles_payment and current.payment_failed_at is not None):
                    return current, False
                # Not suspended for payment (yet): clear the failure unless the grace check adds the reason meanwhile.
                update = "SET updated_at = :now REMOVE payment_failed_at"
                condition = "attribute_not_exists(suspension_reasons) OR NOT contains(suspension_reasons, :reason)"
            elif not stored:
                # Suspended before reasons were stored: its one (inferred) reason is being lifted.
                update = "SET #status = :active, updated_at = :now" + removes
                condition = "#status = :suspended AND attribute_not_exists(suspension_reasons)"
                values |= {":active": TenantStatus.ACTIVE.value, ":suspended": TenantStatus.SUSPENDED.value}
            elif stored == {reason.value}:
                update = "DELETE suspension_reasons :reasons SET #status = :active, updated_at = :now" + removes
                condition = "#status = :suspended AND size(suspension_reasons) = :one AND contains(suspension_reasons, :reason)"
                values |= {
                    ":active": TenantStatus.ACTIVE.value,
                    ":suspended": TenantStatus.SUSPENDED.value,
                    ":reasons": {reason.value},
                    ":one": 1,
                }
            else:
                update = "DELETE suspension_reasons :reasons SET updated_at = :now" + removes
                condition = "#status = :suspended AND size(suspension_reasons) > :one AND contains(suspension_reasons, :reason)"
                values |= {":suspended": TenantStatus.SUSPENDED.value, ":reasons": {reason.value}, ":one": 1}
            names = {"#status": "status"} if "#status" in update + condition else {}
            used = {k: v for k, v in values.items() if k in update + " " + condition}
            try:
                with storage_errors("the tenant registry"):
                    result = self.clients(None).update_item(
                        TableName=self.table,
                        Key=to_item({"PK": tenant_pk(tenant_id), "SK": PROFILE_SK}),
                        UpdateExpression=update,
                        ConditionExpression=f"attribute_exists(PK) AND ({condition})",
                        **({"ExpressionAttributeNames": names} if names else {}),
                        ExpressionAttributeValues=to_item(used),
                        ReturnValues="ALL_NEW",
                    )
            except ClientError as exc:
                if not is_condition_failure(exc):
                    raise
                continue
            updated = Tenant.model_validate(from_item(result["Attributes"]))
            return updated, current.status is TenantStatus.SUSPENDED and updated.status is TenantStatus.ACTIVE
        raise VersionConflict(tenant_id)

    def advance_payment_clock(self, tenant_id: str, event_created: int) -> bool:
        """Records the creation time of the payment event being applied; False (and no change)
        when a newer payment event was applied already. Stripe does not deliver events in order
        (https://docs.stripe.com/webhooks#event-ordering): a late failure must not undo a payment."""
        try:
            with storage_errors("the tenant registry"):
                self.clients(None).update_item(
                    TableName=self.table,
                    Key=to_item({"PK": tenant_pk(tenant_id), "SK": PROFILE_SK}),
                    UpdateExpression="SET payment_event_at = :created",
                    ConditionExpression="attribute_exists(PK) AND (attribute_not_exists(payment_event_at) OR payment_event_at <= :created)",
                    ExpressionAttributeValues=to_item({":created": event_created}),
                )
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise
            return False
        return True

    def record_deletion_step(self, tenant_id: str, step: DeletionStep) -> None:
        """Remembers a finished deletion step, so a retried deletion skips it and keeps its counts."""
        with storage_errors("the tenant registry"):
            self.clients(None).update_item(
                TableName=self.table,
                Key=to_item({"PK": tenant_pk(tenant_id), "SK": PROFILE_SK}),
                UpdateExpression="SET deletion_steps.#step = :step",
                ConditionExpression="attribute_exists(PK)",
                ExpressionAttributeNames={"#step": step.step},
                ExpressionAttributeValues=to_item({":step": step.model_dump(mode="json")}),
            )


def _plain(value: Any) -> Any:
    """A value DynamoDB can store: models as maps, datetimes as ISO strings."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _tenant_attrs(tenant: Tenant) -> dict[str, Any]:
    return {
        "tenant_id": tenant.tenant_id,
        "name": tenant.name,
        "tier": tenant.tier.value,
        "status": tenant.status.value,
        "created_at": _iso(tenant.created_at),
        "updated_at": _iso(tenant.updated_at),
        "usage_key_id": tenant.usage_key_id,
        "usage_key_value": tenant.usage_key_value,
    }


def _key_item(key: ApiKey, key_hash: str) -> dict[str, Any]:
    return {
        "PK": owner_pk(key.tenant_id),
        "SK": f"KEY#{key.key_id}",
        "key_hash": key_hash,
        "key_id": key.key_id,
        "tenant_id": key.tenant_id,
        "name": key.name,
        "role": key.role.value,
        "prefix": key.prefix,
        "created_at": _iso(key.created_at),
        "last_used_at": _iso(key.last_used_at),
        "revoked_at": _iso(key.revoked_at),
    }


class DynamoKeyStore(_Table):
    def __init__(self, dynamodb: Any, table_name: str, touch_interval_seconds: int = 60):
        super().__init__(dynamodb, table_name)
        self.touch_interval = timedelta(seconds=touch_interval_seconds)

    def put_key(self, key: ApiKey, key_hash: str) -> None:
        with storage_errors("the key store"):
            self.clients(key.tenant_id).put_item(
                TableName=self.table, Item=to_item(_key_item(key, key_hash)), ConditionExpression="attribute_not_exists(PK)"
            )

    def get_key(self, owner: str | None, key_id: str) -> ApiKey | None:
        item = self._get(owner_pk(owner), f"KEY#{key_id}", owner)
        return ApiKey.model_validate(item) if item else None

    def list_keys(self, owner: str | None) -> list[ApiKey]:
        items = query_all(
            self.clients(owner),
            "the key store",
            TableName=self.table,
            KeyConditionExpression="PK = :pk AND begins_with(SK, :sk)",
            ExpressionAttributeValues=to_item({":pk": owner_pk(owner), ":sk": "KEY#"}),
            ConsistentRead=True,
        )
        return [ApiKey.model_validate(from_item(i)) for i in items]

    def revoke_key(self, owner: str | None, key_id: str) -> ApiKey:
        try:
            with storage_errors("the key store"):
                result = self.clients(owner).update_item(
                    TableName=self.table,
                    Key=to_item({"PK": owner_pk(owner), "SK": f"KEY#{key_id}"}),
                    UpdateExpression="SET revoked_at = if_not_exists(revoked_at, :now)",
                    ConditionExpression="attribute_exists(PK)",
                    ExpressionAttributeValues=to_item({":now": _iso(datetime.now(UTC))}),
                    ReturnValues="ALL_NEW",
                )
        except ClientError as exc:
            if is_condition_failure(exc):
                raise NotFound(f"key {key_id} not found", code="key_not_found") from None
            raise
        return ApiKey.model_validate(from_item(result["Attributes"]))

    def _indexed(self, key_hash: str) -> list[dict[str, Any]]:
        """What the key-hash index holds for this hash (eventually consistent: callers read the base item again)."""
        with storage_errors("the key store"):
            page = self.clients(None).query(  # the key-hash index is not tenant keyed: authorizer only
                TableName=self.table,
                IndexName=KEY_HASH_INDEX,
                KeyConditionExpression="key_hash = :h",
                ExpressionAttributeValues=to_item({":h": key_hash}),
                Limit=2,
            )
        return [from_item(item) for item in page.get("Items", [])]

    def find_by_hash(self, key_hash: str) -> ApiKey | None:
        for found in self._indexed(key_hash):
            # The index is eventually consistent: confirm (and read revocation) from the base item.
            fresh = self._get(found["PK"], found["SK"])
            if fresh and fresh.get("key_hash") == key_hash:
                return ApiKey.model_validate(fresh)
        return None

    def find_with_tenant(self, key_hash: str) -> tuple[ApiKey, Tenant | None] | None:
        for found in self._indexed(key_hash):
            # The index is eventually consistent: the key (for revocation) and its tenant (for status) are read
            # again from the base table, consistently, in one BatchGetItem; a tenant's profile shares the key's
            # partition. ConsistentRead applies per table in a BatchGetItem, and keys it could not read come back
            # in UnprocessedKeys, to be asked for again with backoff:
            # https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchGetItem.html
            wanted = [{"PK": found["PK"], "SK": found["SK"]}]
            if found["PK"] != OPERATOR_PK:
                wanted.append({"PK": found["PK"], "SK": PROFILE_SK})
            items = {(i["PK"], i["SK"]): i for i in self._batch_get(wanted)}
            fresh = items.get((found["PK"], found["SK"]))
            if fresh and fresh.get("key_hash") == key_hash:
                profile = items.get((found["PK"], PROFILE_SK))
                return ApiKey.model_validate(fresh), Tenant.model_validate(profile) if profile else None
        return None

    def _batch_get(self, keys: list[dict[str, str]], attempts: int = 5) -> list[dict[str, Any]]:
        """Every item of `keys` that exists, read consistently; unprocessed keys are asked again with backoff."""
        request: dict[str, Any] = {self.table: {"Keys": [to_item(k) for k in keys], "ConsistentRead": True}}
        found: list[dict[str, Any]] = []
        for attempt in range(attempts):
            with storage_errors("the key store"):
                response = self.clients(None).batch_get_item(RequestItems=request)
            found.extend(from_item(i) for i in response.get("Responses", {}).get(self.table, []))
            request = response.get("UnprocessedKeys") or {}
            if not request:
                return found
            time.sleep(random.uniform(0, min(0.05 * 2**attempt, 1.0)))  # noqa: S311 - full jitter, not cryptographic
        raise ServiceUnavailable("the key store is temporarily unavailable; try again", code="storage_unavailable")

    def touch(self, key: ApiKey) -> None:
        now = datetime.now(UTC)
        if key.last_used_at and now - key.last_used_at < self.touch_interval:
            return
        try:
            self.clients(None).update_item(
                TableName=self.table,
                Key=to_item({"PK": owner_pk(key.tenant_id), "SK": f"KEY#{key.key_id}"}),
                UpdateExpression="SET last_used_at = :now",
                ConditionExpression="attribute_exists(PK) AND (attribute_not_exists(last_used_at) OR last_used_at < :threshold)",
                ExpressionAttributeValues=to_item({":now": _iso(now), ":threshold": _iso(now - self.touch_interval)}),
            )
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise


class DynamoConfigStore(_Table):
    def current(self, tenant_id: str) -> ConfigVersion | None:
        item = self._get(tenant_pk(tenant_id), CURRENT_CONFIG_SK, tenant_id)
        return _config_version(item) if item else None

    def write(self, tenant_id: str, version: ConfigVersion, expected_current: int) -> None:
        pk = tenant_pk(tenant_id)
        body = {
            "version": version.version,
            "config": version.config.model_dump_json(),
            "created_at": _iso(version.created_at),
            "created_by": version.created_by,
            "mode": version.mode,
            "changed_fields": json.dumps(version.changed_fields),
            "rolled_back_from": version.rolled_back_from,
        }
        if expected_current == 0:
            pointer_condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(PK)"}
        else:
            pointer_condition = {
                "ConditionExpression": "version = :expected",
                "ExpressionAttributeValues": to_item({":expected": expected_current}),
            }
        try:
            transact_write(
                self.clients(tenant_id),
                [
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": to_item({"PK": pk, "SK": config_sk(version.version), **body}),
                            "ConditionExpression": "attribute_not_exists(PK)",
                        }
                    },
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": to_item({"PK": pk, "SK": CURRENT_CONFIG_SK, **body}),
                            **pointer_condition,
                        }
                    },
                ],
                "the configuration store",
            )
        except ClientError as exc:
            if is_condition_failure(exc):
                raise VersionConflict(tenant_id) from None
            raise

    def get_version(self, tenant_id: str, version: int) -> ConfigVersion | None:
        item = self._get(tenant_pk(tenant_id), config_sk(version), tenant_id)
        return _config_version(item) if item else None

    def list_versions(self, tenant_id: str, limit: int, cursor: str | None) -> tuple[list[ConfigVersion], str | None]:
        items, next_cursor = query_partition(
            self.clients(tenant_id),
            self.table,
            tenant_pk(tenant_id),
            "CONFIG#v",
            limit=limit,
            cursor=cursor,
            what="the configuration store",
            newest_first=True,
        )
        return [_config_version(i) for i in items], next_cursor


def _config_version(item: dict[str, Any]) -> ConfigVersion:
    return ConfigVersion.model_validate(
        {
            "version": int(item["version"]),
            "config": json.loads(item["config"]),
            "created_at": item["created_at"],
            "created_by": item["created_by"],
            "mode": item["mode"],
            "changed_fields": json.loads(item.get("changed_fields", "[]")),
            "rolled_back_from": int(item["rolled_back_from"]) if item.get("rolled_back_from") is not None else None,
        }
    )
