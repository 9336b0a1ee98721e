#!/usr/bin/env python3
"""The raas CDK app: `cdk synth` / `cdk deploy` (settings in cdk.json context, see docs/deploy.md)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

sys.path.insert(0, str(Path(__file__).resolve().parent / "lambdas"))

from stacks.api import ApiStack
from stacks.data import DataStack
from stacks.observability import ObservabilityStack
from stacks.search import SearchStack
from stacks.settings import DeploymentSettings


def cdk_json_context() -> dict[str, object]:
    """The context `cdk synth` would pass, for synthesizing from Python (tests, scripts)."""
    import json

    return dict(json.loads((Path(__file__).resolve().parent / "cdk.json").read_text(encoding="utf-8"))["context"])


def build(app: cdk.App) -> dict[str, cdk.Stack]:
    settings = DeploymentSettings.from_context(app.node.try_get_context)
    # TableV2 with a customer key needs a concrete region; the account may stay deploy-time.
    region = app.node.try_get_context("region") or os.environ.get("CDK_DEFAULT_REGION") or "us-east-1"
    env = cdk.Environment(account=app.node.try_get_context("account") or os.environ.get("CDK_DEFAULT_ACCOUNT"), region=region)
    name = f"Raas{settings.stage.replace('-', '').capitalize()}"
    data = DataStack(app, f"{name}Data", settings=settings, env=env)
    search = SearchStack(app, f"{name}Search", settings=settings, key=data.key, env=env)
    api = ApiStack(app, f"{name}Api", settings=settings, data=data, search=search, env=env)
    # Observability names what it watches (no exports); the dependency only orders the deployment.
    observability = ObservabilityStack(app, f"{name}Observability", settings=settings, env=env)
    observability.add_stack_dependency(api)
    cdk.Tags.of(app).add("raas:stage", settings.stage)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return {"data": data, "search": search, "api": api, "observability": observability}


if __name__ == "__main__":
    application = cdk.App()
    build(application)
    application.synth()
