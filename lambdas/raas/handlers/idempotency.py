"""`Idempotency-Key` on the API's POST routes: a retried write is done once and answered with the first response.

Semantics follow Stripe's and the IETF draft "The Idempotency-Key HTTP Header Field"
(https://datatracker.ietf.org/doc/draft-ietf-httpapi-idempotency-key-header/):

- same key, same caller scope and same request (method, path, JSON body) within `EXPIRES_AFTER_SECONDS`:
  the first response is replayed (status, body, headers) with `Idempotent-Replayed: true`, and the
  work, and every usage counter it bumps, happened once;
- same key with another request: 422 `idempotency_key_reused`;
- same key while the first request still runs: 409 `idempotency_in_progress` (with `Retry-After`);
- no header: the route behaves as before.

The scope is the tenant id from the authorizer context (never the request), or `operator` for the
operator's routes: two tenants using the same key never meet. Only 2xx responses are stored; an error
leaves no record, so a retry after a failure does the work.

Built on Powertools' idempotency utility over the platform's DynamoDB idempotency table
(https://docs.powertools.aws.dev/lambda/python/latest/utilities/idempotency/): `event_key_jmespath`
picks (scope, key), `payload_validation_jmespath` the request fingerprint (a mismatch raises
IdempotencyValidationError), `response_hook` marks replays, and a failed function deletes its
in-progress record. The records carry the table's TTL attribute (`expiration`); DynamoDB deletes
expired items in the background, typically within a few days, and Powertools treats a record past
its expiry as absent meanwhile
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/howitworks-ttl.html).

Used as a route middleware (`@router.post(..., middlewares=[idempotent_post])`): Powertools runs it
after request validation (an invalid body is refused before any record exists) and around response
serialization, so what is stored is the JSON the client received.
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.shared.json_encoder import Encoder

from raas.bootstrap import services
from raas.domain.errors import BadRequest, Conflict, ServiceUnavailable, ValidationFailed
from raas.handlers.api import principal

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig
    from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

# Powertools' idempotency utility (a dozen modules) and the streaming module are imported on the first
# request that carries the header, not at cold start: most requests of these functions never need them.
IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
# Stripe keeps keys for 24 hours; a client retrying later than that is making a new request.
EXPIRES_AFTER_SECONDS = 24 * 3600
# Printable ASCII only: the draft defines the key as a Structured Field String (RFC 8941 section 3.3.3,
# characters 0x20-0x7E); anything else is refused rather than normalised.
_PRINTABLE = re.compile(r"[\x20-\x7e]+")
# One prefix for every API route: a key reused on another route is a mismatch (422), not a fresh key.
KEY_PREFIX = "raas-api"
STORE_NAME = "api"

# The record is keyed on (scope, key) only; the request itself is the payload Powertools validates.
EVENT_KEY = "[scope, key]"
FINGERPRINT = "fingerprint"

NextMiddleware = Callable[[APIGatewayRestResolver], Response[Any]]


class _NotStored(Exception):
    """Carries a non-2xx response out of the idempotent function, so Powertools deletes the record."""

    def __init__(self, response: Response[Any]):
        super().__init__(response.status_code)
        self.response = response


def idempotency_key(app: APIGatewayRestResolver) -> str | None:
    """The request's `Idempotency-Key`, or None without one; a malformed key is a 400."""
    event = app.current_event
    values = [
        value
        for name, listed in (event.get("multiValueHeaders") or {}).items()
        if name.lower() == IDEMPOTENCY_HEADER.lower()
        for value in (listed or [])
    ]
    single = event.headers.get(IDEMPOTENCY_HEADER)
    if len(values) > 1:
        raise BadRequest(f"send one {IDEMPOTENCY_HEADER} header, not {len(values)}", code="invalid_idempotency_key")
    if single is None:
        return None
    if not single or len(single) > MAX_KEY_LENGTH or not _PRINTABLE.fullmatch(single):
        raise BadRequest(f"{IDEMPOTENCY_HEADER} must be 1 to {MAX_KEY_LENGTH} printable ASCII characters", code="invalid_idempotency_key")
    return single


def _scope(app: APIGatewayRestResolver) -> str:
    caller = principal(app)  # the authorizer context; a request without one is refused (401) here
    return f"tenant:{caller.tenant_id}" if caller.tenant_id else "operator"


def idempotency_request(scope: str, key: str, method: str, path: str, body: Any) -> dict[str, Any]:
    """What Powertools keys (scope, key) and validates (the fingerprint: method, path, parsed JSON body,
    hashed with sorted keys, so formatting and key order do not make a retry a different request)."""
    return {"scope": scope, "key": key, "fingerprint": {"method": method, "path": path, "body": body}}


def _stored(response: Response[Any]) -> dict[str, Any]:
    body = response.body
    # serialized as the resolver would (its default serializer), so a first answer reads as it always did
    text = body if isinstance(body, str) else body.decode("utf-8") if isinstance(body, bytes) else _serialize(body)
    headers = {name: value for name, value in (response.headers or {}).items() if isinstance(value, str)}
    return {"status": response.status_code, "headers": headers, "body": text}


def _serialize(body: Any) -> str:
    return json.dumps(body, separators=(",", ":"), cls=Encoder)


# --- responses are stored sealed with the caller's own key ------------------------------------
#
# The table is shared by every tenant and its record ids are hashes, so IAM's dynamodb:LeadingKeys cannot fence
# it per tenant, and a stored response can hold tenant data (answers, snippets) or a secret shown once (the
# first admin key of POST /v1/tenants). Each response is therefore encrypted (AES-256-GCM) under a key derived
# (HKDF-SHA256) from the caller's scope and Idempotency-Key, which the table never holds (Powertools stores an
# MD5 of them): reading the table yields no response without the client's key. The protection is as strong as
# the key is unguessable, hence the advice to send a random one (a UUID v4).
_SEAL_INFO = b"raas idempotent response v1"


def _cipher(request: dict[str, Any]) -> Any:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    material = json.dumps([request["scope"], request["key"]]).encode()
    return AESGCM(HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_SEAL_INFO).derive(material))


def _seal(request: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    nonce = os.urandom(12)
    sealed = _cipher(request).encrypt(nonce, json.dumps(response).encode(), _SEAL_INFO)
    return {"nonce": base64.b64encode(nonce).decode(), "sealed": base64.b64encode(sealed).decode()}


def _open(request: dict[str, Any], stored: dict[str, Any]) -> dict[str, Any]:
    plain = _cipher(request).decrypt(base64.b64decode(stored["nonce"]), base64.b64decode(stored["sealed"]), _SEAL_INFO)
    opened: dict[str, Any] = json.loads(plain)
    return opened


def _replayed(response: Any, idempotent_data: DataRecord) -> Any:
    """Powertools' response hook: runs only when the response comes from the store, i.e. on a replay."""
    return {**response, "replayed": True}


def idempotency_config(lambda_context: Any = None) -> IdempotencyConfig:
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig

    config = IdempotencyConfig(
        event_key_jmespath=EVENT_KEY,
        payload_validation_jmespath=FINGERPRINT,
        raise_on_no_idempotency_key=True,
        expires_after_seconds=EXPIRES_AFTER_SECONDS,
        response_hook=_replayed,
    )
    if lambda_context is not None:
        # An in-progress record of a function that timed out expires with the invocation, not after 24 hours.
        config.register_lambda_context(lambda_context)
    return config


def idempotent_post(app: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response[Any]:
    """Route middleware: runs the route once per (scope, Idempotency-Key) and replays its 2xx response."""
    key = idempotency_key(app)
    if key is None:
        return next_middleware(app)
    from aws_lambda_powertools.utilities.idempotency import idempotent_function
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError,
        IdempotencyPersistenceLayerError,
        IdempotencyValidationError,
    )

    from raas.handlers.streaming import streaming_now

    if streaming_now(app):  # a streamed answer is written as it is produced: nothing to replay
        return next_middleware(app)
    event = app.current_event
    request = idempotency_request(_scope(app), key, event.http_method, event.path, event.json_body if event.body else None)

    def run(request: dict[str, Any]) -> dict[str, Any]:
        response = next_middleware(app)
        if not 200 <= response.status_code < 300:
            raise _NotStored(response)
        return _seal(request, _stored(response))

    once = idempotent_function(
        run,
        data_keyword_argument="request",
        persistence_store=services().idempotency_store(STORE_NAME),
        config=idempotency_config(app.lambda_context),
        key_prefix=KEY_PREFIX,
    )
    try:
        stored: dict[str, Any] = once(request=request)
    except _NotStored as failed:
        return failed.response
    except IdempotencyValidationError:
        raise ValidationFailed(
            f"this {IDEMPOTENCY_HEADER} was used with another request; send a new key for a new request",
            code="idempotency_key_reused",
        ) from None
    except IdempotencyAlreadyInProgressError:
        raise Conflict(
            f"a request with this {IDEMPOTENCY_HEADER} is still in progress; retry when it has finished",
            code="idempotency_in_progress",
            headers={"Retry-After": "1"},
        ) from None
    except IdempotencyPersistenceLayerError:
        raise ServiceUnavailable("the idempotency store is unavailable; retry with the same key", code="storage_unavailable") from None
    outcome = _open(request, stored)
    headers = dict(outcome.get("headers") or {})
    if stored.get("replayed"):
        headers[REPLAYED_HEADER] = "true"
    content_type = headers.pop("Content-Type", None)
    return Response(int(outcome["status"]), content_type, outcome["body"], headers=headers)
