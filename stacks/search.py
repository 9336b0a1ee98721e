"""Search: an OpenSearch Serverless vector collection (default) or a managed OpenSearch domain."""

from __future__ import annotations

import json
from typing import cast

from aws_cdk import Aws, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_opensearchserverless as aoss
from aws_cdk import aws_opensearchservice as opensearch
from constructs import Construct

from stacks.nag import acknowledge
from stacks.settings import DeploymentSettings

# The function groups that call the search engine (the API stack grants them; the domain admits them).
SEARCH_USERS = ("documents", "query", "ingest", "lifecycle")
HTTP_ACTIONS = ["es:ESHttpGet", "es:ESHttpHead", "es:ESHttpPost", "es:ESHttpPut", "es:ESHttpDelete"]


class DomainSize:
    """Managed-domain capacity per profile (docs/deploy.md prices both)."""

    def __init__(self, profile: str) -> None:
        self.starter = profile == "starter"
        if self.starter:
            # One burstable node, the cheapest current-generation type (t3.small.search). Its minimum
            # EBS volume is 10 GiB and it takes gp3; its HTTP payload limit is 10 MiB (bulk bodies must
            # stay under it); AWS does not recommend it for production (docs/deploy.md says what the
            # starter gives up). Encryption at rest and node-to-node encryption are restricted only on
            # previous-generation types; k-NN (faiss) ships with every OpenSearch version.
            # https://docs.aws.amazon.com/opensearch-service/latest/developerguide/supported-instance-types.html
            # https://docs.aws.amazon.com/opensearch-service/latest/developerguide/limits.html#ebsresource
            # https://docs.aws.amazon.com/opensearch-service/latest/developerguide/limits.html#network-limits
            self.capacity = opensearch.CapacityConfig(
                data_nodes=1, data_node_instance_type="t3.small.search", multi_az_with_standby_enabled=False
            )
            self.zone_awareness = opensearch.ZoneAwarenessConfig(enabled=False)
            self.volume_gib = 10
        else:
            self.capacity = opensearch.CapacityConfig(
                data_nodes=2,
                data_node_instance_type="r7g.large.search",
                master_nodes=3,
                master_node_instance_type="m7g.large.search",
                multi_az_with_standby_enabled=False,
            )
            self.zone_awareness = opensearch.ZoneAwarenessConfig(enabled=True, availability_zone_count=2)
            self.volume_gib = 100


class SearchStack(Stack):
    """Exposes `endpoint`, the SigV4 `service` name, and `grant(role)` for the API stack."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: DeploymentSettings, key: kms.IKey, **kwargs: object) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        self.settings = settings
        self.collection: aoss.CfnCollection | None = None
        self.domain: opensearch.Domain | None = None
        if settings.search_engine == "serverless":
            self._serverless(key)
        else:
            self._domain(key)

    # --- OpenSearch Serverless -------------------------------------------------------------------
    def _serverless(self, key: kms.IKey) -> None:
        name = self.settings.prefix("docs")[:32]
        self.collection_name = name
        encryption = aoss.CfnSecurityPolicy(
            self,
            "CollectionEncryption",
            name=f"{name}-enc"[:32],
            type="encryption",
            policy=json.dumps({"Rules": [{"ResourceType": "collection", "Resource": [f"collection/{name}"]}], "KmsARN": key.key_arn}),
        )
        network = aoss.CfnSecurityPolicy(
            self,
            "CollectionNetwork",
            name=f"{name}-net"[:32],
            type="network",
            # Lambda functions run outside a VPC; access is authorised by SigV4 + the data access policy.
            policy=json.dumps([{"Rules": [{"ResourceType": "collection", "Resource": [f"collection/{name}"]}], "AllowFromPublic": True}]),
        )
        # Standby replicas double the floor (2 OCUs instead of 1) for a second Availability Zone.
        # https://docs.aws.amazon.com/opensearch-service/latest/developerguide/serverless-scaling.html
        self.collection = aoss.CfnCollection(
            self,
            "Collection",
            name=name,
            type="VECTORSEARCH",
            standby_replicas="ENABLED" if self.settings.search_redundancy else "DISABLED",
        )
        self.collection.add_resource_dependency(encryption)
        self.collection.add_resource_dependency(network)
        self.endpoint = self.collection.attr_collection_endpoint
        self.service = "aoss"

    # --- managed domain ---------------------------------------------------------------------------
    def _domain(self, key: kms.IKey) -> None:
        slow_logs = logs.LogGroup(self, "SearchSlowLogs", retention=logs.RetentionDays.THREE_MONTHS, removal_policy=RemovalPolicy.DESTROY)
        app_logs = logs.LogGroup(self, "SearchAppLogs", retention=logs.RetentionDays.THREE_MONTHS, removal_policy=RemovalPolicy.DESTROY)
        self.domain_name = self.settings.prefix("search")[:28]
        size = DomainSize(self.settings.profile)
        self.domain = opensearch.Domain(
            self,
            "Domain",
            domain_name=self.domain_name,
            version=opensearch.EngineVersion.OPENSEARCH_2_19,
            capacity=size.capacity,
            zone_awareness=size.zone_awareness,
            ebs=opensearch.EbsOptions(volume_size=size.volume_gib, volume_type=ec2.EbsDeviceVolumeType.GP3),
            encryption_at_rest=opensearch.EncryptionAtRestOptions(enabled=True, kms_key=key),
            node_to_node_encryption=True,
            enforce_https=True,
            tls_security_policy=opensearch.TLSSecurityPolicy.TLS_1_2,
            logging=opensearch.LoggingOptions(
                slow_search_log_enabled=True,
                slow_search_log_group=slow_logs,
                slow_index_log_enabled=True,
                slow_index_log_group=slow_logs,
                app_log_enabled=True,
                app_log_group=app_logs,
            ),
            # _bulk/_msearch may not name an index in their bodies: only the one in the URL path,
            # which the adapter builds from the caller's tenant id.
            advanced_options={"rest.action.multi.allow_explicit_index": "false"},
            removal_policy=RemovalPolicy.RETAIN if self.settings.removal_policy == "retain" else RemovalPolicy.DESTROY,
        )
        self.endpoint = "https://" + self.domain.domain_endpoint
        self.service = "es"
        cast(opensearch.CfnDomain, self.domain.node.default_child).access_policies = self._domain_access_policy()
        acknowledge(
            self,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
            "CDK's deployment-time helper that sets the log groups' resource policy logs with the basic execution role.",
        )
        acknowledge(
            self,
            "AwsSolutions-IAM5[Resource::*]",
            "CDK's log-group resource-policy helper calls logs:PutResourcePolicy, which has no resource-level scoping.",
        )
        acknowledge(self, "AwsSolutions-L1", "CDK's own deployment-time helper function pins its runtime; it never serves traffic.")
        acknowledge(self.domain, "AwsSolutions-OS1", "Lambda functions run outside a VPC; access is by SigV4-signed IAM identity only.")
        acknowledge(
            self.domain, "AwsSolutions-OS3", "Access is granted to specific IAM roles, not IP ranges; the functions have no fixed IPs."
        )
        if size.starter:
            acknowledge(
                self.domain,
                "AwsSolutions-OS4",
                "raas:profile=starter is one data node by design (the low-cost floor); a one-node cluster elects itself, so "
                "dedicated masters would only add cost. raas:profile=standard has three.",
            )
            acknowledge(
                self.domain,
                "AwsSolutions-OS7",
                "raas:profile=starter is one node, which lives in one Availability Zone by definition; docs/deploy.md says it "
                "gives up zone failure tolerance. raas:profile=standard spreads two nodes over two zones.",
            )

    def _domain_access_policy(self) -> dict[str, object]:
        """Admits only the function roles in SEARCH_USERS, each named by its deterministic ARN.

        The roles live in the API stack, deployed after this one. OpenSearch resolves a role named as
        a Principal to its unique id and refuses a role that does not exist yet ("Error setting
        policy"), so the policy names the account as principal and the roles in an aws:PrincipalArn
        condition: no cross-stack reference, no ordering problem, and a re-created role still matches.
        The roles also need es:ESHttp* in their own policies (`grant`). No anonymous or cross-account
        access; as AWS evaluates it, a principal of this account whose own IAM policy allows es:ESHttp*
        (an administrator) is still admitted: the domain policy grants, it does not deny others.
        https://docs.aws.amazon.com/opensearch-service/latest/developerguide/ac.html#ac-types-resource
        https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-principalarn
        """
        roles = [
            f"arn:{Aws.PARTITION}:iam::{Aws.ACCOUNT_ID}:role/{self.settings.function_role_name(group, self.region)}"
            for group in SEARCH_USERS
        ]
        return {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "RaasFunctionsOnly",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:{Aws.PARTITION}:iam::{Aws.ACCOUNT_ID}:root"},
                    "Action": HTTP_ACTIONS,
                    "Resource": f"arn:{Aws.PARTITION}:es:{self.region}:{Aws.ACCOUNT_ID}:domain/{self.domain_name}/*",
                    "Condition": {"ArnEquals": {"aws:PrincipalArn": roles}},
                }
            ],
        }

    def grant(self, scope: Construct, role: iam.IRole, construct_id: str) -> None:
        """Data-plane access for a function role; the access policy lives in the role's stack (`scope`)."""
        if self.collection is not None:
            aoss.CfnAccessPolicy(
                scope,
                construct_id,
                name=f"{self.collection_name[:20]}-{construct_id.lower()[:10]}",
                type="data",
                policy=json.dumps(
                    [
                        {
                            "Rules": [
                                {
                                    "ResourceType": "index",
                                    "Resource": [f"index/{self.collection_name}/tenant_*_documents"],
                                    "Permission": [
                                        "aoss:CreateIndex",
                                        "aoss:DeleteIndex",
                                        "aoss:DescribeIndex",
                                        "aoss:ReadDocument",
                                        "aoss:WriteDocument",
                                        "aoss:UpdateIndex",
                                    ],
                                }
                            ],
                            "Principal": [role.role_arn],
                        }
                    ]
                ),
            )
            role.add_to_principal_policy(iam.PolicyStatement(actions=["aoss:APIAccessAll"], resources=[self.collection.attr_arn]))
        elif self.domain is not None:
            # HTTP access to the domain's paths; which index a request may touch is fixed by the adapter
            # (from the tenant id) and by rest.action.multi.allow_explicit_index=false on bulk bodies.
            resource = f"arn:{Aws.PARTITION}:es:{self.region}:{Aws.ACCOUNT_ID}:domain/{self.domain_name}/*"
            role.add_to_principal_policy(iam.PolicyStatement(actions=HTTP_ACTIONS, resources=[resource]))
            acknowledge(
                scope,
                f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:es:{self.region}:<AWS::AccountId>:domain/{self.domain_name}/*]",
                "Functions call the domain's REST paths (/<index>/_search, /_bulk); the index is the caller tenant's, enforced in code.",
            )
