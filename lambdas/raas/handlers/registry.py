"""The API's function groups: one Lambda each. The local platform and the CDK stacks both read this."""

from __future__ import annotations

import importlib
from types import ModuleType

# function group -> module exposing `router`, `app` and `handler`
API_HANDLERS: dict[str, str] = {
    "health": "raas.handlers.health",
    "openapi": "raas.handlers.openapi",
    "tenants": "raas.handlers.tenants",
    "keys": "raas.handlers.keys",
    "config": "raas.handlers.config",
    "documents": "raas.handlers.documents",
    "query": "raas.handlers.query",
}

# Functions driven by events rather than HTTP: name -> module exposing `handler`.
EVENT_HANDLERS: dict[str, str] = {
    "ingest": "raas.handlers.ingest",
}

AUTHORIZER = "raas.handlers.authorizer"

# (method, path template) served without the authorizer
PUBLIC_ROUTES: frozenset[tuple[str, str]] = frozenset({("GET", "/v1/health"), ("GET", "/v1/openapi.json")})


def load(group: str) -> ModuleType:
    return importlib.import_module(API_HANDLERS[group])
