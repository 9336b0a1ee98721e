from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from raas.bootstrap import services
from raas.domain.catalog import Tier
from raas.domain.tenants import Role
from raas.handlers import authorizer
from raas.local.invocation import lambda_context
from tests.helpers import rebuild_services

pytestmark = pytest.mark.usefixtures("aws")

METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:api123/v1/GET/v1/config"
ISSUER = "https://idp.example.test/"
AUDIENCE = "raas-api"


def authorize(header: str | None) -> dict[str, Any]:
    headers = {"Authorization": header} if header is not None else {}
    return authorizer.handler({"type": "REQUEST", "methodArn": METHOD_ARN, "headers": headers}, lambda_context("authorizer"))


def assert_unauthorized(header: str | None) -> None:
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        authorize(header)


def new_tenant(tier: Tier = Tier.SMB) -> tuple[str, str]:
    tenant, _key, secret = services().tenant_service.create("acme", tier)
    return tenant.tenant_id, secret


def test_a_valid_key_is_allowed_with_tenant_context() -> None:
    tenant_id, secret = new_tenant()
    result = authorize(f"Bearer {secret}")
    statement = result["policyDocument"]["Statement"][0]
    assert statement == {
        "Action": "execute-api:Invoke",
        "Effect": "Allow",
        "Resource": "arn:aws:execute-api:us-east-1:123456789012:api123/v1/*",
    }
    assert result["context"]["tenant_id"] == tenant_id
    assert result["context"]["role"] == "admin"
    assert result["context"]["tier"] == "smb"
    assert result["context"]["key_id"] == result["principalId"]
    assert all(isinstance(v, str) for v in result["context"].values())
    assert secret not in json.dumps(result)


@pytest.mark.parametrize(
    "header", [None, "", "Bearer", "Basic abc", "Bearer raas_not_a_real_key", "raas_missing_scheme", "Bearer " + "x" * 9000]
)
def test_missing_or_unknown_credentials_are_401(header: str | None) -> None:
    new_tenant()
    assert_unauthorized(header)


def test_revoked_key_is_refused_at_once() -> None:
    tenant_id, admin = new_tenant()
    from raas.domain.tenants import Principal

    caller = Principal(role=Role.ADMIN, key_id="k", tenant_id=tenant_id, tier=Tier.SMB)
    key, secret = services().key_service.create(caller, "ci", Role.READER)
    assert authorize(f"Bearer {secret}")["context"]["role"] == "reader"
    services().key_service.revoke(caller, key.key_id)
    assert_unauthorized(f"Bearer {secret}")
    assert authorize(f"Bearer {admin}")["policyDocument"]["Statement"][0]["Effect"] == "Allow"


def test_suspended_tenant_is_denied_with_a_reason_and_resumed_tenant_allowed() -> None:
    tenant_id, secret = new_tenant()
    services().tenant_service.suspend(tenant_id)
    result = authorize(f"Bearer {secret}")
    assert result["policyDocument"]["Statement"][0]["Effect"] == "Deny"
    assert result["context"] == {"error_code": "tenant_suspended", "error_message": "tenant is suspended"}
    services().tenant_service.resume(tenant_id)
    assert authorize(f"Bearer {secret}")["policyDocument"]["Statement"][0]["Effect"] == "Allow"


def test_deleted_tenant_keys_are_unauthorized() -> None:
    from raas.domain.tenants import TenantStatus

    tenant_id, secret = new_tenant()
    services().tenant_store.update_tenant(tenant_id, status=TenantStatus.DELETED)
    assert_unauthorized(f"Bearer {secret}")


def test_operator_key_has_no_tenant() -> None:
    _key, secret = services().key_service.create_operator_key("ops")
    context = authorize(f"Bearer {secret}")["context"]
    assert context["role"] == "operator"
    assert context["tenant_id"] == ""


# --- JWT ---------------------------------------------------------------------------------------


class _Jwks:
    def __init__(self) -> None:
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        self.keys = [
            {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.rsa.public_key())), "kid": "rsa1", "alg": "RS256", "use": "sig"},
            {**json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.ec.public_key())), "kid": "ec1", "alg": "ES256", "use": "sig"},
        ]

    def token(self, *, alg: str = "RS256", kid: str | None = None, **overrides: Any) -> str:
        claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "user-1", "exp": int(time.time()) + 300, **overrides}
        claims = {k: v for k, v in claims.items() if v is not None}
        key = self.rsa if alg == "RS256" else self.ec
        return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid or ("rsa1" if alg == "RS256" else "ec1")})


@pytest.fixture
def jwks(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Jwks]:
    """A JWKS endpoint on loopback, and the deployment configured to trust it."""
    keys = _Jwks()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"keys": keys.keys}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("RAAS_JWT_ISSUER", ISSUER)
    monkeypatch.setenv("RAAS_JWT_AUDIENCE", AUDIENCE)
    monkeypatch.setenv("RAAS_JWT_JWKS_URL", f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json")
    rebuild_services()
    yield keys
    server.shutdown()


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_valid_jwt_is_allowed_with_its_tenant_and_role(jwks: _Jwks, alg: str) -> None:
    tenant_id, _ = new_tenant(Tier.MIDMARKET)
    context = authorize("Bearer " + jwks.token(alg=alg, tenant_id=tenant_id, role="editor"))["context"]
    assert (context["tenant_id"], context["role"], context["tier"], context["key_id"]) == (tenant_id, "editor", "midmarket", "jwt:user-1")


def test_bad_jwts_are_refused(jwks: _Jwks) -> None:
    tenant_id, _ = new_tenant()
    now = int(time.time())
    good = {"tenant_id": tenant_id, "role": "admin"}
    bad_tokens = [
        jwks.token(**good, exp=now - 3600),  # expired
        jwks.token(**good, aud="someone-else"),
        jwks.token(**good, iss="https://evil.example/"),
        jwks.token(**good, exp=None),  # no expiry
        jwks.token(**good, kid="unknown"),
        jwks.token(tenant_id=tenant_id, role="operator"),  # a JWT can never make an operator
        jwks.token(tenant_id=tenant_id, role="root"),
        jwks.token(role="admin"),  # no tenant
        jwt.encode(
            {**good, "iss": ISSUER, "aud": AUDIENCE, "sub": "u", "exp": now + 60}, "shared-secret-0123456789-0123456789", algorithm="HS256"
        ),
        jwt.encode({**good, "iss": ISSUER, "aud": AUDIENCE, "sub": "u", "exp": now + 60}, None, algorithm="none"),  # type: ignore[arg-type]
    ]
    for token in bad_tokens:
        assert_unauthorized(f"Bearer {token}")
    # a forged signature: valid header and claims, another key's signature
    header, payload, _ = jwks.token(**good).split(".")
    _, _, foreign_signature = jwt.encode({"x": 1}, rsa.generate_private_key(public_exponent=65537, key_size=2048), algorithm="RS256").split(
        "."
    )
    assert_unauthorized(f"Bearer {header}.{payload}.{foreign_signature}")


def test_jwt_for_a_suspended_tenant_is_denied(jwks: _Jwks) -> None:
    tenant_id, _ = new_tenant()
    services().tenant_service.suspend(tenant_id)
    result = authorize("Bearer " + jwks.token(tenant_id=tenant_id, role="reader"))
    assert result["policyDocument"]["Statement"][0]["Effect"] == "Deny"


def test_jwts_are_refused_when_jwt_auth_is_not_configured() -> None:
    keys = _Jwks()
    tenant_id, _ = new_tenant()
    assert_unauthorized("Bearer " + keys.token(tenant_id=tenant_id, role="admin"))
