"""Every refusal API Gateway makes itself comes in the API's error shape with a stable code (issue 12).

Gateway response templates are plain variable substitution, not VTL
(https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-swagger-extensions-gateway-responses.responseTemplates.html),
so nothing escapes a substituted value: a template is only safe if no variable that can carry a quote or
a backslash sits inside its quotes.
Types: https://docs.aws.amazon.com/apigateway/latest/developerguide/supported-gateway-response-types.html
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.infra.conftest import resources

# Every type the GatewayResponse resource accepts (the API reference's list of valid values).
RESPONSE_TYPES = [
    *("DEFAULT_4XX", "DEFAULT_5XX", "RESOURCE_NOT_FOUND", "UNAUTHORIZED", "INVALID_API_KEY", "ACCESS_DENIED"),
    *("AUTHORIZER_FAILURE", "AUTHORIZER_CONFIGURATION_ERROR", "INVALID_SIGNATURE", "EXPIRED_TOKEN"),
    *("MISSING_AUTHENTICATION_TOKEN", "INTEGRATION_FAILURE", "INTEGRATION_TIMEOUT", "API_CONFIGURATION_ERROR"),
    *("UNSUPPORTED_MEDIA_TYPE", "BAD_REQUEST_PARAMETERS", "BAD_REQUEST_BODY", "REQUEST_TOO_LARGE", "THROTTLED"),
    *("QUOTA_EXCEEDED", "WAF_FILTERED"),
]
HOSTILE = 'a "quoted" \\ value\nwith a newline'
# What API Gateway puts in each variable. Only our own authorizer's context is trusted as plain text: its
# codes are identifiers and its messages fixed sentences (handlers/authorizer.py, services/auth.py).
SUBSTITUTIONS = {
    "$context.authorizer.error_code": "tenant_suspended",
    "$context.authorizer.error_message": "tenant is suspended",
}
CODE = re.compile(r"^[a-z][a-z0-9_]*$")


def substitute(template: str) -> str:
    for variable, value in SUBSTITUTIONS.items():
        template = template.replace(variable, value)
    return re.sub(r"\$context\.[A-Za-z0-9_.]+", lambda _: HOSTILE, template)  # any other variable: the worst case


@pytest.fixture(scope="module")
def gateway_responses(templates: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    found = [r["Properties"] for r in resources(templates["api"], "AWS::ApiGateway::GatewayResponse").values()]
    by_type = {p["ResponseType"]: p for p in found}
    assert len(by_type) == len(found), "one response per type"
    return by_type


def test_every_response_type_is_customised(gateway_responses: dict[str, dict[str, Any]]) -> None:
    assert sorted(gateway_responses) == sorted(RESPONSE_TYPES)


@pytest.mark.parametrize("response_type", RESPONSE_TYPES)
def test_each_body_is_the_error_shape_once_variables_are_substituted(
    gateway_responses: dict[str, dict[str, Any]], response_type: str
) -> None:
    props = gateway_responses[response_type]
    body = json.loads(substitute(props["ResponseTemplates"]["application/json"]))
    assert list(body) == ["error"]
    assert sorted(body["error"]) == ["code", "details", "message"]
    assert CODE.fullmatch(body["error"]["code"]), body
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"]
    assert body["error"]["details"] == []
    # the console's origin only, never '*' (tests/infra/test_console_stack.py checks the value)
    origin = props["ResponseParameters"]["gatewayresponse.header.Access-Control-Allow-Origin"]
    assert origin["Fn::Join"][1][1]["Fn::GetAtt"][1] == "DomainName"


def test_the_fallbacks_keep_the_status_api_gateway_chose(gateway_responses: dict[str, dict[str, Any]]) -> None:
    """A status on DEFAULT_4XX/5XX would replace the status of every other 4XX/5XX response (the types page)."""
    for fallback in ("DEFAULT_4XX", "DEFAULT_5XX"):
        assert "StatusCode" not in gateway_responses[fallback]
    for response_type in set(RESPONSE_TYPES) - {"DEFAULT_4XX", "DEFAULT_5XX"}:
        assert re.fullmatch(r"[45]\d\d", gateway_responses[response_type]["StatusCode"]), response_type
