"""Operator keys of a deployed raas, managed from a shell with the deploy credentials.

Every operator route needs an operator key, so the first one cannot come from the API: it is
written straight into the deployment's tenants table, exactly as the API's own key service
writes keys (`PK=OPERATOR`, `SK=KEY#<id>`, only the secret's SHA-256 is stored). The table is
found by its deterministic name, `raas-<stage>-tenants` (stacks/settings.py,
`DeploymentSettings.table_name`), in the region of the default boto3 credential chain or `--region`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from raas.adapters.aws import client_config, new_session
from raas.adapters.dynamo import error_code
from raas.adapters.dynamo_schema import KEY_HASH_INDEX, TENANTS
from raas.adapters.registry import DynamoKeyStore
from raas.domain import ids
from raas.domain.errors import NotFound
from raas.domain.tenants import ApiKey, Role
from raas.services.tenants import KeyService

STAGE_PATTERN = re.compile(r"^[a-z][a-z0-9-]{1,15}$")  # DeploymentSettings.stage


class OperatorKeyError(Exception):
    """Something the person at the shell can fix: say what, in one sentence."""


def deployed_table_name(stage: str, logical: str = TENANTS.logical_name) -> str:
    """The physical name the CDK stacks give a table (`DeploymentSettings.table_name`)."""
    return f"raas-{stage}-{logical}"


@dataclass
class OperatorKeys:
    store: DynamoKeyStore
    table: str
    region: str

    def create(self, name: str) -> tuple[ApiKey, str]:
        """A new operator key and its secret (the only time the secret exists outside a hash)."""
        return KeyService(self.store).create_operator_key(name)

    def all_keys(self) -> list[ApiKey]:
        return sorted(self.store.list_keys(None), key=lambda key: key.created_at)

    def revoke(self, key_id: str) -> ApiKey:
        key = self.store.get_key(None, key_id) if ids.is_key_id(key_id) else None
        if key is None or key.role is not Role.OPERATOR:
            raise OperatorKeyError(f"no operator key {key_id} in {self.table} ({self.region}); `raas operator-key list` shows them")
        try:
            return self.store.revoke_key(None, key_id)
        except NotFound:
            raise OperatorKeyError(f"no operator key {key_id} in {self.table} ({self.region})") from None


def connect(stage: str, region: str | None = None, dynamodb: Any | None = None) -> OperatorKeys:
    """The operator keys of the deployment `stage`, after checking its tenants table exists there."""
    if not STAGE_PATTERN.match(stage):
        raise OperatorKeyError(f"{stage!r} is not a raas stage name (lowercase letters, digits and '-', 2-16 characters)")
    try:
        if dynamodb is None:
            session = new_session(region_name=region)
            region = session.region_name
            if not region:
                raise OperatorKeyError("no AWS region: pass --region or set AWS_REGION (the region you deployed to)")
            dynamodb = session.client("dynamodb", config=client_config("dynamodb"))
        region = region or str(dynamodb.meta.region_name)
        table = deployed_table_name(stage)
        try:
            description = dynamodb.describe_table(TableName=table)["Table"]
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                raise OperatorKeyError(
                    f"table {table} does not exist in {region}: raas stage {stage!r} is not deployed in this account and region "
                    "(check --stage, --region and which AWS account your credentials belong to)"
                ) from None
            raise OperatorKeyError(f"cannot read table {table} in {region}: {exc}") from None
    except (NoCredentialsError, NoRegionError) as exc:
        raise OperatorKeyError(f"{exc} (use the credentials you deployed with)") from None
    except BotoCoreError as exc:
        raise OperatorKeyError(f"cannot reach DynamoDB in {region}: {exc}") from None
    indexes = {index["IndexName"] for index in description.get("GlobalSecondaryIndexes", [])}
    if KEY_HASH_INDEX not in indexes:
        raise OperatorKeyError(f"table {table} in {region} has no {KEY_HASH_INDEX} index: it is not a raas tenants table")
    return OperatorKeys(DynamoKeyStore(dynamodb, table), table, region)
