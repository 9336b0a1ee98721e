"""Observability: a dashboard, a per-tenant Logs Insights query, and alarms to an SNS topic."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from stacks.api import ApiStack
from stacks.data import DataStack
from stacks.settings import DeploymentSettings


class ObservabilityStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, settings: DeploymentSettings, data: DataStack, api: ApiStack, **kwargs: object
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        self.topic = sns.Topic(self, "Alarms", topic_name=settings.prefix("alarms"), master_key=data.key, enforce_ssl=True)
        if settings.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(settings.alarm_email))
        rest = api.api
        five_xx = rest.metric_server_error(period=Duration.minutes(5), statistic="Sum")
        count = rest.metric_count(period=Duration.minutes(5), statistic="Sum")
        error_rate = cloudwatch.MathExpression(
            expression="100 * errors / MAX([requests, 1])", using_metrics={"errors": five_xx, "requests": count}, label="5xx %"
        )
        p99 = rest.metric_latency(period=Duration.minutes(5), statistic="p99")
        throttles = rest.metric_client_error(period=Duration.minutes(5), statistic="Sum")
        namespace = "raas"
        tokens = cloudwatch.Metric(
            namespace=namespace, metric_name="LLMTokens", dimensions_map={"service": "raas"}, statistic="Sum", period=Duration.minutes(5)
        )
        cost = cloudwatch.Metric(
            namespace=namespace,
            metric_name="LLMCostMicroUSD",
            dimensions_map={"service": "raas"},
            statistic="Sum",
            period=Duration.minutes(5),
        )
        authorizer_errors = api.functions["authorizer"].metric_errors(period=Duration.minutes(5), statistic="Sum")
        dlq_depth = data.ingest_dlq.metric_approximate_number_of_messages_visible(period=Duration.minutes(5), statistic="Maximum")

        above = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD
        specs: dict[str, tuple[cloudwatch.IMetric, int, int, str]] = {
            "ApiErrorRate": (error_rate, 1, 3, "5xx above 1 % of requests"),
            "ApiLatencyP99": (p99, 10_000, 3, "p99 latency above 10 s"),
            "IngestDeadLetters": (dlq_depth, 0, 1, "a document failed ingestion 5 times and waits in the dead-letter queue"),
            "AuthorizerErrors": (authorizer_errors, 5, 2, "the authorizer is failing, so every request is refused"),
        }
        # Each event function's dead letters (failed lifecycle, audit or metering runs) need a human.
        for function, queue in sorted(api.platform_events.dead_letters.items()):
            depth = queue.metric_approximate_number_of_messages_visible(period=Duration.minutes(5), statistic="Maximum")
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

        log_groups = [fn.log_group for fn in api.functions.values()]
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
            log_groups=log_groups,
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
                log_group_names=[g.log_group_name for g in log_groups],
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
