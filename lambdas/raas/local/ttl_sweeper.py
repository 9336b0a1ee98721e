"""DynamoDB's Time to Live for the local platform: moto records the TTL setting but never expires anything.

In AWS a background process deletes items whose TTL attribute has passed; raas relies on it to
bound its dedupe markers (usage), query history and response cache (queries), sent outbox
entries and idempotency records. Without it the local platform's tables grow with every
request. The sweeper applies the documented rules
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/TTL.html,
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/howitworks-ttl.html,
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/time-to-live-ttl-before-you-start.html):

- only tables with TTL enabled, on the attribute the table names (DescribeTimeToLive);
- an item is eligible when that attribute is a top-level Number of epoch seconds less than the
  current time, and no more than five years in the past; items without it, or with another
  type, are left alone;
- deletion happens some time after expiry (AWS: typically within two days), so code must not
  rely on an expired item being gone: raas filters on `expires_at` where it matters;
- an item updated in the meantime to a later expiry is not deleted: each delete is conditional
  on the attribute still being expired.

It finds expired items by reading moto's tables directly (raas.local.moto_reads says why) and
deletes them through the ordinary DynamoDB API, so it works against moto's server and the
in-process mock alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from raas.adapters.aws import client
from raas.local import moto_reads

logger = Logger(service="raas")

FIVE_YEARS_SECONDS = 5 * 365 * 24 * 3600
SWEEP_INTERVAL_SECONDS = 300  # AWS gives no schedule, only "typically within two days"


class TtlSweeper:
    def __init__(self, table_names: Callable[[], list[str]], clock: Callable[[], float] = time.time):
        self.table_names = table_names
        self.clock = clock
        self.next_sweep = 0.0

    def sweep_if_due(self, monotonic_now: float | None = None) -> int:
        now = time.monotonic() if monotonic_now is None else monotonic_now
        if now < self.next_sweep:
            return 0
        self.next_sweep = now + SWEEP_INTERVAL_SECONDS
        try:
            return self.sweep()
        except Exception:  # a failed sweep is retried at the next turn, as AWS's background process would
            logger.exception("TTL sweep failed")
            return 0

    def sweep(self) -> int:
        """Deletes every expired item of every table with TTL enabled; returns how many."""
        dynamodb = client("dynamodb")
        now = int(self.clock())
        deleted = 0
        for table in self.table_names():
            attribute = _ttl_attribute(dynamodb, table)
            if attribute:
                deleted += self._sweep_table(dynamodb, table, attribute, now)
        return deleted

    def _sweep_table(self, dynamodb: Any, table: str, attribute: str, now: int) -> int:
        key_names = [k["AttributeName"] for k in dynamodb.describe_table(TableName=table)["Table"]["KeySchema"]]
        oldest = now - FIVE_YEARS_SECONDS
        # Found by reading moto's table directly and at a background pace (raas.local.moto_reads: a Scan of a
        # large table cost seconds of the interpreter), deleted through the API under the TTL condition, as AWS's
        # process does.
        expired = [
            item
            for item in moto_reads.items(table, attributes=[*key_names, attribute], pacer=moto_reads.Pacer())
            if attribute in item and oldest <= _epoch_seconds(item[attribute], default=now) < now
        ]
        deleted = 0
        for item in expired:
            try:
                dynamodb.delete_item(
                    TableName=table,
                    Key={name: item[name] for name in key_names},
                    ConditionExpression="#ttl < :now",  # unless it was given a later expiry since the scan
                    ExpressionAttributeNames={"#ttl": attribute},
                    ExpressionAttributeValues={":now": {"N": str(now)}},
                )
                deleted += 1
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise
        return deleted


def _ttl_attribute(dynamodb: Any, table: str) -> str | None:
    description = dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    if description.get("TimeToLiveStatus") != "ENABLED":
        return None
    name: str | None = description.get("AttributeName")
    return name


def _epoch_seconds(value: dict[str, Any], default: int) -> Decimal | int:
    """The attribute's Number value; `default` (never expired) for any other type (DynamoDB ignores those)."""
    if "N" not in value:
        return default
    try:
        return Decimal(value["N"])
    except ArithmeticError:
        return default
