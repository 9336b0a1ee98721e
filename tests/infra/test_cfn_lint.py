"""cfn-lint on every synthesized template: what CloudFormation's own schemas and rules refuse, before a deploy does.

cdk-nag checks security practice; cfn-lint checks the templates against the CloudFormation resource
specifications (property types, allowed values, references), which neither synth nor moto does. Errors
and warnings both fail; each rule we ignore is listed with its reason in .cfnlintrc.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CFN_LINT = Path(sys.executable).parent / "cfn-lint"


def lint(templates: list[Path]) -> list[dict[str, Any]]:
    """cfn-lint's findings, with the project's .cfnlintrc, as cfn-lint's JSON records."""
    result = subprocess.run(
        [str(CFN_LINT), "--format", "json", "--config-file", str(ROOT / ".cfnlintrc"), *map(str, templates)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    # Exit codes are bit flags (2 error, 4 warning, 8 informational); anything else means it did not run.
    assert result.returncode & ~(2 | 4 | 8) == 0, result.stderr
    findings: list[dict[str, Any]] = json.loads(result.stdout or "[]")
    return findings


def described(findings: list[dict[str, Any]]) -> list[str]:
    return [f"{f['Rule']['Id']} {Path(f['Filename']).name} {'/'.join(map(str, f['Location']['Path']))}: {f['Message']}" for f in findings]


def stack_templates(outdir: Path) -> list[Path]:
    templates = sorted(outdir.glob("*.template.json"))
    assert len(templates) == 4, templates  # data, search, api, observability: never lint an empty set
    return templates


def test_the_default_templates_pass_cfn_lint(synthesized: dict[str, Any]) -> None:
    assert described(lint(stack_templates(synthesized["outdir"]))) == []


def test_the_starter_profile_templates_pass_cfn_lint(starter: dict[str, Any]) -> None:
    templates = stack_templates(starter["outdir"])
    search = json.loads(next(t for t in templates if "Search" in t.name).read_text())
    assert any(r["Type"] == "AWS::OpenSearchService::Domain" for r in search["Resources"].values())
    assert described(lint(templates)) == []


def test_cfn_lint_catches_what_cloudformation_would_refuse(tmp_path: Path) -> None:
    """The runner above is not blind: a property of the wrong type is reported as an error."""
    template = tmp_path / "Broken.template.json"
    template.write_text(json.dumps({"Resources": {"Queue": {"Type": "AWS::SQS::Queue", "Properties": {"VisibilityTimeout": "forever"}}}}))
    findings = lint([template])
    assert [(f["Level"], f["Rule"]["Id"]) for f in findings] == [("Error", "E3012")]
