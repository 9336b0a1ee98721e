"""Synthesizes the whole CDK app once per session (cdk-nag runs as part of synth)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def synth(tmp: Path, **context: Any) -> dict[str, Any]:
    import app as cdk_app
    import aws_cdk as cdk

    application = cdk.App(outdir=str(tmp), context={**cdk_app.cdk_json_context(), **context})
    stacks = cdk_app.build(application)
    assembly = application.synth()  # raises if cdk-nag finds anything not acknowledged
    return {"app": application, "stacks": stacks, "assembly": assembly, "outdir": tmp}


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return synth(tmp_path_factory.mktemp("cdk"))


CERTIFICATE = "arn:aws:acm:us-east-1:123456789012:certificate/12345678-1234-1234-1234-123456789012"
# One synthesis for every opt-in: the starter profile (a managed domain), the account-wide API
# Gateway role and a custom domain, on a stage other than prod (cfn-lint and the conformance tests).
STARTER = {
    "raas:profile": "starter",
    "raas:stage": "dev",
    "raas:apiGatewayAccountRole": True,
    "raas:domainName": "api.example.com",
    "raas:certificateArn": CERTIFICATE,
}


@pytest.fixture(scope="session")
def starter(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return synth(tmp_path_factory.mktemp("cdk-starter"), **STARTER)


@pytest.fixture(scope="session")
def starter_templates(starter: dict[str, Any]) -> dict[str, dict[str, Any]]:
    outdir: Path = starter["outdir"]
    return {name: json.loads((outdir / f"{stack.stack_name}.template.json").read_text()) for name, stack in starter["stacks"].items()}


@pytest.fixture(scope="session")
def templates(synthesized: dict[str, Any]) -> dict[str, dict[str, Any]]:
    outdir: Path = synthesized["outdir"]
    return {name: json.loads((outdir / f"{stack.stack_name}.template.json").read_text()) for name, stack in synthesized["stacks"].items()}


def resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {lid: r for lid, r in template["Resources"].items() if r["Type"] == kind}
