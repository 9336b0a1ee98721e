"""The tenant data role's policy (a pure function): the pitfalls it must avoid, each as a test."""

from __future__ import annotations

import json

import pytest

from raas.security.tenant_policy import (
    FORBIDDEN_DYNAMODB_ACTIONS,
    handler_tenant_key_statements,
    tenant_data_policy,
    tenant_role_trust_policy,
)
from tests.kms_policy import evaluate, validate

TABLES = ["arn:aws:dynamodb:us-east-1:111122223333:table/raas-prod-documents"]
BUCKET = "arn:aws:s3:::raas-prod-docs"


def statements() -> dict[str, dict]:
    return {s["Sid"]: s for s in tenant_data_policy(TABLES, BUCKET)["Statement"]}


def test_no_scan_partiql_or_wildcard_actions_are_ever_granted() -> None:
    actions = [a for s in tenant_data_policy(TABLES, BUCKET)["Statement"] for a in s["Action"]]
    assert not set(actions) & set(FORBIDDEN_DYNAMODB_ACTIONS)
    assert all("*" not in a for a in actions)


def test_items_are_fenced_by_leading_keys_with_a_delimiter_and_the_key_must_be_present() -> None:
    items = statements()["TenantItemsOnly"]
    assert items["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"] == ["TENANT#${aws:PrincipalTag/tenant_id}#*"]
    # ForAllValues is vacuously true when the key is absent: require it
    assert items["Condition"]["Null"] == {"dynamodb:LeadingKeys": "false"}


def test_leading_key_pattern_cannot_match_a_longer_tenant_id() -> None:
    import fnmatch

    pattern = "TENANT#acme#*"
    assert fnmatch.fnmatchcase("TENANT#acme#", pattern)
    assert not fnmatch.fnmatchcase("TENANT#acme-corp#", pattern)
    assert not fnmatch.fnmatchcase("TENANT#acmecorp#", pattern)


def test_secondary_indexes_are_granted_only_when_named() -> None:
    assert statements()["TenantItemsOnly"]["Resource"] == TABLES
    with_index = tenant_data_policy(TABLES, BUCKET, [TABLES[0] + "/index/by_tenant"])
    assert with_index["Statement"][0]["Resource"] == [*TABLES, TABLES[0] + "/index/by_tenant"]


def test_objects_and_listing_stop_at_the_tenants_own_prefix() -> None:
    assert statements()["TenantObjectsOnly"]["Resource"] == [f"{BUCKET}/tenants/${{aws:PrincipalTag/tenant_id}}/*"]
    listing = statements()["ListTenantPrefixOnly"]
    assert listing["Resource"] == [BUCKET]
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["tenants/${aws:PrincipalTag/tenant_id}/*"]}}


ACME, OTHER = "tacme00000000000", "tother0000000000"
KEY = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
VIA_S3 = "s3.us-east-1.amazonaws.com"


def kms_request(object_arn: str | None, via: str | None = VIA_S3, tenant: str = ACME) -> dict[str, str]:
    """The condition keys of a KMS request S3 makes for `tenant`'s session (no tags: a new key)."""
    context = {"aws:PrincipalTag/tenant_id": tenant}
    if object_arn is not None:
        context["kms:EncryptionContext:aws:s3:arn"] = object_arn
    if via is not None:
        context["kms:ViaService"] = via
    return context


def test_kms_names_the_tenants_objects_not_the_keys_tags() -> None:
    kms = statements()["TenantKeyOnly"]
    assert kms["Condition"] == {
        "StringLike": {
            "kms:EncryptionContext:aws:s3:arn": [f"{BUCKET}/tenants/${{aws:PrincipalTag/tenant_id}}/*"],
            "kms:ViaService": ["s3.*.amazonaws.com"],
        }
    }
    assert set(kms["Action"]) == {"kms:GenerateDataKey", "kms:Decrypt"}  # no CreateGrant, no DescribeKey
    assert "ResourceTag" not in json.dumps(tenant_data_policy(TABLES, BUCKET))  # tags take minutes to count
    assert "ResourceAliases" not in json.dumps(tenant_data_policy(TABLES, BUCKET))


@pytest.mark.parametrize("action", ["kms:GenerateDataKey", "kms:Decrypt"])
def test_a_brand_new_key_works_at_once_for_the_tenants_own_objects(action: str) -> None:
    policy = tenant_data_policy(TABLES, BUCKET)
    assert evaluate(policy, action, KEY, kms_request(f"{BUCKET}/tenants/{ACME}/documents/d1/source"))


@pytest.mark.parametrize(
    ("why", "context"),
    [
        ("another tenant's object", kms_request(f"{BUCKET}/tenants/{OTHER}/documents/d1/source")),
        ("a longer tenant id", kms_request(f"{BUCKET}/tenants/{ACME}x/documents/d1/source")),
        ("an S3 Bucket Key (context is the bucket ARN)", kms_request(BUCKET)),
        ("the platform's retained exports", kms_request(f"{BUCKET}/retained/{ACME}/export.zip")),
        ("another bucket", kms_request(f"arn:aws:s3:::elsewhere/tenants/{ACME}/x")),
        ("a direct KMS call (not via S3)", kms_request(f"{BUCKET}/tenants/{ACME}/x", via=None)),
        ("via another service", kms_request(f"{BUCKET}/tenants/{ACME}/x", via="dynamodb.us-east-1.amazonaws.com")),
        ("no encryption context", kms_request(None)),
    ],
)
def test_kms_is_refused_outside_the_tenants_own_objects(why: str, context: dict[str, str]) -> None:
    policy = tenant_data_policy(TABLES, BUCKET)
    assert not evaluate(policy, "kms:Decrypt", KEY, context), why
    assert not evaluate(policy, "kms:GenerateDataKey", KEY, context), why


def test_the_tenant_role_cannot_describe_or_manage_keys() -> None:
    policy = tenant_data_policy(TABLES, BUCKET)
    for action in ("kms:DescribeKey", "kms:Encrypt", "kms:CreateGrant", "kms:ScheduleKeyDeletion", "kms:ReEncryptFrom"):
        assert not evaluate(policy, action, KEY, kms_request(f"{BUCKET}/tenants/{ACME}/x")), action


def test_no_set_operator_on_the_single_valued_encryption_context_key() -> None:
    validate(tenant_data_policy(TABLES, BUCKET))  # KMS refuses ForAllValues/ForAnyValue there
    with pytest.raises(ValueError, match="OverlyPermissive"):
        validate(
            {
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "kms:Decrypt",
                        "Resource": "*",
                        "Condition": {"ForAllValues:StringLike": {"kms:EncryptionContext:aws:s3:arn": "*"}},
                    }
                ]
            }
        )


def test_handler_roles_use_any_tenants_key_only_via_s3_for_tenant_objects() -> None:
    policy = {"Version": "2012-10-17", "Statement": handler_tenant_key_statements(BUCKET)}
    handler = {"kms:EncryptionContext:aws:s3:arn": f"{BUCKET}/tenants/{OTHER}/exports/e.zip", "kms:ViaService": VIA_S3}
    assert evaluate(policy, "kms:Decrypt", KEY, handler)  # presigned export download, signed by the account role
    assert evaluate(policy, "kms:GenerateDataKey", KEY, handler)  # presigned upload, signed by the documents role
    assert evaluate(policy, "kms:DescribeKey", KEY, {})  # resolving a tenant's alias, no tag needed
    assert not evaluate(policy, "kms:Decrypt", KEY, {**handler, "kms:EncryptionContext:aws:s3:arn": BUCKET})
    assert not evaluate(policy, "kms:Decrypt", KEY, {"kms:EncryptionContext:aws:s3:arn": handler["kms:EncryptionContext:aws:s3:arn"]})
    assert "ResourceTag" not in json.dumps(policy)


def test_the_policy_evaluator_is_strict() -> None:
    """The test double must refuse what IAM refuses, or the tests above prove nothing."""
    policy = tenant_data_policy(TABLES, BUCKET)
    own = f"{BUCKET}/tenants/{ACME}/x"
    assert evaluate(policy, "s3:GetObject", own, {"aws:PrincipalTag/tenant_id": ACME})
    assert not evaluate(policy, "s3:GetObject", f"{BUCKET}/tenants/{OTHER}/x", {"aws:PrincipalTag/tenant_id": ACME})
    assert not evaluate(policy, "s3:GetObject", own, {})  # no session tag: the variable matches nothing
    assert not evaluate(policy, "dynamodb:GetItem", TABLES[0], {"aws:PrincipalTag/tenant_id": ACME})  # no leading key
    leading: dict[str, str | list[str]] = {"aws:PrincipalTag/tenant_id": ACME, "dynamodb:LeadingKeys": [f"TENANT#{ACME}#"]}
    assert evaluate(policy, "dynamodb:GetItem", TABLES[0], leading)
    assert not evaluate(policy, "dynamodb:GetItem", TABLES[0], {**leading, "dynamodb:LeadingKeys": [f"TENANT#{OTHER}#"]})
    assert not evaluate(policy, "dynamodb:Scan", TABLES[0], leading)
    with pytest.raises(NotImplementedError):
        evaluate(
            {
                "Statement": [
                    {"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"DateGreaterThan": {"aws:CurrentTime": "x"}}}
                ]
            },
            "s3:GetObject",
            own,
            {},
        )


def test_only_handler_roles_with_a_well_formed_tag_may_assume_it() -> None:
    trust = tenant_role_trust_policy(["arn:aws:iam::111122223333:role/query"])["Statement"][0]
    assert trust["Principal"] == {"AWS": ["arn:aws:iam::111122223333:role/query"]}
    assert set(trust["Action"]) == {"sts:AssumeRole", "sts:TagSession"}
    assert trust["Condition"]["StringLike"]["aws:RequestTag/tenant_id"] == "t???????????????"


def test_policy_is_valid_json_for_iam() -> None:
    document = tenant_data_policy(TABLES, BUCKET)
    assert json.loads(json.dumps(document))["Version"] == "2012-10-17"


def test_the_audit_log_is_append_only_for_the_tenant_role() -> None:
    audit = "arn:aws:dynamodb:us-east-1:111122223333:table/raas-prod-audit"
    policy = {s["Sid"]: s for s in tenant_data_policy(TABLES, BUCKET, append_only_table_arns=[audit])["Statement"]}
    append_only = policy["TenantAppendOnly"]
    assert append_only["Resource"] == [audit]
    assert not {"dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"} & set(append_only["Action"])
    assert append_only["Condition"] == policy["TenantItemsOnly"]["Condition"]
    assert audit not in policy["TenantItemsOnly"]["Resource"]
