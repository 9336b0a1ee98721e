"""GET /v1/openapi.json: the OpenAPI 3.1 document of the whole API (no auth)."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer
from aws_lambda_powertools.event_handler.router import Router

from raas import __version__
from raas.handlers.api import JSON, lambda_handler, make_app
from raas.handlers.registry import API_HANDLERS, PUBLIC_ROUTES, load

router = Router()


def combined_app() -> APIGatewayRestResolver:
    """One resolver holding every group's routes, for the spec (and the isolation tests)."""
    combined = make_app()
    for group in API_HANDLERS:
        combined.include_router(router if group == "openapi" else load(group).router)
    return combined


@cache
def openapi_document() -> dict[str, Any]:
    schema = combined_app().get_openapi_schema(
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
    return document


@router.get("/v1/openapi.json", summary="This API's OpenAPI document", tags=["platform"], include_in_schema=False)
def get_openapi() -> Response[Any]:
    return Response(200, JSON, json.dumps(openapi_document()))


app = make_app()
app.include_router(router)
handler = lambda_handler(app)
