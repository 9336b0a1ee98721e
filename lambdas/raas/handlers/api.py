"""What every API handler shares: the resolver, error mapping, caller identity and role checks."""

from __future__ import annotations

import base64
import json
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from botocore.exceptions import ClientError
from pydantic import BaseModel, ValidationError

from raas.domain.catalog import Tier
from raas.domain.errors import BadRequest, Forbidden, RaasError, Unauthorized, ValidationFailed, error_body, pydantic_details
from raas.domain.model import Model
from raas.domain.tenants import Principal, Role, role_allows
from raas.handlers.resolver import PerThreadResolver
from raas.handlers.telemetry import PerThreadEMFProvider

# Handlers that emit no metric of their own must not warn on every request.
warnings.filterwarnings("ignore", message="No application metrics to publish")

logger = Logger(service="raas")
metrics = Metrics(provider=PerThreadEMFProvider(namespace="raas", service="raas"))  # raas.handlers.telemetry says why

JSON = "application/json"


class ErrorInfo(Model):
    code: str
    message: str
    details: list[dict[str, Any]]


class ErrorBody(Model):
    """Every error the API returns has this shape."""

    error: ErrorInfo


def error_response(
    status: int, code: str, message: str, details: list[dict[str, Any]] | None = None, headers: dict[str, str] | None = None
) -> Response:
    return Response(status, JSON, json.dumps(error_body(code, message, details)), headers=headers)


def _error_doc(description: str) -> OpenAPIResponse:
    return {"description": description, "content": {JSON: {"model": ErrorBody}}}


COMMON_ERRORS: dict[int, OpenAPIResponse] = {
    400: _error_doc("Malformed request"),
    415: _error_doc("The body is not JSON"),
    401: _error_doc("Missing or invalid credentials"),
    403: _error_doc("The caller's role may not do this"),
    404: _error_doc("No such resource for this caller"),
    422: _error_doc("Validation failed; details say which field and why"),
    429: _error_doc("Rate limited or over quota"),
    503: _error_doc("A dependency is unavailable; retry"),
}


def responses(status: int, model: type[BaseModel] | None, description: str, *extra_errors: int) -> dict[int, OpenAPIResponse]:
    """OpenAPI responses for a route: its success response plus the common errors."""
    success: OpenAPIResponse = {"description": description}
    if model is not None:
        success["content"] = {JSON: {"model": model}}
    docs = {status: success, **COMMON_ERRORS}
    for code in extra_errors:
        docs[code] = _error_doc({409: "Conflicts with the current state", 413: "Payload too large"}.get(code, "Error"))
    return docs


def non_json_body(event: dict[str, Any]) -> str | None:
    """The media type of a body that is not JSON, else None (Powertools would parse forms silently)."""
    if not event.get("body"):
        return None
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items() if isinstance(v, str)}
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type and content_type != JSON and not content_type.endswith("+json"):
        return content_type
    return None


# --- request bodies: one strict JSON parser for every route ------------------------------------
#
# Python's json module accepts what the platform cannot hold: NaN and Infinity (not JSON, RFC 8259
# section 6), integers of any length (beyond 4300 digits it raises ValueError, CVE-2020-10735),
# nesting until the interpreter's recursion limit (RecursionError), and lone surrogates such as
# "\ud800", which decode but fail to encode as UTF-8 when stored or echoed. Each used to reach a
# handler or a store and answer 502. Limits follow DynamoDB's, where request values end up
# (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Constraints.html#limits-data-types):
# numbers have at most 38 digits of precision and a magnitude from 1E-130 to 9.99...E+125, and
# nested attributes go at most 32 levels deep.
MAX_JSON_DEPTH = 32
MAX_INTEGER_DIGITS = 38
_SMALLEST_NUMBER = Decimal("1E-130")
_LARGEST_NUMBER = Decimal("9.9999999999999999999999999999999999999E+125")
_SURROGATE = re.compile("[\ud800-\udfff]")
_MAX_REPORTED_PROBLEMS = 20


@dataclass(frozen=True)
class _OutOfRange:
    """A number literal no store can hold; reported with its field once the tree is built."""

    literal: str


def _parse_int(literal: str) -> int | _OutOfRange:
    # Counted before int() runs, so a 5000-digit literal never meets Python's int-string limit.
    if len(literal.lstrip("-")) > MAX_INTEGER_DIGITS:
        return _OutOfRange(literal)
    return int(literal)


def _parse_float(literal: str) -> float | _OutOfRange:
    try:
        magnitude = abs(Decimal(literal))
    except InvalidOperation:  # pragma: no cover - the scanner only hands over JSON number literals
        return _OutOfRange(literal)
    if magnitude and not _SMALLEST_NUMBER <= magnitude <= _LARGEST_NUMBER:
        return _OutOfRange(literal)
    return float(literal)


def _refuse_constant(name: str) -> Any:
    raise BadRequest(f"{name} is not a JSON number; send a finite number", code="invalid_json")


def _problems(value: Any) -> list[dict[str, Any]]:
    """Walks the parsed body (without recursion): too deep is a 400, bad leaves are 422 details."""
    problems: list[dict[str, Any]] = []
    stack: list[tuple[Any, str, int]] = [(value, "body", 1)]
    while stack and len(problems) < _MAX_REPORTED_PROBLEMS:
        node, path, depth = stack.pop()
        if isinstance(node, dict | list) and depth > MAX_JSON_DEPTH:
            raise BadRequest(f"request body nests deeper than {MAX_JSON_DEPTH} levels", code="invalid_json")
        if isinstance(node, dict):
            for key, child in node.items():
                if _SURROGATE.search(key):
                    problems.append({"field": path, "message": "a key holds a lone UTF-16 surrogate (not Unicode text)"})
                stack.append((child, f"{path}.{key}", depth + 1))
        elif isinstance(node, list):
            stack.extend((child, f"{path}.{index}", depth + 1) for index, child in enumerate(node))
        elif isinstance(node, str) and _SURROGATE.search(node):
            problems.append({"field": path, "message": "holds a lone UTF-16 surrogate (not Unicode text)", "type": "string_unicode"})
        elif isinstance(node, _OutOfRange):
            shown = node.literal if len(node.literal) <= 60 else f"{node.literal[:40]}... ({len(node.literal)} characters)"
            problems.append(
                {
                    "field": path,
                    "message": f"{shown} is out of range: integers have at most {MAX_INTEGER_DIGITS} digits, "
                    "other numbers a magnitude from 1E-130 to 9.99E+125",
                    "type": "number_out_of_range",
                }
            )
    return problems


def parse_json_body(text: str) -> Any:
    """The request body as JSON, or a 400 (not JSON / too deep) or 422 (a value no store can hold)."""
    try:
        value = json.loads(text, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_refuse_constant)
    except RecursionError:  # json's C scanner recurses per level; far deeper than MAX_JSON_DEPTH anyway
        raise BadRequest(f"request body nests deeper than {MAX_JSON_DEPTH} levels", code="invalid_json") from None
    except json.JSONDecodeError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc.msg} at position {exc.pos}", code="invalid_json") from None
    problems = _problems(value)
    if problems:
        raise ValidationFailed("request body holds values the platform cannot store", details=problems)
    return value


def _item_too_large(exc: ClientError) -> bool:
    """DynamoDB's refusal of an item over 400 KB (the limit on the page cited above), alone or in a transaction."""
    error = exc.response.get("Error") or {}
    reasons = exc.response.get("CancellationReasons") or []
    messages = [str(error.get("Message", ""))] + [str(reason.get("Message", "")) for reason in reasons]
    return any("Item size has exceeded the maximum allowed size" in message for message in messages)


def make_app() -> APIGatewayRestResolver:
    # Per thread: Powertools keeps the current request process-wide, and `raas local` serves several at once.
    app = PerThreadResolver(enable_validation=True, json_body_deserializer=parse_json_body)

    @app.exception_handler(RaasError)
    def _domain_error(exc: RaasError) -> Response:
        if exc.status >= 500:
            logger.exception("request failed", extra={"code": exc.code})
        return error_response(exc.status, exc.code, exc.message, exc.details, headers=exc.headers or None)

    @app.exception_handler(RequestValidationError)
    def _validation_error(exc: RequestValidationError) -> Response:
        errors = list(exc.errors())
        if any(e.get("type") == "json_invalid" for e in errors):
            return error_response(400, "invalid_json", "request body is not valid JSON")
        return error_response(422, "validation_error", "request validation failed", pydantic_details(errors))

    @app.exception_handler(ValidationError)
    def _model_error(exc: ValidationError) -> Response:
        return error_response(422, "validation_error", "request validation failed", pydantic_details(exc.errors()))

    @app.exception_handler(ClientError)
    def _storage_refusal(exc: ClientError) -> Response:
        # A record the caller made too large for DynamoDB is the caller's 413, not our 502; any other
        # storage error goes on to the Lambda runtime as before (API Gateway answers 502).
        if not _item_too_large(exc):
            raise exc
        return error_response(413, "record_too_large", "the record this request would write exceeds DynamoDB's 400 KB item limit")

    @app.not_found
    def _not_found(_exc: Exception) -> Response:
        event = app.current_event
        allowed = allowed_methods(app, event.path)
        if allowed:
            return error_response(
                405, "method_not_allowed", f"{event.http_method} is not allowed here", headers={"Allow": ", ".join(allowed)}
            )
        return error_response(404, "not_found", f"no route for {event.path}")

    return app


@dataclass(frozen=True)
class RouteInfo:
    method: str
    path: str
    pattern: re.Pattern[str]


def route_table(app: APIGatewayRestResolver) -> list[RouteInfo]:
    """The resolver's routes (method, path template, compiled pattern)."""
    routes = [*app._static_routes, *app._dynamic_routes]  # Powertools keeps these private; pinned <4
    return [RouteInfo(route.method, route.path, route.rule) for route in routes]


def allowed_methods(app: APIGatewayRestResolver, path: str) -> list[str]:
    return sorted({r.method for r in route_table(app) if r.pattern.match(path)})


def principal(app: APIGatewayRestResolver) -> Principal:
    """The caller, from the authorizer context only (never from a header, path or body)."""
    context = app.current_event.request_context.authorizer.raw_event or {}
    try:
        caller = Principal(
            role=Role(str(context.get("role"))),
            key_id=context.get("key_id") or "",
            tenant_id=context.get("tenant_id") or None,
            tier=context.get("tier") or None,
        )
    except (ValueError, ValidationError):
        raise Unauthorized("request reached a handler without an authorizer context") from None
    # thread-safe: the local platform serves requests of several tenants at once in one process
    logger.thread_safe_append_keys(tenant_id=caller.tenant_id or "-", key_id=caller.key_id, role=caller.role.value)
    metrics.add_metadata(key="tenant_id", value=caller.tenant_id or "-")
    return caller


def require(app: APIGatewayRestResolver, role: Role) -> Principal:
    caller = principal(app)
    if role is not Role.OPERATOR and (caller.role is Role.OPERATOR or caller.tenant_id is None):
        # Checked before the role: an operator key on a tenant route lacks a tenant, not a rank.
        raise Forbidden("this route acts inside a tenant and needs a tenant key; operator keys never do", code="tenant_key_required")
    if not role_allows(caller.role, role):
        raise Forbidden(f"this action needs the {role.value} role", code="insufficient_role")
    return caller


@dataclass(frozen=True)
class TenantCaller:
    """A caller acting inside one tenant (never the operator)."""

    principal: Principal
    tenant_id: str
    tier: Tier

    @property
    def actor(self) -> str:
        return self.principal.actor


def require_tenant(app: APIGatewayRestResolver, role: Role) -> TenantCaller:
    caller = require(app, role)
    if caller.tenant_id is None or caller.tier is None:
        raise Forbidden("this route needs a tenant key", code="tenant_key_required")
    return TenantCaller(caller, caller.tenant_id, caller.tier)


def lambda_handler(app: APIGatewayRestResolver) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The Lambda entry point for a resolver: structured logs with tenant id, EMF metrics flushed."""

    @metrics.log_metrics(raise_on_empty_metrics=False)
    @logger.inject_lambda_context(clear_state=True)
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        logger.thread_safe_clear_keys()  # the previous request's caller, on a reused thread
        media_type = non_json_body(event)
        if media_type:
            return with_cors(_raw_error(415, "unsupported_media_type", f"send the body as {JSON} (got {media_type})"))
        if not utf8_body(event):
            return with_cors(_raw_error(400, "invalid_json", "request body is not valid UTF-8 JSON"))
        counting = _begin_api_call(event)
        try:
            response = app.resolve(event, context)
        finally:
            if counting:
                _finish_api_call(event)
        return with_cors(response)

    return handler


def with_cors(response: dict[str, Any]) -> dict[str, Any]:
    """Every API response, finished: CORS headers for the console's origin alone (Settings.console_origin,
    the CloudFront distribution in AWS; unset locally, where the console shares the API's origin). API
    Gateway answers the preflight OPTIONS itself, but a proxy integration's responses must carry the
    headers: https://docs.aws.amazon.com/apigateway/latest/developerguide/how-to-cors.html"""
    from raas.bootstrap import services
    from raas.domain.console_security import cors_headers

    origin = services().settings.console_origin
    if origin:
        response["headers"] = {**(response.get("headers") or {}), **cors_headers(origin)}
    return response


def _raw_error(status: int, code: str, message: str) -> dict[str, Any]:
    """An error answered before the resolver runs (it could not parse the request)."""
    body = json.dumps(error_body(code, message))
    return {"statusCode": status, "headers": {"Content-Type": JSON}, "body": body, "isBase64Encoded": False}


def utf8_body(event: dict[str, Any]) -> bool:
    """False for a base64 body that is not UTF-8 text (JSON must be); Powertools would raise on it."""
    if not event.get("body") or not event.get("isBase64Encoded"):
        return True
    try:
        base64.b64decode(event["body"], validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return False
    return True


def _begin_api_call(event: dict[str, Any]) -> bool:
    """One `api_calls` count per tenant request, keyed on API Gateway's request id (a retried Lambda
    invocation of the same request is not counted twice). It rides on the route's own usage event when
    the route records one (a query, a search: `RequestUsage`), else `_finish_api_call` writes it alone."""
    request = event.get("requestContext") or {}
    tenant_id = (request.get("authorizer") or {}).get("tenant_id")
    request_id = request.get("requestId")
    if not tenant_id or not request_id:
        return False
    from raas.bootstrap import services

    services().request_usage.begin(tenant_id, f"api-{request_id}")
    return True


def _finish_api_call(event: dict[str, Any]) -> None:
    from raas.bootstrap import services

    try:
        services().request_usage.finish()
    except Exception:  # metering must not fail a request that has already been served
        tenant_id = ((event.get("requestContext") or {}).get("authorizer") or {}).get("tenant_id")
        logger.exception("could not count the API call", extra={"tenant_id": tenant_id})
