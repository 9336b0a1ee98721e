"""Data: the platform key, DynamoDB tables, the document bucket (+ access logs), the ingest queue."""

from __future__ import annotations

from aws_cdk import Aws, Duration, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from raas.adapters.dynamo_schema import ALL_TABLES, TableSpec
from raas.adapters.objects import UPLOAD_CORS_RULES
from raas.domain.documents import SOURCE_OBJECT_SUFFIX
from raas.domain.export_retention import EXPORT_RETENTION_DAYS, EXPORT_TAG_KEY, EXPORT_TAG_VALUE, NONCURRENT_EXPORT_DAYS
from stacks.nag import acknowledge
from stacks.queues import dead_letter_queue
from stacks.settings import DeploymentSettings

INGEST_VISIBILITY = Duration.minutes(30)  # six times the ingest function's 5-minute timeout


def _attribute(name: str) -> dynamodb.Attribute:
    return dynamodb.Attribute(name=name, type=dynamodb.AttributeType.STRING)


class DataStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, settings: DeploymentSettings, **kwargs: object) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        self.settings = settings
        removal = RemovalPolicy.RETAIN if settings.removal_policy == "retain" else RemovalPolicy.DESTROY

        self.key = kms.Key(self, "PlatformKey", alias=settings.platform_key_alias, enable_key_rotation=True, removal_policy=removal)

        self.tables: dict[str, dynamodb.TableV2] = {spec.logical_name: self._table(spec, removal) for spec in ALL_TABLES}

        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,  # server access logging cannot write to SSE-KMS buckets
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(365), noncurrent_version_expiration=Duration.days(30))],
            removal_policy=removal,
            auto_delete_objects=removal == RemovalPolicy.DESTROY,
        )
        acknowledge(self.access_logs, "AwsSolutions-S1", "This is the access-log bucket itself; logging it into itself would loop.")

        self.documents = s3.Bucket(
            self,
            "Documents",
            bucket_name=settings.bucket_name(Aws.ACCOUNT_ID, self.region),
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.key,  # default only: every tenant object is written with its tenant's own key
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="documents/",
            lifecycle_rules=[
                s3.LifecycleRule(abort_incomplete_multipart_upload_after=Duration.days(1)),
                s3.LifecycleRule(noncurrent_version_expiration=Duration.days(30)),
                # deletion exports, under retained/
                s3.LifecycleRule(prefix="retained/", expiration=Duration.days(90)),
                # Tenants' export bundles (tenants/<id>/exports/). A lifecycle filter is a literal prefix, a size or
                # tags, never a pattern, so the bundles are tagged when written (raas.adapters.exports) and the rule
                # filters on the tag. Expiration puts a delete marker on the current version (the bucket is
                # versioned); NoncurrentVersionExpiration then removes that version for good.
                # https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-lifecycle-mgmt.html
                # https://docs.aws.amazon.com/AmazonS3/latest/userguide/intro-lifecycle-rules.html
                # https://docs.aws.amazon.com/AmazonS3/latest/userguide/lifecycle-expire-general-considerations.html
                s3.LifecycleRule(
                    id="expire-tenant-exports",
                    tag_filters={EXPORT_TAG_KEY: EXPORT_TAG_VALUE},
                    expiration=Duration.days(EXPORT_RETENTION_DAYS),
                    noncurrent_version_expiration=Duration.days(NONCURRENT_EXPORT_DAYS),
                ),
            ],
            # presigned URLs carry their own authorisation; raas local puts the same rules on its bucket
            cors=[
                s3.CorsRule(
                    allowed_methods=[s3.HttpMethods(method) for method in rule["AllowedMethods"]],
                    allowed_origins=rule["AllowedOrigins"],
                    allowed_headers=rule["AllowedHeaders"],
                    max_age=rule["MaxAgeSeconds"],
                )
                for rule in UPLOAD_CORS_RULES
            ],
            removal_policy=removal,
            auto_delete_objects=removal == RemovalPolicy.DESTROY,
        )

        # named, so the Observability stack watches it by name rather than through an export
        self.ingest_dlq = dead_letter_queue(
            self, "IngestDeadLetters", "the ingest queue", queue_name=settings.ingest_dead_letter_queue_name
        )
        self.ingest_queue = sqs.Queue(
            self,
            "IngestQueue",
            queue_name=settings.ingest_queue_name,
            # SSE-SQS: S3 event notifications cannot publish to a queue encrypted with a customer key
            # unless the key policy trusts S3; SQS-managed keys keep the path simple and encrypted.
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=INGEST_VISIBILITY,
            dead_letter_queue=sqs.DeadLetterQueue(max_receive_count=5, queue=self.ingest_dlq),
        )
        self.documents.add_event_notification(
            s3.EventType.OBJECT_CREATED,
            s3n.SqsDestination(self.ingest_queue),
            s3.NotificationKeyFilter(prefix="tenants/", suffix=SOURCE_OBJECT_SUFFIX),
        )

        # Usage events wait here while the usage table is unavailable; the metering function replays them.
        self.usage_buffer_dlq = dead_letter_queue(self, "UsageBufferDeadLetters", "the usage buffer")
        self.usage_buffer = sqs.Queue(
            self,
            "UsageBuffer",
            queue_name=settings.usage_buffer_queue_name,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
            visibility_timeout=Duration.minutes(16),  # longer than the metering function's timeout
            dead_letter_queue=sqs.DeadLetterQueue(max_receive_count=50, queue=self.usage_buffer_dlq),
        )

        self.bus = events.EventBus(self, "PlatformBus", event_bus_name=settings.bus_name)
        self.bus.archive(
            "PlatformArchive", event_pattern=events.EventPattern(source=events.Match.prefix("raas")), retention=Duration.days(365)
        )

        acknowledge(
            self,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
            "CDK's deployment-time helper functions (bucket notifications, auto-delete) log with the basic execution role.",
        )
        acknowledge(
            self,
            "AwsSolutions-IAM5[Resource::*]",
            "CDK's bucket-notification helper calls s3:PutBucketNotification, which has no resource-level scoping.",
        )
        acknowledge(self, "AwsSolutions-L1", "CDK's own deployment-time helper functions pin their runtime; they never serve traffic.")

    def _table(self, spec: TableSpec, removal: RemovalPolicy) -> dynamodb.TableV2:
        return dynamodb.TableV2(
            self,
            f"{spec.logical_name.capitalize()}Table",
            table_name=self.settings.table_name(spec.logical_name),
            partition_key=_attribute(spec.partition_key),
            sort_key=_attribute(spec.sort_key) if spec.sort_key else None,
            billing=dynamodb.Billing.on_demand(),
            encryption=dynamodb.TableEncryptionV2.customer_managed_key(self.key),
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(point_in_time_recovery_enabled=True),
            time_to_live_attribute=spec.ttl_attribute,
            deletion_protection=removal == RemovalPolicy.RETAIN,
            removal_policy=removal,
            global_secondary_indexes=[
                dynamodb.GlobalSecondaryIndexPropsV2(
                    index_name=index.name,
                    partition_key=_attribute(index.partition_key),
                    sort_key=_attribute(index.sort_key) if index.sort_key else None,
                )
                for index in spec.indexes
            ],
        )
