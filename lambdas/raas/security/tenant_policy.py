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
- KMS use is limited to keys tagged with the caller's tenant id.
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
S3_OBJECT_ACTIONS = ("s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:GetObjectVersion", "s3:DeleteObjectVersion")
KMS_ACTIONS = ("kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:DescribeKey")


# Append-only tables (the audit log): the tenant role may add and read entries, never change them.
APPEND_ONLY_ACTIONS = ("dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:ConditionCheckItem")


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
                "Resource": ["*"],
                "Condition": {"StringEquals": {f"aws:ResourceTag/raas:{TENANT_TAG}": PRINCIPAL_TENANT}},
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
