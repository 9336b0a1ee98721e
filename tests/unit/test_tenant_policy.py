"""The tenant data role's policy (a pure function): the pitfalls it must avoid, each as a test."""

from __future__ import annotations

import json

from raas.security.tenant_policy import FORBIDDEN_DYNAMODB_ACTIONS, tenant_data_policy, tenant_role_trust_policy

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


def test_kms_use_is_limited_to_the_tenants_tagged_key() -> None:
    kms = statements()["TenantKeyOnly"]
    assert kms["Condition"] == {"StringEquals": {"aws:ResourceTag/raas:tenant_id": "${aws:PrincipalTag/tenant_id}"}}
    assert "kms:CreateGrant" not in kms["Action"]


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
