"""The console's browser security policy, one definition for both places that serve it.

`raas local` (raas.local.console) and CloudFront's response headers policy (stacks/console.py) send
the same Content-Security-Policy and security headers, so a page that works locally is not refused in
AWS. The console has no inline script and no eval (issue 13): scripts come only from its own origin.
"""

from __future__ import annotations

from collections.abc import Iterable

# Referrer-Policy no-referrer: a tenant's logo URL and the presigned upload URLs must never learn the
# console's URL; X-Frame-Options for browsers that predate frame-ancestors.
SECURITY_HEADERS: dict[str, str] = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


# CORS for the console's origin (AWS: the console is on CloudFront, the API on API Gateway). The request
# headers the SPA sends, and the response headers its code may read (the browser hides every other one
# but the CORS-safelisted few): https://fetch.spec.whatwg.org/#http-access-control-expose-headers
CORS_ALLOWED_HEADERS = ("Authorization", "Content-Type", "Idempotency-Key", "If-Match", "Accept")
CORS_EXPOSED_HEADERS = (
    "Retry-After",
    "X-Quota-Queries-Limit",
    "X-Quota-Queries-Remaining",
    "X-Quota-Budget-Remaining-Usd",
    "Idempotent-Replayed",
    "X-Request-Id",
)


def cors_headers(origin: str) -> dict[str, str]:
    """What every API response carries for the console's origin (never `*`): Vary, because the answer
    names one origin and a shared cache must not hand it to another."""
    return {"Access-Control-Allow-Origin": origin, "Access-Control-Expose-Headers": ", ".join(CORS_EXPOSED_HEADERS), "Vary": "Origin"}


def content_security_policy(connect_sources: Iterable[str] = ()) -> str:
    """The console's CSP; `connect_sources` are what the SPA may call besides its own origin: the API's
    origin when it is elsewhere (AWS), and the prefix the presigned document uploads go to.

    A source with a path ending in "/" matches every URL below it (CSP Level 3, "Matching Source
    Expressions": https://www.w3.org/TR/CSP3/#match-paths), so an upload prefix names one bucket, not all
    of S3."""
    connect = " ".join(["'self'", *(source for source in connect_sources if source)])
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self' 'unsafe-inline'",  # Cloudscape sets style attributes at run time
            "img-src 'self' https: data:",  # tenants' logos are https:// URLs anywhere
            f"connect-src {connect}",
            "font-src 'self' data:",
            "frame-ancestors 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "object-src 'none'",
        ]
    )
