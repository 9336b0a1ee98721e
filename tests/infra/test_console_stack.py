"""The console in AWS (issue 13): bucket, OAC, CloudFront headers, config.json, and the API's CORS for it.

Two syntheses: the whole app (the session's `templates`, shared with the other infra modules) for what the
API stack holds (the console construct lives there, stacks/console.py says why), and one small app made
here with the construct alone, twice: over a fake build and over no build, because whether console/dist
exists on this machine depends on whether someone ran `npm run build`.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from stacks.console import IMMUTABLE, ROUTER, ConsoleHosting
from stacks.settings import DeploymentSettings

from raas.domain.console_security import CORS_ALLOWED_HEADERS, CORS_EXPOSED_HEADERS, content_security_policy
from raas.handlers.registry import API_HANDLERS
from tests.infra.conftest import resources
from tests.infra.test_cfn_lint import described, lint

# The contract's CSP (tests/../console-contract, issue 13), written out: the API's origin and the documents
# bucket the presigned uploads go to are the only other places the SPA may connect to.
API_ORIGIN = "https://<Api>.execute-api.us-east-1.<AWS::URLSuffix>"
UPLOADS = "https://s3.us-east-1.<AWS::URLSuffix>/raas-prod-docs-<AWS::AccountId>-us-east-1/ https://s3.<AWS::URLSuffix>/raas-prod-docs-<AWS::AccountId>-us-east-1/"
EXPECTED_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' https: data:; "
    f"connect-src 'self' {API_ORIGIN} {UPLOADS}; font-src 'self' data:; frame-ancestors 'none'; base-uri 'self'; "
    "form-action 'self'; object-src 'none'"
)
DISTRIBUTION_ORIGIN = "https://<Distribution.DomainName>"


def render(value: Any, names: dict[str, str] | None = None) -> str:
    """A CloudFormation string expression as text: Ref/GetAtt become <LogicalId> / <LogicalId.Attribute>,
    with `names` shortening logical ids (ApiF70053CD -> Api)."""
    names = names or {}
    if isinstance(value, str):
        return value
    (function, argument), *_ = value.items()
    if function == "Fn::Join":
        return str(argument[0]).join(render(part, names) for part in argument[1])
    if function == "Ref":
        return f"<{names.get(argument, argument)}>"
    if function == "Fn::GetAtt":
        return f"<{names.get(argument[0], argument[0])}.{argument[1]}>"
    if function == "Fn::Sub":
        return str(argument)
    raise AssertionError(f"unexpected expression {value}")


def only(template: dict[str, Any], kind: str) -> tuple[str, dict[str, Any]]:
    found = resources(template, kind)
    assert len(found) == 1, (kind, list(found))
    (logical_id, resource), *_ = found.items()
    return logical_id, resource["Properties"]


@pytest.fixture(scope="module")
def api(templates: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return templates["api"]


@pytest.fixture(scope="module")
def names(api: dict[str, Any]) -> dict[str, str]:
    rest_api, _ = only(api, "AWS::ApiGateway::RestApi")
    distribution, _ = only(api, "AWS::CloudFront::Distribution")
    return {rest_api: "Api", distribution: "Distribution"}


# --- the bucket and origin access control -------------------------------------------------------------


def test_the_files_bucket_is_private_encrypted_and_logged(api: dict[str, Any]) -> None:
    _, distribution = only(api, "AWS::CloudFront::Distribution")
    origin_bucket = distribution["DistributionConfig"]["Origins"][0]["DomainName"]["Fn::GetAtt"][0]
    bucket = api["Resources"][origin_bucket]["Properties"]
    assert bucket["PublicAccessBlockConfiguration"] == dict.fromkeys(
        ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"), True
    )
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"] == [
        {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
    ]
    assert bucket["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]  # OAC needs ACLs off
    assert "WebsiteConfiguration" not in bucket
    logs = bucket["LoggingConfiguration"]["DestinationBucketName"]["Ref"]
    assert distribution["DistributionConfig"]["Logging"]["Bucket"] == {"Fn::GetAtt": [logs, "RegionalDomainName"]}
    assert api["Resources"][logs]["Properties"]["PublicAccessBlockConfiguration"]["RestrictPublicBuckets"] is True


def test_cloudfront_reads_the_bucket_through_origin_access_control(api: dict[str, Any]) -> None:
    oac_id, oac = only(api, "AWS::CloudFront::OriginAccessControl")
    assert oac["OriginAccessControlConfig"] == {
        "Name": "raas-prod-console-us-east-1",
        "OriginAccessControlOriginType": "s3",
        "SigningBehavior": "always",
        "SigningProtocol": "sigv4",
    }
    _, distribution = only(api, "AWS::CloudFront::Distribution")
    (origin,) = distribution["DistributionConfig"]["Origins"]
    assert origin["OriginAccessControlId"] == {"Fn::GetAtt": [oac_id, "Id"]}
    assert origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}  # no legacy OAI
    assert not resources(api, "AWS::CloudFront::CloudFrontOriginAccessIdentity")


def test_the_bucket_policy_admits_only_cloudfront_for_this_distribution(api: dict[str, Any], names: dict[str, str]) -> None:
    _, distribution = only(api, "AWS::CloudFront::Distribution")
    bucket = distribution["DistributionConfig"]["Origins"][0]["DomainName"]["Fn::GetAtt"][0]
    (policy,) = [r["Properties"] for r in resources(api, "AWS::S3::BucketPolicy").values() if r["Properties"]["Bucket"] == {"Ref": bucket}]
    deny_plain_http, allow = policy["PolicyDocument"]["Statement"]
    assert (deny_plain_http["Effect"], deny_plain_http["Condition"]) == ("Deny", {"Bool": {"aws:SecureTransport": "false"}})
    assert allow["Effect"] == "Allow"
    assert allow["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert allow["Action"] == "s3:GetObject"
    assert render(allow["Resource"], names) == f"<{bucket}.Arn>/*"
    (condition,) = allow["Condition"].items()
    assert condition[0] == "StringEquals"
    assert {k: render(v, names) for k, v in condition[1].items()} == {
        "AWS:SourceArn": "arn:<AWS::Partition>:cloudfront::<AWS::AccountId>:distribution/<Distribution>"
    }


# --- the distribution and its headers -------------------------------------------------------------------


def test_the_distribution_serves_https_get_and_head_only(api: dict[str, Any]) -> None:
    _, distribution = only(api, "AWS::CloudFront::Distribution")
    config = distribution["DistributionConfig"]
    behavior = config["DefaultCacheBehavior"]
    assert behavior["ViewerProtocolPolicy"] == "redirect-to-https"
    assert (behavior["AllowedMethods"], behavior["CachedMethods"]) == (["GET", "HEAD"], ["GET", "HEAD"])
    assert config["DefaultRootObject"] == "console/index.html"
    assert "CustomErrorResponses" not in config  # the router function makes the fallback; errors stay errors
    # the default *.cloudfront.net certificate (CloudFront fixes its policy at TLSv1: the CFR4 acknowledgement)
    assert "ViewerCertificate" not in config or config["ViewerCertificate"].get("CloudFrontDefaultCertificate") is True
    (association,) = behavior["FunctionAssociations"]
    assert association["EventType"] == "viewer-request"


def test_the_response_headers_policy_sends_the_contracts_headers(api: dict[str, Any], names: dict[str, str]) -> None:
    policy_id, policy = only(api, "AWS::CloudFront::ResponseHeadersPolicy")
    _, distribution = only(api, "AWS::CloudFront::Distribution")
    assert distribution["DistributionConfig"]["DefaultCacheBehavior"]["ResponseHeadersPolicyId"] == {"Ref": policy_id}
    config = policy["ResponseHeadersPolicyConfig"]
    assert config["Name"] == "raas-prod-console-headers-us-east-1"
    security = config["SecurityHeadersConfig"]
    csp = security["ContentSecurityPolicy"]
    assert csp["Override"] is True
    assert render(csp["ContentSecurityPolicy"], names) == EXPECTED_CSP
    assert "unsafe-inline" not in EXPECTED_CSP.split("script-src")[1].split(";")[0]
    assert "unsafe-eval" not in EXPECTED_CSP
    hsts = security["StrictTransportSecurity"]
    assert hsts["AccessControlMaxAgeSec"] >= 365 * 24 * 3600
    assert (hsts["IncludeSubdomains"], hsts["Override"]) == (True, True)
    assert security["FrameOptions"] == {"FrameOption": "DENY", "Override": True}
    assert security["ContentTypeOptions"] == {"Override": True}
    assert security["ReferrerPolicy"] == {"ReferrerPolicy": "no-referrer", "Override": True}


def test_local_and_cloud_send_the_same_csp() -> None:
    """raas local builds its CSP from the same function; only connect-src's extra sources differ."""
    assert content_security_policy([API_ORIGIN, *UPLOADS.split(" ")]) == EXPECTED_CSP


ROUTER_CASES = {
    "/": ("redirect", "/console/"),
    "/console": ("redirect", "/console/"),
    "/console/": ("uri", "/console/index.html"),
    "/console/tenants/t123": ("uri", "/console/index.html"),
    "/console/index.html": ("uri", "/console/index.html"),
    "/console/config.json": ("uri", "/console/config.json"),
    "/console/assets/app-abc123.js": ("uri", "/console/assets/app-abc123.js"),
    "/console/assets/": ("uri", "/console/index.html"),
    "/elsewhere": ("uri", "/elsewhere"),  # not the console's: S3 answers (403, the bucket lists nothing)
}


def test_the_router_function_redirects_and_falls_back_like_raas_local() -> None:
    """The viewer-request function's own code, run by node as CloudFront Functions would run it."""
    script = ROUTER + (
        "var uris = JSON.parse(process.argv[1]);"
        "console.log(JSON.stringify(uris.map(function (uri) { return handler({ request: { uri: uri } }); })));"
    )
    result = subprocess.run(["node", "-e", script, json.dumps(list(ROUTER_CASES))], capture_output=True, text=True, timeout=60, check=True)
    answers = dict(zip(ROUTER_CASES, json.loads(result.stdout), strict=True))
    for uri, (kind, expected) in ROUTER_CASES.items():
        answer = answers[uri]
        if kind == "redirect":
            assert (answer["statusCode"], answer["headers"]["location"]["value"]) == (301, expected), uri
        else:
            assert answer["uri"] == expected, uri


# --- config.json, written at deploy -------------------------------------------------------------------------


def test_config_json_names_the_api_url_resolved_at_deploy(api: dict[str, Any], names: dict[str, str], synthesized: dict[str, Any]) -> None:
    deployments = [r["Properties"] for r in resources(api, "Custom::CDKBucketDeployment").values()]
    (shell,) = [d for d in deployments if d["DestinationBucketKeyPrefix"] == "console/"]
    # the marker in the zipped source is replaced by the deployment with the value CloudFormation resolved
    markers = {marker: render(value, names) for source in shell["SourceMarkers"] for marker, value in source.items()}
    key = shell["SourceObjectKeys"][-1].removesuffix(".zip")
    text = (synthesized["outdir"] / f"asset.{key}" / "config.json").read_text()
    ((marker, value),) = markers.items()
    assert marker in text
    assert json.loads(text.replace(marker, value)) == {"apiUrl": "https://<Api>.execute-api.us-east-1.<AWS::URLSuffix>/prod"}
    assert shell["SystemMetadata"] == {"cache-control": "no-cache"}
    assert (shell["Prune"], shell["Exclude"]) == (True, ["assets/*"])
    assert render(shell["DistributionId"], names) == "<Distribution>"
    assert shell["DistributionPaths"] == ["/console/*"]
    assert "${Token[" not in json.dumps(api)  # no token left unresolved anywhere in the template


# --- CORS on the API: the console's origin only ------------------------------------------------------------


def test_every_resource_answers_preflight_without_the_authorizer(api: dict[str, Any], names: dict[str, str]) -> None:
    methods = [r["Properties"] for r in resources(api, "AWS::ApiGateway::Method").values()]
    preflights = [m for m in methods if m["HttpMethod"] == "OPTIONS"]
    assert len(preflights) == len(resources(api, "AWS::ApiGateway::Resource")) + 1  # every resource and the root
    for method in preflights:
        assert (method["AuthorizationType"], method.get("ApiKeyRequired", False)) == ("NONE", False)
        assert "AuthorizerId" not in method
        assert method["Integration"]["Type"] == "MOCK"
        (response,) = method["Integration"]["IntegrationResponses"]
        headers = {k.removeprefix("method.response.header."): render(v, names) for k, v in response["ResponseParameters"].items()}
        assert headers["Access-Control-Allow-Origin"] == f"'{DISTRIBUTION_ORIGIN}'"
        assert headers["Vary"] == "'Origin'"
        assert headers["Access-Control-Allow-Headers"] == f"'{','.join(CORS_ALLOWED_HEADERS)}'"
        assert "Access-Control-Allow-Credentials" not in headers


def test_gateway_responses_carry_the_console_origin(api: dict[str, Any], names: dict[str, str]) -> None:
    responses = [r["Properties"] for r in resources(api, "AWS::ApiGateway::GatewayResponse").values()]
    assert len(responses) >= 20
    for response in responses:
        headers = {k.removeprefix("gatewayresponse.header."): render(v, names) for k, v in response["ResponseParameters"].items()}
        assert headers == {
            "Access-Control-Allow-Origin": f"'{DISTRIBUTION_ORIGIN}'",
            "Access-Control-Expose-Headers": f"'{', '.join(CORS_EXPOSED_HEADERS)}'",
            "Vary": "'Origin'",
        }, response["ResponseType"]


def test_the_api_functions_know_the_console_origin(api: dict[str, Any], names: dict[str, str]) -> None:
    functions = {r["Properties"].get("FunctionName"): r["Properties"] for r in resources(api, "AWS::Lambda::Function").values()}
    for group in API_HANDLERS:
        variables = functions[f"raas-prod-{group}"]["Environment"]["Variables"]
        assert render(variables["RAAS_CONSOLE_ORIGIN"], names) == DISTRIBUTION_ORIGIN, group


# --- the construct alone: with a build, without one, cdk-nag and cfn-lint -----------------------------------

EXPECTED_ACKNOWLEDGEMENTS = {
    "Console/Logs": {"AwsSolutions-S1"},
    "Console/Distribution": {"AwsSolutions-CFR1", "AwsSolutions-CFR2", "AwsSolutions-CFR4"},
    "Custom::CDKBucketDeployment8693BB64968944B69AAFB0CC9EB8756C256MiB": {
        "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
        "AwsSolutions-IAM5[Action::s3:GetObject*]",
        "AwsSolutions-IAM5[Action::s3:GetBucket*]",
        "AwsSolutions-IAM5[Action::s3:List*]",
        "AwsSolutions-IAM5[Action::s3:DeleteObject*]",
        "AwsSolutions-IAM5[Action::s3:Abort*]",
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-<AWS::AccountId>-eu-west-1/*]",
        "AwsSolutions-IAM5[Resource::<ConsoleFiles2D43986C.Arn>/*]",
        "AwsSolutions-IAM5[Resource::*]",
        "AwsSolutions-L1",
    },
}


@pytest.fixture(scope="module")
def alone(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    import app as cdk_app
    import aws_cdk as cdk
    from cdk_nag import AwsSolutionsChecks

    base = tmp_path_factory.mktemp("console-alone")
    dist = base / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<!doctype html><title>raas</title>")
    (dist / "assets" / "app-abc123.js").write_text("console.log('raas')")
    (dist / "favicon.svg").write_text("<svg/>")
    (dist / "config.json").write_text('{"apiUrl": "from the local build"}')
    (dist / ".vite").mkdir()
    (dist / ".vite" / "manifest.json").write_text("{}")
    app = cdk.App(outdir=str(base / "out"), context=cdk_app.cdk_json_context())
    env = cdk.Environment(region="eu-west-1")  # outside us-east-1: one S3 upload host
    stacks = {}
    for name, directory in (("Built", dist), ("Unbuilt", base / "never-built")):
        stacks[name] = cdk.Stack(app, name, env=env)
        ConsoleHosting(stacks[name], "Console", settings=DeploymentSettings(), dist=directory).serve_api(
            "https://api.example.com", "https://api.example.com"
        )
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    app.synth()  # raises if cdk-nag finds anything not acknowledged
    out = base / "out"
    return {
        "out": out,
        "stacks": stacks,
        "templates": {name: json.loads((out / f"{name}.template.json").read_text()) for name in stacks},
        "metadata": {name: json.loads((out / f"{name}.metadata.json").read_text()) for name in stacks},
    }


def _deployments(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {lid: r for lid, r in template["Resources"].items() if r["Type"] == "Custom::CDKBucketDeployment"}


def test_a_build_is_deployed_with_hashed_assets_immutable_and_the_rest_revalidated(alone: dict[str, Any]) -> None:
    deployments = _deployments(alone["templates"]["Built"])
    by_prefix = {r["Properties"]["DestinationBucketKeyPrefix"]: (lid, r) for lid, r in deployments.items()}
    assert sorted(by_prefix) == ["console/", "console/assets/"]
    assets_id, assets = by_prefix["console/assets/"]
    _, shell = by_prefix["console/"]
    assert assets["Properties"]["SystemMetadata"] == {"cache-control": IMMUTABLE}
    assert assets["Properties"]["Prune"] is False  # open tabs keep loading their older chunks
    assert shell["Properties"]["SystemMetadata"] == {"cache-control": "no-cache"}
    assert assets_id in shell["DependsOn"]  # index.html goes live after the files it names
    out: Path = alone["out"]
    keys = [key.removesuffix(".zip") for key in shell["Properties"]["SourceObjectKeys"]]
    files = {
        key: sorted(p.relative_to(out / f"asset.{key}").as_posix() for p in (out / f"asset.{key}").rglob("*") if p.is_file())
        for key in keys
    }
    # the build's files but its assets/, Vite's manifest and its local config.json; then the deployment's config.json
    assert list(files.values()) == [["favicon.svg", "index.html"], ["config.json"]]
    (config_key,) = [k for k, v in files.items() if v == ["config.json"]]
    assert json.loads((out / f"asset.{config_key}" / "config.json").read_text()) == {"apiUrl": "https://api.example.com"}


def test_without_a_build_synth_deploys_config_json_and_warns(alone: dict[str, Any]) -> None:
    deployments = _deployments(alone["templates"]["Unbuilt"])
    (only_deployment,) = [r["Properties"] for r in deployments.values()]
    assert only_deployment["DestinationBucketKeyPrefix"] == "console/"
    (key,) = only_deployment["SourceObjectKeys"]
    assert sorted(p.name for p in (alone["out"] / f"asset.{key.removesuffix('.zip')}").iterdir()) == ["config.json"]
    warnings = [e["data"] for e in alone["metadata"]["Unbuilt"].get("/Unbuilt/Console", []) if e["type"] == "aws:cdk:warning"]
    assert len(warnings) == 1
    assert "only config.json is deployed" in warnings[0]
    assert "cd console && npm ci && npm run build" in warnings[0]
    assert not [e for e in alone["metadata"]["Built"].get("/Built/Console", []) if e["type"] == "aws:cdk:warning"]


def test_cdk_nag_is_clean_with_exactly_the_justified_acknowledgements(alone: dict[str, Any]) -> None:
    report = json.loads((alone["out"] / "validation-report.json").read_text())
    assert [v for plugin in report.get("pluginReports", []) for v in plugin.get("violations", []) if v.get("severity") == "error"] == []
    for name in ("Built", "Unbuilt"):
        acknowledged: dict[str, set[str]] = {}
        for path, entries in alone["metadata"][name].items():
            for entry in entries:
                if entry["type"] == "aws:cdk:acknowledged-rules":
                    for rule, reason in entry["data"].items():
                        assert len(reason) >= 40, (rule, reason)  # a reason, not a shrug
                        acknowledged.setdefault(path.removeprefix(f"/{name}/"), set()).add(rule.removeprefix("Annotation::"))
        assert acknowledged == EXPECTED_ACKNOWLEDGEMENTS, name


def test_the_construct_passes_cfn_lint(alone: dict[str, Any]) -> None:
    templates = sorted(alone["out"].glob("*.template.json"))
    assert [t.name for t in templates] == ["Built.template.json", "Unbuilt.template.json"]
    assert described(lint(templates)) == []


def test_the_api_origin_must_be_given(tmp_path: Path) -> None:
    """A construct whose CSP would name no API fails the synth instead of deploying a console that cannot call it."""
    import aws_cdk as cdk

    app = cdk.App(outdir=str(tmp_path))
    ConsoleHosting(cdk.Stack(app, "Forgotten", env=cdk.Environment(region="eu-west-1")), "Console", settings=DeploymentSettings())
    with pytest.raises(Exception, match="the API's origin was never given"):
        app.synth()
