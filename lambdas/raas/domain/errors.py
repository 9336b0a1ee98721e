"""Domain errors. Each carries a stable machine-readable code and the HTTP status it maps to."""

from __future__ import annotations

from typing import Any


class RaasError(Exception):
    """Base of every error the API reports to a caller."""

    status = 500
    code = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.details = details or []
        self.headers = headers or {}

    def to_body(self) -> dict[str, Any]:
        return error_body(self.code, self.message, self.details)


def error_body(code: str, message: str, details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The one shape of every error the platform answers, from a handler, the gateway or the HTTP server."""
    return {"error": {"code": code, "message": message, "details": details or []}}


class BadRequest(RaasError):
    status = 400
    code = "bad_request"


class Unauthorized(RaasError):
    status = 401
    code = "unauthorized"


class Forbidden(RaasError):
    status = 403
    code = "forbidden"


class NotFound(RaasError):
    status = 404
    code = "not_found"


class Conflict(RaasError):
    status = 409
    code = "conflict"


class PayloadTooLarge(RaasError):
    status = 413
    code = "payload_too_large"


class ValidationFailed(RaasError):
    """Input is well formed but breaks a rule (bounds, template rules, tier limits)."""

    status = 422
    code = "validation_error"


class TooManyRequests(RaasError):
    status = 429
    code = "rate_limited"


class ServiceUnavailable(RaasError):
    status = 503
    code = "service_unavailable"


class GatewayTimeout(RaasError):
    status = 504
    code = "upstream_timeout"


def pydantic_details(errors: list[Any], prefix: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    """Turns pydantic's error list into our `details` entries: which field and why."""
    details = []
    for err in errors:
        loc = tuple(prefix) + tuple(err.get("loc", ()))
        details.append(
            {
                "field": ".".join(str(part) for part in loc) or None,
                "message": err.get("msg", "invalid value"),
                "type": err.get("type", "value_error"),
            }
        )
    return details
