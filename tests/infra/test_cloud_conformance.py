"""What AWS itself would refuse or break, asserted on the synthesized templates (issue 10).

Each test names the AWS behaviour it guards; the stacks cite the documentation beside the code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from stacks.api import TENANT_DATA_GROUPS
from stacks.observability import event_functions, monitored_functions
from stacks.search import SEARCH_USERS
from stacks.settings import DeploymentSettings

from raas.security.tenant_policy import tenant_role_trust_policy
from tests.infra.conftest import CERTIFICATE, resources


def _only(template: dict[str, Any], kind: str) -> dict[str, Any]:
    found = resources(template, kind)
    assert len(found) == 1, (kind, list(found))
    return next(iter(found.values()))["Properties"]


# --- 2. alarms reach the topic ---------------------------------------------------------------------
def test_the_alarm_topic_key_lets_cloudwatch_publish_for_this_accounts_alarms_only(templates: dict[str, dict[str, Any]]) -> None:
    observability = templates["observability"]
    keys = resources(observability, "AWS::KMS::Key")
    topic = _only(observability, "AWS::SNS::Topic")
    # the topic's key is the stack's own (not the platform key that protects tenant data)
    key_id = topic["KmsMasterKeyId"]["Fn::GetAtt"][0]
    assert key_id in keys
    key = keys[key_id]["Properties"]
    assert key["EnableKeyRotation"] is True
    cloudwatch = [s for s in key["KeyPolicy"]["Statement"] if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}]
    assert len(cloudwatch) == 1
    statement = cloudwatch[0]
    assert statement["Effect"] == "Allow"
    assert sorted(statement["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey*"]
    assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    source_arn = json.dumps(statement["Condition"]["ArnLike"]["aws:SourceArn"])
    assert ":cloudwatch:us-east-1:" in source_arn
    assert source_arn.endswith(':alarm:*"]]}')
    # no other service may use it
    services = [s["Principal"] for s in key["KeyPolicy"]["Statement"] if "Service" in s.get("Principal", {})]
    assert services == [{"Service": "cloudwatch.amazonaws.com"}]
    # the topic policy (which replaces SNS's default one) lets CloudWatch publish, under the same conditions
    policy = _only(observability, "AWS::SNS::TopicPolicy")["PolicyDocument"]
    publish = [s for s in policy["Statement"] if s["Effect"] == "Allow" and s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}]
    assert len(publish) == 1
    assert publish[0]["Action"] == "sns:Publish"
    assert publish[0]["Condition"] == statement["Condition"]
    # the platform key's policy is unchanged: CloudWatch gets nothing on tenant data
    platform = next(iter(resources(templates["data"], "AWS::KMS::Key").values()))["Properties"]
    assert "cloudwatch" not in json.dumps(platform["KeyPolicy"])


# --- 5. the deployed trust policy is the unit-tested one ------------------------------------------
def test_the_tenant_data_role_trusts_exactly_what_tenant_role_trust_policy_returns(
    synthesized: dict[str, Any], templates: dict[str, dict[str, Any]]
) -> None:
    api_stack = synthesized["stacks"]["api"]
    expected = api_stack.resolve(tenant_role_trust_policy([api_stack.roles[group].role_arn for group in TENANT_DATA_GROUPS]))
    role = next(r["Properties"] for lid, r in resources(templates["api"], "AWS::IAM::Role").items() if lid.startswith("TenantDataRole"))
    assert role["AssumeRolePolicyDocument"] == expected
    # and what it returns requires the tenant tag on every statement that lets a handler in
    for statement in role["AssumeRolePolicyDocument"]["Statement"]:
        assert "aws:RequestTag/tenant_id" in json.dumps(statement["Condition"])


# --- 6. the account-wide API Gateway role is opt-in -----------------------------------------------
def test_api_gateway_account_settings_are_left_alone_unless_opted_in(
    templates: dict[str, dict[str, Any]], starter_templates: dict[str, dict[str, Any]]
) -> None:
    assert resources(templates["api"], "AWS::ApiGateway::Account") == {}
    opted_in = resources(starter_templates["api"], "AWS::ApiGateway::Account")
    assert len(opted_in) == 1
    # deleting the stage that created it must not take the region's logging role with it
    assert next(iter(opted_in.values()))["DeletionPolicy"] == "Retain"
    flags = json.loads((Path(__file__).resolve().parents[2] / "cdk.json").read_text())["context"]
    assert flags["@aws-cdk/aws-apigateway:disableCloudWatchRole"] is True
    assert flags["raas:apiGatewayAccountRole"] is False


# --- 8. no stack pinned by exports ----------------------------------------------------------------
def test_observability_imports_nothing_and_the_api_stack_exports_nothing(templates: dict[str, dict[str, Any]]) -> None:
    assert "Fn::ImportValue" not in json.dumps(templates["observability"])
    assert [name for name, output in templates["api"].get("Outputs", {}).items() if "Export" in output] == []


def test_observability_names_exactly_what_the_other_stacks_deploy(templates: dict[str, dict[str, Any]]) -> None:
    """Names replace references, so a typo would watch nothing: every name must exist."""
    settings = DeploymentSettings()
    api, data = templates["api"], templates["data"]
    functions = {r["Properties"].get("FunctionName") for r in resources(api, "AWS::Lambda::Function").values()}
    log_groups = {r["Properties"].get("LogGroupName") for r in resources(api, "AWS::Logs::LogGroup").values()}
    queues = {r["Properties"].get("QueueName") for t in (api, data) for r in resources(t, "AWS::SQS::Queue").values()}
    assert {settings.function_name(g) for g in monitored_functions()} <= functions
    assert {settings.function_log_group_name(g) for g in monitored_functions()} <= log_groups
    assert settings.ingest_dead_letter_queue_name in queues
    assert {settings.event_dead_letter_queue_name(f) for f in event_functions()} <= queues
    assert _only(api, "AWS::ApiGateway::RestApi")["Name"] == settings.api_name
    observability = json.dumps(templates["observability"])
    for name in [settings.function_name("authorizer"), settings.ingest_dead_letter_queue_name, settings.api_name]:
        assert name in observability
    query = _only(templates["observability"], "AWS::Logs::QueryDefinition")
    assert sorted(query["LogGroupNames"]) == sorted(settings.function_log_group_name(g) for g in monitored_functions())


# --- 9. the managed domain admits only the raas function roles ------------------------------------
def _assert_domain_admits_only_search_roles(search: dict[str, Any], stage: str) -> None:
    domain = _only(search, "AWS::OpenSearchService::Domain")
    statements = domain["AccessPolicies"]["Statement"]
    assert len(statements) == 1
    statement = statements[0]
    assert statement["Effect"] == "Allow"
    rendered = json.dumps(statement)
    assert '"*"' not in json.dumps(statement["Principal"])  # never anonymous
    assert ":root" in json.dumps(statement["Principal"])  # the account; the roles are named in the condition
    assert f"domain/raas-{stage}-search/*" in json.dumps(statement["Resource"])
    allowed = json.dumps(statement["Condition"]["ArnEquals"]["aws:PrincipalArn"])
    for group in SEARCH_USERS:
        assert f":role/raas-{stage}-{group}-us-east-1" in allowed
    assert allowed.count(":role/") == len(SEARCH_USERS)
    assert "es:*" not in rendered


def test_the_starter_domain_admits_only_the_search_roles_and_those_roles_exist(starter_templates: dict[str, dict[str, Any]]) -> None:
    _assert_domain_admits_only_search_roles(starter_templates["search"], "dev")
    role_names = {r["Properties"].get("RoleName") for r in resources(starter_templates["api"], "AWS::IAM::Role").values()}
    assert {f"raas-dev-{group}-us-east-1" for group in SEARCH_USERS} <= role_names


# --- 10. URLs: the stage is the deployment stage; an optional custom domain ------------------------
def test_the_stage_is_named_after_the_deployment_stage_and_the_url_is_output(templates: dict[str, dict[str, Any]]) -> None:
    api = templates["api"]
    assert _only(api, "AWS::ApiGateway::Stage")["StageName"] == "prod"
    assert resources(api, "AWS::ApiGateway::DomainName") == {}
    url = json.dumps(api["Outputs"]["ApiUrl"]["Value"])
    assert url.endswith('"/prod"]]}')
    assert "/v1" not in url


def test_a_custom_domain_maps_its_root_to_the_stage(starter_templates: dict[str, dict[str, Any]]) -> None:
    api = starter_templates["api"]
    assert _only(api, "AWS::ApiGateway::Stage")["StageName"] == "dev"
    domain = _only(api, "AWS::ApiGateway::DomainName")
    assert domain["DomainName"] == "api.example.com"
    assert domain["RegionalCertificateArn"] == CERTIFICATE
    assert domain["EndpointConfiguration"] == {"Types": ["REGIONAL"]}
    assert domain["SecurityPolicy"] == "TLS_1_2"
    mapping = _only(api, "AWS::ApiGateway::BasePathMapping")
    assert mapping.get("BasePath", "") == ""  # the routes carry /v1: https://api.example.com/v1/...
    assert "Stage" in mapping
    assert api["Outputs"]["ApiUrl"]["Value"] == "https://api.example.com"
    assert "CustomDomainTarget" in api["Outputs"]


# --- redundancy and the starter profile -----------------------------------------------------------
def _search_template(**context: Any) -> dict[str, Any]:
    """The Search stack alone (it needs only the Data stack's key): seconds, not a full synthesis."""
    import app as cdk_app
    from stacks.data import DataStack
    from stacks.search import SearchStack

    application = cdk.App(context={**cdk_app.cdk_json_context(), **context})
    settings = DeploymentSettings.from_context(application.node.try_get_context)
    env = cdk.Environment(region="us-east-1")
    data = DataStack(application, "Data", settings=settings, env=env)
    search = SearchStack(application, "Search", settings=settings, key=data.key, env=env)
    template: dict[str, Any] = application.synth().get_stack_by_name(search.stack_name).template
    return template


def test_search_redundancy_maps_to_the_collections_standby_replicas(templates: dict[str, dict[str, Any]]) -> None:
    assert _only(templates["search"], "AWS::OpenSearchServerless::Collection")["StandbyReplicas"] == "ENABLED"
    without = _search_template(**{"raas:searchRedundancy": False})
    assert _only(without, "AWS::OpenSearchServerless::Collection")["StandbyReplicas"] == "DISABLED"


def test_the_starter_profile_is_one_small_encrypted_node_and_cdk_nag_clean(
    starter: dict[str, Any], starter_templates: dict[str, dict[str, Any]]
) -> None:
    report = json.loads((starter["outdir"] / "validation-report.json").read_text())
    failures = [v for plugin in report.get("pluginReports", []) for v in plugin.get("violations", []) if v.get("severity") == "error"]
    assert failures == []
    domain = _only(starter_templates["search"], "AWS::OpenSearchService::Domain")
    assert domain["ClusterConfig"] == {
        "DedicatedMasterEnabled": False,
        "InstanceCount": 1,
        "InstanceType": "t3.small.search",
        "MultiAZWithStandbyEnabled": False,
        "ZoneAwarenessEnabled": False,
    }
    assert domain["EBSOptions"] == {"EBSEnabled": True, "VolumeSize": 10, "VolumeType": "gp3"}
    # what the starter keeps: encryption, HTTPS only, bulk bodies cannot name another tenant's index
    assert domain["EncryptionAtRestOptions"]["Enabled"] is True
    assert domain["NodeToNodeEncryptionOptions"]["Enabled"] is True
    assert domain["DomainEndpointOptions"]["EnforceHTTPS"] is True
    assert domain["AdvancedOptions"]["rest.action.multi.allow_explicit_index"] == "false"
    assert resources(starter_templates["search"], "AWS::OpenSearchServerless::Collection") == {}


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"profile": "starter", "search_engine": "serverless"}, "raas:profile=starter"),
        ({"domain_name": "api.example.com"}, "raas:certificateArn"),
        ({"certificate_arn": CERTIFICATE}, "raas:domainName"),
        ({"domain_name": "https://api.example.com", "certificate_arn": CERTIFICATE}, "domain_name"),
    ],
)
def test_inconsistent_settings_are_refused(context: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DeploymentSettings.model_validate(context)


def test_the_profile_chooses_the_engine_when_none_is_set() -> None:
    assert DeploymentSettings.model_validate({"search_engine": ""}).search_engine == "serverless"
    assert DeploymentSettings.model_validate({"profile": "starter", "search_engine": ""}).search_engine == "domain"
    assert DeploymentSettings.model_validate({"profile": "starter", "search_engine": "domain"}).search_engine == "domain"


# --- the ingest queue hears of source objects only --------------------------------------------------
def test_only_document_sources_notify_the_ingest_queue(templates: dict[str, dict[str, Any]]) -> None:
    # The search engine's id receipts and exports live under the same tenant prefix; without the
    # suffix rule every one of them would wake the ingest function for nothing.
    (notifications,) = resources(templates["data"], "Custom::S3BucketNotifications").values()
    (queue,) = notifications["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
    rules = {rule["Name"]: rule["Value"] for rule in queue["Filter"]["Key"]["FilterRules"]}
    assert rules == {"prefix": "tenants/", "suffix": "/source"}


# --- 4. tenant keys work at once --------------------------------------------------------------------
def test_no_kms_use_by_any_role_waits_for_a_tag_to_propagate(templates: dict[str, dict[str, Any]]) -> None:
    # AWS applies key tags and aliases to authorization up to five minutes late, so a statement that
    # lets a role use a tenant's key must not depend on them (the platform key's alias is older than
    # every request, so its alias condition is fine).
    uses = {"kms:Decrypt", "kms:GenerateDataKey", "kms:Encrypt"}
    tenant_key_statements = []
    for policy in resources(templates["api"], "AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if not uses & set(actions):
                continue
            conditions = json.dumps(statement.get("Condition", {}))
            assert "aws:ResourceTag" not in conditions, statement
            # webhook signing secrets: Encrypt/Decrypt bound to our own context, no tag either (test_webhook_stack.py)
            if "kms:ResourceAliases" not in conditions and "kms:EncryptionContext:raas:purpose" not in conditions:
                tenant_key_statements.append(statement)
    assert tenant_key_statements
    for statement in tenant_key_statements:
        condition = statement["Condition"]
        assert "kms:ViaService" in json.dumps(condition), statement
        assert "kms:EncryptionContext:aws:s3:arn" in json.dumps(condition), statement
