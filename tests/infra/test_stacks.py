"""Assertions on the synthesized CloudFormation: routes, encryption, DLQs, alarms, sizes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from stacks.api import api_routes
from stacks.streaming import STREAMING_ROUTES

from raas.adapters.dynamo_schema import ALL_TABLES
from raas.domain import catalog
from raas.handlers.registry import (
    API_HANDLERS,
    EVENT_HANDLERS,
    EVENT_ROUTES,
    PUBLIC_ROUTES,
    QUEUED_FUNCTIONS,
    SCHEDULES,
    routes_by_function,
)
from tests.infra.conftest import resources, synth
from tests.infra.test_cloud_conformance import _assert_domain_admits_only_search_roles

LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024


def test_cdk_nag_reports_nothing_unacknowledged(synthesized: dict[str, Any]) -> None:
    report = json.loads((synthesized["outdir"] / "validation-report.json").read_text())
    failures = [r for plugin in report.get("pluginReports", []) for r in plugin.get("violations", []) if r.get("severity") == "error"]
    assert failures == []


def _method_paths(api: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """(HTTP method, full path) -> method resource, reconstructed from the resource tree."""
    path_of: dict[str, str] = {}
    api_resources = resources(api, "AWS::ApiGateway::Resource")

    def path(logical_id: str) -> str:
        if logical_id not in path_of:
            resource = api_resources[logical_id]["Properties"]
            parent = resource["ParentId"]
            prefix = path(parent["Ref"]) if "Ref" in parent else ""
            path_of[logical_id] = f"{prefix}/{resource['PathPart']}"
        return path_of[logical_id]

    methods = {}
    for method in resources(api, "AWS::ApiGateway::Method").values():
        props = method["Properties"]
        resource_id = props["ResourceId"]
        full = path(resource_id["Ref"]) if "Ref" in resource_id else "/"
        methods[(props["HttpMethod"], full)] = props
    return methods


def test_every_route_reaches_its_function_with_the_authorizer(templates: dict[str, dict[str, Any]]) -> None:
    api = templates["api"]
    function_of = {lid: r["Properties"]["FunctionName"] for lid, r in resources(api, "AWS::Lambda::Function").items()}
    authorizers = resources(api, "AWS::ApiGateway::Authorizer")
    assert len(authorizers) == 1
    authorizer = next(iter(authorizers.values()))["Properties"]
    assert authorizer["Type"] == "REQUEST"
    assert authorizer["IdentitySource"] == "method.request.header.Authorization"
    assert authorizer["AuthorizerResultTtlInSeconds"] == 60
    methods = _method_paths(api)
    routes = api_routes()
    assert len(routes) >= 20
    for group, method, path in routes:
        props = methods[(method, path)]
        uri = json.dumps(props["Integration"]["Uri"])
        target = [name for lid, name in function_of.items() if f'"{lid}"' in uri]
        expected = "stream" if (method, path) in STREAMING_ROUTES else group  # stacks/streaming.py: SSE and JSON
        assert target == [f"raas-prod-{expected}"], (method, path, target)
        public = (method, path.replace("{", "<").replace("}", ">")) in PUBLIC_ROUTES
        assert props["AuthorizationType"] == ("NONE" if public else "CUSTOM"), (method, path)
        assert props.get("ApiKeyRequired", False) is (not public), (method, path)
    assert methods[("GET", "/v1/health")]["AuthorizationType"] == "NONE"


def test_functions_run_python_312_on_arm_with_tracing_and_the_layer(templates: dict[str, dict[str, Any]]) -> None:
    functions = {r["Properties"]["FunctionName"]: r["Properties"] for r in resources(templates["api"], "AWS::Lambda::Function").values()}
    expected = {f"raas-prod-{g}" for g in [*API_HANDLERS, *EVENT_HANDLERS, "authorizer"]}
    assert expected <= set(functions)
    for name in expected:
        props = functions[name]
        assert (props["Runtime"], props["Architectures"], props["TracingConfig"]["Mode"]) == ("python3.12", ["arm64"], "Active")
        assert props["Layers"], name
        assert props["Environment"]["Variables"]["RAAS_STAGE"] == "prod"
    assert functions["raas-prod-ingest"]["Timeout"] == 300
    assert functions["raas-prod-query"]["Environment"]["Variables"]["RAAS_OFFLINE_ANSWERS"] == "false"


def test_every_table_is_encrypted_recoverable_and_keyed_as_the_code_expects(templates: dict[str, dict[str, Any]]) -> None:
    tables = {r["Properties"]["TableName"]: r["Properties"] for r in resources(templates["data"], "AWS::DynamoDB::GlobalTable").values()}
    assert set(tables) == {f"raas-prod-{spec.logical_name}" for spec in ALL_TABLES}
    for spec in ALL_TABLES:
        props = tables[f"raas-prod-{spec.logical_name}"]
        assert props["SSESpecification"]["SSEEnabled"] is True
        assert props["SSESpecification"]["SSEType"] == "KMS"
        replica = props["Replicas"][0]
        assert replica["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True  # cdk-nag does not check TableV2
        assert replica["SSESpecification"]["KMSMasterKeyId"]
        assert {k["AttributeName"] for k in props["KeySchema"]} == {spec.partition_key, spec.sort_key} - {None}
        assert {i["IndexName"] for i in props.get("GlobalSecondaryIndexes", [])} == {i.name for i in spec.indexes}
        if spec.ttl_attribute:
            assert props["TimeToLiveSpecification"] == {"AttributeName": spec.ttl_attribute, "Enabled": True}
    key = next(iter(resources(templates["data"], "AWS::KMS::Key").values()))["Properties"]
    assert key["EnableKeyRotation"] is True


def test_buckets_are_private_encrypted_versioned_ssl_only_and_logged(templates: dict[str, dict[str, Any]]) -> None:
    data = templates["data"]
    buckets = resources(data, "AWS::S3::Bucket")
    assert len(buckets) == 2
    for props in (b["Properties"] for b in buckets.values()):
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert props["VersioningConfiguration"]["Status"] == "Enabled"
    documents = next(b["Properties"] for b in buckets.values() if "LoggingConfiguration" in b["Properties"])
    assert (
        documents["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    )
    assert any(rule.get("AbortIncompleteMultipartUpload") for rule in documents["LifecycleConfiguration"]["Rules"])
    policies = [p["Properties"]["PolicyDocument"]["Statement"] for p in resources(data, "AWS::S3::BucketPolicy").values()]
    for statements in policies:
        assert any(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements)


def test_every_async_target_has_a_dead_letter_queue(templates: dict[str, dict[str, Any]]) -> None:
    queues = resources(templates["data"], "AWS::SQS::Queue")
    ingest = next(q["Properties"] for q in queues.values() if q["Properties"].get("QueueName") == "raas-prod-ingest")
    assert ingest["RedrivePolicy"]["maxReceiveCount"] == 5
    buffer = next(q["Properties"] for q in queues.values() if q["Properties"].get("QueueName") == "raas-prod-usage-buffer")
    assert "deadLetterTargetArn" in buffer["RedrivePolicy"]
    assert ingest["VisibilityTimeout"] >= 6 * 300
    notifications = resources(templates["data"], "Custom::S3BucketNotifications")
    config = next(iter(notifications.values()))["Properties"]["NotificationConfiguration"]["QueueConfigurations"][0]
    assert config["Events"] == ["s3:ObjectCreated:*"]
    # the key filter: test_cloud_conformance.test_only_document_sources_notify_the_ingest_queue
    mappings = resources(templates["api"], "AWS::Lambda::EventSourceMapping")
    # the ingest queue, and one queue per QUEUED_FUNCTIONS function (webhook delivery: stacks/lifecycle.py)
    response_types = [m["Properties"]["FunctionResponseTypes"] for m in mappings.values()]
    assert response_types == [["ReportBatchItemFailures"]] * (1 + len(QUEUED_FUNCTIONS))
    rules = resources(templates["api"], "AWS::Events::Rule")
    assert rules
    for rule in rules.values():
        for target in rule["Properties"]["Targets"]:
            assert "DeadLetterConfig" in target
            assert target["RetryPolicy"]["MaximumRetryAttempts"] >= 1
    invoke_configs = resources(templates["api"], "AWS::Lambda::EventInvokeConfig")
    assert len(invoke_configs) == len({f for fs in EVENT_ROUTES.values() for f in fs} | {f for f, _, _ in SCHEDULES.values()})
    for config in invoke_configs.values():
        assert "OnFailure" in config["Properties"]["DestinationConfig"]


def test_event_rules_are_generated_from_the_routing_table(templates: dict[str, dict[str, Any]]) -> None:
    rules = [r["Properties"] for r in resources(templates["api"], "AWS::Events::Rule").values()]
    pattern_rules = {r["Name"]: r for r in rules if "EventPattern" in r}
    assert set(pattern_rules) == {f"raas-prod-events-{function}" for function in routes_by_function()}
    for function, detail_types in routes_by_function().items():
        rule = pattern_rules[f"raas-prod-events-{function}"]
        assert rule["EventPattern"] == {"source": ["raas.platform"], "detail-type": sorted(detail_types)}
        assert "raas-prod-platform" in json.dumps(rule["EventBusName"])
    schedules = {r["Name"]: r for r in rules if "ScheduleExpression" in r}
    for name, (_function, expression, payload) in SCHEDULES.items():
        rule = schedules[f"raas-prod-events-{name}"]
        assert rule["ScheduleExpression"] == expression
        assert json.loads(rule["Targets"][0]["Input"]) == payload


def test_usage_plans_per_tier_match_the_tier_file(templates: dict[str, dict[str, Any]]) -> None:
    plans = {r["Properties"]["UsagePlanName"]: r["Properties"] for r in resources(templates["api"], "AWS::ApiGateway::UsagePlan").values()}
    for tier, limits in catalog.tiers().items():
        throttle = plans[f"raas-prod-{tier.value}-plan"]["Throttle"]
        assert (throttle["RateLimit"], throttle["BurstLimit"]) == (limits.rate_limit_rps, limits.burst)
    api = next(iter(resources(templates["api"], "AWS::ApiGateway::RestApi").values()))["Properties"]
    assert api["ApiKeySourceType"] == "AUTHORIZER"


def test_stage_has_access_logs_tracing_and_a_waf_with_a_rate_rule(templates: dict[str, dict[str, Any]]) -> None:
    api = templates["api"]
    stage = next(iter(resources(api, "AWS::ApiGateway::Stage").values()))["Properties"]
    assert stage["TracingEnabled"] is True
    assert "tenantId" in stage["AccessLogSetting"]["Format"]
    acl = next(iter(resources(api, "AWS::WAFv2::WebACL").values()))["Properties"]
    rate = next(r for r in acl["Rules"] if "RateBasedStatement" in r["Statement"])
    assert rate["Statement"]["RateBasedStatement"]["Limit"] == 2000
    assert resources(api, "AWS::WAFv2::WebACLAssociation")


def test_gateway_refusals_use_the_api_error_shape(templates: dict[str, dict[str, Any]]) -> None:
    responses = {
        r["Properties"]["ResponseType"]: r["Properties"] for r in resources(templates["api"], "AWS::ApiGateway::GatewayResponse").values()
    }
    assert responses["UNAUTHORIZED"]["StatusCode"] == "401"
    assert responses["MISSING_AUTHENTICATION_TOKEN"]["StatusCode"] == "404"  # unknown routes are 404, as locally
    assert "$context.authorizer.error_code" in responses["ACCESS_DENIED"]["ResponseTemplates"]["application/json"]
    for props in responses.values():
        json.loads(props["ResponseTemplates"]["application/json"].replace("$context", "x"))


def test_alarms_notify_the_topic(templates: dict[str, dict[str, Any]]) -> None:
    observability = templates["observability"]
    alarms = resources(observability, "AWS::CloudWatch::Alarm")
    event_functions = {f for fs in EVENT_ROUTES.values() for f in fs} | {f for f, _, _ in SCHEDULES.values()}
    assert len(alarms) == 4 + len(event_functions)  # 5xx, p99, ingest DLQ, authorizer errors + one per event function's DLQ
    topic = next(iter(resources(observability, "AWS::SNS::Topic")))
    for alarm in alarms.values():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": topic}]
    assert resources(observability, "AWS::CloudWatch::Dashboard")
    assert resources(observability, "AWS::Logs::QueryDefinition")


def test_tenant_data_role_carries_the_tenant_scoped_policy(templates: dict[str, dict[str, Any]]) -> None:
    api = templates["api"]
    policy = next(r["Properties"] for lid, r in resources(api, "AWS::IAM::Policy").items() if lid.startswith("TenantDataPolicy"))
    rendered = json.dumps(policy["PolicyDocument"])
    assert "dynamodb:LeadingKeys" in rendered
    assert "TENANT#${aws:PrincipalTag/tenant_id}#*" in rendered
    assert "dynamodb:Scan" not in rendered
    by_sid = {st["Sid"]: st for st in policy["PolicyDocument"]["Statement"]}
    assert "raas-prod-audit" in json.dumps(by_sid["TenantAppendOnly"]["Resource"])
    assert "raas-prod-audit" not in json.dumps(by_sid["TenantItemsOnly"]["Resource"])
    assert "raas-prod-idempotency" not in rendered  # platform-only tables never reach the tenant role
    role = next(r["Properties"] for lid, r in resources(api, "AWS::IAM::Role").items() if lid.startswith("TenantDataRole"))
    assert any("sts:TagSession" in json.dumps(s["Action"]) for s in role["AssumeRolePolicyDocument"]["Statement"])


def test_every_function_fits_lambdas_unzipped_limit(templates: dict[str, dict[str, Any]]) -> None:
    from layers.build import size_report

    report = size_report("arm64")  # what `python layers/build.py --report` prints
    deployed = {
        r["Properties"]["FunctionName"]
        for r in resources(templates["api"], "AWS::Lambda::Function").values()
        if "FunctionName" in r["Properties"]
    }
    assert {f"raas-prod-{name}" for name, _, _ in report} <= deployed
    for name, code, layer in report:
        assert code + layer < LAMBDA_UNZIPPED_LIMIT, f"{name}: code {code} + layer {layer} bytes"


# "Resources per stack: 500" (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/cloudformation-limits.html).
# Every API route costs a resource, a method and a CORS preflight method; keep room for the next ones.
RESOURCE_QUOTA, ROOM_FOR_GROWTH = 500, 25


def test_every_stack_stays_under_cloudformations_resource_quota_with_room(templates: dict[str, dict[str, Any]]) -> None:
    for name, template in templates.items():
        count = len(template["Resources"])
        assert count <= RESOURCE_QUOTA - ROOM_FOR_GROWTH, f"{name}: {count} resources; move a part to a nested stack"


def test_a_managed_domain_forbids_explicit_indexes_in_bulk_bodies(tmp_path: Path) -> None:
    built = synth(tmp_path, **{"raas:searchEngine": "domain", "raas:stage": "dev"})
    template = json.loads((tmp_path / f"{built['stacks']['search'].stack_name}.template.json").read_text())
    domain = next(iter(resources(template, "AWS::OpenSearchService::Domain").values()))["Properties"]
    assert domain["AdvancedOptions"]["rest.action.multi.allow_explicit_index"] == "false"
    assert domain["EncryptionAtRestOptions"]["Enabled"] is True
    assert domain["NodeToNodeEncryptionOptions"]["Enabled"] is True
    assert domain["DomainEndpointOptions"]["EnforceHTTPS"] is True
    # the standard profile: two data nodes over two zones, three dedicated masters, gp3
    assert domain["ClusterConfig"]["InstanceCount"] == 2
    assert domain["ClusterConfig"]["DedicatedMasterCount"] == 3
    assert domain["ClusterConfig"]["ZoneAwarenessEnabled"] is True
    assert domain["EBSOptions"]["VolumeType"] == "gp3"
    _assert_domain_admits_only_search_roles(template, "dev")


@pytest.mark.parametrize("bad", [{"raas:logRetentionDays": 10}, {"raas:allowedModels": ["gpt-99"]}, {"raas:stage": "Bad Stage"}])
def test_bad_settings_fail_with_a_clear_message(tmp_path: Path, bad: dict[str, Any]) -> None:
    with pytest.raises((ValueError, Exception)) as caught:
        synth(tmp_path, **bad)
    assert any(word in str(caught.value) for word in ("raas:", "stage", "logRetentionDays", "unknown models"))
