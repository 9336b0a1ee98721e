"""Isolation AWS enforces: the tenant-scoped IAM policy and the session-tag credentials behind it."""
