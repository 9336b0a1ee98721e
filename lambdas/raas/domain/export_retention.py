"""How long tenant export bundles are kept, and how they are marked for the bucket's lifecycle rule.

One definition for the CDK rule (stacks/data.py), the writer (raas.adapters.exports), the storage ledger and
the local platform's sweep (raas.local.export_expiry). Expiry instants follow S3's: creation time plus the
rule's days, rounded to the next midnight UTC (https://repost.aws/knowledge-center/s3-lifecycle-rule-delay;
https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-lifecycle-mgmt.html).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

EXPORT_RETENTION_DAYS = 7
# The bucket is versioned: an expired bundle becomes a noncurrent version, removed for good one day later.
NONCURRENT_EXPORT_DAYS = 1
EXPORT_TAG_KEY = "raas-retention"
EXPORT_TAG_VALUE = "export"
EXPORT_TAG = f"{EXPORT_TAG_KEY}={EXPORT_TAG_VALUE}"  # the x-amz-tagging form: URL-query encoded key=value
EXPORTS_PREFIX = "exports/"  # tenant-relative


def _next_midnight(moment: datetime) -> datetime:
    moment = moment.astimezone(UTC)
    midnight = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight if midnight == moment else midnight + timedelta(days=1)


def export_expires_at(created: datetime) -> datetime:
    """When S3's lifecycle rule expires a bundle created at `created`."""
    return _next_midnight(created + timedelta(days=EXPORT_RETENTION_DAYS))


def noncurrent_expires_at(noncurrent_since: datetime) -> datetime:
    """When a bundle's version that became noncurrent at `noncurrent_since` is removed for good."""
    return _next_midnight(noncurrent_since + timedelta(days=NONCURRENT_EXPORT_DAYS))
