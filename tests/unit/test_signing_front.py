"""The SigV4 verifier of the local AWS stand-in, against requests and URLs that botocore itself signs."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import io
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from raas.local.signing_front import (
    STREAMING_SIGNED,
    STREAMING_SIGNED_TRAILER,
    STREAMING_UNSIGNED_TRAILER,
    IncomingRequest,
    PlatformCredentials,
    Refusal,
    SigningFront,
    SigV4Verifier,
    canonical_uri,
    render_refusal,
)

REGION = "us-east-1"
ENDPOINT = "http://127.0.0.1:4566"
PLATFORM = PlatformCredentials("AKIAPLATFORMEXAMPLE7", "platform/secret+Example0123456789abcdefgh")


class Captured(Exception):
    def __init__(self, request: Any):
        super().__init__("captured")
        self.request = request


def session(credentials: PlatformCredentials = PLATFORM) -> boto3.session.Session:
    return boto3.session.Session(
        aws_access_key_id=credentials.access_key_id, aws_secret_access_key=credentials.secret_access_key, region_name=REGION
    )


def sdk_client(service: str, credentials: PlatformCredentials = PLATFORM) -> Any:
    config = Config(retries={"max_attempts": 1}, signature_version="s3v4" if service == "s3" else None, s3={"addressing_style": "path"})
    return session(credentials).client(service, endpoint_url=ENDPOINT, config=config)  # type: ignore[call-overload]


def signed_by_botocore(
    service: str, call: Callable[[Any], Any], credentials: PlatformCredentials = PLATFORM
) -> tuple[IncomingRequest, bytes]:
    """The request botocore would put on the wire for `call`, stopped just before sending."""
    client = sdk_client(service, credentials)

    def capture(request: Any, **_: Any) -> None:
        raise Captured(request)

    client.meta.events.register("before-send", capture)
    with pytest.raises(Captured) as captured:
        call(client)
    prepared = captured.value.request
    body = prepared.body or b""
    if hasattr(body, "read"):
        body = body.read()
    if isinstance(body, str):
        body = body.encode()
    parts = urlsplit(prepared.url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    headers = [("Host", parts.netloc), *((k, v.decode() if isinstance(v, bytes) else v) for k, v in prepared.headers.items())]
    return IncomingRequest.of(prepared.method, target, headers), body


def presigned(method: str, params: dict[str, Any], expires: int = 900) -> str:
    url: str = sdk_client("s3").generate_presigned_url(method, Params=params, ExpiresIn=expires)
    return url


def as_request(method: str, url: str, headers: dict[str, str] | None = None) -> IncomingRequest:
    parts = urlsplit(url)
    return IncomingRequest.of(method, f"{parts.path}?{parts.query}", [("Host", parts.netloc), *(headers or {}).items()])


def verifier(shift: timedelta = timedelta(0)) -> SigV4Verifier:
    return SigV4Verifier(PLATFORM, REGION, clock=lambda: datetime.now(UTC) + shift)


def refusal_of(request: IncomingRequest, body: bytes = b"", check: SigV4Verifier | None = None) -> str:
    with pytest.raises(Refusal) as refused:
        (check or verifier()).verify(request, hashlib.sha256(body).hexdigest())
    return refused.value.kind


def accepted(request: IncomingRequest, body: bytes = b"", check: SigV4Verifier | None = None) -> None:
    (check or verifier()).verify(request, hashlib.sha256(body).hexdigest())


# --- requests signed in the Authorization header ----------------------------------------------------

SDK_CALLS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "s3 put_object, an awkward key": (
        "s3",
        lambda c: c.put_object(Bucket="docs", Key="t-1/a b+c/ü%41~(1).txt", Body=b"hello", ContentType="text/plain"),
    ),
    "s3 list with a prefix": ("s3", lambda c: c.list_objects_v2(Bucket="docs", Prefix="t-1/a b+c/", MaxKeys=7)),
    "s3 head_object": ("s3", lambda c: c.head_object(Bucket="docs", Key="t-1/x")),
    "dynamodb scan": ("dynamodb", lambda c: c.scan(TableName="raas-local-tenants")),
    "sqs send_message": ("sqs", lambda c: c.send_message(QueueUrl=f"{ENDPOINT}/123456789012/q", MessageBody="m & n = ü")),
    "kms encrypt": ("kms", lambda c: c.encrypt(KeyId="alias/raas-t-1", Plaintext=b"secret")),
    "sts get_caller_identity (query protocol)": ("sts", lambda c: c.get_caller_identity()),
}


@pytest.mark.parametrize("name", sorted(SDK_CALLS))
def test_botocore_signed_requests_are_accepted(name: str) -> None:
    service, call = SDK_CALLS[name]
    request, body = signed_by_botocore(service, call)
    accepted(request, body)


def test_another_key_is_unknown_and_a_wrong_secret_does_not_match() -> None:
    request, body = signed_by_botocore("dynamodb", lambda c: c.scan(TableName="t"), PlatformCredentials("testing", "testing"))
    assert refusal_of(request, body) == "unknown_key"
    request, body = signed_by_botocore("dynamodb", lambda c: c.scan(TableName="t"), PlatformCredentials(PLATFORM.access_key_id, "guess"))
    assert refusal_of(request, body) == "signature"


def test_a_changed_body_method_path_or_signed_header_breaks_the_signature() -> None:
    request, body = signed_by_botocore("dynamodb", lambda c: c.scan(TableName="mine"))
    assert refusal_of(request, body.replace(b"mine", b"them")) == "signature"

    request, body = signed_by_botocore("s3", lambda c: c.get_object(Bucket="docs", Key="t-1/doc"))
    for changed in (
        IncomingRequest(request.method, request.target.replace("t-1", "t-2"), request.headers),
        IncomingRequest("DELETE", request.target, request.headers),
        IncomingRequest(request.method, request.target, {**request.headers, "host": ["127.0.0.1:9999"]}),
    ):
        assert refusal_of(changed, body) == "signature"


def test_s3_payload_hash_must_match_the_body() -> None:
    request, _ = signed_by_botocore("s3", lambda c: c.put_object(Bucket="docs", Key="k", Body=b"original"))
    assert request.headers["x-amz-content-sha256"] == [hashlib.sha256(b"original").hexdigest()]  # boto3 signs bodies over http
    assert refusal_of(request, b"replaced") == "payload"


def test_unsigned_x_amz_headers_are_refused() -> None:
    request, body = signed_by_botocore("s3", lambda c: c.put_object(Bucket="docs", Key="t-1/k", Body=b"x"))
    request.headers["x-amz-copy-source"] = ["/docs/t-2/their-object"]
    assert refusal_of(request, body) == "unsigned_headers"


@pytest.mark.parametrize(("shift_minutes", "kind"), [(14, None), (-14, None), (16, "skewed"), (-16, "skewed")])
def test_the_clock_may_be_off_by_fifteen_minutes_at_most(shift_minutes: int, kind: str | None) -> None:
    request, body = signed_by_botocore("dynamodb", lambda c: c.list_tables())
    check = verifier(timedelta(minutes=shift_minutes))
    if kind is None:
        accepted(request, body, check)
    else:
        assert refusal_of(request, body, check) == kind


def test_requests_without_a_sigv4_signature_are_refused() -> None:
    assert refusal_of(IncomingRequest.of("GET", "/docs?list-type=2", [("Host", "127.0.0.1:4566")])) == "missing"
    sigv2 = [("Host", "127.0.0.1:4566"), ("Authorization", "AWS AKIAPLATFORMEXAMPLE7:c2lnbmF0dXJl")]
    assert refusal_of(IncomingRequest.of("GET", "/docs", sigv2)) == "unsupported"
    request, body = signed_by_botocore("s3", lambda c: c.list_objects_v2(Bucket="docs"))
    other_region = {**request.headers, "authorization": [request.headers["authorization"][0].replace(REGION, "eu-west-1")]}
    assert refusal_of(IncomingRequest(request.method, request.target, other_region), body) == "malformed"


# --- presigned URLs ----------------------------------------------------------------------------------

UPLOAD = {"Bucket": "docs", "Key": "t-1/doc-1", "ContentType": "text/markdown"}


def test_a_presigned_put_works_for_its_own_key_method_and_headers() -> None:
    url = presigned("put_object", UPLOAD)
    accepted(as_request("PUT", url, {"Content-Type": "text/markdown"}), b"# doc")
    accepted(as_request("GET", presigned("get_object", {"Bucket": "docs", "Key": "t-1/doc-1"})))


def test_a_presigned_put_is_good_for_nothing_else() -> None:
    url = presigned("put_object", UPLOAD)
    content_type = {"Content-Type": "text/markdown"}
    assert refusal_of(as_request("PUT", url.replace("t-1/doc-1", "t-2/doc-9"), content_type)) == "signature"
    assert refusal_of(as_request("GET", url, content_type)) == "signature"
    assert refusal_of(as_request("PUT", url, {"Content-Type": "application/pdf"})) == "signature"
    assert refusal_of(as_request("PUT", url + "&uploads=", content_type)) == "signature"
    tampered = url[:-1] + ("0" if url[-1] != "0" else "1")
    assert refusal_of(as_request("PUT", tampered, content_type)) == "signature"
    assert refusal_of(as_request("PUT", url, {**content_type, "x-amz-copy-source": "/docs/t-2/doc-9"})) == "unsigned_headers"
    with_header_too = as_request("PUT", url, {**content_type, "Authorization": "AWS4-HMAC-SHA256 Credential=x"})
    assert refusal_of(with_header_too) == "both"


def test_a_presigned_url_expires() -> None:
    url = presigned("put_object", UPLOAD, expires=60)
    content_type = {"Content-Type": "text/markdown"}
    accepted(as_request("PUT", url, content_type), check=verifier(timedelta(seconds=50)))
    assert refusal_of(as_request("PUT", url, content_type), check=verifier(timedelta(seconds=70))) == "expired"
    assert refusal_of(as_request("PUT", url, content_type), check=verifier(timedelta(minutes=-16))) == "expired"  # not yet valid


def test_a_presigned_url_lives_seven_days_at_most() -> None:
    week = presigned("get_object", {"Bucket": "docs", "Key": "k"}, expires=604_800)
    accepted(as_request("GET", week), check=verifier(timedelta(days=6)))
    longer = week.replace("X-Amz-Expires=604800", "X-Amz-Expires=604801")
    assert refusal_of(as_request("GET", longer)) == "malformed_query"


def test_s3_paths_are_encoded_once_and_other_services_twice() -> None:
    assert canonical_uri("/docs/a%20b/%C3%BC", "s3") == "/docs/a%20b/%C3%BC"
    assert canonical_uri("/docs/a b/ü", "s3") == "/docs/a%20b/%C3%BC"
    assert canonical_uri("/a%20b/./c/../d", "execute-api") == "/a%2520b/d"


# --- chunked uploads ----------------------------------------------------------------------------------


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def spec_signing_key(secret: str, day: str) -> bytes:
    """The signing key exactly as the SigV4 documentation derives it (independently of botocore)."""
    return _hmac(_hmac(_hmac(_hmac(f"AWS4{secret}".encode(), day), REGION), "s3"), "aws4_request")


class StreamingS3Auth(S3SigV4Auth):
    def payload(self, request: Any) -> str:
        return STREAMING_SIGNED_TRAILER if "x-amz-trailer" in request.headers else STREAMING_SIGNED


def aws_chunked(
    pieces: list[bytes], tamper: Callable[[int, bytes], bytes] | None = None, trailer: str | None = None, trailer_sent: str | None = None
) -> tuple[IncomingRequest, bytes]:
    """A STREAMING-AWS4-HMAC-SHA256-PAYLOAD PUT: botocore signs the headers (the seed), the chunks are signed per the spec."""
    size = sum(len(p) for p in pieces)
    aws_request = AWSRequest(
        method="PUT",
        url=f"{ENDPOINT}/docs/t-1/big",
        headers={"Content-Encoding": "aws-chunked", "x-amz-decoded-content-length": str(size)},
    )
    if trailer:
        aws_request.headers["x-amz-trailer"] = trailer.split(":")[0]
    StreamingS3Auth(Credentials(PLATFORM.access_key_id, PLATFORM.secret_access_key), "s3", REGION).add_auth(aws_request)
    timestamp = aws_request.context["timestamp"]
    seed = aws_request.headers["Authorization"].rsplit("Signature=", 1)[1]
    key = spec_signing_key(PLATFORM.secret_access_key, timestamp[:8])
    scope = f"{timestamp[:8]}/{REGION}/s3/aws4_request"
    body, previous = b"", seed
    for index, piece in enumerate([*pieces, b""]):
        to_sign = "\n".join(
            ["AWS4-HMAC-SHA256-PAYLOAD", timestamp, scope, previous, hashlib.sha256(b"").hexdigest(), hashlib.sha256(piece).hexdigest()]
        )
        previous = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        sent = tamper(index, piece) if tamper else piece
        body += b"%x;chunk-signature=%s\r\n%s\r\n" % (len(sent), previous.encode(), sent)
    if trailer:
        to_sign = "\n".join(["AWS4-HMAC-SHA256-TRAILER", timestamp, scope, previous, hashlib.sha256(f"{trailer}\n".encode()).hexdigest()])
        trailer_signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        body += f"{trailer_sent or trailer}\r\nx-amz-trailer-signature:{trailer_signature}\r\n\r\n".encode()
    headers = [("Host", urlsplit(ENDPOINT).netloc), *aws_request.headers.items()]
    return IncomingRequest.of("PUT", "/docs/t-1/big", headers), body


def verify_streaming(request: IncomingRequest, body: bytes) -> None:
    check = verifier()
    verified = check.verify(request, hashlib.sha256(body).hexdigest())
    check.verify_chunks(verified, io.BytesIO(body))


def test_signed_chunks_are_verified_one_by_one() -> None:
    pieces = [b"a" * 65536, b"b" * 1024]
    verify_streaming(*aws_chunked(pieces))
    for tamper in (lambda i, p: p.replace(b"b", b"c") if i == 1 else p, lambda i, p: p[:-1] if i == 0 else p):
        with pytest.raises(Refusal) as refused:
            verify_streaming(*aws_chunked(pieces, tamper))
        assert refused.value.kind in ("chunk", "framing")


def test_a_signed_trailer_is_verified() -> None:
    verify_streaming(*aws_chunked([b"hello"], trailer="x-amz-checksum-crc32:NhCmhg=="))
    with pytest.raises(Refusal) as refused:
        verify_streaming(*aws_chunked([b"hello"], trailer="x-amz-checksum-crc32:NhCmhg==", trailer_sent="x-amz-checksum-crc32:AAAAAA=="))
    assert refused.value.kind == "chunk"


class UnsignedTrailerS3Auth(S3SigV4Auth):
    def payload(self, request: Any) -> str:
        return STREAMING_UNSIGNED_TRAILER


def test_an_unsigned_trailer_upload_is_checked_by_its_seed_signature() -> None:
    aws_request = AWSRequest(
        method="PUT",
        url=f"{ENDPOINT}/docs/t-1/big",
        headers={"Content-Encoding": "aws-chunked", "x-amz-decoded-content-length": "5", "x-amz-trailer": "x-amz-checksum-crc32"},
    )
    UnsignedTrailerS3Auth(Credentials(PLATFORM.access_key_id, PLATFORM.secret_access_key), "s3", REGION).add_auth(aws_request)
    body = b"5\r\nhello\r\n0\r\nx-amz-checksum-crc32:NhCmhg==\r\n\r\n"
    request = IncomingRequest.of("PUT", "/docs/t-1/big", [("Host", urlsplit(ENDPOINT).netloc), *aws_request.headers.items()])
    accepted(request, body)
    assert refusal_of(IncomingRequest(request.method, "/docs/t-2/big", request.headers), body) == "signature"


# --- errors as each service words them -----------------------------------------------------------------


def test_refusals_take_each_protocols_shape() -> None:
    refusal = Refusal("unknown_key", "The AWS Access Key Id you provided does not exist in our records.")
    s3 = render_refusal(refusal, "s3")
    assert (s3.status, s3.content_type) == (403, "application/xml")
    assert b"<Code>InvalidAccessKeyId</Code>" in s3.body
    dynamodb = render_refusal(refusal, "json")
    assert dynamodb.status == 400
    assert b'"__type": "com.amazon.coral.service#UnrecognizedClientException"' in dynamodb.body
    sts = render_refusal(refusal, "query")
    assert sts.status == 403
    assert b"<Code>InvalidClientTokenId</Code>" in sts.body


def test_generated_credentials_are_random_and_the_secret_is_not_shown() -> None:
    first, second = PlatformCredentials.generate(), PlatformCredentials.generate()
    assert first.access_key_id != second.access_key_id
    assert first.secret_access_key != second.secret_access_key
    assert first.secret_access_key not in repr(first)


# --- the front itself, over HTTP, with moto behind it -------------------------------------------------


@pytest.fixture(scope="module")
def front() -> Iterator[SigningFront]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    running = SigningFront(PLATFORM, REGION)
    yield running
    running.stop()


def front_client(front: SigningFront, service: str, credentials: PlatformCredentials = PLATFORM) -> Any:
    config = Config(retries={"max_attempts": 1}, signature_version="s3v4" if service == "s3" else None, s3={"addressing_style": "path"})
    return session(credentials).client(service, endpoint_url=front.endpoint, config=config)  # type: ignore[call-overload]


def test_the_front_passes_signed_requests_and_bodies_through_faithfully(front: SigningFront) -> None:
    s3 = front_client(front, "s3")
    s3.create_bucket(Bucket="front-docs")
    blob = bytes(range(256)) * (6 * 4096 + 7)  # ~6 MiB, past a single read buffer many times
    s3.put_object(Bucket="front-docs", Key="t-1/a b+c/ü.bin", Body=blob, ContentType="application/octet-stream")
    fetched = s3.get_object(Bucket="front-docs", Key="t-1/a b+c/ü.bin")
    assert fetched["Body"].read() == blob
    assert s3.head_object(Bucket="front-docs", Key="t-1/a b+c/ü.bin")["ContentLength"] == len(blob)
    s3.upload_fileobj(io.BytesIO(blob * 2), "front-docs", "t-1/multipart", Config=TransferConfig(multipart_threshold=5 * 2**20))
    assert s3.head_object(Bucket="front-docs", Key="t-1/multipart")["ContentLength"] == 2 * len(blob)

    url = s3.generate_presigned_url("put_object", Params={"Bucket": "front-docs", "Key": "t-1/ticket", "ContentType": "text/plain"})
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.netloc, timeout=10)
    try:
        # one keep-alive connection: a refusal, a presigned PUT, then a chunked (Transfer-Encoding) PUT
        connection.request("GET", "/front-docs?list-type=2")
        refused = connection.getresponse()
        assert (refused.status, b"<Code>AccessDenied</Code>" in refused.read()) == (403, True)
        connection.request("PUT", f"{parts.path}?{parts.query}", body=b"ticket body", headers={"Content-Type": "text/plain"})
        put = connection.getresponse()
        assert (put.status, put.read()) == (200, b"")
        connection.request("PUT", f"{parts.path}?{parts.query}", body=iter([b"chunked ", b"body"]), headers={"Content-Type": "text/plain"})
        chunked = connection.getresponse()
        assert (chunked.status, chunked.read()) == (200, b"")
    finally:
        connection.close()
    assert s3.get_object(Bucket="front-docs", Key="t-1/ticket")["Body"].read() == b"chunked body"


def test_the_front_refuses_what_aws_would(front: SigningFront) -> None:
    from botocore.exceptions import ClientError

    dynamodb = front_client(front, "dynamodb", PlatformCredentials("testing", "testing"))
    with pytest.raises(ClientError) as refused:
        dynamodb.list_tables()
    assert refused.value.response["Error"]["Code"] == "UnrecognizedClientException"
    s3 = front_client(front, "s3", PlatformCredentials(PLATFORM.access_key_id, "a guess"))
    with pytest.raises(ClientError) as refused:
        s3.list_buckets()
    assert refused.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    assert front_client(front, "dynamodb").list_tables()["TableNames"] == []

    host = urlsplit(front.endpoint).netloc
    for method, path, headers, code in [
        # moto would list buckets; a preflight with no bucket (so no CORS rule) is refused as S3 refuses it
        ("OPTIONS", "/", {"Origin": "http://elsewhere", "Access-Control-Request-Method": "GET"}, b"AccessForbidden"),
        ("OPTIONS", "/", {}, b"AccessDenied"),  # not a preflight: unsigned, refused
        ("GET", "/moto-api/data.json", {}, b"AccessDenied"),  # moto's dashboard: every backend's state
        ("POST", "/moto-api/reset", {}, b"AccessDenied"),
    ]:
        connection = http.client.HTTPConnection(host, timeout=10)
        try:
            connection.request(method, path, headers=headers)
            response = connection.getresponse()
            assert (response.status, b"<Code>" + code + b"</Code>" in response.read()) == (403, True), (method, path)
        finally:
            connection.close()


# --- the platform's own calls, answered in-process ---------------------------------------------------


@pytest.fixture(scope="module")
def in_process_front() -> Iterator[SigningFront]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    running = SigningFront(PLATFORM, REGION)
    running.serve_sdk_in_process()
    yield running
    running.stop()


def test_in_process_calls_skip_the_http_hops_and_keep_the_sdk_round_trip(in_process_front: SigningFront) -> None:
    transport = in_process_front.transport
    before = transport.calls
    s3 = front_client(in_process_front, "s3")
    s3.create_bucket(Bucket="inproc-docs")
    blob = bytes(range(256)) * (6 * 4096 + 7)
    s3.put_object(Bucket="inproc-docs", Key="t-1/a b+c/ü.bin", Body=io.BytesIO(blob), ContentType="application/octet-stream")
    fetched = s3.get_object(Bucket="inproc-docs", Key="t-1/a b+c/ü.bin")
    assert (fetched["Body"].read(), fetched["ContentType"]) == (blob, "application/octet-stream")
    assert s3.head_object(Bucket="inproc-docs", Key="t-1/a b+c/ü.bin")["ContentLength"] == len(blob)
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="inproc-docs", Prefix="t-1/")["Contents"]] == ["t-1/a b+c/ü.bin"]
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket="inproc-docs", Key="t-1/missing")
    dynamodb = front_client(in_process_front, "dynamodb")
    dynamodb.create_table(
        TableName="inproc",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.put_item(TableName="inproc", Item={"pk": {"S": "a"}, "n": {"N": "1"}})
    with pytest.raises(dynamodb.exceptions.ConditionalCheckFailedException):
        dynamodb.put_item(TableName="inproc", Item={"pk": {"S": "a"}}, ConditionExpression="attribute_not_exists(pk)")
    assert dynamodb.get_item(TableName="inproc", Key={"pk": {"S": "a"}})["Item"]["n"] == {"N": "1"}
    assert transport.calls - before == 10  # every one of them took the in-process path

    # What the SDK wrote in-process, a caller over HTTP (a presigned URL) reads through the front.
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "inproc-docs", "Key": "t-1/a b+c/ü.bin"})
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.netloc, timeout=10)
    try:
        connection.request("GET", f"{parts.path}?{parts.query}")
        response = connection.getresponse()
        assert (response.status, response.read()) == (200, blob)
    finally:
        connection.close()


def test_json_protocol_calls_skip_motos_flask_app_and_answer_as_it_does(in_process_front: SigningFront) -> None:
    """`POST /` calls of JSON-protocol services (DynamoDB, SQS, KMS) go straight to moto's dispatch after the
    first; each answers exactly as the same call through the HTTP front and moto's Flask app (results,
    error codes and statuses, including errors moto raises as werkzeug exceptions)."""
    transport = in_process_front.transport
    clients = {service: front_client(in_process_front, service) for service in ("dynamodb", "sqs", "kms")}
    over_http = {service: front_client(in_process_front, service) for service in clients}
    for client in over_http.values():
        client.meta.events.unregister("before-send", transport)  # this one crosses the front and moto's Flask app
    clients["dynamodb"].create_table(
        TableName="json-proto",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    queue_url = clients["sqs"].create_queue(QueueName="json-proto")["QueueUrl"]
    clients["kms"].list_keys()
    item = {"pk": {"S": "a"}, "n": {"N": "1"}}
    unknown_key = {":v": {"S": "a"}}
    calls: list[tuple[str, Callable[[Any], Any]]] = [
        ("dynamodb", lambda c: c.put_item(TableName="json-proto", Item=item)),
        ("dynamodb", lambda c: c.put_item(TableName="json-proto", Item=item, ConditionExpression="attribute_not_exists(pk)")),
        ("dynamodb", lambda c: c.get_item(TableName="json-proto", Key={"pk": {"S": "a"}})),
        ("dynamodb", lambda c: c.get_item(TableName="no-such-table", Key={"pk": {"S": "a"}})),
        ("dynamodb", lambda c: c.query(TableName="json-proto", KeyConditionExpression="nope = :v", ExpressionAttributeValues=unknown_key)),
        ("sqs", lambda c: c.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["VisibilityTimeout"])),
        ("sqs", lambda c: c.get_queue_attributes(QueueUrl=queue_url + "-missing", AttributeNames=["All"])),
        ("kms", lambda c: c.describe_key(KeyId="11111111-2222-3333-4444-555555555555")),
    ]

    def outcome(client: Any, call: Callable[[Any], Any]) -> Any:
        try:
            answer = call(client)
        except ClientError as exc:
            return ("error", exc.response["Error"]["Code"], exc.response["ResponseMetadata"]["HTTPStatusCode"])
        answer.pop("ResponseMetadata", None)
        return ("ok", answer)

    before = transport.direct_calls
    outcomes = [(outcome(clients[service], call), outcome(over_http[service], call)) for service, call in calls]
    assert [direct for direct, _ in outcomes] == [flask for _, flask in outcomes]
    assert [kind for (kind, *_), _ in outcomes] == ["ok", "error", "ok", "error", "error", "ok", "error", "error"]
    assert transport.direct_calls - before == len(calls)


def test_in_process_calls_are_refused_as_the_front_refuses_them(in_process_front: SigningFront) -> None:
    from botocore.exceptions import ClientError

    transport = in_process_front.transport
    before = transport.calls
    dynamodb = front_client(in_process_front, "dynamodb", PlatformCredentials("testing", "testing"))
    with pytest.raises(ClientError) as refused:
        dynamodb.list_tables()
    assert refused.value.response["Error"]["Code"] == "UnrecognizedClientException"
    s3 = front_client(in_process_front, "s3", PlatformCredentials(PLATFORM.access_key_id, "a guess"))
    with pytest.raises(ClientError) as refused:
        s3.list_buckets()
    assert refused.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    assert transport.calls - before == 2

    # an unsigned request (botocore's UNSIGNED config) gets S3's AccessDenied, not moto's answer
    from botocore import UNSIGNED

    anonymous = session().client("s3", endpoint_url=in_process_front.endpoint, config=Config(signature_version=UNSIGNED))
    with pytest.raises(ClientError) as refused:
        anonymous.list_buckets()
    assert refused.value.response["Error"]["Code"] == "AccessDenied"


def test_the_transport_answers_only_for_its_own_endpoint(in_process_front: SigningFront) -> None:
    from botocore.awsrequest import AWSPreparedRequest
    from botocore.compat import HTTPHeaders

    for url in ("https://dynamodb.us-east-1.amazonaws.com/", "http://127.0.0.1:1/", in_process_front.endpoint + ".evil.example/"):
        request = AWSPreparedRequest("POST", url, HTTPHeaders(), b"{}", False)
        assert in_process_front.transport(request) is None, url


# --- browser CORS preflights, answered as S3 answers them from the bucket's rules ------------------


def test_a_preflight_is_allowed_only_when_origin_method_and_every_header_match_one_rule() -> None:
    from raas.local.signing_front import CorsRule, answer_preflight

    rules = [
        CorsRule(allowed_methods=("GET",), allowed_origins=("https://app.example",)),
        CorsRule(
            allowed_methods=("PUT",),
            allowed_origins=("https://*.example",),
            allowed_headers=("content-type", "x-amz-*"),
            max_age_seconds=60,
        ),
    ]
    allowed = answer_preflight(rules, "https://console.example", "PUT", "Content-Type, X-Amz-Server-Side-Encryption")
    assert allowed is not None
    assert allowed["Access-Control-Allow-Origin"] == "https://console.example"  # a named (wildcard) origin is echoed
    assert allowed["Access-Control-Allow-Headers"] == "content-type, x-amz-server-side-encryption"
    assert (allowed["Access-Control-Allow-Methods"], allowed["Access-Control-Max-Age"]) == ("PUT", "60")
    assert answer_preflight(rules, "https://app.example", "GET", "")["Access-Control-Allow-Methods"] == "GET"  # type: ignore[index]
    assert answer_preflight(rules, "https://console.example", "DELETE", "") is None  # no rule allows the method
    assert answer_preflight(rules, "https://console.example", "PUT", "content-type, authorization") is None  # one header too many
    assert answer_preflight(rules, "https://evil.test", "PUT", "content-type") is None  # no rule allows the origin
    assert answer_preflight(rules, "https://console.example", "put", "") is None  # methods are case-sensitive
    assert answer_preflight(None, "https://app.example", "GET", "") is None  # no CORS configuration: 403
    anyone = [CorsRule(allowed_methods=("PUT",), allowed_origins=("*",), allowed_headers=("content-type",))]
    assert answer_preflight(anyone, "http://127.0.0.1:8080", "PUT", "content-type")["Access-Control-Allow-Origin"] == "*"  # type: ignore[index]


def test_the_front_answers_a_browsers_upload_preflight_from_the_buckets_cors_rules(front: SigningFront) -> None:
    from raas.adapters.objects import UPLOAD_CORS_RULES

    s3 = front_client(front, "s3")
    s3.create_bucket(Bucket="cors-docs")
    s3.create_bucket(Bucket="no-cors-docs")
    s3.put_bucket_cors(Bucket="cors-docs", CORSConfiguration={"CORSRules": UPLOAD_CORS_RULES})
    host = urlsplit(front.endpoint).netloc
    upload_headers = ",".join(UPLOAD_CORS_RULES[0]["AllowedHeaders"])  # what a browser asks before presign_put's PUT

    def preflight(path: str, method: str, headers: str) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection(host, timeout=10)
        try:
            asked = {"Origin": "http://127.0.0.1:8080", "Access-Control-Request-Method": method, "Access-Control-Request-Headers": headers}
            connection.request("OPTIONS", path, headers=asked)
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    status, headers, _ = preflight("/cors-docs/tenants/t1/documents/a.pdf", "PUT", upload_headers)
    assert status == 200
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert headers["Access-Control-Allow-Methods"] == "PUT"
    status, _, body = preflight("/cors-docs/tenants/t1/documents/a.pdf", "PUT", upload_headers + ",x-amz-acl")  # not allowed
    assert (status, b"<Code>AccessForbidden</Code>" in body) == (403, True)
    status, _, body = preflight("/cors-docs/tenants/t1/documents/a.pdf", "DELETE", "")
    assert (status, b"<Code>AccessForbidden</Code>" in body) == (403, True)
    status, _, body = preflight("/no-cors-docs/x", "PUT", "content-type")  # no CORS configuration on the bucket
    assert (status, b"<Code>AccessForbidden</Code>" in body) == (403, True)

    # the upload itself (signed by its URL) carries the CORS headers S3 adds for a matching origin
    url = s3.generate_presigned_url("put_object", Params={"Bucket": "cors-docs", "Key": "t1/ticket", "ContentType": "text/plain"})
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.netloc, timeout=10)
    try:
        connection.request(
            "PUT", f"{parts.path}?{parts.query}", body=b"body", headers={"Content-Type": "text/plain", "Origin": "http://127.0.0.1:8080"}
        )
        put = connection.getresponse()
        put.read()
        assert put.status == 200
        assert put.getheader("Access-Control-Allow-Origin") == "http://127.0.0.1:8080"
    finally:
        connection.close()


def test_socket_directories_of_platforms_that_are_gone_are_removed_and_live_or_starting_ones_kept(tmp_path: Any) -> None:
    """A platform killed with SIGKILL cannot remove its socket directory; the next start removes it. A live
    platform's socket accepts, and a directory younger than a minute may be a platform starting beside this one."""
    import os
    import socket

    from raas.local.signing_front import SOCKET_DIR_PREFIX, remove_abandoned_socket_dirs

    def directory(name: str, *, listening: bool = False, bound: bool = False, age: float = 3600) -> Any:
        made = tmp_path / f"{SOCKET_DIR_PREFIX}{name}"
        made.mkdir(mode=0o700)
        server = None
        if listening or bound:
            server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            server.bind(str(made / "moto.sock"))
            if listening:
                server.listen(1)
            else:
                server.close()  # the socket file stays, nobody accepts: a killed platform's
        old = os.stat(made).st_mtime - age
        os.utime(made, (old, old))
        return made, server

    killed, _ = directory("k", bound=True)
    empty, _ = directory("e")
    live, listener = directory("l", listening=True)
    starting, _ = directory("s", age=0)
    other = tmp_path / "not-ours"
    other.mkdir()
    try:
        removed = remove_abandoned_socket_dirs(str(tmp_path))
    finally:
        assert listener is not None
        listener.close()
    assert sorted(removed) == sorted([str(killed), str(empty)])
    assert not killed.exists()
    assert not empty.exists()
    assert live.exists()
    assert starting.exists()
    assert other.exists()
