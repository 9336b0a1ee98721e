"""Application services: orchestrate domain rules over the ports. No boto3, no events."""
