"""The streaming path in the synthesized API stack (stacks/streaming.py, issue 14).

Uses the session's one synthesis of the app (tests/infra/conftest.py), which cdk-nag checks as it runs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from stacks.settings import DeploymentSettings
from stacks.streaming import STREAMING_ROUTES, TIMEOUT, WRAPPER

from tests.infra.conftest import resources
from tests.infra.test_stacks import _method_paths

STREAM_FUNCTION = "raas-prod-stream"


def _function_ids(api: dict[str, Any]) -> dict[str, str]:
    """function name -> logical id"""
    return {r["Properties"].get("FunctionName", lid): lid for lid, r in resources(api, "AWS::Lambda::Function").items()}


def _stream_function(api: dict[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = api["Resources"][_function_ids(api)[STREAM_FUNCTION]]["Properties"]
    return properties


def test_the_two_answering_routes_stream_from_the_stream_function_behind_the_authorizer(templates: dict[str, dict[str, Any]]) -> None:
    api = templates["api"]
    stream_id = _function_ids(api)[STREAM_FUNCTION]
    authorizer_id = next(iter(resources(api, "AWS::ApiGateway::Authorizer")))
    methods = _method_paths(api)
    assert {("POST", "/v1/query"), ("POST", "/v1/conversations/{conversation_id}/messages")} == STREAMING_ROUTES
    for route in STREAMING_ROUTES:
        method = methods[route]
        integration = method["Integration"]
        assert (integration["Type"], integration["IntegrationHttpMethod"]) == ("AWS_PROXY", "POST")
        assert integration["ResponseTransferMode"] == "STREAM"
        assert integration["TimeoutInMillis"] == TIMEOUT.to_milliseconds() == 300_000
        # InvokeWithResponseStream's path, on the stream function
        # (https://docs.aws.amazon.com/apigateway/latest/developerguide/response-transfer-mode-lambda.html)
        uri = json.dumps(integration["Uri"])
        assert ":lambda:path/2021-11-15/functions/" in uri
        assert uri.endswith('"/response-streaming-invocations"]]}')
        assert f'"{stream_id}"' in uri
        # the same authorizer, API key (usage plans) and validation as every other tenant route
        assert method["AuthorizationType"] == "CUSTOM"
        assert method["AuthorizerId"] == {"Ref": authorizer_id}
        assert method["ApiKeyRequired"] is True
        assert "RequestValidatorId" in method
    # every other method is buffered and never reaches the stream function
    for route, method in methods.items():
        if route not in STREAMING_ROUTES:
            assert method.get("Integration", {}).get("ResponseTransferMode", "BUFFERED") == "BUFFERED", route
            assert f'"{stream_id}"' not in json.dumps(method.get("Integration", {})), route


def test_the_stream_function_runs_the_wrapper_on_python_312_with_the_layer_and_the_apis_settings(
    templates: dict[str, dict[str, Any]], synthesized: dict[str, Any]
) -> None:
    api = templates["api"]
    stream = _stream_function(api)
    functions = {r["Properties"].get("FunctionName"): r["Properties"] for r in resources(api, "AWS::Lambda::Function").values()}
    query = functions["raas-prod-query"]
    assert (stream["Runtime"], stream["Architectures"], stream["TracingConfig"]["Mode"]) == ("python3.12", ["arm64"], "Active")
    assert stream["Handler"] == "raas.handlers.stream_function.handler"
    assert stream["Layers"] == query["Layers"]  # the one dependency layer
    assert stream["Code"] == query["Code"]  # the same code asset
    assert (stream["MemorySize"], stream["Timeout"]) == (1024, 300)
    variables = dict(stream["Environment"]["Variables"])
    # Lambda starts the runtime through the wrapper (https://docs.aws.amazon.com/lambda/latest/dg/runtimes-modify.html#runtime-wrapper)
    assert variables.pop("AWS_LAMBDA_EXEC_WRAPPER") == f"/var/task/{WRAPPER}"
    assert variables == query["Environment"]["Variables"]  # every other setting as the query function's
    assert variables["RAAS_TENANT_ROLE_ARN"]
    log_group = api["Resources"][stream["LoggingConfig"]["LogGroup"]["Ref"]]["Properties"]
    assert log_group["LogGroupName"] == DeploymentSettings().function_log_group_name("stream")
    # the wrapper is in the staged code asset, executable: the zip CDK uploads keeps the file's mode
    asset = Path(synthesized["outdir"]) / f"asset.{stream['Code']['S3Key'].removesuffix('.zip')}"
    assert os.access(asset / WRAPPER, os.X_OK)


def test_the_stream_function_has_the_query_functions_permissions_and_nothing_more(templates: dict[str, dict[str, Any]]) -> None:
    api = templates["api"]
    stream_id = _function_ids(api)[STREAM_FUNCTION]
    stream, query = _stream_function(api), api["Resources"][_function_ids(api)["raas-prod-query"]]["Properties"]
    assert stream["Role"] == query["Role"]  # the query role: already named by the tenant role's trust and the search policy
    role_id = stream["Role"]["Fn::GetAtt"][0]
    policies = [
        p["Properties"] for p in resources(api, "AWS::IAM::Policy").values() if {"Ref": role_id} in p["Properties"].get("Roles", [])
    ]
    statements = [s for p in policies for s in p["PolicyDocument"]["Statement"]]
    # what the function adds to that role: writing its own log group, nothing else
    logs_statements = [s for s in statements if "StreamingAnswersLogs" in json.dumps(s.get("Resource"))]
    assert len(logs_statements) == 1
    assert sorted(logs_statements[0]["Action"]) == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert not any(s.get("Resource") == "*" and "logs:" in json.dumps(s["Action"]) for s in statements)
    # API Gateway may invoke it only for the two streaming methods (InvokeWithResponseStream needs lambda:InvokeFunction)
    permissions = [
        p["Properties"]
        for p in resources(api, "AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"] == {"Fn::GetAtt": [stream_id, "Arn"]}
    ]
    assert len(permissions) == 4  # each method, on the stage and the console's test-invoke stage
    for permission in permissions:
        assert (permission["Action"], permission["Principal"]) == ("lambda:InvokeFunction", "apigateway.amazonaws.com")
        assert json.dumps(permission["SourceArn"]).endswith(('/POST/v1/query"]]}', '/POST/v1/conversations/*/messages"]]}'))


def test_the_waf_and_the_usage_plans_cover_the_stage_that_serves_the_streaming_methods(templates: dict[str, dict[str, Any]]) -> None:
    api = templates["api"]
    (stage_id,) = resources(api, "AWS::ApiGateway::Stage")
    (rest_api_id,) = resources(api, "AWS::ApiGateway::RestApi")
    methods = _method_paths(api)
    for route in STREAMING_ROUTES:
        assert methods[route]["RestApiId"] == {"Ref": rest_api_id}
    association = next(iter(resources(api, "AWS::WAFv2::WebACLAssociation").values()))["Properties"]
    assert {"Ref": stage_id} in association["ResourceArn"]["Fn::Join"][1]
    plans = resources(api, "AWS::ApiGateway::UsagePlan").values()
    assert plans
    for plan in plans:
        assert [(s["ApiId"], s["Stage"]) for s in plan["Properties"]["ApiStages"]] == [({"Ref": rest_api_id}, {"Ref": stage_id})]


def test_cdk_nag_has_nothing_to_say_about_the_streaming_path(synthesized: dict[str, Any]) -> None:
    report = json.loads((Path(synthesized["outdir"]) / "validation-report.json").read_text())
    findings = [v for plugin in report.get("pluginReports", []) for v in plugin.get("violations", [])]
    assert not [f for f in findings if "Streaming" in json.dumps(f)]
