"""A SigV4-checking front for the local AWS stand-in: moto answers only what the platform signed.

moto's server accepts any request, signed or not, so an upload ticket (a presigned S3 URL that shows
the local endpoint) would open every tenant's objects and every table to its holder. Locally the
platform's AWS calls are signed with credentials made at each start (`PlatformCredentials`) and
never shown; this front, on loopback, verifies AWS Signature Version 4 on every request, exactly as
AWS does, before it passes the request to moto, which listens only on a Unix socket in a private
directory. What AWS would refuse gets AWS's refusal, in the service's own error shape.

References (AWS's own documentation):
- canonical request, string to sign, signing key:
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html
- the Authorization header form:
  https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-auth-using-authorization-header.html
- presigned URLs (X-Amz-Algorithm/Credential/Date/Expires/SignedHeaders/Signature, UNSIGNED-PAYLOAD,
  X-Amz-Expires at most 604800 s = 7 days):
  https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html
- chunked uploads and trailers (STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER):
  https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming.html
  https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming-trailers.html
- S3's error codes (AccessDenied, InvalidAccessKeyId, SignatureDoesNotMatch, RequestTimeTooSkewed, ...):
  https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html
- the 15-minute window (RequestExpired) and the query-protocol codes (InvalidClientTokenId,
  IncompleteSignature, MissingAuthenticationToken): https://docs.aws.amazon.com/emr/latest/APIReference/CommonErrors.html
- JSON services' error shape ({"__type": ..., "message": ...}):
  https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Programming.Errors.html
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import re
import secrets
import shutil
import socket
import string
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from http.client import HTTPConnection, HTTPResponse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO, Any
from urllib.parse import quote, unquote, unquote_plus, urlsplit
from xml.sax.saxutils import escape

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
# RequestTimeTooSkewed / RequestExpired: a signed request is good 15 minutes either side of its date.
MAX_SKEW = timedelta(minutes=15)
# sigv4-query-string-auth: "The minimum value you can set is 1, and the maximum is 604800 (seven days)".
MAX_PRESIGN_SECONDS = 604_800
# The largest single PUT S3 takes (EntityTooLarge beyond); bodies are spooled to disk past SPOOL_IN_MEMORY.
MAX_BODY_BYTES = 5 * 1024**3
SPOOL_IN_MEMORY = 8 * 1024 * 1024
COPY_BUFFER = 64 * 1024
_HEX64 = re.compile(r"[0-9a-f]{64}")
_AMZ_DATE = "%Y%m%dT%H%M%SZ"
# Unreserved characters (RFC 3986) are the only ones SigV4 leaves unencoded.
_UNRESERVED = "-_.~"
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te", "trailer", "transfer-encoding"}
    | {"upgrade"}
)
# The query-protocol services among those the platform calls; S3 is REST-XML; the rest speak JSON.
_QUERY_PROTOCOL = frozenset({"sts", "iam", "sns", "ses", "cloudformation", "ec2", "rds"})


@dataclass(frozen=True)
class PlatformCredentials:
    """The only credentials the local stand-in accepts, made at each start; the secret never leaves the process."""

    access_key_id: str
    secret_access_key: str = field(repr=False)

    @classmethod
    def generate(cls) -> PlatformCredentials:
        # The shape of an IAM access key (AKIA + 16 of [A-Z2-7]) and its 40-character secret.
        key_alphabet = string.ascii_uppercase + "234567"
        secret_alphabet = string.ascii_letters + string.digits + "+/"
        return cls(
            "AKIA" + "".join(secrets.choice(key_alphabet) for _ in range(16)),
            "".join(secrets.choice(secret_alphabet) for _ in range(40)),
        )


class Refusal(Exception):
    """Why AWS would not serve a request; `kind` picks the service's own error code."""

    def __init__(self, kind: str, message: str, *, query_auth: bool = False):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.query_auth = query_auth


# kind -> (S3 code, status) / (JSON __type, status) / (query-protocol code, status)
_S3_ERRORS = {
    "missing": ("AccessDenied", 403),
    "cors": ("AccessForbidden", 403),  # a preflight no CORS rule allows
    "malformed": ("AuthorizationHeaderMalformed", 400),
    "malformed_query": ("AuthorizationQueryParametersError", 400),
    "unsupported": ("InvalidRequest", 400),
    "both": ("InvalidArgument", 400),
    "token": ("InvalidToken", 400),
    "unknown_key": ("InvalidAccessKeyId", 403),
    "signature": ("SignatureDoesNotMatch", 403),
    "skewed": ("RequestTimeTooSkewed", 403),
    "expired": ("AccessDenied", 403),
    "unsigned_headers": ("AccessDenied", 403),
    "payload": ("XAmzContentSHA256Mismatch", 400),
    "chunk": ("SignatureDoesNotMatch", 403),
    "framing": ("IncompleteBody", 400),
    "too_large": ("EntityTooLarge", 400),
}
_JSON_ERRORS = {
    "missing": ("MissingAuthenticationTokenException", 400),
    "malformed": ("IncompleteSignatureException", 400),
    "malformed_query": ("IncompleteSignatureException", 400),
    "unsupported": ("IncompleteSignatureException", 400),
    "both": ("IncompleteSignatureException", 400),
    "token": ("UnrecognizedClientException", 400),
    "unknown_key": ("UnrecognizedClientException", 400),
    "signature": ("InvalidSignatureException", 400),
    "skewed": ("InvalidSignatureException", 400),
    "expired": ("InvalidSignatureException", 400),
    "unsigned_headers": ("InvalidSignatureException", 400),
    "payload": ("InvalidSignatureException", 400),
    "chunk": ("InvalidSignatureException", 400),
    "framing": ("SerializationException", 400),
    "too_large": ("RequestEntityTooLargeException", 413),
}
_QUERY_ERRORS = {
    "missing": ("MissingAuthenticationToken", 403),
    "malformed": ("IncompleteSignature", 400),
    "malformed_query": ("IncompleteSignature", 400),
    "unsupported": ("IncompleteSignature", 400),
    "both": ("IncompleteSignature", 400),
    "token": ("InvalidClientTokenId", 403),
    "unknown_key": ("InvalidClientTokenId", 403),
    "signature": ("SignatureDoesNotMatch", 403),
    "skewed": ("SignatureDoesNotMatch", 403),
    "expired": ("SignatureDoesNotMatch", 403),
    "unsigned_headers": ("SignatureDoesNotMatch", 403),
    "payload": ("SignatureDoesNotMatch", 403),
    "chunk": ("SignatureDoesNotMatch", 403),
    "framing": ("MalformedInput", 400),
    "too_large": ("RequestEntityTooLarge", 413),
}


@dataclass(frozen=True)
class ErrorResponse:
    status: int
    content_type: str
    body: bytes


def render_refusal(refusal: Refusal, protocol: str, json_content_type: str = "application/x-amz-json-1.0") -> ErrorResponse:
    """The refusal as the service would word it: S3's XML <Error>, a JSON __type, or a query-protocol <ErrorResponse>."""
    request_id = uuid.uuid4().hex.upper()
    message = refusal.message
    if refusal.kind in ("unknown_key", "token") and protocol != "s3":
        message = "The security token included in the request is invalid."  # how DynamoDB, KMS, STS... word it
    if protocol == "json":
        code, status = _JSON_ERRORS[refusal.kind]
        body = json.dumps({"__type": f"com.amazon.coral.service#{code}", "message": message}).encode()
        return ErrorResponse(status, json_content_type, body)
    if protocol == "query":
        code, status = _QUERY_ERRORS[refusal.kind]
        xml = (
            f'<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>{code}</Code>'
            f"<Message>{escape(message)}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        )
        return ErrorResponse(status, "text/xml", xml.encode())
    code, status = _S3_ERRORS[refusal.kind]
    xml = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{escape(refusal.message)}</Message>'
        f"<RequestId>{request_id}</RequestId></Error>"
    )
    return ErrorResponse(status, "application/xml", xml.encode())


def detect_protocol(target: str, headers: Mapping[str, list[str]]) -> str:
    """Which error shape the caller expects: from the signature's scope when there is one, else from the request."""
    credential = _credential_field(target, headers)
    service = credential.split("/")[3] if credential and credential.count("/") == 4 else None
    if service == "s3":
        return "s3"
    if service in _QUERY_PROTOCOL:
        return "query"
    if service:
        return "json"
    content_type = _first(headers, "content-type").lower()
    if _first(headers, "x-amz-target") or "x-amz-json" in content_type:
        return "json"
    if "x-www-form-urlencoded" in content_type:
        return "query"
    return "s3"


def _credential_field(target: str, headers: Mapping[str, list[str]]) -> str | None:
    authorization = _first(headers, "authorization")
    match = re.search(r"Credential=([^,\s]+)", authorization)
    if match:
        return match.group(1)
    for name, value in _query_pairs(target.partition("?")[2]):
        if name == "X-Amz-Credential":
            return value
    return None


def carries_signature(request: IncomingRequest) -> bool:
    """Whether the request claims any AWS authentication at all (else: anonymous, refused outright)."""
    query_names = {name for name, _ in _query_pairs(request.target.partition("?")[2])}
    return bool(_first(request.headers, "authorization")) or bool(query_names & {"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature"})


def _first(headers: Mapping[str, list[str]], name: str) -> str:
    values = headers.get(name)
    return values[0] if values else ""


def _query_pairs(raw_query: str) -> list[tuple[str, str]]:
    # Decoded as moto (werkzeug) decodes them, so the signature covers what moto will act on.
    pairs = []
    for part in raw_query.split("&"):
        if part:
            name, _, value = part.partition("=")
            pairs.append((unquote_plus(name), unquote_plus(value)))
    return pairs


def _encode(value: str) -> str:
    return quote(value, safe=_UNRESERVED)


def canonical_uri(raw_path: str, service: str) -> str:
    """S3 encodes the path once, as sent; every other service normalises it and encodes it twice
    (reference_sigv-create-signed-request: "each path segment must be URI-encoded twice ... except Amazon S3")."""
    if service == "s3":
        return quote(unquote(raw_path) or "/", safe="/" + _UNRESERVED)
    segments: list[str] = []
    for segment in raw_path.split("/"):
        if segment == "..":
            if segments:
                segments.pop()
        elif segment not in ("", "."):
            segments.append(segment)
    normalized = "/" + "/".join(segments)
    if raw_path.endswith("/") and normalized != "/":
        normalized += "/"
    return quote(normalized, safe="/" + _UNRESERVED)


def canonical_query(raw_query: str, *, drop_signature: bool) -> str:
    pairs = [
        (_encode(name), _encode(value)) for name, value in _query_pairs(raw_query) if not (drop_signature and name == "X-Amz-Signature")
    ]
    return "&".join(f"{name}={value}" for name, value in sorted(pairs))


def canonical_headers(headers: Mapping[str, list[str]], signed: list[str]) -> str:
    # Lowercase(name) ':' Trimall(value), repeated values joined with ','; only the signed headers.
    return "".join(f"{name}:{','.join(' '.join(v.split()) for v in headers.get(name, []))}\n" for name in signed)


@dataclass
class IncomingRequest:
    """A request as it arrived: the raw request-target (path?query, still percent-encoded) and lowercased headers."""

    method: str
    target: str
    headers: dict[str, list[str]]

    @classmethod
    def of(cls, method: str, target: str, header_pairs: Iterable[tuple[str, str]]) -> IncomingRequest:
        headers: dict[str, list[str]] = {}
        for name, value in header_pairs:
            headers.setdefault(name.lower(), []).append(value)
        if target.startswith(("http://", "https://")):  # absolute-form: keep only path and query
            target = "/" + target.split("://", 1)[1].partition("/")[2]
        return cls(method.upper(), target, headers)


@dataclass(frozen=True)
class Verified:
    """What a chunked upload's chunk signatures chain from."""

    payload_hash: str
    timestamp: str
    scope: str
    seed_signature: str
    service: str


class SigV4Verifier:
    """Verifies SigV4 (header and presigned forms) against the platform's credentials, with botocore's signing code."""

    def __init__(self, credentials: PlatformCredentials, region: str, clock: Callable[[], datetime] | None = None):
        self.credentials = credentials
        self.region = region
        self.clock = clock or (lambda: datetime.now(UTC))

    def verify(self, request: IncomingRequest, body_sha256: str) -> Verified:
        """Raises Refusal unless AWS would accept the request; `body_sha256` is the hash of the body as received."""
        raw_query = request.target.partition("?")[2]
        query = dict(_query_pairs(raw_query))
        authorization = _first(request.headers, "authorization")
        if authorization and "X-Amz-Algorithm" in query:
            raise Refusal("both", "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization header")
        if "X-Amz-Algorithm" in query or "X-Amz-Signature" in query or "X-Amz-Credential" in query:
            return self._verify_presigned(request, query, body_sha256)
        if authorization:
            return self._verify_header(request, authorization, body_sha256)
        if "Signature" in query or "AWSAccessKeyId" in query:
            raise Refusal("unsupported", "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.")
        raise Refusal("missing", "Access Denied")

    # -- the two forms -----------------------------------------------------------------------------

    def _verify_header(self, request: IncomingRequest, authorization: str, body_sha256: str) -> Verified:
        algorithm, _, rest = authorization.strip().partition(" ")
        if algorithm != ALGORITHM:
            raise Refusal("unsupported", "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.")
        fields: dict[str, str] = {}
        for part in rest.split(","):
            name, eq, value = part.strip().partition("=")
            if not eq or name in fields:
                raise Refusal("malformed", "The authorization header is malformed")
            fields[name] = value.strip()
        if set(fields) != {"Credential", "SignedHeaders", "Signature"}:
            raise Refusal("malformed", "The authorization header is malformed; it needs Credential, SignedHeaders and Signature")
        access_key, day, service = self._scope(fields["Credential"], "malformed")
        if "x-amz-date" in request.headers:
            timestamp = _first(request.headers, "x-amz-date")
            when = _parse_amz_date(timestamp, "malformed")
        elif "date" in request.headers:
            try:
                when = parsedate_to_datetime(_first(request.headers, "date")).astimezone(UTC)
            except (TypeError, ValueError):
                raise Refusal("malformed", "The request date is not a valid date") from None
            timestamp = when.strftime(_AMZ_DATE)
        else:
            raise Refusal("malformed", "AWS authentication requires a valid Date or x-amz-date header")
        if day != timestamp[:8]:
            raise Refusal("malformed", f"Invalid credential date. Date is not the same as X-Amz-Date: {day}")
        date_header = None if "x-amz-date" in request.headers else "date"
        signed = self._signed_headers(fields["SignedHeaders"], request, "malformed", date_header)
        self._known_key(access_key)
        now = self.clock()
        if abs(now - when) > MAX_SKEW:
            raise Refusal("skewed", f"Signature expired: {timestamp} is outside 15 minutes of {now.strftime(_AMZ_DATE)}")
        payload_hash = self._payload_hash(request, service, body_sha256, header_auth=True)
        self._check(request, service, signed, payload_hash, timestamp, fields["Signature"], query_auth=False)
        return Verified(payload_hash, timestamp, f"{day}/{self.region}/{service}/aws4_request", fields["Signature"].lower(), service)

    def _verify_presigned(self, request: IncomingRequest, query: dict[str, str], body_sha256: str) -> Verified:
        required = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-SignedHeaders", "X-Amz-Signature")
        missing = [name for name in required if name not in query]
        if missing:
            raise Refusal("malformed_query", f"Query-string authentication requires {', '.join(missing)}", query_auth=True)
        if query["X-Amz-Algorithm"] != ALGORITHM:
            raise Refusal("malformed_query", 'X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"', query_auth=True)
        access_key, day, service = self._scope(query["X-Amz-Credential"], "malformed_query")
        timestamp = query["X-Amz-Date"]
        when = _parse_amz_date(timestamp, "malformed_query")
        if day != timestamp[:8]:
            raise Refusal("malformed_query", f"Invalid credential date. Date is not the same as X-Amz-Date: {day}", query_auth=True)
        expires_text = query.get("X-Amz-Expires", "")
        if not expires_text.isdigit() or not 1 <= int(expires_text) <= MAX_PRESIGN_SECONDS:
            raise Refusal("malformed_query", "X-Amz-Expires must be between 1 and 604800 seconds (a week)", query_auth=True)
        signed = self._signed_headers(query["X-Amz-SignedHeaders"], request, "malformed_query", None)
        self._known_key(access_key)
        now = self.clock()
        if now > when + timedelta(seconds=int(expires_text)):
            raise Refusal("expired", "Request has expired", query_auth=True)
        if when - now > MAX_SKEW:
            raise Refusal("expired", "Request is not yet valid", query_auth=True)
        payload_hash = self._payload_hash(request, service, body_sha256, header_auth=False)
        self._check(request, service, signed, payload_hash, timestamp, query["X-Amz-Signature"], query_auth=True)
        return Verified(payload_hash, timestamp, f"{day}/{self.region}/{service}/aws4_request", query["X-Amz-Signature"].lower(), service)

    # -- shared checks -----------------------------------------------------------------------------

    def _scope(self, credential: str, malformed: str) -> tuple[str, str, str]:
        parts = credential.split("/")
        if len(parts) != 5 or parts[4] != "aws4_request" or not all(parts):
            raise Refusal(malformed, "The credential must be <key>/<YYYYMMDD>/<region>/<service>/aws4_request")
        access_key, day, region, service, _ = parts
        if region != self.region:
            raise Refusal(malformed, f"the region '{region}' is wrong; expecting '{self.region}'")
        return access_key, day, service

    def _signed_headers(self, listed: str, request: IncomingRequest, malformed: str, date_header: str | None) -> list[str]:
        signed = listed.split(";")
        if signed != sorted(set(signed)) or any(name != name.lower() or not name for name in signed):
            raise Refusal(malformed, "SignedHeaders must be lowercase, sorted and separated by ';'")
        if "host" not in signed:
            raise Refusal(malformed, "The host header must be signed")
        if date_header and date_header not in signed:
            raise Refusal(malformed, "The date header must be signed")
        # S3 refuses a request carrying x-amz-* headers it was not signed with ("There were headers
        # present in the request which were not signed"): otherwise a presigned PUT could add, say,
        # x-amz-copy-source and copy another tenant's object into its key.
        unsigned = sorted(name for name in request.headers if name.startswith("x-amz-") and name not in signed)
        if unsigned:
            raise Refusal("unsigned_headers", f"There were headers present in the request which were not signed: {', '.join(unsigned)}")
        if "x-amz-security-token" in request.headers:
            # The local platform issues no session tokens; only its own long-term key is good.
            raise Refusal("token", "The provided token is malformed or otherwise invalid.")
        return signed

    def _known_key(self, access_key: str) -> None:
        if not hmac.compare_digest(access_key.encode(), self.credentials.access_key_id.encode()):
            raise Refusal("unknown_key", "The AWS Access Key Id you provided does not exist in our records.")

    def _payload_hash(self, request: IncomingRequest, service: str, body_sha256: str, *, header_auth: bool) -> str:
        claimed = _first(request.headers, "x-amz-content-sha256")
        if service == "s3" and header_auth and not claimed:
            raise Refusal("malformed", "Missing required header for this request: x-amz-content-sha256")
        if not claimed:
            # Presigned S3 URLs sign the constant UNSIGNED-PAYLOAD; everything else signs the body's hash.
            return UNSIGNED_PAYLOAD if service == "s3" else body_sha256
        if claimed in (UNSIGNED_PAYLOAD, STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER):
            if claimed.startswith("STREAMING-") and (not header_auth or "aws-chunked" not in _first(request.headers, "content-encoding")):
                raise Refusal("malformed", f"{claimed} needs the Authorization header and Content-Encoding: aws-chunked")
            return claimed
        if not _HEX64.fullmatch(claimed):
            raise Refusal("malformed", "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-..., or a valid sha256 value.")
        if not hmac.compare_digest(claimed, body_sha256):
            raise Refusal("payload", "The provided 'x-amz-content-sha256' header does not match what was computed.")
        return claimed

    def _check(
        self,
        request: IncomingRequest,
        service: str,
        signed: list[str],
        payload_hash: str,
        timestamp: str,
        provided: str,
        *,
        query_auth: bool,
    ) -> None:
        raw_path, _, raw_query = request.target.partition("?")
        canonical = "\n".join(
            [
                request.method,
                canonical_uri(raw_path, service),
                canonical_query(raw_query, drop_signature=query_auth),
                canonical_headers(request.headers, signed),
                ";".join(signed),
                payload_hash,
            ]
        )
        auth, carrier = self._signer(service, timestamp)
        expected = auth.signature(auth.string_to_sign(carrier, canonical), carrier)
        if not hmac.compare_digest(expected, provided.lower()):
            raise Refusal(
                "signature",
                "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
                query_auth=query_auth,
            )

    def _signer(self, service: str, timestamp: str) -> tuple[SigV4Auth, AWSRequest]:
        # botocore's own string to sign and key derivation (kDate -> kRegion -> kService -> kSigning,
        # HMAC-SHA256); the carrier request holds only the timestamp they read.
        auth = SigV4Auth(Credentials(self.credentials.access_key_id, self.credentials.secret_access_key), service, self.region)
        carrier = AWSRequest(method="GET", url="http://localhost/")
        carrier.context["timestamp"] = timestamp
        return auth, carrier

    def _sign(self, service: str, timestamp: str, string_to_sign: str) -> str:
        auth, carrier = self._signer(service, timestamp)
        signature: str = auth.signature(string_to_sign, carrier)
        return signature

    def verify_chunks(self, verified: Verified, body: IO[bytes]) -> None:
        """Checks every chunk signature of a signed aws-chunked body (and its trailer's), chained from the seed.

        sigv4-streaming: chunk string to sign = "AWS4-HMAC-SHA256-PAYLOAD" \\n timestamp \\n scope \\n
        previous signature \\n sha256("") \\n sha256(chunk data); the final chunk is empty.
        sigv4-streaming-trailers: "AWS4-HMAC-SHA256-TRAILER" \\n timestamp \\n scope \\n previous signature
        \\n sha256(trailer lines).
        STREAMING-UNSIGNED-PAYLOAD-TRAILER bodies carry no chunk signatures (in AWS neither): the seed
        signature over the headers is their check (the trailing checksum is integrity, left to moto).
        """
        if verified.payload_hash not in (STREAMING_SIGNED, STREAMING_SIGNED_TRAILER):
            return
        previous = verified.seed_signature
        while True:
            header = _read_line(body)
            size_text, _, extension = header.partition(";")
            name, _, signature = extension.partition("=")
            if name != "chunk-signature" or not re.fullmatch(r"[0-9a-fA-F]+", size_text):
                raise Refusal("chunk", "The chunk is not signed (chunk-signature missing)")
            size = int(size_text, 16)
            data = body.read(size)
            if len(data) != size or body.read(2) != b"\r\n":
                raise Refusal("framing", "The aws-chunked body ended inside a chunk")
            digest = hashlib.sha256(data).hexdigest()
            sts = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", verified.timestamp, verified.scope, previous, EMPTY_SHA256, digest])
            expected = self._sign(verified.service, verified.timestamp, sts)
            if not hmac.compare_digest(expected, signature.lower()):
                raise Refusal("chunk", "The chunk signature does not match the signature we calculated")
            previous = expected
            if size == 0:
                break
        if verified.payload_hash != STREAMING_SIGNED_TRAILER:
            return
        trailer_lines: list[str] = []
        trailer_signature = ""
        while True:
            line = _read_line(body)
            if not line:
                break
            name, _, value = line.partition(":")
            if name.strip().lower() == "x-amz-trailer-signature":
                trailer_signature = value.strip()
            else:
                trailer_lines.append(f"{name.strip().lower()}:{value.strip()}\n")
        trailer_digest = hashlib.sha256("".join(trailer_lines).encode()).hexdigest()
        sts = "\n".join(["AWS4-HMAC-SHA256-TRAILER", verified.timestamp, verified.scope, previous, trailer_digest])
        expected = self._sign(verified.service, verified.timestamp, sts)
        if not hmac.compare_digest(expected, trailer_signature.lower()):
            raise Refusal("chunk", "The trailer signature does not match the signature we calculated")


def _parse_amz_date(value: str, malformed: str) -> datetime:
    try:
        return datetime.strptime(value, _AMZ_DATE).replace(tzinfo=UTC)
    except ValueError:
        raise Refusal(malformed, "X-Amz-Date must be in the ISO8601 basic format yyyyMMdd'T'HHmmss'Z'") from None


def _read_line(body: IO[bytes], limit: int = 4096) -> str:
    line = body.readline(limit)
    if not line.endswith(b"\r\n"):
        raise Refusal("framing", "The aws-chunked body is malformed")
    return line[:-2].decode("latin-1")


# --- the HTTP front ---------------------------------------------------------------------------------


class _UnixHTTPConnection(HTTPConnection):
    """HTTP to moto over its Unix socket (the only way in: no TCP port for anyone to find)."""

    def __init__(self, socket_path: str, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self.socket_path = socket_path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.socket_path)
        self.sock = sock


class _BodyError(Exception):
    def __init__(self, refusal: Refusal):
        super().__init__(refusal.message)
        self.refusal = refusal


@dataclass(frozen=True)
class CorsRule:
    """One rule of a bucket's CORS configuration (the fields S3's PutBucketCors takes)."""

    allowed_methods: tuple[str, ...]
    allowed_origins: tuple[str, ...]
    allowed_headers: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    max_age_seconds: int | None = None


def _wildcard_match(pattern: str, value: str, *, case_sensitive: bool) -> bool:
    # "Each AllowedOrigin string can contain at most one * wildcard character", likewise AllowedHeader
    if not case_sensitive:
        pattern, value = pattern.lower(), value.lower()
    if "*" not in pattern:
        return pattern == value
    head, _, tail = pattern.partition("*")
    return len(value) >= len(head) + len(tail) and value.startswith(head) and value.endswith(tail)


def answer_preflight(rules: Sequence[CorsRule] | None, origin: str, method: str, requested_headers: str) -> dict[str, str] | None:
    """S3's answer to a CORS preflight (`OPTIONS` with Origin and Access-Control-Request-Method): the
    response headers of the first rule whose origin, method and *every* requested header match, or None
    (S3 then answers 403 "CORSResponse: This CORS request is not allowed", and without any CORS
    configuration 403 as well). Browsers never sign a preflight, so S3 evaluates it unauthenticated.
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/cors.html ("How does Amazon S3 evaluate the CORS
    configuration on a bucket?"), https://docs.aws.amazon.com/AmazonS3/latest/API/RESTOPTIONSobject.html"""
    asked = [h.strip() for h in requested_headers.split(",") if h.strip()]
    for rule in rules or ():
        if not any(_wildcard_match(allowed, origin, case_sensitive=True) for allowed in rule.allowed_origins):
            continue
        if method not in rule.allowed_methods:  # methods are case-sensitive tokens (GET, PUT, HEAD, POST, DELETE)
            continue
        if not all(any(_wildcard_match(a, h, case_sensitive=False) for a in rule.allowed_headers) for h in asked):
            continue
        headers = {
            "Access-Control-Allow-Origin": "*" if "*" in rule.allowed_origins else origin,
            "Access-Control-Allow-Methods": ", ".join(rule.allowed_methods),
            "Vary": "Origin, Access-Control-Request-Headers, Access-Control-Request-Method",
        }
        if asked:
            headers["Access-Control-Allow-Headers"] = ", ".join(h.lower() for h in asked)
        if rule.expose_headers:
            headers["Access-Control-Expose-Headers"] = ", ".join(rule.expose_headers)
        if rule.max_age_seconds is not None:
            headers["Access-Control-Max-Age"] = str(rule.max_age_seconds)
        return headers
    return None


def _bucket_cors_rules(bucket: str) -> list[CorsRule] | None:
    """The bucket's CORS rules as moto holds them (this process's backends), None without a configuration."""
    from moto.s3.models import s3_backends

    located = s3_backends.bucket_accounts.get(bucket)
    if located is None:
        return None
    partition, account = located
    found = s3_backends[account][partition].buckets.get(bucket)
    if found is None or not found.cors:
        return None
    return [
        CorsRule(
            allowed_methods=tuple(rule.allowed_methods or ()),
            allowed_origins=tuple(rule.allowed_origins or ()),
            allowed_headers=tuple(rule.allowed_headers or ()),
            expose_headers=tuple(rule.exposed_headers or ()),
            max_age_seconds=int(rule.max_age_seconds) if rule.max_age_seconds is not None else None,
        )
        for rule in found.cors
    ]


def _make_handler(verifier: SigV4Verifier, socket_path: str, read_timeout: float, upstream_timeout: float) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive with the SDK's connection pool
        server_version = "AmazonS3"
        disable_nagle_algorithm = True
        timeout = read_timeout

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            # Quiet by design: request lines carry presigned signatures and access key ids.
            return

        def do_GET(self) -> None:
            self._serve()

        do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = do_GET

        def do_OPTIONS(self) -> None:
            # A browser's CORS preflight is never signed: S3 answers it from the bucket's CORS rules alone
            # (answer_preflight). Any other OPTIONS goes through the signature check like every request
            # (moto would answer an unsigned OPTIONS / with the bucket list).
            origin, method = self.headers.get("Origin"), self.headers.get("Access-Control-Request-Method")
            if not (origin and method):
                self._serve()
                return
            self._drain_small_body(length_if_absent="0")  # a preflight carries no body
            bucket = unquote(urlsplit(self.path).path.lstrip("/").split("/", 1)[0])  # path-style, as the local endpoint is
            allowed = answer_preflight(
                _bucket_cors_rules(bucket) if bucket else None, origin, method, self.headers.get("Access-Control-Request-Headers") or ""
            )
            if allowed is None:
                self._refuse(
                    Refusal(
                        "cors",
                        "CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, "
                        "request method / Access-Control-Request-Method or Access-Control-Request-Headers are not "
                        "whitelisted by the resource's CORS spec.",
                    ),
                    "s3",
                    "application/xml",
                )
                return
            self.send_response(200)
            for name, value in allowed.items():
                self.send_header(name, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _drain_small_body(self, *, length_if_absent: str) -> None:
            """Reads a small declared body so the connection stays usable for the next request; anything else
            (chunked, too large, or no length when `length_if_absent` is "") closes the connection instead."""
            declared = self.headers.get("Content-Length") or length_if_absent
            if self.headers.get("Transfer-Encoding") or not declared.isdigit() or int(declared) > COPY_BUFFER:
                self.close_connection = True
            elif int(declared):
                self.rfile.read(int(declared))

        def _serve(self) -> None:
            request = IncomingRequest.of(self.command, self.path, self.headers.items())
            protocol = detect_protocol(request.target, request.headers)
            json_type = _first(request.headers, "content-type") or "application/x-amz-json-1.0"
            if not carries_signature(request):
                # Refused before the body is read: an anonymous caller cannot make the front spool gigabytes.
                self._drain_small_body(length_if_absent="")
                self._refuse(Refusal("missing", "Access Denied"), protocol, json_type)
                return
            try:
                body, body_sha256 = self._read_body()
            except _BodyError as error:
                self.close_connection = True  # the rest of the body, if any, is not read
                self._refuse(error.refusal, protocol, json_type)
                return
            try:
                verified = verifier.verify(request, body_sha256)
                if body is not None:
                    verifier.verify_chunks(verified, body)
                    body.seek(0)
            except Refusal as refusal:
                self._refuse(refusal, protocol, json_type)
                if body is not None:
                    body.close()
                return
            try:
                self._forward(list(self.headers.items()), body)
            finally:
                if body is not None:
                    body.close()

        def _read_body(self) -> tuple[IO[bytes] | None, str]:
            """The whole body, spooled (memory, then disk) and hashed, before anything is forwarded."""
            transfer = (self.headers.get("Transfer-Encoding") or "").strip().lower()
            length_header = self.headers.get("Content-Length")
            if transfer and length_header is not None:
                raise _BodyError(Refusal("framing", "Transfer-Encoding and Content-Length together"))
            if transfer and transfer != "chunked":
                raise _BodyError(Refusal("framing", f"Transfer-Encoding {transfer} is not supported"))
            if length_header is not None and not length_header.strip().isdigit():
                raise _BodyError(Refusal("framing", "Content-Length is not a number"))
            digest = hashlib.sha256()
            if not transfer and not int(length_header or 0):
                return None, digest.hexdigest()
            spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115 - closed by the caller
            try:
                pieces = self._chunked_pieces() if transfer else self._sized_pieces(int(length_header or 0))
                total = 0
                for piece in pieces:
                    total += len(piece)
                    if total > MAX_BODY_BYTES:
                        raise _BodyError(Refusal("too_large", "Your proposed upload exceeds the maximum allowed size"))
                    digest.update(piece)
                    spool.write(piece)
            except BaseException:
                spool.close()
                raise
            spool.seek(0)
            return spool, digest.hexdigest()

        def _sized_pieces(self, length: int) -> Iterable[bytes]:
            if length > MAX_BODY_BYTES:
                raise _BodyError(Refusal("too_large", "Your proposed upload exceeds the maximum allowed size"))
            remaining = length
            while remaining:
                piece = self.rfile.read(min(COPY_BUFFER, remaining))
                if not piece:
                    raise _BodyError(Refusal("framing", "The body ended before the number of bytes its Content-Length header gives"))
                remaining -= len(piece)
                yield piece

        def _chunked_pieces(self) -> Iterable[bytes]:
            while True:
                size_line = self.rfile.readline(1024).split(b";")[0].strip()
                try:
                    size = int(size_line, 16)
                except ValueError:
                    raise _BodyError(Refusal("framing", "Malformed chunked body")) from None
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass  # trailers of the HTTP chunked framing itself carry nothing we forward
                    return
                yield from self._sized_pieces(size)
                self.rfile.readline(8)

        def _refuse(self, refusal: Refusal, protocol: str, json_type: str) -> None:
            error = render_refusal(refusal, protocol, json_type if "json" in json_type else "application/x-amz-json-1.0")
            self.send_response(error.status)
            self.send_header("Content-Type", error.content_type)
            self.send_header("x-amzn-RequestId", uuid.uuid4().hex)
            body = b"" if self.command == "HEAD" else error.body
            self.send_header("Content-Length", str(len(error.body)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)

        def _forward(self, header_pairs: list[tuple[str, str]], body: IO[bytes] | None) -> None:
            listed_by_connection = {t.strip().lower() for t in (self.headers.get("Connection") or "").split(",")}
            upstream = _UnixHTTPConnection(socket_path, upstream_timeout)
            try:
                upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                length = 0
                if body is not None:
                    length = body.seek(0, os.SEEK_END)
                    body.seek(0)
                for name, value in header_pairs:
                    lowered = name.lower()
                    if lowered in _HOP_BY_HOP or lowered in listed_by_connection or lowered in ("expect", "content-length"):
                        continue
                    upstream.putheader(name, value)
                if body is not None or self.command in ("POST", "PUT", "PATCH"):
                    upstream.putheader("Content-Length", str(length))
                upstream.endheaders()
                if body is not None:
                    shutil.copyfileobj(body, _SocketWriter(upstream), COPY_BUFFER)
                response = upstream.getresponse()
                self._relay(response)
            except OSError:
                self.close_connection = True
                self.send_error(502, "The local AWS stand-in did not answer")
            finally:
                upstream.close()

        def _relay(self, response: HTTPResponse) -> None:
            self.send_response_only(response.status, response.reason)
            listed = {t.strip().lower() for t in (response.getheader("Connection") or "").split(",")}
            for name, value in response.getheaders():
                if name.lower() not in _HOP_BY_HOP and name.lower() not in listed:
                    self.send_header(name, value)
            bodiless = self.command == "HEAD" or response.status in (204, 304) or 100 <= response.status < 200
            chunked = not bodiless and response.getheader("Content-Length") is None
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if bodiless:
                return
            while piece := response.read(COPY_BUFFER):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            if chunked:
                self.wfile.write(b"0\r\n\r\n")

    return Handler


class _SocketWriter:
    def __init__(self, connection: HTTPConnection):
        self.connection = connection

    def write(self, data: bytes) -> int:
        self.connection.send(data)
        return len(data)


class LocalEndpointTransport:
    """A botocore `before-send` handler that answers the calls to the local endpoint (`answer`, by subclasses) and
    leaves every other call alone (`None`), so that nothing here can answer for real AWS.
    https://boto3.amazonaws.com/v1/documentation/api/latest/guide/events.html ("before-send": a handler that
    returns a response short-circuits the HTTP request)."""

    def __init__(self, endpoint: str):
        self.endpoint = endpoint.rstrip("/")
        self._netloc = urlsplit(self.endpoint).netloc

    def __call__(self, request: Any, **_: Any) -> Any:
        from botocore.awsrequest import AWSResponse

        url = str(request.url)
        if not self.serves(url):
            return None
        header_pairs = [(name, value.decode() if isinstance(value, bytes) else str(value)) for name, value in request.headers.items()]
        status, headers, payload = self.answer(request.method, url, header_pairs, _body_bytes(request.body))
        return AWSResponse(url, status, _http_headers(headers), _RawBody(payload))

    def serves(self, url: str) -> bool:
        """Whether `url` is the local endpoint's (anything else, real AWS included, is never answered here)."""
        return urlsplit(url).netloc == self._netloc and url.startswith(self.endpoint)

    def answer(self, method: str, url: str, header_pairs: list[tuple[str, str]], body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        """One signed call, as botocore sent it: (status, headers, body)."""
        raise NotImplementedError


class InProcessTransport(LocalEndpointTransport):
    """The platform's own SDK calls, checked by the same SigV4 verifier and answered by moto in this process.

    A botocore `before-send` handler: the call has been serialized and signed by botocore exactly as it
    would be for AWS, and its response is parsed by botocore as AWS's would be; only the two loopback
    HTTP hops (client -> front -> moto's Unix socket, a thread each) are skipped. They cost ~3 ms of
    a ~4.5 ms call and, under load, a thread per call fighting for the interpreter. Callers outside the
    process (presigned uploads from curl or a browser) still come through the HTTP front. Requests for
    any other endpoint are left alone (`LocalEndpointTransport`).
    """

    def __init__(self, verifier: SigV4Verifier, endpoint: str, app: Any):  # moto's DomainDispatcherApplication
        super().__init__(endpoint)
        self.verifier = verifier
        self._dispatcher = app
        self._apps: dict[tuple[str, str], Any] = {}
        self._actions: dict[tuple[str, str], Any] = {}  # (service, target) -> moto's dispatch callable, for "POST /" calls
        self.calls = 0  # for tests: how many calls took this path
        self.direct_calls = 0  # for tests: how many of them skipped moto's Flask app

    def answer(self, method: str, url: str, header_pairs: list[tuple[str, str]], body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        """One signed call to this front, as botocore sent it: verified, then answered by moto; (status, headers, body).
        Also what `raas.local.workers` answers the worker processes' calls with."""
        self.calls += 1
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        if not any(name.lower() == "host" for name, _ in header_pairs):
            header_pairs = [*header_pairs, ("Host", self._netloc)]  # what urllib3 adds on the wire, and what was signed
        incoming = IncomingRequest.of(method, target, header_pairs)
        protocol = detect_protocol(incoming.target, incoming.headers)
        json_type = _first(incoming.headers, "content-type") or "application/x-amz-json-1.0"
        try:
            if not carries_signature(incoming):
                raise Refusal("missing", "Access Denied")
            if len(body) > MAX_BODY_BYTES:
                raise Refusal("too_large", "Your proposed upload exceeds the maximum allowed size")
            verified = self.verifier.verify(incoming, hashlib.sha256(body).hexdigest())
            if body:
                self.verifier.verify_chunks(verified, io.BytesIO(body))
        except Refusal as refusal:
            error = render_refusal(refusal, protocol, json_type if "json" in json_type else "application/x-amz-json-1.0")
            return error.status, [("Content-Type", error.content_type), ("x-amzn-RequestId", uuid.uuid4().hex)], error.body
        json_target = _first(incoming.headers, "x-amz-target").split(".")[0]
        status, headers, payload = self._dispatch(method, parts, header_pairs, body, (verified.service, json_target))
        return status, headers, b"" if method == "HEAD" else payload

    def _dispatch(
        self, method: str, parts: Any, header_pairs: list[tuple[str, str]], body: bytes, service: tuple[str, str]
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        from werkzeug.test import EnvironBuilder, run_wsgi_app

        headers = [(name, value) for name, value in header_pairs if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length"]
        posts_to_root = method == "POST" and parts.path in ("", "/") and not parts.query  # how JSON-protocol services are called
        action = self._actions.get(service) if posts_to_root else None
        if action:
            return self._call_action(action, method, parts, headers, body)
        environ = EnvironBuilder(
            method=method,
            path=unquote(parts.path),  # WSGI's PATH_INFO is decoded; RAW_URI below keeps the encoded form
            query_string=parts.query,
            headers=headers,
            data=body,
            base_url=f"{parts.scheme}://{parts.netloc}",
        ).get_environ()
        environ["RAW_URI"] = environ["REQUEST_URI"] = parts.path + (f"?{parts.query}" if parts.query else "")
        application = self._application(environ, service)
        if posts_to_root and service[1] and service not in self._actions:
            self._remember_action(application, service)
        app_iter, status, response_headers = run_wsgi_app(application, environ, buffered=True)
        try:
            payload = b"".join(app_iter)
        finally:
            close = getattr(app_iter, "close", None)
            if close:
                close()
        return int(status.split(" ", 1)[0]), list(response_headers.items()), payload

    def _remember_action(self, application: Any, service: tuple[str, str]) -> None:
        """The callable moto's Flask app runs for `POST /` of this JSON-protocol service (DynamoDB, SQS, KMS,
        EventBridge: one endpoint, the operation in X-Amz-Target), so later calls can skip Flask's routing,
        request and response objects: a tenth of a query's time went there (py-spy on bench/load.py)."""
        from moto.core.utils import convert_to_flask_response
        from werkzeug.exceptions import HTTPException

        self._actions[service] = None  # looked up once, found or not
        try:
            endpoint, _ = application.url_map.bind(self._netloc).match("/", method="POST")
        except HTTPException:
            return
        view = application.view_functions.get(endpoint)
        if isinstance(view, convert_to_flask_response):
            self._actions[service] = view.callback

    def _call_action(
        self, action: Any, method: str, parts: Any, headers: list[tuple[str, str]], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """What moto's Flask view does for the call (moto.core.utils.convert_to_flask_response), without Flask:
        the same request class the server builds, the same callback, its errors rendered as werkzeug would."""
        from botocore.exceptions import ClientError
        from moto.moto_server.werkzeug_app import BackendRequest
        from werkzeug.exceptions import HTTPException

        self.direct_calls += 1
        url = f"{parts.scheme}://{parts.netloc}{parts.path or '/'}"
        request = BackendRequest.from_primitives(method, url, dict(headers), body)
        try:
            result = action(request, request.raw_url, dict(request.headers))
        except ClientError as exc:  # as moto's view: a botocore error inside a backend is a 400
            result = 400, {}, exc.response["Error"]["Message"]
        except HTTPException as exc:  # moto's service errors (JsonRESTError ...) are werkzeug exceptions
            result = exc.code or 500, dict(exc.get_headers()), exc.get_body()
        status, response_headers, content = result if len(result) == 3 else (200, {}, result)
        payload = content.encode() if isinstance(content, str) else bytes(content or b"")
        pairs = [(str(k), str(v)) for k, v in dict(response_headers).items() if str(k).lower() != "content-length"]
        pairs.append(("Content-Length", str(len(payload))))
        return int(status), pairs, payload

    def _application(self, environ: dict[str, Any], service: tuple[str, str]) -> Any:
        """moto's app for this service. moto's dispatcher finds it on every request by listing its own package
        directory and matching every backend's URL patterns under one process-wide lock; the answer depends
        only on the signed service (the credential scope) and the JSON target, so it is looked up once."""
        if str(environ.get("PATH_INFO", "")).startswith(("/moto-api", "/latest/", "/favicon.ico")):
            return self._dispatcher.get_application(environ)
        app = self._apps.get(service)
        if app is None:
            app = self._apps[service] = self._dispatcher.get_application(environ)
        return app


def _http_headers(pairs: Iterable[tuple[str, str]]) -> Any:
    from botocore.compat import HTTPHeaders

    headers = HTTPHeaders()
    for name, value in pairs:
        headers[name] = value
    return headers


def _body_bytes(body: Any) -> bytes:
    if body is None:
        return b""
    if isinstance(body, bytes | bytearray):
        return bytes(body)
    if isinstance(body, str):
        return body.encode()
    data = body.read()  # a file-like body (S3 uploads); botocore seeks it back itself on a retry
    return data.encode() if isinstance(data, str) else bytes(data)


class _RawBody(io.BytesIO):
    """What botocore reads an answer from (urllib3's `stream()` interface)."""

    def stream(self, **_: Any) -> Iterable[bytes]:
        while piece := self.read(COPY_BUFFER):
            yield piece


SOCKET_DIR_PREFIX = "raas-moto-"
_STARTING_SECONDS = 60


def remove_abandoned_socket_dirs(parent: str | None = None) -> list[str]:
    """Removes the socket directories of platforms that are gone; returns them.

    `stop` removes its own directory, but a platform killed (SIGKILL, a crash, a power cut) cannot, and each
    start would leave one more in the temporary directory. A directory is abandoned when nothing accepts on
    its socket: connecting is refused, or the socket is not there. Only this user's directories are looked at
    (`mkdtemp` made them 0700), and a live platform's socket accepts, so it is kept; so is a directory changed
    in the last minute, which may belong to a platform starting beside this one (between `mkdtemp` and moto's
    `listen`, its socket is missing or refuses)."""
    parent = parent or tempfile.gettempdir()
    removed: list[str] = []
    try:
        names = [name for name in os.listdir(parent) if name.startswith(SOCKET_DIR_PREFIX)]
    except OSError:
        return removed
    for name in names:
        directory = os.path.join(parent, name)
        try:
            status = os.stat(directory)
            if not os.path.isdir(directory) or status.st_uid != os.getuid() or time.time() - status.st_mtime < _STARTING_SECONDS:
                continue
        except OSError:
            continue
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.settimeout(1)
            probe.connect(os.path.join(directory, "moto.sock"))
        except (FileNotFoundError, ConnectionRefusedError):
            shutil.rmtree(directory, ignore_errors=True)
            removed.append(directory)
        except OSError:
            pass  # anything else (a timeout, permissions): not provably abandoned, so kept
        finally:
            probe.close()
    return removed


class SigningFront:
    """moto on a private Unix socket, and in front of it, on loopback, the SigV4 check (the endpoint clients use)."""

    def __init__(
        self,
        credentials: PlatformCredentials,
        region: str,
        host: str = "127.0.0.1",
        read_timeout: float = 60,
        upstream_timeout: float = 300,
    ):
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server  # local-only dependencies

        self.credentials = credentials
        remove_abandoned_socket_dirs()
        self._socket_dir = tempfile.mkdtemp(prefix=SOCKET_DIR_PREFIX)  # mode 0700: only this user reaches the socket
        socket_path = os.path.join(self._socket_dir, "moto.sock")
        # moto's backends are this process's: the socket server (for the front) and the in-process transport share
        # one application. Not moto's ThreadedMotoServer: its loop looks at its stop flag every 0.5 s (werkzeug's
        # default), half a second of every stop of `raas local`.
        moto_app = DomainDispatcherApplication(create_backend_app)
        self._moto = make_server(f"unix://{socket_path}", 0, moto_app, threaded=True, request_handler=MotoRequestHandler)
        self._moto_thread = threading.Thread(target=self._moto.serve_forever, args=(0.05,), name="raas-moto", daemon=True)
        self._moto_thread.start()
        verifier = SigV4Verifier(credentials, region)
        self._http = ThreadingHTTPServer((host, 0), _make_handler(verifier, socket_path, read_timeout, upstream_timeout))
        self._http.daemon_threads = True
        # a short poll: `shutdown` waits for the loop to look at its flag
        self._thread = threading.Thread(target=self._http.serve_forever, args=(0.05,), name="raas-signing-front", daemon=True)
        self._thread.start()
        bound_host, port = self._http.server_address[:2]
        self.endpoint = f"http://{bound_host!s}:{port}"
        self.transport = InProcessTransport(verifier, self.endpoint, moto_app)

    def serve_sdk_in_process(self) -> None:
        """Every botocore session made from now on answers calls to this front in-process (`InProcessTransport`).

        botocore gives each new session the handlers in `BUILTIN_HANDLERS`; the platform makes a session per
        client (`raas.adapters.aws`), so clients created after this call take the short path.
        """
        from botocore import handlers

        if ("before-send", self.transport) not in handlers.BUILTIN_HANDLERS:
            handlers.BUILTIN_HANDLERS.append(("before-send", self.transport))

    def _stop_serving_in_process(self) -> None:
        from botocore import handlers

        while ("before-send", self.transport) in handlers.BUILTIN_HANDLERS:
            handlers.BUILTIN_HANDLERS.remove(("before-send", self.transport))

    def stop(self) -> None:
        self._stop_serving_in_process()
        self._http.shutdown()
        self._http.server_close()
        self._thread.join(timeout=5)
        self._moto.shutdown()  # its loop closes the socket as it ends
        self._moto_thread.join(timeout=5)
        shutil.rmtree(self._socket_dir, ignore_errors=True)
