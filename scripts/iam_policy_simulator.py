"""The tenant data policy under IAM's own policy simulator, in a real AWS account.

    python scripts/iam_policy_simulator.py --account 123456789012

moto evaluates no IAM condition, so the test suite checks the policy as a document and through the strict
double in tests/kms_policy.py; this asks IAM itself (SimulateCustomPolicy,
https://docs.aws.amazon.com/IAM/latest/APIReference/API_SimulateCustomPolicy.html) what it decides for one
tenant's session against its own and another tenant's rows, objects and KMS key. It needs credentials allowed
`iam:SimulateCustomPolicy`, creates nothing, and is never run by the test suite (which reaches no AWS endpoint).
Exits non-zero on the first decision that differs from what the policy is meant to do.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "lambdas"))

from raas.security.tenant_policy import tenant_data_policy


def expect(decision: str, wanted: str) -> None:
    """IAM answers allowed, explicitDeny or implicitDeny; both denials are what "denied" means here."""
    got = "allowed" if decision == "allowed" else "denied"
    if got != wanted:
        case = sys._getframe(1).f_lineno
        raise SystemExit(f"line {case}: IAM's simulator says {decision}, the policy means {wanted}")


def check(account: str) -> None:
    table = f"arn:aws:dynamodb:us-east-1:{account}:table/raas-prod-documents"
    bucket = "arn:aws:s3:::raas-prod-docs"
    policy = json.dumps(tenant_data_policy([table], bucket))
    iam = boto3.session.Session().client("iam", endpoint_url="https://iam.amazonaws.com")

    def decision(action: str, resource: str, context: list[dict[str, Any]]) -> str:
        result = iam.simulate_custom_policy(PolicyInputList=[policy], ActionNames=[action], ResourceArns=[resource], ContextEntries=context)
        return str(result["EvaluationResults"][0]["EvalDecision"])

    tag = {"ContextKeyName": "aws:PrincipalTag/tenant_id", "ContextKeyValues": ["tacme00000000000"], "ContextKeyType": "string"}

    def leading(value: str) -> dict[str, Any]:
        return {"ContextKeyName": "dynamodb:LeadingKeys", "ContextKeyValues": [value], "ContextKeyType": "stringList"}

    expect(decision("dynamodb:GetItem", table, [tag, leading("TENANT#tacme00000000000#")]), "allowed")
    expect(decision("dynamodb:GetItem", table, [tag, leading("TENANT#tother0000000000#")]), "denied")
    expect(decision("dynamodb:GetItem", table, [tag]), "denied")  # no leading key: the Null check refuses
    expect(decision("dynamodb:Scan", table, [tag]), "denied")
    expect(decision("s3:GetObject", f"{bucket}/tenants/tacme00000000000/x", [tag]), "allowed")
    expect(decision("s3:GetObject", f"{bucket}/tenants/tother0000000000/x", [tag]), "denied")

    def via_s3(object_arn: str) -> list[dict[str, Any]]:  # what S3 sends KMS for an object without a Bucket Key
        return [
            tag,
            {"ContextKeyName": "kms:EncryptionContext:aws:s3:arn", "ContextKeyValues": [object_arn], "ContextKeyType": "string"},
            {"ContextKeyName": "kms:ViaService", "ContextKeyValues": ["s3.us-east-1.amazonaws.com"], "ContextKeyType": "string"},
        ]

    key = f"arn:aws:kms:us-east-1:{account}:key/00000000-0000-0000-0000-000000000000"  # untagged: a brand-new key
    expect(decision("kms:GenerateDataKey", key, via_s3(f"{bucket}/tenants/tacme00000000000/x")), "allowed")
    expect(decision("kms:Decrypt", key, via_s3(f"{bucket}/tenants/tother0000000000/x")), "denied")
    expect(decision("kms:Decrypt", key, [tag]), "denied")  # not via S3, no context


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--account", required=True, help="the AWS account id the ARNs are built in")
    check(parser.parse_args().account)
    print("IAM's policy simulator agrees with the tenant data policy on every case.")


if __name__ == "__main__":
    main()
