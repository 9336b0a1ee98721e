"""The documents bucket expires tenant export bundles (and their noncurrent versions) by their tag."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from raas.domain.export_retention import EXPORT_RETENTION_DAYS, EXPORT_TAG, EXPORT_TAG_KEY, EXPORT_TAG_VALUE, NONCURRENT_EXPORT_DAYS


def _documents_bucket(synthesized: dict[str, Any]) -> dict[str, Any]:
    outdir: Path = synthesized["outdir"]
    data = json.loads((outdir / f"{synthesized['stacks']['data'].stack_name}.template.json").read_text())
    buckets = [r["Properties"] for r in data["Resources"].values() if r["Type"] == "AWS::S3::Bucket"]
    # the documents bucket is the one that logs to the access-log bucket
    (documents,) = [b for b in buckets if "LoggingConfiguration" in b]
    return documents


def test_export_bundles_expire_by_tag_with_their_noncurrent_versions(synthesized: dict[str, Any]) -> None:
    rules = _documents_bucket(synthesized)["LifecycleConfiguration"]["Rules"]
    exports = [r for r in rules if r.get("TagFilters") == [{"Key": EXPORT_TAG_KEY, "Value": EXPORT_TAG_VALUE}]]
    assert len(exports) == 1
    (rule,) = exports
    assert rule["Status"] == "Enabled"
    assert rule["ExpirationInDays"] == EXPORT_RETENTION_DAYS == 7
    assert rule["NoncurrentVersionExpiration"]["NoncurrentDays"] == NONCURRENT_EXPORT_DAYS
    # every tenant's exports/ folder: no prefix narrows the rule to one tenant (or to none)
    assert "Prefix" not in rule
    # the writer sends exactly this tag (x-amz-tagging form)
    assert f"{rule['TagFilters'][0]['Key']}={rule['TagFilters'][0]['Value']}" == EXPORT_TAG


def test_no_rule_expires_current_tenant_documents(synthesized: dict[str, Any]) -> None:
    # Only the tagged export rule and the retained/ deletion exports expire current versions: an untagged,
    # unprefixed expiration would delete every tenant's documents.
    for rule in _documents_bucket(synthesized)["LifecycleConfiguration"]["Rules"]:
        if "ExpirationInDays" in rule or "ExpirationDate" in rule:
            assert rule.get("TagFilters") or rule.get("Prefix") == "retained/", rule
