"""The IAM policy of the tenant data role, as a pure function (the CDK stack and the tests use it).

Handlers that touch tenant data assume this role with a `tenant_id` session tag, so IAM itself
fences every request to that tenant's items, objects and key — a bug in our code still cannot
cross tenants. Rules this policy keeps (each guarded by a test):
- DynamoDB access is limited by `dynamodb:LeadingKeys` to `TENANT#<id>#…`. `ForAllValues` is
  true when the key is absent, so the policy never grants Scan, PartiQL or any wildcard action
  (they carry no leading key), and adds a `Null` check that the key is present.
- Every partition key and S3 prefix ends in a delimiter (`TENANT#<id>#`, `tenants/<id>/`): a
  tenant `acme` can never match `acme-corp`.
- Secondary indexes are granted only where they are tenant-keyed (the key-hash index is not,
  so it stays with the authorizer's own role).
- KMS is granted only through S3 (`kms:ViaService`) and only for the tenant's own objects: the
  encryption context S3 sends, `aws:s3:arn`, must be an object ARN under `tenants/<id>/`. No
  statement depends on a key's tags or aliases: AWS says "it might take up to five minutes for
  tag and alias changes to affect KMS key authorization"
  (https://docs.aws.amazon.com/kms/latest/developerguide/tag-authorization.html), and tenant keys
  are created at run time, so a tag condition refused a new tenant's first upload. The context is
  part of the request, so the condition holds from the key's first second. Tenant objects are
  written without an S3 Bucket Key, which would make the context the bucket ARN
  (https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html#encryption-context).
- `kms:EncryptionContext:*` is single-valued: never put a ForAllValues/ForAnyValue operator on it
  (a ForAllValues condition also matches a request without the context;
  https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-encryption-context).
- No DescribeKey (it carries no context to check): key ARNs are resolved with the platform role.
"""

from __future__ import annotations

from typing import Any

TENANT_TAG = "tenant_id"
PRINCIPAL_TENANT = "${aws:PrincipalTag/" + TENANT_TAG + "}"

# Item-level actions that always carry the partition key, so LeadingKeys constrains them.
DYNAMODB_ITEM_ACTIONS = (
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:ConditionCheckItem",
)
FORBIDDEN_DYNAMODB_ACTIONS = (
    "dynamodb:Scan",
    "dynamodb:PartiQLSelect",
    "dynamodb:PartiQLInsert",
    "dynamodb:PartiQLUpdate",
    "dynamodb:PartiQLDelete",
)
# s3:PutObjectTagging: export bundles are written with a retention tag, and an upload carrying
# tags needs that permission too (https://docs.aws.amazon.com/AmazonS3/latest/userguide/tagging-managing.html).
S3_OBJECT_ACTIONS = (
    "s3:GetObject",
    "s3:PutObject",
    "s3:PutObjectTagging",
    "s3:DeleteObject",
    "s3:GetObjectVersion",
    "s3:DeleteObjectVersion",
)
# What S3 asks KMS for on the caller's behalf: GenerateDataKey to write, Decrypt to read
# (https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html); a multipart
# upload needs GenerateDataKey to start and Decrypt for each part
# (https://docs.aws.amazon.com/AmazonS3/latest/API/API_CreateMultipartUpload.html).
KMS_ACTIONS = ("kms:GenerateDataKey", "kms:Decrypt")
S3_ENCRYPTION_CONTEXT = "kms:EncryptionContext:aws:s3:arn"
# kms:ViaService names are s3.<region>.amazonaws.com
# (https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-via-service).
VIA_S3 = "s3.*.amazonaws.com"


# Append-only tables (the audit log): the tenant role may add and read entries, never change them.
APPEND_ONLY_ACTIONS = ("dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:ConditionCheckItem")


def tenant_objects_key_condition(objects_arn_pattern: str) -> dict[str, Any]:
    """KMS use only via S3, and only for objects whose ARN matches the pattern."""
    return {"StringLike": {S3_ENCRYPTION_CONTEXT: [objects_arn_pattern], "kms:ViaService": [VIA_S3]}}


def handler_tenant_key_statements(bucket_arn: str, kms_key_arns: str = "*") -> list[dict[str, Any]]:
    """For handler roles that touch tenant objects with their own credentials (presigned upload and
    export URLs are signed by the documents/account roles; lifecycle exports before a deletion):
    any tenant's key, but only via S3 for objects under `tenants/`, plus DescribeKey to resolve a
    tenant's alias to its key ARN. Neither depends on tags, so a new tenant works at once."""
    return [
        {
            "Sid": "TenantKeysViaS3",
            "Effect": "Allow",
            "Action": list(KMS_ACTIONS),
            "Resource": [kms_key_arns],
            "Condition": tenant_objects_key_condition(f"{bucket_arn}/tenants/*"),
        },
        {"Sid": "ResolveTenantKeys", "Effect": "Allow", "Action": ["kms:DescribeKey"], "Resource": [kms_key_arns]},
    ]


def _leading_key_condition() -> dict[str, Any]:
    return {
        "ForAllValues:StringLike": {"dynamodb:LeadingKeys": [f"TENANT#{PRINCIPAL_TENANT}#*"]},
        "Null": {"dynamodb:LeadingKeys": "false"},
    }


def tenant_data_policy(
    table_arns: list[str],
    bucket_arn: str,
    tenant_index_arns: list[str] | None = None,
    append_only_table_arns: list[str] | None = None,
) -> dict[str, Any]:
    resources = [*table_arns, *(tenant_index_arns or [])]
    append_only = [
        {
            "Sid": "TenantAppendOnly",
            "Effect": "Allow",
            "Action": list(APPEND_ONLY_ACTIONS),
            "Resource": append_only_table_arns,
            "Condition": _leading_key_condition(),
        }
    ]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "TenantItemsOnly",
                "Effect": "Allow",
                "Action": list(DYNAMODB_ITEM_ACTIONS),
                "Resource": resources,
                "Condition": _leading_key_condition(),
            },
            *(append_only if append_only_table_arns else []),
            {
                "Sid": "TenantObjectsOnly",
                "Effect": "Allow",
                "Action": list(S3_OBJECT_ACTIONS),
                "Resource": [f"{bucket_arn}/tenants/{PRINCIPAL_TENANT}/*"],
            },
            {
                "Sid": "ListTenantPrefixOnly",
                "Effect": "Allow",
                "Action": ["s3:ListBucket", "s3:ListBucketVersions"],
                "Resource": [bucket_arn],
                "Condition": {"StringLike": {"s3:prefix": [f"tenants/{PRINCIPAL_TENANT}/*"]}},
            },
            {
                "Sid": "TenantKeyOnly",
                "Effect": "Allow",
                "Action": list(KMS_ACTIONS),
                "Resource": ["*"],  # keys are created at run time; the condition names the data instead
                "Condition": tenant_objects_key_condition(f"{bucket_arn}/tenants/{PRINCIPAL_TENANT}/*"),
            },
        ],
    }


def tenant_role_trust_policy(handler_role_arns: list[str]) -> dict[str, Any]:
    """Only our handler roles may assume the role, only with a well-formed tenant_id tag."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": handler_role_arns},
                "Action": ["sts:AssumeRole", "sts:TagSession"],
                "Condition": {"StringLike": {f"aws:RequestTag/{TENANT_TAG}": "t???????????????"}},
            }
        ],
    }
