"""Tenant webhooks in the CDK app: rule -> SQS (+ DLQ) -> delivery function, the retry schedule, and the
delivery and API roles' permissions (KMS only with the webhook purpose in the encryption context)."""

from __future__ import annotations

import json
from typing import Any

from stacks.lifecycle import QUEUE_MAX_RECEIVES

from raas.handlers.registry import routes_by_function
from tests.infra.conftest import resources


def _role_policy(template: dict[str, Any], role_name_part: str) -> str:
    roles = {lid for lid, r in resources(template, "AWS::IAM::Role").items() if lid.startswith(role_name_part)}
    assert roles, role_name_part
    return json.dumps(
        [
            p["Properties"]["PolicyDocument"]
            for p in resources(template, "AWS::IAM::Policy").values()
            if any(ref.get("Ref") in roles for ref in p["Properties"].get("Roles", []))
        ]
    )


def test_webhook_events_reach_the_delivery_function_through_a_queue_with_a_dlq(templates: dict[str, dict[str, Any]]) -> None:
    api = templates["api"]
    queues = {q["Properties"].get("QueueName"): (lid, q["Properties"]) for lid, q in resources(api, "AWS::SQS::Queue").items()}
    queue_id, queue = queues["raas-prod-events-webhook_delivery"]
    dlq_id, _dlq = queues["raas-prod-events-webhook_delivery-dlq"]
    assert queue["RedrivePolicy"]["maxReceiveCount"] == QUEUE_MAX_RECEIVES
    assert dlq_id in json.dumps(queue["RedrivePolicy"]["deadLetterTargetArn"])
    function = next(
        f["Properties"]
        for f in resources(api, "AWS::Lambda::Function").values()
        if f["Properties"].get("FunctionName") == "raas-prod-webhook_delivery"
    )
    assert queue["VisibilityTimeout"] >= 6 * function["Timeout"]
    assert queue["SqsManagedSseEnabled"] is True
    rule = next(
        r["Properties"]
        for r in resources(api, "AWS::Events::Rule").values()
        if r["Properties"].get("Name") == "raas-prod-events-webhook_delivery"
    )
    assert rule["EventPattern"]["detail-type"] == sorted(routes_by_function()["webhook_delivery"])
    [target] = rule["Targets"]
    assert queue_id in json.dumps(target["Arn"])
    assert "DeadLetterConfig" in target
    mapping = next(
        m["Properties"]
        for m in resources(api, "AWS::Lambda::EventSourceMapping").values()
        if queue_id in json.dumps(m["Properties"]["EventSourceArn"])
    )
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    retries = next(
        r["Properties"]
        for r in resources(api, "AWS::Events::Rule").values()
        if r["Properties"].get("Name") == "raas-prod-events-webhook-retries"
    )
    assert retries["ScheduleExpression"] == "rate(1 minute)"
    # the DLQ is alarmed like every event function's
    alarms = json.dumps(resources(templates["observability"], "AWS::CloudWatch::Alarm"))
    assert "raas-prod-events-webhook_delivery-dlq" in alarms


def test_webhook_roles_use_tenant_keys_only_for_signing_secrets(templates: dict[str, dict[str, Any]]) -> None:
    api = templates["api"]
    for role in ("WebhooksRole", "WebhookdeliveryRole"):
        policy = _role_policy(api, role)
        assert '"kms:EncryptionContext:raas:purpose": "webhook-signing-secret"' in policy
        documents = json.loads(policy)
        statements = [s for d in documents for s in d["Statement"]]
        for statement in statements:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if {"kms:Encrypt", "kms:Decrypt"} & set(actions) and "ResourceAliases" not in json.dumps(statement):
                assert statement["Condition"] == {"StringEquals": {"kms:EncryptionContext:raas:purpose": "webhook-signing-secret"}}
    assert "webhook_due" in _role_policy(api, "WebhookdeliveryRole")


def test_services_that_announce_webhook_events_may_put_them_on_the_bus(templates: dict[str, dict[str, Any]]) -> None:
    api = templates["api"]
    for role in ("KeysRole", "ConfigRole", "IngestRole", "AccountRole"):
        assert "events:PutEvents" in _role_policy(api, role), role
