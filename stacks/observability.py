"""Observability: a dashboard, a per-tenant Logs Insights query, and alarms to an SNS topic."""

from __future__ import annotations

from aws_cdk import Aws, Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from raas.handlers.registry import API_HANDLERS, EVENT_HANDLERS, SCHEDULES, routes_by_function
from stacks.settings import DeploymentSettings
from stacks.streaming import GROUP as STREAM_GROUP

FIVE_MINUTES = Duration.minutes(5)


def monitored_functions() -> list[str]:
    """Every function group the API stack deploys (`ApiStack.functions`, and the streaming function)."""
    return [*API_HANDLERS, *EVENT_HANDLERS, "authorizer", STREAM_GROUP]


def event_functions() -> list[str]:
    """Functions behind EventBridge rules or schedules; each has its own dead-letter queue."""
    return sorted(set(routes_by_function()) | {function for function, _, _ in SCHEDULES.values()})


class ObservabilityStack(Stack):
    """Watches the other stacks by the deterministic names in `DeploymentSettings`, never through
    cross-stack references: a CloudFormation export cannot change while another stack imports it,
    so importing log groups from the API stack would pin every function (renaming or removing one
    would need a two-step deploy). https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-stack-exports.html
    """

    def __init__(self, scope: Construct, construct_id: str, *, settings: DeploymentSettings, **kwargs: object) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        self.settings = settings
        self.alarms_key = self._alarms_key()
        self.topic = sns.Topic(self, "Alarms", topic_name=settings.prefix("alarms"), master_key=self.alarms_key, enforce_ssl=True)
        # enforce_ssl writes a topic policy, which replaces SNS's default one (the account-wide allow):
        # CloudWatch's service principal then needs its own allow, for this account's alarms only, or
        # the alarm history says "is not authorized to perform: SNS:Publish".
        # https://repost.aws/knowledge-center/cloudwatch-receive-sns-for-alarm-trigger
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions=self._this_accounts_alarms(),
            )
        )
        if settings.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(settings.alarm_email))
        five_xx = self._api_metric("5XXError", "Sum")
        count = self._api_metric("Count", "Sum")
        error_rate = cloudwatch.MathExpression(
            expression="100 * errors / MAX([requests, 1])", using_metrics={"errors": five_xx, "requests": count}, label="5xx %"
        )
        p99 = self._api_metric("Latency", "p99")
        throttles = self._api_metric("4XXError", "Sum")
        namespace = "raas"
        tokens = cloudwatch.Metric(
            namespace=namespace, metric_name="LLMTokens", dimensions_map={"service": "raas"}, statistic="Sum", period=FIVE_MINUTES
        )
        cost = cloudwatch.Metric(
            namespace=namespace,
            metric_name="LLMCostMicroUSD",
            dimensions_map={"service": "raas"},
            statistic="Sum",
            period=FIVE_MINUTES,
        )
        authorizer_errors = cloudwatch.Metric(
            namespace="AWS/Lambda",
            metric_name="Errors",
            dimensions_map={"FunctionName": settings.function_name("authorizer")},
            statistic="Sum",
            period=FIVE_MINUTES,
        )
        dlq_depth = self._queue_depth(settings.ingest_dead_letter_queue_name)

        above = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD
        specs: dict[str, tuple[cloudwatch.IMetric, int, int, str]] = {
            "ApiErrorRate": (error_rate, 1, 3, "5xx above 1 % of requests"),
            "ApiLatencyP99": (p99, 10_000, 3, "p99 latency above 10 s"),
            "IngestDeadLetters": (dlq_depth, 0, 1, "a document failed ingestion 5 times and waits in the dead-letter queue"),
            "AuthorizerErrors": (authorizer_errors, 5, 2, "the authorizer is failing, so every request is refused"),
        }
        # Each event function's dead letters (failed lifecycle, audit or metering runs) need a human.
        for function in event_functions():
            depth = self._queue_depth(settings.event_dead_letter_queue_name(function))
            specs[f"{function.capitalize()}DeadLetters"] = (depth, 0, 1, f"a {function} event failed all its retries and waits in its DLQ")
        self.alarms = {
            name: cloudwatch.Alarm(
                self,
                name,
                metric=metric,
                threshold=threshold,
                evaluation_periods=periods,
                comparison_operator=above,
                alarm_description=text,
            )
            for name, (metric, threshold, periods, text) in specs.items()
        }
        for alarm in self.alarms.values():
            alarm.add_alarm_action(actions.SnsAction(self.topic))

        log_group_names = [settings.function_log_group_name(group) for group in monitored_functions()]
        self.top_tenants = logs.QueryDefinition(
            self,
            "TopTenants",
            query_definition_name=settings.prefix("top-tenants"),
            query_string=logs.QueryString(
                fields=["tenant_id", "function_name"],
                filter_statements=["ispresent(tenant_id) and tenant_id != '-'"],
                stats_statements=["count(*) as requests by tenant_id"],
                sort="requests desc",
                limit=20,
            ),
            log_groups=[
                logs.LogGroup.from_log_group_name(self, f"{group.capitalize()}LogGroup", settings.function_log_group_name(group))
                for group in monitored_functions()
            ],
        )
        dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=settings.prefix("overview"))
        dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Requests and 5xx", left=[count, five_xx], right=[error_rate], width=12),
            cloudwatch.GraphWidget(title="Latency p99 (ms)", left=[p99], width=12),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(title="4xx (incl. throttles)", left=[throttles], width=8),
            cloudwatch.GraphWidget(title="LLM tokens", left=[tokens], width=8),
            cloudwatch.GraphWidget(title="LLM cost (micro-USD)", left=[cost], width=8),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Ingest dead letters", left=[dlq_depth], width=8),
            cloudwatch.GraphWidget(title="Authorizer errors", left=[authorizer_errors], width=8),
            cloudwatch.LogQueryWidget(
                title="Top tenants by requests",
                log_group_names=log_group_names,
                query_lines=[
                    "fields tenant_id",
                    "filter ispresent(tenant_id) and tenant_id != '-'",
                    "stats count(*) as requests by tenant_id",
                    "sort requests desc",
                    "limit 10",
                ],
                width=8,
            ),
        )

    def _api_metric(self, metric_name: str, statistic: str) -> cloudwatch.Metric:
        """A REST API metric over all its stages, by API name (what RestApi.metric_* would build)."""
        return cloudwatch.Metric(
            namespace="AWS/ApiGateway",
            metric_name=metric_name,
            dimensions_map={"ApiName": self.settings.api_name},
            statistic=statistic,
            period=FIVE_MINUTES,
        )

    def _queue_depth(self, queue_name: str) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace="AWS/SQS",
            metric_name="ApproximateNumberOfMessagesVisible",
            dimensions_map={"QueueName": queue_name},
            statistic="Maximum",
            period=FIVE_MINUTES,
        )

    def _alarms_key(self) -> kms.Key:
        """A key of its own for the alarm topic, which CloudWatch may use for this account's alarms only.

        CloudWatch publishes an alarm to an encrypted topic with its service principal, so the key
        policy must let cloudwatch.amazonaws.com call kms:Decrypt and kms:GenerateDataKey*; without
        it the notification is dropped. A dedicated key keeps that grant off the platform key that
        protects tenant data (least privilege). The conditions limit it to alarms of this account
        and region (confused-deputy protection).
        https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html#compatibility-with-aws-services
        https://repost.aws/knowledge-center/cloudwatch-receive-sns-for-alarm-trigger
        """
        key = kms.Key(
            self,
            "AlarmsKey",
            alias=self.settings.alarms_key_alias,
            description="raas alarm topic: CloudWatch alarms of this account publish with it",
            enable_key_rotation=True,
            # it protects only alarm messages in flight; nothing is lost when it goes with the stack
            removal_policy=RemovalPolicy.DESTROY,
        )
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions=self._this_accounts_alarms(),
            )
        )
        return key

    def _this_accounts_alarms(self) -> dict[str, dict[str, str]]:
        """Confused-deputy guard: the CloudWatch service acting for an alarm of this account and region."""
        return {
            "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
            "ArnLike": {"aws:SourceArn": f"arn:{Aws.PARTITION}:cloudwatch:{self.region}:{Aws.ACCOUNT_ID}:alarm:*"},
        }
