"""API Gateway REQUEST authorizer: `Authorization: Bearer <api key | JWT>` -> IAM policy + context.

Unknown, revoked or malformed credentials raise "Unauthorized" (API Gateway answers 401);
a known caller whose tenant is suspended gets an explicit Deny (403) carrying an error code.
The context it returns is the only place handlers learn the tenant id.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from raas.bootstrap import services
from raas.domain.errors import Forbidden, Unauthorized
from raas.domain.tenants import Principal

logger = Logger(service="raas")

UNAUTHORIZED = "Unauthorized"  # the exact message API Gateway turns into a 401


def _header(event: dict[str, Any], name: str) -> str | None:
    for key, value in (event.get("headers") or {}).items():
        if key.lower() == name:
            return value if isinstance(value, str) else None
    return None


def api_wide_arn(method_arn: str) -> str:
    """`arn:...:api/stage/GET/v1/x` -> `arn:...:api/stage/*`: a cached policy must cover every route."""
    parts = method_arn.split("/")
    return "/".join(parts[:2]) + "/*" if len(parts) >= 2 else method_arn


def _policy(principal_id: str, effect: str, resource: str, context: dict[str, str]) -> dict[str, Any]:
    return {
        "principalId": principal_id,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}],
        },
        "context": context,
    }


def principal_context(caller: Principal) -> dict[str, str]:
    return {
        "tenant_id": caller.tenant_id or "",
        "role": caller.role.value,
        "tier": caller.tier.value if caller.tier else "",
        "key_id": caller.key_id,
    }


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    logger.thread_safe_clear_keys()  # per thread: the local gateway authorizes several requests at once
    method_arn = event.get("methodArn", "")
    try:
        caller = services().authenticator.authenticate(_header(event, "authorization"))
    except Unauthorized as exc:
        logger.info("credentials refused", extra={"code": exc.code})
        raise Exception(UNAUTHORIZED) from None  # noqa: TRY002 - API Gateway matches this message
    except Forbidden as exc:
        logger.info("caller denied", extra={"code": exc.code})
        return _policy("denied", "Deny", api_wide_arn(method_arn), {"error_code": exc.code, "error_message": exc.message})
    logger.thread_safe_append_keys(tenant_id=caller.tenant_id or "-", key_id=caller.key_id)
    logger.info("caller allowed", extra={"role": caller.role.value})
    policy = _policy(caller.key_id, "Allow", api_wide_arn(method_arn), principal_context(caller))
    usage_key = caller.usage_key if caller.tenant_id else services().operator_usage_key
    if usage_key:
        policy["usageIdentifierKey"] = usage_key  # API Gateway applies this key's usage plan
    return policy
