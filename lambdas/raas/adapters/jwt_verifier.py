"""JWT verification against the tenant IdP's JWKS (RS256/ES256 only)."""

from __future__ import annotations

from typing import Any

import jwt

from raas.domain.errors import Unauthorized

ALLOWED_ALGORITHMS = ("RS256", "ES256")
REQUIRED_CLAIMS = ["exp", "iss", "aud", "sub"]


class JwksVerifier:
    def __init__(self, jwks_url: str, issuer: str, audience: str, *, leeway_seconds: int = 30, cache_seconds: int = 300):
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway_seconds
        self._jwks = jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=cache_seconds, timeout=5)

    def verify(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
            algorithm = header.get("alg")
            # Refuse "none", HMAC (key confusion) and anything else before touching keys.
            if algorithm not in ALLOWED_ALGORITHMS:
                raise Unauthorized(f"token algorithm {algorithm!r} is not accepted", code="invalid_token")
            signing_key = self._jwks.get_signing_key_from_jwt(token)
            claims: dict[str, Any] = jwt.decode(
                token,
                signing_key.key,
                algorithms=[algorithm],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("token has expired", code="token_expired") from None
        except (jwt.PyJWTError, jwt.PyJWKClientError) as exc:
            raise Unauthorized(f"token rejected: {exc}", code="invalid_token") from None
        return claims
