"""Pure domain logic: no boto3, no HTTP, no Lambda events."""
