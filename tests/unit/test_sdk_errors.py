"""Every error code the server can emit has its own exception class in the client.

The server's codes are found by reading its source, the way they are written there: `code="..."`
keyword arguments (`raise NotFound(..., code="document_not_found")`), `code = "..."` class
attributes (the error classes' defaults), the code argument of `gateway_error`/`error_response`/
`_raw_error`/`error_body`, the values of `*_ERROR_CODES` tables, the API Gateway responses of the
CDK app, and f-string codes expanded from the table below. A new code written any of these ways
fails this test until the client has a class for it; a new *way* of writing a code fails the
"every error_body caller is known" check."""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

import pytest

from raas.domain.tenants import TenantStatus
from raas_client import errors

ROOT = Path(__file__).resolve().parents[2]
SERVER = ROOT / "lambdas" / "raas"
ERROR_FUNCTIONS = {"gateway_error": 1, "error_response": 1, "_raw_error": 1, "error_body": 0}
# Codes built at run time: the f-string as written -> every code it can produce.
DYNAMIC_CODES = {
    "tenant_{tenant.status.value}": {f"tenant_{s.value}" for s in TenantStatus if s is not TenantStatus.ACTIVE},
}


def _constant(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


@functools.cache
def _trees() -> list[tuple[Path, ast.Module]]:
    return [(path, ast.parse(path.read_text(), str(path))) for path in [*SERVER.rglob("*.py"), ROOT / "stacks" / "api.py"]]


@functools.cache
def server_codes() -> tuple[frozenset[str], frozenset[str]]:
    """(codes, f-string codes not in DYNAMIC_CODES)."""
    codes: set[str] = set()
    unknown_dynamic: set[str] = set()
    for path, tree in _trees():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                for keyword in node.keywords:
                    if keyword.arg == "code":
                        if (value := _constant(keyword.value)) is not None:
                            codes.add(value)
                        elif isinstance(keyword.value, ast.JoinedStr):
                            written = ast.unparse(keyword.value)[2:-1]
                            if written in DYNAMIC_CODES:
                                codes |= DYNAMIC_CODES[written]
                            else:
                                unknown_dynamic.add(f"{path.relative_to(ROOT)}: {written}")
                func = node.func
                name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
                position = ERROR_FUNCTIONS.get(name)
                if position is not None and len(node.args) > position and (value := _constant(node.args[position])) is not None:
                    codes.add(value)
            elif isinstance(node, ast.ClassDef):
                for statement in node.body:
                    if not isinstance(statement, ast.Assign):
                        continue
                    named_code = any(isinstance(t, ast.Name) and t.id == "code" for t in statement.targets)
                    if named_code and (value := _constant(statement.value)) is not None:
                        codes.add(value)
            elif isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id.endswith("ERROR_CODES") for t in node.targets):
                if isinstance(node.value, ast.Dict):
                    codes |= {v for v in map(_constant, node.value.values) if v is not None}
            elif isinstance(node, ast.Tuple) and len(node.elts) == 4 and "ResponseType" in ast.unparse(node.elts[0]):
                # stacks/api.py: (apigw.ResponseType.X, status, code, message) — API Gateway's own answers
                value = _constant(node.elts[2])
                if value is not None and not value.startswith("$"):
                    codes.add(value)
    return frozenset(codes), frozenset(unknown_dynamic)


def test_the_scan_finds_codes_written_each_way() -> None:
    codes, _ = server_codes()
    # one of each: keyword, class default, gateway_error, FRAMING_ERROR_CODES, f-string, CDK gateway response
    assert {"document_not_found", "validation_error", "too_many_requests", "uri_too_long", "tenant_suspended", "request_refused"} <= codes
    assert len(codes) > 80


def test_every_code_the_server_can_emit_has_a_client_class() -> None:
    codes, unknown_dynamic = server_codes()
    assert not unknown_dynamic, f"codes built at run time: add them to DYNAMIC_CODES: {sorted(unknown_dynamic)}"
    missing = sorted(codes - set(errors.ERRORS_BY_CODE))
    assert not missing, f"the server can answer these codes; add a class each to clients/python/raas_client/errors.py: {missing}"


def test_every_code_the_readme_documents_has_a_client_class() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Errors", 1)[1].split("\n### ", 1)[0]
    documented = {c for c in re.findall(r"`([a-z][a-z0-9_]+)`", section) if "_" in c or c in {"unauthorized", "forbidden"}}
    documented -= {"export_first", "requests_per_second", "monthly_queries", "content_base64", "content_type"}  # field names
    assert len(documented) > 50
    missing = sorted(c for c in documented if c not in errors.ERRORS_BY_CODE)
    assert not missing, f"README 'Errors' names codes the client has no class for: {missing}"


def test_every_error_body_call_passes_its_code_where_the_scan_reads_it() -> None:
    """A call of the error helpers with a non-literal code must be one of the known forwarding sites, or the scan could miss codes."""
    forwarding = {
        ("api.py", "error_body"),  # error_response/_raw_error forward their own `code` parameter
        ("errors.py", "error_body"),  # RaasError.to_body forwards self.code (class defaults are scanned)
        ("gateway.py", "error_body"),
        ("gateway.py", "gateway_error"),  # the authorizer's context code (raised as a RaasError, scanned) and throttling
        ("server.py", "gateway_error"),  # FRAMING_ERROR_CODES (scanned)
        ("api.py", "error_response"),
    }
    odd = []
    for path, tree in _trees():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
                position = ERROR_FUNCTIONS.get(name)
                computed = position is not None and len(node.args) > position and _constant(node.args[position]) is None
                if computed and (path.name, name) not in forwarding:
                    odd.append(f"{path.relative_to(ROOT)}:{node.lineno} {ast.unparse(node)[:80]}")
    assert not odd, f"error helpers called with a computed code; teach server_codes() to read them: {odd}"


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (404, "document_not_found", errors.DocumentNotFoundError),
        (404, "not_found", errors.NotFoundError),
        (404, "some_new_code", errors.NotFoundError),
        (403, "tenant_suspended", errors.TenantSuspendedError),
        (403, "tenant_hibernating", errors.TenantNotActiveError),
        (429, "quota_exceeded", errors.QuotaExceededError),
        (418, "teapot", errors.ApiError),
        (599, "weird", errors.ServerError),
    ],
)
def test_codes_map_to_their_class_and_unknown_codes_to_their_status(status: int, code: str, cls: type[errors.ApiError]) -> None:
    error = errors.error_from_body(status, {"error": {"code": code, "message": "m", "details": [{"field": "x", "message": "y"}]}})
    assert type(error) is cls
    assert (error.status, error.code, error.details) == (status, code, [{"field": "x", "message": "y"}])
    assert isinstance(error, errors.RaasError)


def test_each_class_is_one_code_and_carries_its_status() -> None:
    for code, cls in errors.ERRORS_BY_CODE.items():
        assert cls.code == code
        assert cls.default_status is not None or issubclass(cls, errors.RequestRefusedError), code
