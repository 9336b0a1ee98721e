"""One exception per stable error code of the raas API.

Every error the API answers is `{"error": {"code", "message", "details"}}` with a stable `code`.
`error_from_response` turns it into the class registered for that code; a code this client does not
know yet (a newer server) becomes the class of its HTTP status, so `except NotFoundError` still
catches a new 404 code. `tests/unit/test_sdk_errors.py` fails when the server can emit a code that
has no class here.
"""

from __future__ import annotations

from typing import Any, ClassVar


class RaasError(Exception):
    """Base of every error this client raises.

    `status` is the HTTP status (None for errors raised by the client itself, such as a document
    that failed to index while `upload` waited for it), `code` the stable error code, `details` the
    per-field entries of validation errors, `request_id` the server's `X-Request-Id` (quote it when
    reporting a problem) and `retry_after` the seconds the server asked to wait, when it did.
    """

    code: ClassVar[str] = "error"
    default_status: ClassVar[int | None] = None

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        details: list[dict[str, Any]] | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status if status is not None else self.default_status
        if code is not None:
            self.code = code  # type: ignore[misc]  # an unknown code keeps its own string on the status class
        self.details = details or []
        self.request_id = request_id
        self.retry_after = retry_after
        self.headers = headers or {}

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, message={self.message!r}, request_id={self.request_id!r})"
        )


# --- raised by the client itself -------------------------------------------------------------------


class TransportError(RaasError):
    """The request could not be sent or its answer not read (connection refused, reset, timed out)."""

    code = "transport_error"


class ResponseFormatError(RaasError):
    """The server answered something this client cannot read (not JSON, or not the documented shape)."""

    code = "unexpected_response"


class DocumentFailedError(RaasError):
    """`documents.upload(..., wait=True)`: the document ended `failed`; `message` is the server's reason."""

    code = "document_failed"

    def __init__(self, message: str, *, document_id: str, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.document_id = document_id


class WaitTimeoutError(RaasError, TimeoutError):
    """`documents.wait_indexed`: the document was not indexed within the timeout."""

    code = "wait_timeout"


# --- one base per HTTP status ----------------------------------------------------------------------


class ApiError(RaasError):
    """An error answer from the API (any status)."""

    code = "api_error"


class BadRequestError(ApiError):
    code, default_status = "bad_request", 400


class UnauthorizedError(ApiError):
    code, default_status = "unauthorized", 401


class ForbiddenError(ApiError):
    code, default_status = "forbidden", 403


class NotFoundError(ApiError):
    code, default_status = "not_found", 404


class MethodNotAllowedError(ApiError):
    code, default_status = "method_not_allowed", 405


class RequestTimeoutError(ApiError):
    code, default_status = "request_timeout", 408


class ConflictError(ApiError):
    code, default_status = "conflict", 409


class LengthRequiredError(ApiError):
    code, default_status = "length_required", 411


class PayloadTooLargeError(ApiError):
    code, default_status = "payload_too_large", 413


class UriTooLongError(ApiError):
    code, default_status = "uri_too_long", 414


class UnsupportedMediaTypeError(ApiError):
    code, default_status = "unsupported_media_type", 415


class UnprocessableEntityError(ApiError):
    code, default_status = "unprocessable_entity", 422


class TooManyRequestsError(ApiError):
    code, default_status = "too_many_requests", 429


class HeadersTooLargeError(ApiError):
    code, default_status = "headers_too_large", 431


class ServerError(ApiError):
    """Any 5xx."""

    code, default_status = "server_error", 500


class InternalError(ServerError):
    code, default_status = "internal_error", 500


class NotImplementedByServerError(ServerError):
    code, default_status = "not_implemented", 501


class UpstreamError(ServerError):
    code, default_status = "upstream_error", 502


class ServiceUnavailableError(ServerError):
    code, default_status = "service_unavailable", 503


class GatewayTimeoutError(ServerError):
    code, default_status = "gateway_timeout", 504


class HttpVersionNotSupportedError(ServerError):
    code, default_status = "http_version_not_supported", 505


STATUS_CLASSES: dict[int, type[ApiError]] = {
    400: BadRequestError,
    401: UnauthorizedError,
    403: ForbiddenError,
    404: NotFoundError,
    405: MethodNotAllowedError,
    408: RequestTimeoutError,
    409: ConflictError,
    411: LengthRequiredError,
    413: PayloadTooLargeError,
    414: UriTooLongError,
    415: UnsupportedMediaTypeError,
    422: UnprocessableEntityError,
    429: TooManyRequestsError,
    431: HeadersTooLargeError,
    500: InternalError,
    501: NotImplementedByServerError,
    502: UpstreamError,
    503: ServiceUnavailableError,
    504: GatewayTimeoutError,
    505: HttpVersionNotSupportedError,
}


# --- one class per stable code ---------------------------------------------------------------------
# 400
class InvalidJsonError(BadRequestError):
    code = "invalid_json"


class MalformedRequestError(BadRequestError):
    code = "malformed_request"


class InvalidRequestError(BadRequestError):
    code = "invalid_request"


class InvalidCursorError(BadRequestError):
    code = "invalid_cursor"


class InvalidIfMatchError(BadRequestError):
    code = "invalid_if_match"


class InvalidDocumentError(BadRequestError):
    code = "invalid_document"


class InvalidBase64Error(BadRequestError):
    code = "invalid_base64"


class InvalidSignatureError(BadRequestError):
    code = "invalid_signature"


class WebhookTimestampInFutureError(BadRequestError):
    code = "webhook_timestamp_in_future"


class InvalidEventError(BadRequestError):
    code = "invalid_event"


class InvalidIdempotencyKeyError(BadRequestError):
    code = "invalid_idempotency_key"


# 401
class InvalidApiKeyError(UnauthorizedError):
    code = "invalid_api_key"


class InvalidTokenError(UnauthorizedError):
    code = "invalid_token"


class TokenExpiredError(UnauthorizedError):
    code = "token_expired"


class MissingCredentialsError(UnauthorizedError):
    code = "missing_credentials"


class JwtDisabledError(UnauthorizedError):
    code = "jwt_disabled"


# 403
class InsufficientRoleError(ForbiddenError):
    code = "insufficient_role"


class TenantKeyRequiredError(ForbiddenError):
    code = "tenant_key_required"


class InvalidRoleError(ForbiddenError):
    code = "invalid_role"


class RequestBlockedError(ForbiddenError):
    code = "request_blocked"


class TenantNotActiveError(ForbiddenError):
    """The caller's tenant is not active (suspended, still provisioning, being deleted)."""

    code = "tenant_not_active"


class TenantSuspendedError(TenantNotActiveError):
    code = "tenant_suspended"


class TenantProvisioningError(TenantNotActiveError):
    code = "tenant_provisioning"


class TenantDeletingError(TenantNotActiveError):
    code = "tenant_deleting"


class TenantDeletedError(TenantNotActiveError):
    code = "tenant_deleted"


# 404
class TenantNotFoundError(NotFoundError):
    code = "tenant_not_found"


class KeyNotFoundError(NotFoundError):
    code = "key_not_found"


class VersionNotFoundError(NotFoundError):
    code = "version_not_found"


class InvoiceNotFoundError(NotFoundError):
    code = "invoice_not_found"


class DocumentNotFoundError(NotFoundError):
    code = "document_not_found"


class ConversationNotFoundError(NotFoundError):
    code = "conversation_not_found"


class QueryNotFoundError(NotFoundError):
    code = "query_not_found"


class WebhookNotFoundError(NotFoundError):
    code = "webhook_not_found"


class DeliveryNotFoundError(NotFoundError):
    code = "delivery_not_found"


# 409
class VersionConflictError(ConflictError):
    code = "version_conflict"


class LastAdminKeyError(ConflictError):
    code = "last_admin_key"


class KeyLimitReachedError(ConflictError):
    code = "key_limit_reached"


class InvalidStatusTransitionError(ConflictError):
    code = "invalid_status_transition"


class IdempotencyInProgressError(ConflictError):
    code = "idempotency_in_progress"


class WebhookLimitReachedError(ConflictError):
    code = "webhook_limit_reached"


class WebhookDisabledError(ConflictError):
    code = "webhook_disabled"


# 413
class DocumentTooLargeError(PayloadTooLargeError):
    code = "document_too_large"


class RecordTooLargeError(PayloadTooLargeError):
    code = "record_too_large"


# 415
class ContentTypeMismatchError(UnsupportedMediaTypeError):
    code = "content_type_mismatch"


# 422
class ValidationFailedError(UnprocessableEntityError):
    code = "validation_error"


class InvalidPromptTemplateError(UnprocessableEntityError):
    code = "invalid_prompt_template"


class TierLimitExceededError(UnprocessableEntityError):
    code = "tier_limit_exceeded"


class InvalidMetadataError(UnprocessableEntityError):
    code = "invalid_metadata"


class InvalidFilenameError(UnprocessableEntityError):
    code = "invalid_filename"


class InvalidFilterError(UnprocessableEntityError):
    code = "invalid_filter"


class PromptInjectionDetectedError(UnprocessableEntityError):
    code = "prompt_injection_detected"


class InvalidPeriodError(UnprocessableEntityError):
    code = "invalid_period"


class InvalidTextError(UnprocessableEntityError):
    code = "invalid_text"


class IdempotencyKeyReusedError(UnprocessableEntityError):
    code = "idempotency_key_reused"


class InvalidWebhookUrlError(UnprocessableEntityError):
    code = "invalid_webhook_url"


class UnknownEventTypeError(UnprocessableEntityError):
    code = "unknown_event_type"


# 429
class RateLimitedError(TooManyRequestsError):
    code = "rate_limited"


class QuotaExceededError(TooManyRequestsError):
    """A monthly quota is used up: `retry_after` is the seconds to next month, so the client never waits for it."""

    code = "quota_exceeded"


class LlmBudgetExceededError(QuotaExceededError):
    code = "llm_budget_exceeded"


# 500 / 503 / 504
class StorageUnavailableError(ServiceUnavailableError):
    code = "storage_unavailable"


class AuthorizerUnavailableError(ServiceUnavailableError):
    code = "authorizer_unavailable"


class LlmUnavailableError(ServiceUnavailableError):
    code = "llm_unavailable"


class LlmNotConfiguredError(ServiceUnavailableError):
    code = "llm_not_configured"


class EmbeddingUnavailableError(ServiceUnavailableError):
    code = "embedding_unavailable"


class EmbedderNotConfiguredError(ServiceUnavailableError):
    code = "embedder_not_configured"


class RerankUnavailableError(ServiceUnavailableError):
    code = "rerank_unavailable"


class SearchUnavailableError(ServiceUnavailableError):
    code = "search_unavailable"


class EventBusUnavailableError(ServiceUnavailableError):
    code = "event_bus_unavailable"


class BillingUnavailableError(ServiceUnavailableError):
    code = "billing_unavailable"


class BillingNotConfiguredError(ServiceUnavailableError):
    code = "billing_not_configured"


class ShuttingDownError(ServiceUnavailableError):
    code = "shutting_down"


class UpstreamTimeoutError(GatewayTimeoutError):
    code = "upstream_timeout"


class LlmTimeoutError(GatewayTimeoutError):
    code = "llm_timeout"


class EmbeddingTimeoutError(GatewayTimeoutError):
    code = "embedding_timeout"


class SearchTimeoutError(GatewayTimeoutError):
    code = "search_timeout"


# 4xx refused by API Gateway with no more specific response type
class RequestRefusedError(ApiError):
    code = "request_refused"


def _all_classes() -> list[type[ApiError]]:
    found: list[type[ApiError]] = []
    pending: list[type[ApiError]] = [ApiError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


# Every code this client knows -> its class (status bases included: `not_found` is NotFoundError).
ERRORS_BY_CODE: dict[str, type[ApiError]] = {
    cls.code: cls
    for cls in _all_classes()
    if cls.__module__ == __name__
    and cls not in {ApiError, ServerError, GatewayTimeoutError, UnprocessableEntityError, TenantNotActiveError}
}


def error_class(status: int, code: str | None) -> type[ApiError]:
    """The class for an error answer: the code's own class, else its status's, else ApiError (or ServerError for 5xx)."""
    if code and code in ERRORS_BY_CODE:
        return ERRORS_BY_CODE[code]
    if code and code.startswith("tenant_") and status == 403:
        return TenantNotActiveError  # `tenant_<status>` for a status a newer server adds
    if status in STATUS_CLASSES:
        return STATUS_CLASSES[status]
    return ServerError if status >= 500 else ApiError


def error_from_body(
    status: int, body: Any, *, request_id: str | None = None, retry_after: float | None = None, headers: dict[str, str] | None = None
) -> ApiError:
    """The exception for an error answer whose body is `body` (already parsed JSON, or anything else)."""
    info = body.get("error") if isinstance(body, dict) else None
    if isinstance(info, dict) and isinstance(info.get("code"), str):
        code: str | None = info["code"]
        message = str(info.get("message") or code)
        details = [d for d in info.get("details") or [] if isinstance(d, dict)]
    else:
        code, message, details = None, f"HTTP {status} without the raas error shape: {str(body)[:200]}", []
    cls = error_class(status, code)
    return cls(message, status=status, code=code, details=details, request_id=request_id, retry_after=retry_after, headers=headers)
