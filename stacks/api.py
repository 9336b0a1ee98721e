"""API: the functions (one per handler group), their layer, the REST API, authorizer, usage plans, WAF."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import cast

from aws_cdk import Aws, CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secrets
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_ssm as ssm
from aws_cdk import aws_wafv2 as waf
from constructs import Construct

from raas.adapters.dynamo_schema import AUDIT, TENANT_TABLES
from raas.domain import catalog
from raas.domain.console_security import CORS_ALLOWED_HEADERS, CORS_EXPOSED_HEADERS, cors_headers
from raas.handlers.api import route_table
from raas.handlers.registry import API_HANDLERS, AUTHORIZER, EVENT_HANDLERS, PUBLIC_ROUTES, load
from raas.security.tenant_policy import handler_tenant_key_statements, tenant_data_policy, tenant_role_trust_policy
from raas.services.ingest import INGEST_BATCH_SIZE
from stacks.console import ConsoleHosting
from stacks.data import DataStack
from stacks.lifecycle import PlatformEvents
from stacks.nag import acknowledge
from stacks.search import SEARCH_USERS, SearchStack
from stacks.settings import DeploymentSettings
from stacks.streaming import STREAMING_ROUTES, StreamingAnswers

ROOT = Path(__file__).resolve().parent.parent
LAMBDA_CODE = ROOT / "lambdas"

# memory (MB) and timeout (s) per function; API functions stay under API Gateway's 29 s
SIZING: dict[str, tuple[int, int]] = {
    "query": (1024, 29),
    "documents": (1024, 29),
    "account": (1024, 29),
    "ingest": (2048, 300),
    "authorizer": (512, 10),
    "lifecycle": (1024, 900),  # a deletion walks every object version and item of the tenant
    "metering": (1024, 900),
    "audit": (256, 30),
    "webhook_delivery": (512, 120),  # a batch of events, each POSTed to a few endpoints (10 s timeout each)
}
DEFAULT_SIZING = (512, 29)

TABLE_READ = ["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:ConditionCheckItem", "dynamodb:DescribeTable"]
TABLE_WRITE = [*TABLE_READ, "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"]
# Handler groups that touch tenant data and may assume the tenant data role.
TENANT_DATA_GROUPS = ("config", "keys", "documents", "query", "ingest", "account")
# Every API function counts its tenant's API calls in the usage table.
USAGE_COUNTING = ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem", "dynamodb:DescribeTable"]

ERROR_TEMPLATE = '{"error": {"code": "%s", "message": "%s", "details": []}}'
# The construct ids the first gateway responses were deployed under. A new id would make CloudFormation create
# the replacement, then delete the old resource, which resets that response type to API Gateway's default.
_GATEWAY_RESPONSE_IDS = {
    "UNAUTHORIZED": "Response401Unauthorized",
    "ACCESS_DENIED": "Response403Errorcode",
    "MISSING_AUTHENTICATION_TOKEN": "Response404Notfound",
    "THROTTLED": "Response429Ratelimited",
    "QUOTA_EXCEEDED": "Response429Quotaexceeded",
    "REQUEST_TOO_LARGE": "Response413Payloadtoolarge",
    "AUTHORIZER_FAILURE": "Response503Authorizerunavailable",
    "INVALID_API_KEY": "Response403Forbidden",
    "BAD_REQUEST_BODY": "Response400Invalidjson",
    "DEFAULT_5XX": "Response502Upstreamerror",
}


def layer_path(architecture: str) -> Path:
    path = ROOT / "layers" / "build" / architecture
    if not (path / "python").is_dir():
        raise SystemExit(
            f"The Lambda dependency layer is not built. Run: .venv/bin/python layers/build.py --arch {architecture}"
            "   (needs the package index once; scripts/dev.sh test does it)"
        )
    return path


def api_routes() -> list[tuple[str, str, str]]:
    """(function group, HTTP method, API Gateway path) for every route the handlers define."""
    routes = []
    for group in API_HANDLERS:
        for route in route_table(load(group).app):
            routes.append((group, route.method, re.sub(r"<(\w+)>", r"{\1}", route.path)))
    return routes


class ApiStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, settings: DeploymentSettings, data: DataStack, search: SearchStack, **kwargs: object
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        self.settings = settings
        self.data = data
        self.search = search
        architecture = lambda_.Architecture.ARM_64 if settings.architecture == "arm64" else lambda_.Architecture.X86_64
        self.layer = lambda_.LayerVersion(
            self,
            "Dependencies",
            code=lambda_.Code.from_asset(str(layer_path(settings.architecture))),
            compatible_runtimes=[lambda_.Runtime.PYTHON_3_12],
            compatible_architectures=[architecture],
            description="raas runtime dependencies (built by layers/build.py)",
        )
        self.code = lambda_.Code.from_asset(str(LAMBDA_CODE), exclude=["**/__pycache__", "**/*.pyc", "*.egg-info"])
        self.llm_keys = secrets.Secret(
            self,
            "ProviderKeys",
            secret_name=settings.prefix("provider-keys"),
            # Secrets Manager's own key: granting the platform key through Secrets Manager would write the
            # API roles into the Data stack's key policy (a cross-stack cycle).
            description='{"openai": "...", "anthropic": "...", "stripe": "sk_...", "stripe_webhook": "whsec_..."}: set after deploy',
        )
        acknowledge(
            self.llm_keys,
            "AwsSolutions-SMG4",
            "Third-party LLM and payment provider keys cannot be rotated by a Lambda; operators rotate them at the provider.",
        )
        self.functions: dict[str, lambda_.Function] = {}
        self.roles: dict[str, iam.Role] = {}
        for group, module in {**API_HANDLERS, **EVENT_HANDLERS, "authorizer": AUTHORIZER}.items():
            self.functions[group] = self._function(group, module, architecture)

        self.tenant_role = self._tenant_data_role()
        self._grant()
        ingest_queue = sqs.Queue.from_queue_arn(
            self, "IngestQueue", f"arn:{Aws.PARTITION}:sqs:{self.region}:{Aws.ACCOUNT_ID}:{settings.ingest_queue_name}"
        )
        self.functions["ingest"].add_event_source(
            sources.SqsEventSource(ingest_queue, batch_size=INGEST_BATCH_SIZE, report_batch_item_failures=True, max_concurrency=10)
        )
        # streamed answers (issue 14): their function and STREAM integration, used by _rest_api
        self.streaming = StreamingAnswers(self, "StreamingAnswers", architecture=architecture)
        # The console (issue 13): its distribution's origin is the only one the API allows CORS for, and it
        # needs the API's URL back; in one stack that is no cycle (stacks/console.py says why).
        self.console = ConsoleHosting(self, "Console", settings=settings)
        for group in API_HANDLERS:
            self.functions[group].add_environment("RAAS_CONSOLE_ORIGIN", self.console.origin)
        self.streaming.function.add_environment("RAAS_CONSOLE_ORIGIN", self.console.origin)  # it answers two API routes
        self.api = self._rest_api()
        self.usage_plans = self._usage_plans()
        self.platform_events = PlatformEvents(
            self, "PlatformEvents", bus_name=settings.bus_name, functions=self.functions, prefix=settings.prefix("events")
        )
        self._waf()
        self._nag()

    # --- functions ------------------------------------------------------------------------------
    def _environment(self) -> dict[str, str]:
        s = self.settings
        env = {
            "RAAS_STAGE": s.stage,
            "RAAS_TENANTS_TABLE": s.table_name("tenants"),
            "RAAS_DOCUMENTS_TABLE": s.table_name("documents"),
            "RAAS_USAGE_TABLE": s.table_name("usage"),
            "RAAS_QUERIES_TABLE": s.table_name("queries"),
            "RAAS_AUDIT_TABLE": s.table_name("audit"),
            "RAAS_OUTBOX_TABLE": s.table_name("outbox"),
            "RAAS_IDEMPOTENCY_TABLE": s.table_name("idempotency"),
            "RAAS_EVENT_BUS_NAME": s.bus_name,
            "RAAS_BILLING": s.billing,
            "RAAS_PAYMENT_GRACE_DAYS": str(s.payment_grace_days),
            "RAAS_DOCUMENTS_BUCKET": s.bucket_name(Aws.ACCOUNT_ID, self.region),
            "RAAS_INGEST_QUEUE_URL": f"https://sqs.{self.region}.{Aws.URL_SUFFIX}/{Aws.ACCOUNT_ID}/{s.ingest_queue_name}",
            "RAAS_USAGE_BUFFER_QUEUE_URL": f"https://sqs.{self.region}.{Aws.URL_SUFFIX}/{Aws.ACCOUNT_ID}/{s.usage_buffer_queue_name}",
            "RAAS_SEARCH_ENGINE": "opensearch",
            "RAAS_OPENSEARCH_ENDPOINT": self.search.endpoint,
            "RAAS_OPENSEARCH_SERVICE": self.search.service,
            "RAAS_EMBEDDER": s.embedder,
            "RAAS_RERANKER": s.reranker,
            "RAAS_OFFLINE_ANSWERS": "false",
            "RAAS_PROVIDER_KEYS_SECRET_ARN": self.llm_keys.secret_arn,
            "POWERTOOLS_SERVICE_NAME": "raas",
            "POWERTOOLS_METRICS_NAMESPACE": "raas",
            "POWERTOOLS_LOG_LEVEL": "INFO",
        }
        if s.bedrock_rerank_model_arn:
            env["RAAS_BEDROCK_RERANK_MODEL_ARN"] = s.bedrock_rerank_model_arn
        if s.jwt_enabled:
            env |= {"RAAS_JWT_ISSUER": s.jwt_issuer, "RAAS_JWT_AUDIENCE": s.jwt_audience, "RAAS_JWT_JWKS_URL": s.jwt_jwks_url}
        return env

    def _function(self, group: str, module: str, architecture: lambda_.Architecture) -> lambda_.Function:
        memory, timeout = SIZING.get(group, DEFAULT_SIZING)
        # Deterministic names: the Observability stack reads these log groups and metrics by name,
        # and the search domain's access policy names these roles (both deploy without exports).
        log_group = logs.LogGroup(
            self,
            f"{group.capitalize()}Logs",
            log_group_name=self.settings.function_log_group_name(group),
            retention=self.settings.log_retention(),
            removal_policy=RemovalPolicy.DESTROY,
        )
        role = iam.Role(
            self,
            f"{group.capitalize()}Role",
            role_name=self.settings.function_role_name(group, self.region),
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        )
        log_group.grant_write(role)
        self.roles[group] = role
        return lambda_.Function(
            self,
            f"{group.capitalize()}Function",
            function_name=self.settings.function_name(group),
            runtime=lambda_.Runtime.PYTHON_3_12,
            architecture=architecture,
            handler=f"{module}.handler",
            code=self.code,
            layers=[self.layer],
            memory_size=memory,
            timeout=Duration.seconds(timeout),
            tracing=lambda_.Tracing.ACTIVE,
            environment=self._environment(),
            log_group=log_group,
            role=role,
        )

    # --- permissions ------------------------------------------------------------------------------
    # Data resources are addressed by their deterministic names (not cross-stack exports), so each
    # grant below is exactly the statement written and every cdk-nag finding is known in advance.
    def _table_arn(self, logical: str) -> str:
        return f"arn:{Aws.PARTITION}:dynamodb:{self.region}:{Aws.ACCOUNT_ID}:table/{self.settings.table_name(logical)}"

    @property
    def _bucket_arn(self) -> str:
        return f"arn:{Aws.PARTITION}:s3:::{self.settings.bucket_name(Aws.ACCOUNT_ID, self.region)}"

    def _nag_bucket(self, suffix: str) -> str:
        return f"arn:<AWS::Partition>:s3:::{self.settings.bucket_name('<AWS::AccountId>', self.region)}/{suffix}"

    def _allow(self, group: str, actions: list[str], resources: list[str], conditions: dict | None = None) -> None:
        self.roles[group].add_to_principal_policy(iam.PolicyStatement(actions=actions, resources=resources, conditions=conditions))

    def _tables(self, group: str, logical: str, actions: list[str], indexes: tuple[str, ...] = ()) -> None:
        table = self._table_arn(logical)
        self._allow(group, actions, [table, *[f"{table}/index/{index}" for index in indexes]])

    def _platform_key(self, role: iam.IRole) -> None:
        """The tables' customer key, named by alias so no key policy in the Data stack changes."""
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
                resources=["*"],
                conditions={"ForAnyValue:StringEquals": {"kms:ResourceAliases": [self.settings.platform_key_alias]}},
            )
        )

    def _tenant_keys(self, group: str) -> None:
        """Per-tenant keys (made at run time by provisioning) only through S3 for objects under tenants/,
        and DescribeKey to resolve a tenant's alias. No statement looks at a key's tag: AWS applies tags
        up to five minutes late (https://docs.aws.amazon.com/kms/latest/developerguide/abac.html), which
        would refuse a new tenant's first upload."""
        keys = f"arn:{Aws.PARTITION}:kms:{self.region}:{Aws.ACCOUNT_ID}:key/*"
        for statement in handler_tenant_key_statements(self._bucket_arn, keys):
            self.roles[group].add_to_principal_policy(iam.PolicyStatement.from_json(statement))

    def _tenant_data_role(self) -> iam.Role:
        """Assumed per request with a tenant_id session tag; IAM fences it to that tenant's data."""
        handler_role_arns = [self.roles[g].role_arn for g in TENANT_DATA_GROUPS]
        role = iam.Role(
            self,
            "TenantDataRole",
            assumed_by=iam.CompositePrincipal(*[iam.ArnPrincipal(arn) for arn in handler_role_arns]),
            max_session_duration=Duration.hours(1),
            description="Tenant-scoped data access; every statement is conditioned on the tenant_id session tag",
        )
        # The deployed trust policy is the unit-tested one (a well-formed tenant_id tag on every
        # AssumeRole/TagSession), not the unconditioned document CDK builds from `assumed_by`.
        cast(iam.CfnRole, role.node.default_child).assume_role_policy_document = tenant_role_trust_policy(handler_role_arns)
        document = tenant_data_policy(
            [self._table_arn(spec.logical_name) for spec in TENANT_TABLES if spec is not AUDIT],
            self._bucket_arn,
            append_only_table_arns=[self._table_arn(AUDIT.logical_name)],
        )
        iam.Policy(self, "TenantDataPolicy", document=iam.PolicyDocument.from_json(document), roles=[role])
        self._platform_key(role)
        for group in TENANT_DATA_GROUPS:
            self._allow(group, ["sts:AssumeRole", "sts:TagSession"], [role.role_arn])
            self.functions[group].add_environment("RAAS_TENANT_ROLE_ARN", role.role_arn)
        return role

    def _grant(self) -> None:
        for group in ("tenants", "keys", "config", "lifecycle", "metering", "billing"):
            self._tables(group, "tenants", TABLE_WRITE, ("tenants_by_created",) if group in ("tenants", "lifecycle", "metering") else ())
        self._tables("authorizer", "tenants", [*TABLE_READ, "dynamodb:UpdateItem"], ("by_key_hash",))
        for group in ("ingest", "query", "documents", "account", "audit"):
            self._tables(group, "tenants", TABLE_READ, ("tenants_by_created",) if group == "account" else ())
        for group in ("documents", "ingest"):
            self._tables(group, "documents", TABLE_WRITE)
            self._allow(group, ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], [f"{self._bucket_arn}/tenants/*"])
            self._tenant_keys(group)
        self._tables("query", "documents", TABLE_READ)
        self._tables("query", "queries", TABLE_WRITE)
        for group in ("query", "ingest", "account", "metering", "billing"):
            self._tables(group, "usage", TABLE_WRITE)
        for group in API_HANDLERS:
            if group not in ("query", "account", "billing"):
                self._tables(group, "usage", USAGE_COUNTING)
        for group in ("query", "ingest", "lifecycle", "metering", "billing", "account"):
            self.llm_keys.grant_read(self.roles[group])  # LLM keys (query, ingest) and Stripe's (billing, metering, lifecycle)
        # the audit log: services append (a condition check on the tenant's profile in the same transaction)
        for group in ("tenants", "keys", "config", "documents", "audit", "account", "lifecycle", "billing", "metering"):
            self._tables(group, "audit", ["dynamodb:PutItem", "dynamodb:Query", "dynamodb:GetItem", "dynamodb:DescribeTable"])
        for group in ("query", "ingest", "account", "metering"):
            self._tables(group, "outbox", ["dynamodb:PutItem", "dynamodb:DescribeTable"])
        self._tables("metering", "outbox", TABLE_WRITE, ("pending",))
        # Event functions run each event once; API functions replay a POST sent again with its Idempotency-Key.
        for group in ("lifecycle", "audit", "query", "documents", "tenants", "account"):
            self._tables(group, "idempotency", TABLE_WRITE)
        for group in ("account", "lifecycle"):
            self._tables(group, "documents", TABLE_READ)
        # The daily run gives back the storage of expired export bundles (their records and the counter).
        self._tables("metering", "documents", TABLE_WRITE)
        self._tables("account", "queries", TABLE_READ)
        # deletion empties the tenant's partition of every tenant table
        for spec in TENANT_TABLES:
            self._tables("lifecycle", spec.logical_name, TABLE_WRITE)
        for group in (
            "authorizer",
            "tenants",
            "keys",
            "config",
            "documents",
            "ingest",
            "query",
            "account",
            "lifecycle",
            "audit",
            "metering",
            "billing",
        ):
            self._platform_key(self.roles[group])
        for group in SEARCH_USERS:
            self.search.grant(self, self.roles[group], f"Search{group.capitalize()}")
        # usage events buffered while the usage table is unavailable, replayed by metering
        buffer_arn = f"arn:{Aws.PARTITION}:sqs:{self.region}:{Aws.ACCOUNT_ID}:{self.settings.usage_buffer_queue_name}"
        for group in [*API_HANDLERS, "ingest", "metering"]:
            self._allow(group, ["sqs:SendMessage"], [buffer_arn])
        self._allow("metering", ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"], [buffer_arn])
        # the platform bus: services announce lifecycle changes and quota thresholds
        bus_arn = f"arn:{Aws.PARTITION}:events:{self.region}:{Aws.ACCOUNT_ID}:event-bus/{self.settings.bus_name}"
        # (and, for tenants' webhooks, keys, config versions, indexed documents and exports: services/notify.py)
        for group in ("tenants", "query", "lifecycle", "metering", "billing", "keys", "config", "ingest", "account", "documents"):
            self._allow(group, ["events:PutEvents"], [bus_arn])
        self._webhooks()
        # export bundles (tenant-initiated, and retained ones before a deletion) and the deletion itself
        self._allow("account", ["s3:GetObject", "s3:PutObject"], [f"{self._bucket_arn}/tenants/*"])
        self._allow(
            "lifecycle",
            ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion"],
            [f"{self._bucket_arn}/tenants/*", f"{self._bucket_arn}/retained/*"],
        )
        self._allow(
            "lifecycle", ["s3:ListBucketVersions", "s3:ListBucket"], [self._bucket_arn], {"StringLike": {"s3:prefix": ["tenants/*"]}}
        )
        for group in ("account", "lifecycle"):
            self._tenant_keys(group)
        # provisioning and crypto-shredding: the tenant's KMS key and alias, its API Gateway key in the tier's plan
        self._allow("lifecycle", ["kms:CreateKey", "kms:TagResource"], ["*"], {"StringLike": {"aws:RequestTag/raas:tenant_id": "t*"}})
        kms_prefix = f"arn:{Aws.PARTITION}:kms:{self.region}:{Aws.ACCOUNT_ID}"
        self._allow("lifecycle", ["kms:CreateAlias", "kms:DescribeKey"], [f"{kms_prefix}:alias/raas/tenant/*", f"{kms_prefix}:key/*"])
        self._allow("lifecycle", ["kms:ScheduleKeyDeletion"], ["*"], {"StringLike": {"aws:ResourceTag/raas:tenant_id": "t*"}})
        apigateway = f"arn:{Aws.PARTITION}:apigateway:{self.region}::"
        self._allow(
            "lifecycle",
            ["apigateway:POST", "apigateway:GET", "apigateway:PATCH", "apigateway:DELETE"],
            [f"{apigateway}/apikeys", f"{apigateway}/apikeys/*", f"{apigateway}/usageplans/*"],
        )
        self._allow("authorizer", ["apigateway:GET"], [f"{apigateway}/apikeys/*"])
        if self.settings.reranker == "bedrock" and self.settings.bedrock_rerank_model_arn:
            self._allow("query", ["bedrock:Rerank", "bedrock:InvokeModel"], [self.settings.bedrock_rerank_model_arn])

    def _webhooks(self) -> None:
        """Tenant webhooks (issue 15): endpoints in the tenants table, delivery logs in the queries table (the
        retry schedule reads the sparse `webhook_due` index across tenants), audit entries, and the signing
        secrets sealed with the tenant's key. KMS Encrypt/Decrypt are allowed on tenant keys only with the
        webhook purpose in the encryption context, which KMS binds to the ciphertext
        (https://docs.aws.amazon.com/kms/latest/developerguide/encrypt_context.html)."""
        keys = f"arn:{Aws.PARTITION}:kms:{self.region}:{Aws.ACCOUNT_ID}:key/*"
        for group in ("webhooks", "webhook_delivery"):
            self._tables(group, "tenants", TABLE_WRITE)
            self._tables(group, "queries", TABLE_WRITE, ("webhook_due",) if group == "webhook_delivery" else ())
            self._tables(group, "audit", ["dynamodb:PutItem", "dynamodb:Query", "dynamodb:GetItem", "dynamodb:DescribeTable"])
            self._platform_key(self.roles[group])
            self._allow(group, ["kms:DescribeKey"], [keys])
            self._allow(
                group,
                ["kms:Encrypt", "kms:Decrypt"],
                [keys],
                {"StringEquals": {"kms:EncryptionContext:raas:purpose": "webhook-signing-secret"}},
            )

    # --- REST API ---------------------------------------------------------------------------------
    def _rest_api(self) -> apigw.RestApi:
        s = self.settings
        access_logs = logs.LogGroup(self, "ApiAccessLogs", retention=logs.RetentionDays.THREE_MONTHS, removal_policy=RemovalPolicy.DESTROY)
        api = apigw.RestApi(
            self,
            "Api",
            rest_api_name=s.api_name,
            description="raas: multi-tenant RAG-as-a-Service",
            api_key_source_type=apigw.ApiKeySourceType.AUTHORIZER,
            # AWS::ApiGateway::Account is a per-account, per-region singleton: a second stack that sets
            # it overwrites the first, and deleting its owner removes the role every API in the region
            # logs with. Opt-in (raas:apiGatewayAccountRole), retained on delete. Stage logging needs
            # that role to exist once per account and region: docs/deploy.md.
            # https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-logging.html
            cloud_watch_role=s.api_gateway_account_role,
            cloud_watch_role_removal_policy=RemovalPolicy.RETAIN if s.api_gateway_account_role else None,
            deploy_options=apigw.StageOptions(
                # the routes carry /v1 themselves: the stage is the deployment stage (…/prod/v1/…)
                stage_name=s.stage,
                tracing_enabled=True,
                metrics_enabled=True,
                logging_level=apigw.MethodLoggingLevel.ERROR,
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=apigw.AccessLogFormat.custom(
                    json.dumps(
                        {
                            "requestId": "$context.requestId",
                            "ip": "$context.identity.sourceIp",
                            "method": "$context.httpMethod",
                            "path": "$context.path",
                            "status": "$context.status",
                            "latencyMs": "$context.responseLatency",
                            "tenantId": "$context.authorizer.tenant_id",
                            "keyId": "$context.authorizer.key_id",
                            "authorizerError": "$context.authorizer.error",
                            "wafAction": "$context.waf.status",
                        }
                    )
                ),
            ),
            # Preflights for the console's origin alone: an OPTIONS method with a mock integration on every
            # resource, without the authorizer (a preflight carries no Authorization header) and without an
            # API key: https://docs.aws.amazon.com/apigateway/latest/developerguide/how-to-cors.html
            default_cors_preflight_options=apigw.CorsOptions(
                allow_origins=[self.console.origin],
                allow_methods=apigw.Cors.ALL_METHODS,
                allow_headers=list(CORS_ALLOWED_HEADERS),
                expose_headers=list(CORS_EXPOSED_HEADERS),
                max_age=Duration.hours(1),
            ),
        )
        authorizer = apigw.RequestAuthorizer(
            self,
            "TenantAuthorizer",
            handler=self.functions["authorizer"],
            identity_sources=[apigw.IdentitySource.header("Authorization")],
            results_cache_ttl=Duration.seconds(s.authorizer_cache_seconds),
        )
        validator = api.add_request_validator("BodyValidator", validate_request_body=True, validate_request_parameters=True)
        integrations = {group: apigw.LambdaIntegration(fn, proxy=True) for group, fn in self.functions.items() if group in API_HANDLERS}
        self.routes = api_routes()
        for group, method, path in self.routes:
            resource = api.root.resource_for_path(path.lstrip("/"))
            public = (method, re.sub(r"\{(\w+)\}", r"<\1>", path)) in PUBLIC_ROUTES
            resource.add_method(
                method,
                self.streaming.integration if (method, path) in STREAMING_ROUTES else integrations[group],
                authorizer=None if public else authorizer,
                authorization_type=apigw.AuthorizationType.NONE if public else apigw.AuthorizationType.CUSTOM,
                api_key_required=not public,
                request_validator=validator,
            )
        self._gateway_responses(api)
        self._public_url(api)
        return api

    def _public_url(self, api: apigw.RestApi) -> None:
        """The URL clients use: the custom domain (its root mapped to the stage) or the stage's URL."""
        s = self.settings
        if s.domain_name:
            # Regional custom domain: its ACM certificate must be in the API's region. The empty base
            # path maps the domain's root to the stage, so https://<domain>/v1/... reaches /v1/... .
            # https://docs.aws.amazon.com/apigateway/latest/developerguide/how-to-custom-domains.html
            domain = api.add_domain_name(
                "CustomDomain",
                domain_name=s.domain_name,
                certificate=acm.Certificate.from_certificate_arn(self, "CustomDomainCertificate", s.certificate_arn),
                endpoint_type=apigw.EndpointType.REGIONAL,
                security_policy=apigw.SecurityPolicy.TLS_1_2,
            )
            CfnOutput(
                self,
                "CustomDomainTarget",
                value=domain.domain_name_alias_domain_name,
                description=f"point {s.domain_name} here (DNS alias or CNAME)",
            )
            url = f"https://{s.domain_name}"
        else:
            url = f"https://{api.rest_api_id}.execute-api.{self.region}.{Aws.URL_SUFFIX}/{s.stage}"
        # as locally (http://127.0.0.1:8080): every route is $URL/v1/...
        CfnOutput(self, "ApiUrl", value=url, description="raas API URL; routes are under $URL/v1/")
        # the console's config.json names this URL, its CSP this origin (the URL without the stage's path)
        origin = f"https://{s.domain_name}" if s.domain_name else f"https://{api.rest_api_id}.execute-api.{self.region}.{Aws.URL_SUFFIX}"
        self.console.serve_api(api_origin=origin, api_url=url)

    def _gateway_responses(self, api: apigw.RestApi) -> None:
        """API Gateway's own refusals in the same JSON shape and codes as the handlers', for every response type
        (https://docs.aws.amazon.com/apigateway/latest/developerguide/supported-gateway-response-types.html).

        These templates are plain variable substitution, not VTL: nothing escapes a value
        (https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-swagger-extensions-gateway-responses.responseTemplates.html).
        So a message is our own fixed sentence or our authorizer's context (identifiers and fixed sentences),
        never a value a request or AWS can put a quote into (`$context.path`, `$context.error.message`,
        `$context.error.validationErrorString`): inside the template's quotes it would break the JSON.
        """
        # CORS on the gateway's own refusals too (401, 429, ...), or the console could not read them: the console's
        # origin only, as static values (quoted), as on the functions' responses (raas.handlers.api.with_cors)
        cors = {name: f"'{value}'" for name, value in cors_headers(self.console.origin).items()}
        responses: list[tuple[apigw.ResponseType, str | None, str, str]] = [
            (apigw.ResponseType.UNAUTHORIZED, "401", "unauthorized", "missing, invalid or revoked credentials"),
            (apigw.ResponseType.EXPIRED_TOKEN, "401", "unauthorized", "the credentials have expired"),
            (apigw.ResponseType.INVALID_SIGNATURE, "401", "unauthorized", "the request signature is not valid"),
            (apigw.ResponseType.ACCESS_DENIED, "403", "$context.authorizer.error_code", "$context.authorizer.error_message"),
            (apigw.ResponseType.INVALID_API_KEY, "403", "forbidden", "this tenant has no active usage plan key"),
            (apigw.ResponseType.WAF_FILTERED, "403", "request_blocked", "the request was blocked by the web application firewall"),
            (apigw.ResponseType.MISSING_AUTHENTICATION_TOKEN, "404", "not_found", "no route for this method and path"),
            (apigw.ResponseType.RESOURCE_NOT_FOUND, "404", "not_found", "no route for this method and path"),
            (apigw.ResponseType.BAD_REQUEST_BODY, "400", "invalid_json", "the request body is not valid for this route"),
            (apigw.ResponseType.BAD_REQUEST_PARAMETERS, "400", "invalid_request", "the request parameters are not valid for this route"),
            (apigw.ResponseType.REQUEST_TOO_LARGE, "413", "payload_too_large", "request body exceeds 10 MiB"),
            (apigw.ResponseType.UNSUPPORTED_MEDIA_TYPE, "415", "unsupported_media_type", "send the body as application/json"),
            (apigw.ResponseType.THROTTLED, "429", "rate_limited", "too many requests for your tier; retry with backoff"),
            (apigw.ResponseType.QUOTA_EXCEEDED, "429", "quota_exceeded", "your tier's request quota is used up"),
            (apigw.ResponseType.AUTHORIZER_FAILURE, "503", "authorizer_unavailable", "the authorizer failed; try again"),
            (apigw.ResponseType.AUTHORIZER_CONFIGURATION_ERROR, "503", "authorizer_unavailable", "the authorizer failed; try again"),
            (apigw.ResponseType.INTEGRATION_FAILURE, "502", "upstream_error", "the service failed to answer; try again"),
            (apigw.ResponseType.INTEGRATION_TIMEOUT, "504", "upstream_timeout", "the request took too long; try again"),
            (apigw.ResponseType.API_CONFIGURATION_ERROR, "500", "internal_error", "the API is misconfigured; try again later"),
            # The fallbacks set no status: a status on DEFAULT_4XX/5XX would replace every other 4XX/5XX one's.
            (apigw.ResponseType.DEFAULT_4_XX, None, "request_refused", "the request was refused"),
            (apigw.ResponseType.DEFAULT_5_XX, None, "internal_error", "the service failed; try again"),
        ]
        for response_type, status, code, message in responses:
            api.add_gateway_response(
                _GATEWAY_RESPONSE_IDS.get(response_type.response_type, f"Response{response_type.response_type.title().replace('_', '')}"),
                type=response_type,
                status_code=status,
                response_headers=cors,
                templates={"application/json": ERROR_TEMPLATE % (code, message)},
            )

    def _usage_plans(self) -> dict[str, apigw.UsagePlan]:
        """One usage plan per tier (throttle from tiers.json); tenant keys are added at provisioning."""
        plans = {}
        for tier, limits in catalog.tiers().items():
            plans[tier.value] = self.api.add_usage_plan(
                f"{tier.value.capitalize()}Plan",
                name=self.settings.prefix(f"{tier.value}-plan"),
                throttle=apigw.ThrottleSettings(rate_limit=limits.rate_limit_rps, burst_limit=limits.burst),
                api_stages=[apigw.UsagePlanPerApiStage(api=self.api, stage=self.api.deployment_stage)],
            )
        plans["operator"] = self.api.add_usage_plan(
            "OperatorPlan",
            name=self.settings.prefix("operator-plan"),
            throttle=apigw.ThrottleSettings(rate_limit=20, burst_limit=40),
            api_stages=[apigw.UsagePlanPerApiStage(api=self.api, stage=self.api.deployment_stage)],
        )
        # Standalone (not bound to the stage), so the authorizer can know its id without a cycle.
        operator_key = apigw.ApiKey(self, "OperatorUsageKey", api_key_name=self.settings.prefix("operator"), enabled=True)
        plans["operator"].add_api_key(operator_key)
        # Plan ids reach provisioning through a parameter with a fixed name: an environment variable
        # would make the function depend on the plans, which depend on the stage, on the deployment,
        # on the methods, and so on the function again.
        parameter_name = f"/raas/{self.settings.stage}/usage-plans"
        ssm.StringParameter(
            self,
            "UsagePlanIds",
            parameter_name=parameter_name,
            string_value=json.dumps({name: plan.usage_plan_id for name, plan in plans.items()}),
            description="usage plan id per tier, read by tenant provisioning",
        )
        self.functions["lifecycle"].add_environment("RAAS_USAGE_PLANS_PARAMETER", parameter_name)
        self._allow(
            "lifecycle", ["ssm:GetParameter"], [f"arn:{Aws.PARTITION}:ssm:{self.region}:{Aws.ACCOUNT_ID}:parameter{parameter_name}"]
        )
        self.functions["authorizer"].add_environment("RAAS_OPERATOR_USAGE_KEY_ID", operator_key.key_id)
        return plans

    def _waf(self) -> None:
        acl = waf.CfnWebACL(
            self,
            "WebAcl",
            scope="REGIONAL",
            default_action=waf.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=waf.CfnWebACL.VisibilityConfigProperty(
                cloud_watch_metrics_enabled=True, metric_name="raas-waf", sampled_requests_enabled=True
            ),
            rules=[
                waf.CfnWebACL.RuleProperty(
                    name="RatePerIp",
                    priority=0,
                    action=waf.CfnWebACL.RuleActionProperty(block={}),
                    statement=waf.CfnWebACL.StatementProperty(
                        rate_based_statement=waf.CfnWebACL.RateBasedStatementProperty(
                            limit=self.settings.waf_rate_limit_per_5min, aggregate_key_type="IP"
                        )
                    ),
                    visibility_config=waf.CfnWebACL.VisibilityConfigProperty(
                        cloud_watch_metrics_enabled=True, metric_name="raas-rate", sampled_requests_enabled=True
                    ),
                ),
                waf.CfnWebACL.RuleProperty(
                    name="AwsCommonRules",
                    priority=1,
                    override_action=waf.CfnWebACL.OverrideActionProperty(none={}),
                    statement=waf.CfnWebACL.StatementProperty(
                        managed_rule_group_statement=waf.CfnWebACL.ManagedRuleGroupStatementProperty(
                            vendor_name="AWS",
                            name="AWSManagedRulesCommonRuleSet",
                            # document uploads go in JSON bodies up to 10 MiB
                            excluded_rules=[waf.CfnWebACL.ExcludedRuleProperty(name="SizeRestrictions_BODY")],
                        )
                    ),
                    visibility_config=waf.CfnWebACL.VisibilityConfigProperty(
                        cloud_watch_metrics_enabled=True, metric_name="raas-common", sampled_requests_enabled=True
                    ),
                ),
            ],
        )
        waf.CfnWebACLAssociation(self, "WebAclAssociation", resource_arn=self.api.deployment_stage.stage_arn, web_acl_arn=acl.attr_arn)

    def _nag(self) -> None:
        acknowledge(self, "AwsSolutions-L1", "Python 3.12 is the runtime the user chose for raas; newer runtimes are not yet validated.")
        if self.settings.api_gateway_account_role:
            acknowledge(
                self,
                "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]",
                "API Gateway's account-level CloudWatch role uses the documented managed policy for pushing logs.",
            )
        acknowledge(
            self,
            "AwsSolutions-IAM5[Resource::*]",
            "Resource-* statements are X-Ray's (no resource-level permissions) and KMS statements conditioned on the platform key's "
            "alias or on the raas:tenant_id resource/request tag, so they reach only raas keys.",
        )
        acknowledge(
            self,
            f"AwsSolutions-IAM5[Resource::{self._nag_bucket('tenants/*')}]",
            "Document functions work on any tenant's objects under tenants/; per-tenant fencing is the tenant data role's job.",
        )
        acknowledge(
            self,
            f"AwsSolutions-IAM5[Resource::{self._nag_bucket('retained/*')}]",
            "Deletion exports go under retained/<tenant_id>/; the tenant id is known only at run time.",
        )
        acknowledge(
            self,
            f"AwsSolutions-IAM5[Resource::{self._nag_bucket('tenants/<aws:PrincipalTag/tenant_id>/*')}]",
            "The tenant data role reaches only the caller's own prefix: the wildcard is the object key below tenants/<tenant_id>/.",
        )
        for resource, reason in (
            (
                f"arn:<AWS::Partition>:kms:{self.region}:<AWS::AccountId>:alias/raas/tenant/*",
                "Provisioning creates one alias per tenant under alias/raas/tenant/.",
            ),
            (
                f"arn:<AWS::Partition>:kms:{self.region}:<AWS::AccountId>:key/*",
                "Tenant keys are made at run time: CreateAlias names the new key; document functions use any tenant key"
                " only via S3 for objects under tenants/ (an encryption-context condition).",
            ),
            (
                f"arn:<AWS::Partition>:apigateway:{self.region}::/apikeys/*",
                "Provisioning manages one API Gateway key per tenant; ids are known only at run time.",
            ),
            (
                f"arn:<AWS::Partition>:apigateway:{self.region}::/usageplans/*",
                "Tenant keys are attached to their tier's usage plan; plan ids come from this stack.",
            ),
        ):
            acknowledge(self, f"AwsSolutions-IAM5[Resource::{resource}]", reason)
        acknowledge(
            self,
            "AwsSolutions-APIG4",
            "Every route has the tenant REQUEST authorizer except /v1/health, /v1/openapi.json and CORS preflights, public by design.",
        )
        acknowledge(
            self, "AwsSolutions-COG4", "Tenants authenticate with raas API keys or their IdP's JWTs via a custom REQUEST authorizer."
        )
