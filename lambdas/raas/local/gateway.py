"""Plays API Gateway (REST) in front of the real handlers: routing, authorizer, proxy events.

Unknown paths answer 404 and known paths with another method 405, before any
authorization, as the deployed API's gateway responses do.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from aws_lambda_powertools import Logger

from raas.domain import catalog
from raas.domain.errors import RaasError, error_body
from raas.handlers.api import RouteInfo, route_table
from raas.handlers.registry import API_HANDLERS, AUTHORIZER, PUBLIC_ROUTES, load
from raas.handlers.streaming import ResponseStream, response_stream
from raas.local.authorizer_cache import AuthorizerCache
from raas.local.containers import FunctionPool, Throttled, module_copy
from raas.local.invocation import DEFAULT_TIMEOUT_SECONDS, lambda_context
from raas.local.ratelimit import TokenBuckets, retry_after_header, tenant_rate
from raas.local.workers import WorkerPool

logger = Logger(service="raas")

STAGE = "v1"
ACCOUNT = "000000000000"
API_ID = "local"


@dataclass
class GatewayResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    streamed: bool = False  # status, headers and body were written to the client's stream already

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class _Route:
    group: str
    module: ModuleType
    info: RouteInfo


class _TrackedStream:
    """The client's stream as the handler sees it: remembers whether the response began, adds the request id."""

    def __init__(self, inner: ResponseStream, request_id: str):
        self.inner = inner
        self.request_id = request_id
        self.started = False

    def start(self, status: int, headers: dict[str, str]) -> None:
        self.started = True
        self.inner.start(status, {**headers, "X-Request-Id": self.request_id})

    def write(self, data: bytes) -> None:
        self.inner.write(data)


def gateway_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> GatewayResponse:
    """A refusal by the gateway itself, in the handlers' error shape (the deployed API's gateway responses)."""
    body = json.dumps(error_body(code, message)).encode()
    return GatewayResponse(status, {"Content-Type": "application/json", **(headers or {})}, body)


def payload_too_large(limit: int) -> GatewayResponse:
    return gateway_error(413, "payload_too_large", f"request body exceeds {limit} bytes")


def _outcome(result: dict[str, Any]) -> dict[str, Any] | GatewayResponse:
    """The authorizer's policy applied: its context for an Allow, the refusal it names for a Deny."""
    statement = result["policyDocument"]["Statement"][0]
    context = dict(result.get("context") or {})
    if statement["Effect"] != "Allow":
        return gateway_error(403, context.get("error_code", "forbidden"), context.get("error_message", "access denied"))
    return {**context, "principalId": result["principalId"]}


class LocalGateway:
    # REST API payload size: 10 MB, not adjustable; API Gateway answers REQUEST_TOO_LARGE (413), which the
    # stack maps to payload_too_large like this.
    # https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-execution-service-limits-table.html
    # https://docs.aws.amazon.com/apigateway/latest/developerguide/supported-gateway-response-types.html
    #
    # Concurrency: each function group is a pool of warm containers (raas.local.containers), each its
    # own copy of the handler module serving one request at a time, as a Lambda execution environment
    # does (the module's Powertools resolver keeps the request's route and arguments in `app.context`,
    # so two requests must never share a copy; the current event itself Powertools keeps process-wide,
    # which raas.handlers.resolver makes per thread). `concurrency` plays the function's reserved concurrency (default
    # RAAS_LOCAL_CONCURRENCY or 4), `tenant_share` what one tenant may hold of it at once (default
    # RAAS_LOCAL_TENANT_CONCURRENCY or half), and a request that gets no container within
    # `throttle_wait_seconds` (RAAS_LOCAL_THROTTLE_WAIT_SECONDS, 10) is refused with 429, as Lambda
    # throttles: https://docs.aws.amazon.com/lambda/latest/dg/lambda-concurrency.html
    def __init__(
        self,
        max_body_bytes: int = 10 * 1024 * 1024,
        rate_limits: bool = True,
        concurrency: int | None = None,
        tenant_share: int | None = None,
        throttle_wait_seconds: float | None = None,
        authorizer_cache: AuthorizerCache | None = None,
        workers: WorkerPool | None = None,
    ):
        self.max_body_bytes = max_body_bytes
        # With worker processes (raas.local.workers), a function's containers are slots of its concurrency and tenant
        # share here, and its code runs in a worker; without, each container is a copy of the module in this process.
        self.workers = workers
        self.authorizer_cache = authorizer_cache  # None: the authorizer answers every request (a TTL of 0)
        self.buckets = TokenBuckets() if rate_limits else None
        self.authorizer = __import__(AUTHORIZER, fromlist=["handler"])
        self.routes: list[_Route] = []
        self.pools: dict[str, FunctionPool] = {}
        for group in API_HANDLERS:
            module = load(group)
            start_container = module_copy if workers is None else (lambda _name, first=module: first)
            self.pools[group] = FunctionPool(f"raas-{group}", module, concurrency, tenant_share, throttle_wait_seconds, start_container)
            self.routes.extend(_Route(group, module, info) for info in route_table(module.app))

    def handle(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: bytes,
        source_ip: str = "127.0.0.1",
        stream: ResponseStream | None = None,
    ) -> GatewayResponse:
        """`stream`, when given, lets a handler write its response as it is produced (Server-Sent
        Events; raas.handlers.streaming); the answer then says `streamed` and holds no body."""
        request_id = str(uuid.uuid4())
        tracked = _TrackedStream(stream, request_id) if stream is not None else None
        response = self._handle(method.upper(), path, query, headers, body, source_ip, request_id, tracked)
        response.headers.setdefault("X-Request-Id", request_id)
        if tracked is not None and tracked.started:
            response.streamed = True
        return response

    def _handle(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: bytes,
        source_ip: str,
        request_id: str,
        stream: ResponseStream | None = None,
    ) -> GatewayResponse:
        if len(body) > self.max_body_bytes:
            return payload_too_large(self.max_body_bytes)
        matches = [r for r in self.routes if r.info.pattern.match(path)]
        route = next((r for r in matches if r.info.method == method), None)
        if route is None:
            if matches:
                allowed = ", ".join(sorted({r.info.method for r in matches}))
                return gateway_error(405, "method_not_allowed", f"{method} is not allowed on {path}", {"Allow": allowed})
            return gateway_error(404, "not_found", f"no route for {method} {path}")

        authorizer_context: dict[str, Any] = {}
        if (method, route.info.path) not in PUBLIC_ROUTES:
            outcome = self._authorize(method, path, route, query, headers, source_ip, request_id)
            if isinstance(outcome, GatewayResponse):
                return outcome
            authorizer_context = outcome
            throttled = self._throttle(authorizer_context)
            if throttled is not None:
                return throttled

        event = self._proxy_event(method, path, route, query, headers, body, source_ip, request_id, authorizer_context)
        # Public routes have no tenant: their share is counted per client address.
        caller = str(authorizer_context.get("tenant_id") or authorizer_context.get("principalId") or f"ip:{source_ip}")
        try:
            with self.pools[route.group].container(caller) as container, response_stream(stream):
                if self.workers is None:
                    result = container.handler(event, lambda_context(f"raas-{route.group}", request_id))
                else:
                    result = self.workers.invoke(route.group, event, request_id, DEFAULT_TIMEOUT_SECONDS)
        except Throttled as throttled:
            retry_after = {"Retry-After": retry_after_header(throttled.retry_after_seconds)}
            return gateway_error(429, "too_many_requests", throttled.message, retry_after)
        except Exception:  # a function that raises: API Gateway answers 502, and so do we (never a dropped connection)
            logger.exception("handler raised", extra={"group": route.group, "path": path})
            return gateway_error(502, "upstream_error", "the request failed inside the platform; it has been logged")
        return self._to_response(result)

    def _authorize(
        self, method: str, path: str, route: _Route, query: dict[str, list[str]], headers: dict[str, str], source_ip: str, request_id: str
    ) -> dict[str, Any] | GatewayResponse:
        cache = self.authorizer_cache
        identity = next((value for name, value in headers.items() if name.lower() == "authorization"), "")
        if cache is not None:
            if not identity:  # with caching on, API Gateway refuses a missing identity source itself
                return gateway_error(401, "unauthorized", "missing, invalid or revoked credentials")
            cached = cache.get(identity)
            if cached is not None:
                return _outcome(cached)
            generation = cache.generation
        event = {
            "type": "REQUEST",
            "methodArn": f"arn:aws:execute-api:us-east-1:{ACCOUNT}:{API_ID}/{STAGE}/{method}{path}",
            "resource": route.info.path,
            "path": path,
            "httpMethod": method,
            "headers": dict(headers),
            "queryStringParameters": {k: v[-1] for k, v in query.items()},
            "requestContext": {"stage": STAGE, "requestId": request_id, "identity": {"sourceIp": source_ip}},
        }
        try:
            result = self.authorizer.handler(event, lambda_context("raas-authorizer", request_id))
        except RaasError as exc:  # a dependency failure inside the authorizer
            return gateway_error(503, "authorizer_unavailable", exc.message)
        except Exception as exc:  # noqa: BLE001 - mirrors API Gateway: "Unauthorized" -> 401, anything else -> 5xx
            if str(exc) == "Unauthorized":
                return gateway_error(401, "unauthorized", "missing, invalid or revoked credentials")
            return gateway_error(503, "authorizer_unavailable", "the authorizer failed; try again")
        if cache is not None:
            cache.put(identity, result, generation)  # an Allow or a Deny policy alike
        return _outcome(result)

    def _throttle(self, context: dict[str, Any]) -> GatewayResponse | None:
        """The tenant's tier rate and burst, as its usage plan applies them in AWS."""
        tenant_id, tier = context.get("tenant_id"), context.get("tier")
        if self.buckets is None or not tenant_id or not tier:
            return None
        from raas.bootstrap import services  # the gateway plays API Gateway in front of the functions; it reads what they read

        limits = catalog.tier_limits(tier)
        # min(tier, tenant): the tenant's own `limits.requests_per_second` may only lower its tier's rate
        rate, burst = tenant_rate(limits, services().config_service.get(tenant_id).config.limits)
        wait = self.buckets.take(tenant_id, rate, burst)
        if not wait:
            return None
        whose = f"the {tier} tier" if rate == limits.rate_limit_rps else "this tenant's own limits"
        return gateway_error(429, "rate_limited", f"{whose} allow {rate} requests/s", {"Retry-After": retry_after_header(wait)})

    @staticmethod
    def _proxy_event(
        method: str,
        path: str,
        route: _Route,
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: bytes,
        source_ip: str,
        request_id: str,
        authorizer_context: dict[str, Any],
    ) -> dict[str, Any]:
        match = route.info.pattern.match(path)
        path_parameters = match.groupdict() if match else {}
        try:
            text, is_base64 = body.decode("utf-8"), False
        except UnicodeDecodeError:
            text, is_base64 = base64.b64encode(body).decode(), True
        resource = route.info.path.replace("<", "{").replace(">", "}")
        return {
            "resource": resource,
            "path": path,
            "httpMethod": method,
            "headers": dict(headers),
            "multiValueHeaders": {k: [v] for k, v in headers.items()},
            "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
            "multiValueQueryStringParameters": dict(query) or None,
            "pathParameters": path_parameters or None,
            "stageVariables": None,
            "requestContext": {
                "resourcePath": resource,
                "httpMethod": method,
                "path": f"/{STAGE}{path}",
                "stage": STAGE,
                "requestId": request_id,
                "accountId": ACCOUNT,
                "apiId": API_ID,
                "requestTimeEpoch": int(time.time() * 1000),
                "identity": {"sourceIp": source_ip},
                "authorizer": authorizer_context,
            },
            "body": text if body else None,
            "isBase64Encoded": is_base64,
        }

    @staticmethod
    def _to_response(result: dict[str, Any]) -> GatewayResponse:
        headers: dict[str, str] = {}
        for key, values in (result.get("multiValueHeaders") or {}).items():
            headers[key] = ", ".join(values)
        headers.update(result.get("headers") or {})
        raw = result.get("body") or ""
        body = base64.b64decode(raw) if result.get("isBase64Encoded") else raw.encode("utf-8")
        return GatewayResponse(int(result["statusCode"]), headers, body)
