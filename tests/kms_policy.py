"""A strict stand-in for the IAM and KMS authorization that moto does not perform.

moto answers every S3 and KMS call as if every policy allowed it, so a policy that AWS would
refuse passes there. This module refuses what AWS refuses, for the requests that touch tenant
keys:

- `evaluate` decides a request against a policy document for the subset of IAM we use: Allow
  and Deny statements, wildcard actions and resources, policy variables such as
  `${aws:PrincipalTag/tenant_id}`, and the operators StringEquals, StringLike and Null with the
  ForAllValues/ForAnyValue qualifiers. An operator it does not model raises instead of allowing
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html,
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html).
- `KmsAuthorization` hooks boto3 clients and computes the KMS request S3 makes on the caller's
  behalf for every PutObject, CreateMultipartUpload, UploadPart and GetObject of an SSE-KMS object:
  GenerateDataKey or Decrypt, with the encryption context `aws:s3:arn` = the object's ARN, or the
  bucket's ARN when an S3 Bucket Key is used
  (https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html#encryption-context,
  https://docs.aws.amazon.com/AmazonS3/latest/API/API_CreateMultipartUpload.html), and
  `kms:ViaService` = `s3.<region>.amazonaws.com`. It evaluates that request against the caller's
  policy and refuses it with S3's AccessDenied. Direct KMS calls are checked the same way, without
  ViaService. Tenant-scoped callers are also checked for the S3 action itself.
- Tags and aliases count for authorization only five minutes after they were set ("It might take
  up to five minutes for tag and alias changes to affect KMS key authorization",
  https://docs.aws.amazon.com/kms/latest/developerguide/tag-authorization.html), on a fake clock
  that the tests move.
- Presigned URLs are checked before they reach moto: the request must send exactly the headers
  the URL signed (https://repost.aws/knowledge-center/s3-presigned-url-signature-mismatch), and
  S3's KMS request is made as the principal who signed the URL
  (https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-presigned-url.html).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import requests
from botocore.exceptions import ClientError

PROPAGATION_SECONDS = 300.0
REGION = "us-east-1"
TENANT_KEY_TAG = "raas:tenant_id"

ContextValue = str | list[str]


# --- policy evaluation ------------------------------------------------------------------------


def evaluate(policy: Mapping[str, Any], action: str, resource: str, context: Mapping[str, ContextValue]) -> bool:
    """IAM's decision for one principal policy: an explicit Deny wins, then any Allow, else deny."""
    validate(policy)
    lowered = {key.lower(): value for key, value in context.items()}
    matching = [s for s in policy["Statement"] if _statement_applies(s, action, resource, lowered)]
    if any(s["Effect"] == "Deny" for s in matching):
        return False
    return any(s["Effect"] == "Allow" for s in matching)


def validate(policy: Mapping[str, Any]) -> None:
    """Refuses what KMS refuses at policy time: a set operator on a single-valued context key
    (https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-encryption-context)."""
    for statement in policy["Statement"]:
        for operator, block in statement.get("Condition", {}).items():
            for key in block:
                if (
                    ":" in operator
                    and operator.split(":")[0] in ("ForAllValues", "ForAnyValue")
                    and key.lower().startswith("kms:encryptioncontext:")
                ):
                    raise ValueError(f"OverlyPermissiveCondition: {operator} on single-valued {key}")


def _as_list(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _substitute(pattern: str, context: Mapping[str, ContextValue]) -> str | None:
    """Replaces ${key} policy variables; None when a variable's key is absent (nothing matches)."""
    missing = False

    def value_of(match: re.Match[str]) -> str:
        nonlocal missing
        value = context.get(match.group(1).lower())
        if value is None or isinstance(value, list):
            missing = True
            return ""
        return value

    result = re.sub(r"\$\{([^}]+)\}", value_of, pattern)
    return None if missing else result


def _like(pattern: str, value: str) -> bool:
    """StringLike: `*` any run of characters, `?` one character, everything else literal."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, flags=re.DOTALL) is not None


def _value_matches(operator: str, expected: list[str], actual: str, context: Mapping[str, ContextValue]) -> bool:
    for raw in expected:
        wanted = _substitute(raw, context)
        if wanted is None:
            continue
        if operator == "StringEquals" and actual == wanted:
            return True
        if operator == "StringLike" and _like(wanted, actual):
            return True
    return False


def _condition_holds(condition: Mapping[str, Mapping[str, Any]], context: Mapping[str, ContextValue]) -> bool:
    for qualified, block in condition.items():
        qualifier, _, operator = qualified.rpartition(":")
        if operator not in ("StringEquals", "StringLike", "Null") or qualifier not in ("", "ForAllValues", "ForAnyValue"):
            raise NotImplementedError(f"condition operator {qualified} is not modelled; add it before relying on it")
        for key, raw_expected in block.items():
            expected = _as_list(raw_expected)
            actual = context.get(key.lower())
            if operator == "Null":
                absent = actual is None or actual == []
                if (expected[0] == "true") != absent:
                    return False
                continue
            if qualifier == "ForAllValues":  # vacuously true for an absent or empty key
                if not all(_value_matches(operator, expected, a, context) for a in _as_list(actual or [])):
                    return False
            elif qualifier == "ForAnyValue":
                if not any(_value_matches(operator, expected, a, context) for a in _as_list(actual or [])):
                    return False
            else:
                if actual is None:
                    return False  # an absent key matches no single-valued operator
                if isinstance(actual, list):
                    raise NotImplementedError(f"{key} is multivalued; use ForAllValues or ForAnyValue")
                if not _value_matches(operator, expected, actual, context):
                    return False
    return True


def _statement_applies(statement: Mapping[str, Any], action: str, resource: str, context: Mapping[str, ContextValue]) -> bool:
    if not any(_like(a.lower(), action.lower()) for a in _as_list(statement["Action"])):
        return False
    resources = [_substitute(r, context) for r in _as_list(statement.get("Resource", "*"))]
    if not any(r is not None and _like(r, resource) for r in resources):
        return False
    return _condition_holds(statement.get("Condition", {}), context)


# --- the KMS and S3 requests AWS would authorize ----------------------------------------------


class FakeClock:
    def __init__(self, start: float = 1_700_000_000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass(frozen=True)
class Principal:
    """Who makes a request: the name of its policy, its session tags, and whether its S3
    actions are checked too (the tenant data role's are; handler roles' are out of scope)."""

    policy: str
    tags: tuple[tuple[str, str], ...] = ()
    check_s3_actions: bool = False

    @classmethod
    def tenant(cls, tenant_id: str) -> Principal:
        return cls("tenant", (("tenant_id", tenant_id),), check_s3_actions=True)


PLATFORM = Principal("platform")


@dataclass
class Decision:
    principal: Principal
    action: str
    resource: str
    context: dict[str, ContextValue]
    allowed: bool


@dataclass
class KmsAuthorization:
    """Decides KMS (and tenant S3) requests against `policies` (principal policy name -> document)."""

    policies: dict[str, dict[str, Any]]
    clock: FakeClock
    bucket_keys_by_default: bool = True  # the deployed bucket: bucket_key_enabled=True (stacks/data.py)
    decisions: list[Decision] = field(default_factory=list)
    _tag_times: dict[str, dict[str, float]] = field(default_factory=dict)
    _alias_times: dict[str, float] = field(default_factory=dict)
    _access_keys: dict[str, Principal] = field(default_factory=dict)
    _multipart: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    # Bucket Key setting of objects written through a watched client or URL (moto drops it for
    # multipart uploads; S3 keeps what CreateMultipartUpload asked for).
    _written_bucket_key: dict[tuple[str, str], bool] = field(default_factory=dict)

    # --- what moto knows, and when it became visible to authorization --------------------
    def install(self, monkeypatch: Any) -> None:
        """Records when moto's keys got their tags and aliases (any client, any path)."""
        from moto.kms.models import KmsBackend

        create_key, tag_resource, create_alias = KmsBackend.create_key, KmsBackend.tag_resource, KmsBackend.create_alias
        authorization = self

        def recording_create_key(backend: Any, *args: Any, **kwargs: Any) -> Any:
            key = create_key(backend, *args, **kwargs)
            tags = backend.list_resource_tags(key.id).get("Tags", [])
            authorization._tag_times[key.id] = {t["TagKey"]: authorization.clock() for t in tags}
            return key

        def recording_tag_resource(backend: Any, arn: str, tags: dict[str, str]) -> None:
            tag_resource(backend, arn, tags)
            key_id = backend.any_id_to_key_id(arn)
            authorization._tag_times.setdefault(key_id, {}).update({name: authorization.clock() for name in tags})

        def recording_create_alias(backend: Any, target_key_id: str, alias_name: str) -> Any:
            alias = create_alias(backend, target_key_id, alias_name)
            authorization._alias_times[alias_name] = authorization.clock()
            return alias

        monkeypatch.setattr(KmsBackend, "create_key", recording_create_key)
        monkeypatch.setattr(KmsBackend, "tag_resource", recording_tag_resource)
        monkeypatch.setattr(KmsBackend, "create_alias", recording_create_alias)

    @staticmethod
    def _kms() -> Any:
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.kms.models import kms_backends

        return kms_backends[DEFAULT_ACCOUNT_ID][REGION]

    @staticmethod
    def _s3_object(bucket: str, key: str) -> Any:
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.s3.models import s3_backends

        try:
            return s3_backends[DEFAULT_ACCOUNT_ID]["aws"].get_object(bucket, key)
        except Exception:  # no such bucket or key: S3 answers that itself
            return None

    def _visible(self, set_at: float | None) -> bool:
        return set_at is not None and self.clock() - set_at >= PROPAGATION_SECONDS

    def _key_context(self, key_id: str) -> tuple[str, dict[str, ContextValue]]:
        """The key's ARN, and the tag and alias condition keys authorization can see right now."""
        kms = self._kms()
        key = kms.describe_key(key_id)
        context: dict[str, ContextValue] = {}
        times = self._tag_times.get(key.id, {})
        for tag in kms.list_resource_tags(key.id).get("Tags", []):
            if self._visible(times.get(tag["TagKey"])):
                context[f"aws:ResourceTag/{tag['TagKey']}"] = tag["TagValue"]
        aliases = [a for a, t in self._alias_times.items() if kms.get_key_id_from_alias(a) == key.id and self._visible(t)]
        if aliases:
            context["kms:ResourceAliases"] = aliases
        return str(key.arn), context

    def _is_tenant_key(self, key_id: str) -> bool:
        kms = self._kms()
        key = kms.describe_key(key_id)
        return any(t["TagKey"] == TENANT_KEY_TAG for t in kms.list_resource_tags(key.id).get("Tags", []))

    # --- decisions ------------------------------------------------------------------------
    def decide(self, principal: Principal, action: str, resource: str, context: dict[str, ContextValue], operation: str) -> None:
        full = {**{f"aws:PrincipalTag/{k}": v for k, v in principal.tags}, **context}
        allowed = evaluate(self.policies[principal.policy], action, resource, full)
        self.decisions.append(Decision(principal, action, resource, full, allowed))
        if not allowed:
            message = f"{principal.policy} {dict(principal.tags)} is not authorized to perform: {action} on resource: {resource}"
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": message}}, operation)

    def kms_via_s3(self, principal: Principal, action: str, key_id: str, bucket: str, key: str, bucket_key: bool, operation: str) -> None:
        if not self._is_tenant_key(key_id):
            return  # the platform key (bucket default): not what this double is about
        arn, key_context = self._key_context(key_id)
        encryption_arn = f"arn:aws:s3:::{bucket}" if bucket_key else f"arn:aws:s3:::{bucket}/{key}"
        context: dict[str, ContextValue] = {
            **key_context,
            "kms:EncryptionContext:aws:s3:arn": encryption_arn,
            "kms:EncryptionContextKeys": ["aws:s3:arn"],
            "kms:ViaService": f"s3.{REGION}.amazonaws.com",
        }
        self.decide(principal, action, arn, context, operation)

    def _bucket_key(self, requested: Any) -> bool:
        if requested is None:
            return self.bucket_keys_by_default
        return str(requested).lower() == "true"

    def _stored_bucket_key(self, bucket: str, key: str, stored: Any) -> bool:
        if stored.bucket_key_enabled is None and (bucket, key) in self._written_bucket_key:
            return self._written_bucket_key[(bucket, key)]
        return self._bucket_key(stored.bucket_key_enabled)

    # --- boto3 clients --------------------------------------------------------------------
    def register_access_key(self, access_key: str, principal: Principal) -> None:
        """Presigned URLs name their signer by access key; unknown keys are the platform's."""
        self._access_keys[access_key] = principal

    def watch(self, client: Any, principal: Principal) -> None:
        """Checks every S3 or KMS call this client makes as `principal` (idempotent per client)."""
        if getattr(client, "_raas_watched_as", None) is not None:
            return
        client._raas_watched_as = principal
        service = client.meta.service_model.service_name
        handler = self._s3_call if service == "s3" else self._kms_call

        def check(params: dict[str, Any], model: Any, context: dict[str, Any] | None = None, **_: Any) -> None:
            if context and context.get("is_presign_request"):
                return  # signing a URL calls nothing; the request made with it is checked by presigned_put/get
            handler(principal, model.name, params)

        client.meta.events.register(f"before-parameter-build.{service}", check)

    def _s3_call(self, principal: Principal, operation: str, params: dict[str, Any]) -> None:
        bucket, key = params.get("Bucket", ""), params.get("Key", "")
        object_arn = f"arn:aws:s3:::{bucket}/{key}"
        s3_action = {
            "PutObject": "s3:PutObject",
            "CreateMultipartUpload": "s3:PutObject",
            "UploadPart": "s3:PutObject",
            "CompleteMultipartUpload": "s3:PutObject",
            "GetObject": "s3:GetObject",
            "HeadObject": "s3:GetObject",
            "DeleteObject": "s3:DeleteObject",
        }.get(operation)
        if principal.check_s3_actions and s3_action is not None:
            self.decide(principal, s3_action, object_arn, {}, operation)
            # Tags sent with the upload need their own permission as well as s3:PutObject
            # (https://docs.aws.amazon.com/AmazonS3/latest/userguide/tagging-managing.html).
            if operation in ("PutObject", "CreateMultipartUpload") and params.get("Tagging"):
                self.decide(principal, "s3:PutObjectTagging", object_arn, {}, operation)
        if (
            operation in ("PutObject", "CreateMultipartUpload")
            and params.get("ServerSideEncryption") == "aws:kms"
            and params.get("SSEKMSKeyId")
        ):
            bucket_key = self._bucket_key(params.get("BucketKeyEnabled"))
            self.kms_via_s3(principal, "kms:GenerateDataKey", params["SSEKMSKeyId"], bucket, key, bucket_key, operation)
            if operation == "CreateMultipartUpload":
                self._multipart[(bucket, key)] = (params["SSEKMSKeyId"], str(bucket_key).lower())
            self._written_bucket_key[(bucket, key)] = bucket_key
        elif operation == "UploadPart" and (bucket, key) in self._multipart:
            key_id, bucket_key_flag = self._multipart[(bucket, key)]
            self.kms_via_s3(principal, "kms:Decrypt", key_id, bucket, key, bucket_key_flag == "true", operation)
        elif operation == "GetObject":
            stored = self._s3_object(bucket, key)
            if stored is not None and stored.encryption == "aws:kms" and stored.kms_key_id:
                self.kms_via_s3(
                    principal, "kms:Decrypt", stored.kms_key_id, bucket, key, self._stored_bucket_key(bucket, key, stored), operation
                )

    def _kms_call(self, principal: Principal, operation: str, params: dict[str, Any]) -> None:
        key_id = params.get("KeyId")
        if not key_id:
            return
        try:
            arn, key_context = self._key_context(key_id)
        except Exception:
            return  # an unknown key or alias: KMS answers NotFound itself
        context: dict[str, ContextValue] = dict(key_context)
        for name, value in (params.get("EncryptionContext") or {}).items():
            context[f"kms:EncryptionContext:{name}"] = value
        if params.get("EncryptionContext"):
            context["kms:EncryptionContextKeys"] = list(params["EncryptionContext"])
        self.decide(principal, f"kms:{operation}", arn, context, operation)

    # --- presigned URLs -------------------------------------------------------------------
    def _signer(self, url: str) -> Principal:
        credential = parse_qs(urlsplit(url).query)["X-Amz-Credential"][0]
        return self._access_keys.get(credential.split("/")[0], PLATFORM)

    @staticmethod
    def _bucket_and_key(url: str) -> tuple[str, str]:
        bucket, _, key = unquote(urlsplit(url).path).lstrip("/").partition("/")  # path-style URLs
        return bucket, key

    def presigned_put(self, url: str, headers: Mapping[str, str], body: bytes) -> requests.Response:
        """What a client's PUT to the URL does in AWS: header check, S3's KMS call as the signer, upload."""
        signed = set(parse_qs(urlsplit(url).query)["X-Amz-SignedHeaders"][0].split(";")) - {"host"}
        sent = {name.lower() for name in headers}
        if signed != sent:
            raise AssertionError(f"SignatureDoesNotMatch: the URL signed {sorted(signed)} but the request sends {sorted(sent)}")
        bucket, key = self._bucket_and_key(url)
        lowered = {k.lower(): v for k, v in headers.items()}
        if lowered.get("x-amz-server-side-encryption") == "aws:kms":
            bucket_key = self._bucket_key(lowered.get("x-amz-server-side-encryption-bucket-key-enabled"))
            self._written_bucket_key[(bucket, key)] = bucket_key
            key_id = lowered["x-amz-server-side-encryption-aws-kms-key-id"]
            self.kms_via_s3(self._signer(url), "kms:GenerateDataKey", key_id, bucket, key, bucket_key, "PutObject")
        return requests.put(url, data=body, headers=dict(headers), timeout=10)

    def presigned_get(self, url: str) -> requests.Response:
        bucket, key = self._bucket_and_key(url)
        stored = self._s3_object(bucket, key)
        if stored is not None and stored.encryption == "aws:kms" and stored.kms_key_id:
            bucket_key = self._stored_bucket_key(bucket, key, stored)
            self.kms_via_s3(self._signer(url), "kms:Decrypt", stored.kms_key_id, bucket, key, bucket_key, "GetObject")
        return requests.get(url, timeout=10)
