"""GET /v1/openapi.json: the OpenAPI 3.1 document of the whole API (no auth)."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.router import Router

from raas import __version__
from raas.handlers.api import JSON, lambda_handler, make_app
from raas.handlers.idempotency import IDEMPOTENCY_HEADER, MAX_KEY_LENGTH, REPLAYED_HEADER, idempotent_post
from raas.handlers.registry import API_HANDLERS, PUBLIC_ROUTES, load

router = Router()


def combined_app() -> APIGatewayRestResolver:
    """One resolver holding every group's routes, for the spec (and the isolation tests)."""
    combined = make_app()
    for group in API_HANDLERS:
        combined.include_router(router if group == "openapi" else load(group).router)
    return combined


IDEMPOTENCY_PARAMETER: dict[str, Any] = {
    "name": IDEMPOTENCY_HEADER,
    "in": "header",
    "required": False,
    "description": "Makes a retry safe: the same key with the same request within 24 hours replays the first "
    f"2xx response (with `{REPLAYED_HEADER}: true`) and does the work once; the same key with another request is "
    "`422 idempotency_key_reused`, while the first still runs `409 idempotency_in_progress`. Keys are scoped to "
    f"the tenant (the operator, on operator routes). 1 to {MAX_KEY_LENGTH} printable ASCII characters.",
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH, "pattern": "^[\\x20-\\x7e]+$"},
}


def _idempotent_operations(app: APIGatewayRestResolver) -> set[tuple[str, str]]:
    """(method, OpenAPI path) of the routes that take `Idempotency-Key` (the ones with its middleware)."""
    routes = [*app._static_routes, *app._dynamic_routes]  # Powertools keeps these private; pinned <4 (as api.route_table)
    return {
        (route.method.lower(), route.path.replace("<", "{").replace(">", "}"))
        for route in routes
        if idempotent_post in (route.middlewares or [])
    }


@cache
def openapi_document() -> dict[str, Any]:
    # Powertools' OpenAPI models (about 45 ms of class building) load with the document, on its first request.
    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

    combined = combined_app()
    schema = combined.get_openapi_schema(
        title="raas",
        version=__version__,
        description="Multi-tenant RAG-as-a-Service. Authenticate with `Authorization: Bearer <API key or JWT>`.",
        security_schemes={"bearerAuth": HTTPBearer(description="API key (raas_…, raasop_…) or tenant JWT")},
        security=[{"bearerAuth": []}],
    )
    document: dict[str, Any] = json.loads(schema.model_dump_json(by_alias=True, exclude_none=True))
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            if (method.upper(), path.replace("{", "<").replace("}", ">")) in PUBLIC_ROUTES:
                operation["security"] = []
    # Declared here: a header parameter in the route signatures would need every route to take it as an argument.
    for method, path in _idempotent_operations(combined):
        operation = document["paths"][path][method]
        operation.setdefault("parameters", []).append(IDEMPOTENCY_PARAMETER)
        operation.setdefault("responses", {}).setdefault(
            "409", {"description": "A request with this Idempotency-Key is still in progress (`idempotency_in_progress`)"}
        )
    return document


@router.get("/v1/openapi.json", summary="This API's OpenAPI document", tags=["platform"], include_in_schema=False)
def get_openapi() -> Response[Any]:
    return Response(200, JSON, json.dumps(openapi_document()))


app = make_app()
app.include_router(router)
handler = lambda_handler(app)
