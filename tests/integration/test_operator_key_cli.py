"""`raas operator-key`: the first operator key of a deployment, made from a shell.

moto plays the deployed account: the tenants table is created under the name the CDK stacks
give it, the CLI finds it through the default credential chain and region, and the printed key
is then checked through the real authorizer handler, reading that same table.
"""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest

from raas import cli
from raas.adapters.dynamo_schema import TENANTS
from raas.bootstrap import uninstall
from raas.handlers import authorizer
from raas.local.invocation import lambda_context
from raas.operator_keys import deployed_table_name
from tests.helpers import rebuild_services

METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:api123/v1/GET/v1/tenants"


@pytest.fixture
def deployed(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A `prod` deployment's tenants table in us-east-1, and the authorizer configured for it."""
    from moto import mock_aws

    with mock_aws():
        table = deployed_table_name("prod")
        boto3.client("dynamodb", region_name="us-east-1").create_table(**TENANTS.create_table_kwargs(table))
        monkeypatch.setenv("RAAS_TENANTS_TABLE", table)  # what the stack sets on the authorizer function
        rebuild_services()
        yield table
        uninstall()


def authorize(secret: str) -> dict:
    event = {"type": "REQUEST", "methodArn": METHOD_ARN, "headers": {"Authorization": f"Bearer {secret}"}}
    return authorizer.handler(event, lambda_context("authorizer"))


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[str, str]:
    assert cli.main(["operator-key", *args]) == 0
    captured = capsys.readouterr()
    return captured.out, captured.err


def test_the_table_name_is_the_one_the_stacks_give_it() -> None:
    from stacks.settings import DeploymentSettings

    for stage in ("prod", "dev-2"):
        assert deployed_table_name(stage) == DeploymentSettings(stage=stage).table_name("tenants")


def test_create_prints_a_key_once_that_the_authorizer_accepts_as_an_operator(
    deployed: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given deploy credentials whose region is the deployment's (the default chain)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    # When the operator creates the first key
    out, err = run(capsys, "create", "--stage", "prod", "--name", "first operator")
    # Then stdout holds the key alone, stderr says where it went and warns it is shown once
    secret = out.strip()
    assert secret.startswith("raasop_")
    assert "\n" not in secret
    assert f"in {deployed} (us-east-1)" in err
    assert "shown this once" in err
    assert secret not in err
    # and the real authorizer, reading the deployed table, accepts it as an operator key
    result = authorize(secret)
    assert result["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    assert result["context"]["role"] == "operator"
    assert "tenant_id" not in result["context"] or not result["context"]["tenant_id"]
    # list shows it without the secret; revoke refuses it at once
    listing, _ = run(capsys, "list", "--stage", "prod", "--region", "us-east-1")
    key_id = result["principalId"]
    assert key_id in listing
    assert "first operator" in listing
    assert secret not in listing
    revoked, warning = run(capsys, "revoke", key_id, "--stage", "prod", "--region", "us-east-1")
    assert f"Revoked operator key {key_id}" in revoked
    assert "No active operator key is left" in warning
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        authorize(secret)


@pytest.mark.parametrize(
    ("stage", "region", "expected"),
    [
        ("staging", "us-east-1", "table raas-staging-tenants does not exist in us-east-1: raas stage 'staging' is not deployed"),
        ("prod", "eu-west-1", "table raas-prod-tenants does not exist in eu-west-1"),
        ("Prod!", "us-east-1", "is not a raas stage name"),
    ],
)
def test_a_missing_deployment_is_a_clear_error(deployed: str, stage: str, region: str, expected: str) -> None:
    with pytest.raises(SystemExit) as refused:
        cli.main(["operator-key", "create", "--stage", stage, "--region", region])
    assert str(refused.value).startswith("raas operator-key: ")
    assert expected in str(refused.value)


def test_revoking_an_unknown_key_says_so(deployed: str) -> None:
    with pytest.raises(SystemExit, match="no operator key k000000000000000 in raas-prod-tenants"):
        cli.main(["operator-key", "revoke", "k000000000000000", "--stage", "prod", "--region", "us-east-1"])
