"""The console in AWS (issue 13): a private bucket behind CloudFront, its security headers and config.json.

- Files: a private S3 bucket (all public access blocked, TLS only, SSE-S3: the console is public code and
  holds no secret), read by CloudFront alone through origin access control, whose bucket policy admits the
  `cloudfront.amazonaws.com` service principal only for this distribution's ARN
  (https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/private-content-restricting-access-to-s3.html).
- Paths: Vite builds the app for the base /console/, so the objects are stored under console/. A CloudFront
  Function on viewer requests sends / and /console to /console/ and serves console/index.html for /console/
  and any extensionless path under it, the same fallback `raas local` makes
  (https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/example-function-add-index.html); no
  error response is rewritten, so a missing file stays an error rather than index.html served as script.
- Headers: a response headers policy with the console's CSP (raas.domain.console_security: scripts from
  its own origin only, connect-src the API's origin and the documents bucket the presigned uploads go to),
  HSTS for two years with subdomains, X-Frame-Options DENY, nosniff and Referrer-Policy no-referrer, each
  overriding whatever the origin sent
  (https://docs.aws.amazon.com/cloudfront/latest/APIReference/API_ResponseHeadersPolicySecurityHeadersConfig.html).
- Deployment: BucketDeployment copies console/dist (hashed files under assets/ as immutable, the rest
  `no-cache`) and writes config.json `{"apiUrl": <the API's URL>}` from `Source.json_data`, whose tokens
  (Ref, Fn::GetAtt, Fn::Join, Fn::Select) are resolved during the deployment, not at synth
  (https://docs.aws.amazon.com/cdk/api/v2/docs/aws-cdk-lib.aws_s3_deployment-readme.html#data-with-deploy-time-values).
  Without a build at synth time, only config.json is deployed and synth warns, so `cdk synth` works on a
  fresh checkout.

Why the construct lives in the API stack: the API's CORS (preflight, gateway responses, the functions'
RAAS_CONSOLE_ORIGIN) needs the distribution's domain, and the distribution's CSP and config.json need the
API's URL. Across two stacks that is a cycle of exports whichever way it is cut (a console stack the API
depends on still needs the API's origin for its CSP). Inside one stack CloudFormation orders resources,
not stacks, and there is no cycle: RestApi -> headers policy -> distribution -> functions, methods and
gateway responses -> deployment -> stage; config.json's deployment follows the RestApi it names. The CSP
takes the API's origin through a lazy value, since the RestApi is built after the distribution it needs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import jsii
from aws_cdk import Annotations, Aws, CfnOutput, Duration, IStableStringProducer, Lazy, RemovalPolicy, Stack, Token
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy
from constructs import Construct

from raas.domain.console_security import content_security_policy
from stacks.nag import acknowledge
from stacks.settings import DeploymentSettings

ROOT = Path(__file__).resolve().parent.parent
CONSOLE_DIST = ROOT / "console" / "dist"
KEY_PREFIX = "console/"  # Vite's `base: '/console/'`
IMMUTABLE = "public, max-age=31536000, immutable"  # Vite's assets/ files carry a content hash in their names
REVALIDATE = "no-cache"
HSTS_MAX_AGE = Duration.days(730)

# Viewer-request function (JavaScript runtime 2.0): canonical URLs, and index.html for the app's paths.
ROUTER = """\
function handler(event) {
  var request = event.request;
  var uri = request.uri;
  if (uri === '/' || uri === '/console') {
    return { statusCode: 301, statusDescription: 'Moved Permanently', headers: { location: { value: '/console/' } } };
  }
  if (uri.indexOf('/console/') === 0) {
    var last = uri.substring(uri.lastIndexOf('/') + 1);
    if (last === '' || last.indexOf('.') === -1) {
      request.uri = '/console/index.html';
    }
  }
  return request;
}
"""


@jsii.implements(IStableStringProducer)
class _Later:
    """A value set after the construct that uses it was built (the API's origin, for the CSP)."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.value: str | None = None

    def produce(self) -> str:
        if self.value is None:
            raise ValueError(f"ConsoleHosting: {self.what} was never given (call serve_api)")
        return self.value


def upload_prefixes(settings: DeploymentSettings, region: str) -> list[str]:
    """Where the SPA PUTs presigned uploads: the documents bucket, path-style (raas.adapters.aws signs
    with `addressing_style: path`). botocore signs us-east-1 for the legacy global endpoint unless told
    otherwise, so there both hosts are named; the trailing "/" keeps the CSP to this one bucket."""
    bucket = settings.bucket_name(Aws.ACCOUNT_ID, region)
    hosts = [f"s3.{region}.{Aws.URL_SUFFIX}"]
    if Token.is_unresolved(region) or region == "us-east-1":
        hosts.append(f"s3.{Aws.URL_SUFFIX}")
    return [f"https://{host}/{bucket}/" for host in hosts]


class ConsoleHosting(Construct):
    """The console's bucket, distribution and headers; `serve_api` adds the API's origin and config.json."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: DeploymentSettings, dist: Path = CONSOLE_DIST) -> None:
        super().__init__(scope, construct_id)
        self.settings = settings
        self.dist = dist
        self.api_origin = _Later("the API's origin")
        region = Stack.of(self).region
        removal = RemovalPolicy.RETAIN if settings.removal_policy == "retain" else RemovalPolicy.DESTROY

        # CloudFront's standard logs need a bucket with ACLs enabled
        # (https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/AccessLogs.html); the files
        # bucket keeps ACLs off, as OAC requires, and logs its own access here too.
        self.logs = s3.Bucket(
            self,
            "Logs",
            encryption=s3.BucketEncryption.S3_MANAGED,  # neither log delivery writes to SSE-KMS buckets
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(365))],
            removal_policy=removal,
            auto_delete_objects=removal == RemovalPolicy.DESTROY,
        )
        acknowledge(self.logs, "AwsSolutions-S1", "This is the console's access-log bucket itself; logging it into itself would loop.")
        self.bucket = s3.Bucket(
            self,
            "Files",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.logs,
            server_access_logs_prefix="s3/",
            removal_policy=removal,
            auto_delete_objects=removal == RemovalPolicy.DESTROY,
        )

        self.csp = content_security_policy([Lazy.string(self.api_origin), *upload_prefixes(settings, region)])
        # CloudFront names are account-wide (CloudFront is global): the region keeps two regional deployments apart.
        self.headers = cloudfront.ResponseHeadersPolicy(
            self,
            "SecurityHeaders",
            response_headers_policy_name=f"{settings.prefix('console-headers')}-{region}",
            comment="raas console: CSP, HSTS, frame and referrer policy",
            security_headers_behavior=cloudfront.ResponseSecurityHeadersBehavior(
                content_security_policy=cloudfront.ResponseHeadersContentSecurityPolicy(content_security_policy=self.csp, override=True),
                strict_transport_security=cloudfront.ResponseHeadersStrictTransportSecurity(
                    access_control_max_age=HSTS_MAX_AGE, include_subdomains=True, override=True
                ),
                frame_options=cloudfront.ResponseHeadersFrameOptions(frame_option=cloudfront.HeadersFrameOption.DENY, override=True),
                content_type_options=cloudfront.ResponseHeadersContentTypeOptions(override=True),
                referrer_policy=cloudfront.ResponseHeadersReferrerPolicy(
                    referrer_policy=cloudfront.HeadersReferrerPolicy.NO_REFERRER, override=True
                ),
            ),
        )
        router = cloudfront.Function(
            self,
            "Router",
            function_name=f"{settings.prefix('console-router')}-{region}",
            comment="raas console: /console/ and the app's paths -> index.html",
            runtime=cloudfront.FunctionRuntime.JS_2_0,
            code=cloudfront.FunctionCode.from_inline(ROUTER),
        )
        # OAC signs every request to the bucket (SigV4, always); the origin adds the bucket policy statement.
        access = cloudfront.S3OriginAccessControl(
            self,
            "OriginAccess",
            origin_access_control_name=f"{settings.prefix('console')}-{region}",
            signing=cloudfront.Signing.SIGV4_ALWAYS,
        )
        self.distribution = cloudfront.Distribution(
            self,
            "Distribution",
            comment=f"raas {settings.stage} console",
            default_behavior=cloudfront.BehaviorOptions(
                origin=origins.S3BucketOrigin.with_origin_access_control(self.bucket, origin_access_control=access),
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD,
                cached_methods=cloudfront.CachedMethods.CACHE_GET_HEAD,
                cache_policy=cloudfront.CachePolicy.CACHING_OPTIMIZED,  # honours the objects' Cache-Control
                response_headers_policy=self.headers,
                function_associations=[
                    cloudfront.FunctionAssociation(function=router, event_type=cloudfront.FunctionEventType.VIEWER_REQUEST)
                ],
                compress=True,
            ),
            # Only / is covered by a default root object; the router redirects it to /console/ before that applies.
            default_root_object=f"{KEY_PREFIX}index.html",
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            price_class=cloudfront.PriceClass.PRICE_CLASS_100,
            enable_logging=True,
            log_bucket=self.logs,
            log_file_prefix="cloudfront/",
        )
        self.origin = f"https://{self.distribution.distribution_domain_name}"
        CfnOutput(self, "ConsoleUrl", value=f"{self.origin}/console/", description="the raas console")
        self._nag()

    def serve_api(self, api_origin: str, api_url: str) -> None:
        """The API the console calls: its origin (the CSP's connect-src) and its URL (config.json, no
        trailing slash; the SPA calls `${apiUrl}/v1/...`)."""
        self.api_origin.value = api_origin
        log_group = logs.LogGroup(self, "DeploymentLogs", retention=self.settings.log_retention(), removal_policy=RemovalPolicy.DESTROY)
        common: dict[str, Any] = {"destination_bucket": self.bucket, "log_group": log_group, "memory_limit": 256}
        shell_sources = [s3deploy.Source.json_data("config.json", {"apiUrl": api_url})]
        assets: s3deploy.BucketDeployment | None = None
        if (self.dist / "index.html").is_file():
            if (self.dist / "assets").is_dir():
                # Kept across deployments (no prune): a tab opened before one still loads its older chunks.
                assets = s3deploy.BucketDeployment(
                    self,
                    "DeployAssets",
                    sources=[s3deploy.Source.asset(str(self.dist / "assets"))],
                    destination_key_prefix=f"{KEY_PREFIX}assets/",
                    prune=False,
                    cache_control=[s3deploy.CacheControl.from_string(IMMUTABLE)],
                    **common,
                )
            # the build's own config.json (if any) is the local one: the deployment writes AWS's
            shell_sources.insert(0, s3deploy.Source.asset(str(self.dist), exclude=["assets", ".vite", "config.json"]))
        else:
            Annotations.of(self).add_warning_v2(
                "raas:console-not-built",
                f"{self.dist} has no index.html: only config.json is deployed. Build the console first: "
                "cd console && npm ci && npm run build",
            )
        shell = s3deploy.BucketDeployment(
            self,
            "DeployShell",
            sources=shell_sources,
            destination_key_prefix=KEY_PREFIX,
            exclude=["assets/*"],  # the assets deployment's, never pruned here
            prune=True,
            cache_control=[s3deploy.CacheControl.from_string(REVALIDATE)],
            distribution=self.distribution,
            distribution_paths=[f"/{KEY_PREFIX}*"],
            **common,
        )
        if assets is not None:
            shell.node.add_dependency(assets)  # the new index.html goes live after the files it names
        self._deployment_handler()

    def _deployment_handler(self) -> None:
        """BucketDeployment's handler is aws-cdk-lib's own singleton function (one per stack and memory
        size); its role and runtime are CDK's, scoped by CDK to the asset bucket and this console bucket.
        It gets a deterministic name like every other function of the platform."""
        stack = Stack.of(self)
        handlers = [child for child in stack.node.children if child.node.id.startswith("Custom::CDKBucketDeployment")]
        bucket_logical_id = stack.resolve(cast(s3.CfnBucket, self.bucket.node.default_child).logical_id)
        assets_bucket = f"arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-<AWS::AccountId>-{stack.region}/*"
        for handler in handlers:
            cast(lambda_.CfnFunction, handler.node.default_child).function_name = self.settings.function_name("console-deploy")
            acknowledge(
                handler,
                "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
                "CDK's BucketDeployment handler: the managed policy only lets it write its own CloudWatch logs.",
            )
            for action in ("s3:GetObject*", "s3:GetBucket*", "s3:List*", "s3:DeleteObject*", "s3:Abort*"):
                acknowledge(
                    handler,
                    f"AwsSolutions-IAM5[Action::{action}]",
                    "CDK's BucketDeployment handler syncs the console build: it reads the CDK asset bucket and writes and prunes "
                    "objects in the console bucket only (aws s3 sync needs these action families).",
                )
            acknowledge(
                handler,
                f"AwsSolutions-IAM5[Resource::{assets_bucket}]",
                "The CDK bootstrap asset bucket holds the zipped console build the handler copies from.",
            )
            acknowledge(
                handler,
                f"AwsSolutions-IAM5[Resource::<{bucket_logical_id}.Arn>/*]",
                "The console bucket's objects: the handler replaces the whole build under console/.",
            )
            acknowledge(
                handler,
                "AwsSolutions-IAM5[Resource::*]",
                "CDK grants cloudfront:CreateInvalidation/GetInvalidation on *; the handler invalidates only the console's "
                "distribution, named in the deployment's properties.",
            )
            acknowledge(
                handler,
                "AwsSolutions-L1",
                "The BucketDeployment handler's runtime is chosen by aws-cdk-lib (it moves with CDK upgrades), not by raas.",
            )

    def _nag(self) -> None:
        acknowledge(
            self.distribution,
            "AwsSolutions-CFR4",
            "The console is served on CloudFront's default *.cloudfront.net certificate, for which CloudFront fixes the "
            "security policy at TLSv1 whatever is asked (ViewerCertificate.MinimumProtocolVersion: "
            "https://docs.aws.amazon.com/cloudfront/latest/APIReference/API_ViewerCertificate.html); browsers negotiate TLS 1.2+.",
        )
        acknowledge(
            self.distribution,
            "AwsSolutions-CFR1",
            "The console is static public code for every tenant's users, wherever they are; the API enforces access.",
        )
        acknowledge(
            self.distribution,
            "AwsSolutions-CFR2",
            "The distribution serves only static files (GET/HEAD); a CloudFront WAF ACL must live in us-east-1 and would "
            "protect nothing the API's own regional WAF does not already.",
        )
