"""`raas local` serves the built console at /console/ (issue 13), over real HTTP.

The server is started with RAAS_CONSOLE_DIR pointing at a fake build made here (index.html, a hashed
script and stylesheet under assets/, an icon), so these tests do not depend on `npm run build`. Raw
paths go through http.client, which sends them exactly as written (httpx would normalise `..`).
"""

from __future__ import annotations

import http.client
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import OPERATOR_KEY
from tests.e2e.conftest import LocalServer, start_local

pytestmark = pytest.mark.e2e

INDEX = b"<!doctype html><html><head><script type=module src=/console/assets/app-abc123.js></script></head><body>raas console</body></html>"
SCRIPT = b"console.log('raas');\n"
STYLE = b"body { margin: 0 }\n"
ICON = b"<svg xmlns='http://www.w3.org/2000/svg'/>"
SECRET = "TOP-SECRET-OUTSIDE-THE-BUILD"
CONSOLE_ORIGIN = "https://d111111abcdef8.cloudfront.net"
# Every directive of the contract's CSP but connect-src, which also names the local upload bucket.
FIXED_DIRECTIVES = [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' https: data:",
    "font-src 'self' data:",
    "frame-ancestors 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "object-src 'none'",
]


@dataclass
class Console:
    server: LocalServer
    dist: Path
    host: str
    port: int

    def raw(self, method: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        """`path` sent byte for byte as written (no normalisation), headers by lower-case name."""
        connection = http.client.HTTPConnection(self.host, self.port, timeout=20)
        try:
            connection.putrequest(method, path, skip_accept_encoding=True)
            for name, value in (headers or {}).items():
                connection.putheader(name, value)
            connection.endheaders()
            response = connection.getresponse()
            body = response.read()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, body
        finally:
            connection.close()


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    base = tmp_path_factory.mktemp("console")
    dist = base / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_bytes(INDEX)
    (dist / "assets" / "app-abc123.js").write_bytes(SCRIPT)
    (dist / "assets" / "app-abc123.css").write_bytes(STYLE)
    (dist / "favicon.svg").write_bytes(ICON)
    (dist / ".vite").mkdir()
    (dist / ".vite" / "manifest.json").write_text("{}")
    # what a build must never expose: a file beside it, reached by a symlink inside it
    outside = base / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET)
    (outside / "secret").write_text(SECRET)
    (dist / "leak.txt").symlink_to(outside / "secret.txt")
    (dist / "linked").symlink_to(outside, target_is_directory=True)
    (base / "secret.txt").write_text(SECRET)
    server = start_local(extra_env={"RAAS_CONSOLE_DIR": str(dist), "RAAS_CONSOLE_ORIGIN": CONSOLE_ORIGIN})
    try:
        url = urlsplit(server.url)
        assert url.hostname
        assert url.port
        yield Console(server, dist, url.hostname, url.port)
    finally:
        server.stop()


def _assert_security_headers(headers: dict[str, str]) -> None:
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"
    directives = headers["content-security-policy"].split("; ")
    connect = [d for d in directives if d.startswith("connect-src ")]
    assert [d for d in directives if not d.startswith("connect-src ")] == FIXED_DIRECTIVES
    # the API is on this origin ('self'); presigned uploads go to the S3 stand-in's documents bucket only
    assert len(connect) == 1
    assert re.fullmatch(r"connect-src 'self' http://127\.0\.0\.1:\d+/raas-documents/", connect[0]), connect


def test_index_is_served_for_the_console_root_with_no_cache(console: Console) -> None:
    status, headers, body = console.raw("GET", "/console/")
    assert (status, body) == (200, INDEX)
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert headers["cache-control"] == "no-cache"
    assert headers["content-length"] == str(len(INDEX))
    _assert_security_headers(headers)
    assert console.raw("GET", "/console/index.html")[2] == INDEX


def test_the_bare_prefix_redirects_to_the_console_root(console: Console) -> None:
    status, headers, _ = console.raw("GET", "/console")
    assert (status, headers["location"]) == (308, "/console/")
    _assert_security_headers(headers)


@pytest.mark.parametrize(
    ("path", "content_type", "body"),
    [
        ("/console/assets/app-abc123.js", "text/javascript; charset=utf-8", SCRIPT),
        ("/console/assets/app-abc123.css", "text/css; charset=utf-8", STYLE),
    ],
)
def test_hashed_assets_have_their_type_and_are_immutable(console: Console, path: str, content_type: str, body: bytes) -> None:
    status, headers, received = console.raw("GET", path)
    assert (status, received) == (200, body)
    assert headers["content-type"] == content_type
    assert headers["cache-control"] == "public, max-age=31536000, immutable"
    _assert_security_headers(headers)


def test_other_files_have_their_type_and_are_revalidated(console: Console) -> None:
    status, headers, body = console.raw("GET", "/console/favicon.svg")
    assert (status, body, headers["content-type"], headers["cache-control"]) == (200, ICON, "image/svg+xml", "no-cache")


def test_an_unchanged_file_is_not_sent_again(console: Console) -> None:
    _, headers, _ = console.raw("GET", "/console/")
    status, again, body = console.raw("GET", "/console/", {"If-None-Match": headers["etag"]})
    assert (status, body, again["etag"]) == (304, b"", headers["etag"])
    _assert_security_headers(again)


@pytest.mark.parametrize("path", ["/console/tenants", "/console/some/deep/link", "/console/assets/", "/console/?x=1"])
def test_paths_that_are_not_files_fall_back_to_index(console: Console, path: str) -> None:
    status, headers, body = console.raw("GET", path)
    assert (status, body, headers["content-type"], headers["cache-control"]) == (200, INDEX, "text/html; charset=utf-8", "no-cache")


@pytest.mark.parametrize("path", ["/console/assets/gone-999.js", "/console/missing.png"])
def test_a_missing_file_is_404_not_index_served_as_script(console: Console, path: str) -> None:
    status, headers, body = console.raw("GET", path)
    assert status == 404
    assert body != INDEX
    assert headers["content-type"] == "text/plain; charset=utf-8"
    _assert_security_headers(headers)


def test_config_json_names_the_same_origin_api(console: Console) -> None:
    status, headers, body = console.raw("GET", "/console/config.json")
    assert status == 200
    assert httpx.Response(200, content=body).json() == {"apiUrl": ""}
    assert (headers["content-type"], headers["cache-control"]) == ("application/json", "no-cache")
    _assert_security_headers(headers)


def test_head_answers_the_headers_without_the_body(console: Console) -> None:
    status, headers, body = console.raw("HEAD", "/console/assets/app-abc123.js")
    assert (status, body) == (200, b"")
    assert headers["content-length"] == str(len(SCRIPT))
    assert headers["content-type"] == "text/javascript; charset=utf-8"


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"])
def test_only_get_and_head_are_allowed(console: Console, method: str) -> None:
    status, headers, _ = console.raw(method, "/console/index.html", {"Content-Length": "0"})
    assert (status, headers["allow"]) == (405, "GET, HEAD")
    _assert_security_headers(headers)


@pytest.mark.parametrize(
    "path",
    [
        "/console/../pyproject.toml",
        "/console/assets/../../secret.txt",
        "/console/%2e%2e/secret.txt",
        "/console/assets/..%2f..%2fsecret.txt",
        "/console/%2E%2E%2Fsecret.txt",
        "/console//etc/passwd",
        "/console/%2fetc%2fpasswd",
        "/console/..\\secret.txt",
        "/console/assets%5c..%5c..%5csecret.txt",
        "/console/C:/Windows/win.ini",
        "/console/secret.txt%00.js",
        "/console/./index.html",
        "/console/.vite/manifest.json",
        "/console/%ff%fe",
    ],
)
def test_path_traversal_is_refused(console: Console, path: str) -> None:
    status, headers, body = console.raw("GET", path)
    assert status == 400, (path, status, body)
    assert SECRET.encode() not in body
    assert headers["content-type"] == "text/plain; charset=utf-8"
    _assert_security_headers(headers)


@pytest.mark.parametrize("path", ["/console/leak.txt", "/console/linked/secret.txt", "/console/linked/secret"])
def test_symlinks_leaving_the_build_are_not_followed(console: Console, path: str) -> None:
    status, _, body = console.raw("GET", path)
    assert SECRET.encode() not in body
    # a file-like path is a 404; an extensionless one gets the app, never the file behind the link
    assert (status, body) == ((200, INDEX) if path.endswith("/secret") else (404, body))


def test_api_responses_allow_the_console_origin_alone(console: Console) -> None:
    """RAAS_CONSOLE_ORIGIN (the CloudFront origin in AWS): the Lambda responses name it, never `*`, with
    Vary: Origin and the headers the SPA reads exposed; refusals made by the handlers carry it too."""
    health = httpx.get(f"{console.server.url}/v1/health", headers={"Origin": CONSOLE_ORIGIN}, timeout=20)
    tenants = httpx.get(f"{console.server.url}/v1/tenants", headers={"Authorization": f"Bearer {OPERATOR_KEY}"}, timeout=20)
    refused = httpx.post(
        f"{console.server.url}/v1/pricing/estimate", content=b"tier=pro", headers={"Content-Type": "text/plain"}, timeout=20
    )
    assert (health.status_code, tenants.status_code, refused.status_code) == (200, 200, 415)
    for response in (health, tenants, refused):
        assert response.headers["access-control-allow-origin"] == CONSOLE_ORIGIN
        assert response.headers["vary"] == "Origin"
        exposed = {h.strip() for h in response.headers["access-control-expose-headers"].split(",")}
        assert {"Retry-After", "X-Quota-Queries-Remaining", "Idempotent-Replayed"} <= exposed


def test_without_a_build_the_console_says_how_to_build_it(console: Console) -> None:
    """Checked per request: the build can be made (or removed) while `raas local` runs."""
    index = console.dist / "index.html"
    index.rename(console.dist / "index.html.away")
    try:
        for path in ("/console/", "/console/tenants"):
            status, headers, body = console.raw("GET", path)
            assert status == 404
            assert headers["content-type"] == "text/html; charset=utf-8"
            assert b"cd console &amp;&amp; npm ci &amp;&amp; npm run build" in body
            assert b"RAAS_CONSOLE_DIR" in body
            _assert_security_headers(headers)
        # config.json does not depend on the build
        assert console.raw("GET", "/console/config.json")[0] == 200
    finally:
        (console.dist / "index.html.away").rename(index)
    assert console.raw("GET", "/console/")[2] == INDEX


def test_the_start_up_banner_names_the_console(console: Console) -> None:
    assert any(line.startswith(f"console: {console.server.url}/console/ (from {console.dist.resolve()})") for line in console.server.output)
