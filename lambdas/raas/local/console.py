"""`raas local` serves the built console at /console/, on the same origin as the API.

What CloudFront does in AWS (stacks/console.py), done here by the local HTTP server before a request
reaches the gateway emulator:

- files of the build (console/dist, `npm ci && npm run build` in console/) with their content types;
- `/console/` and any path under it that is not a file and has no file extension → index.html (the SPA's
  routes are hash routes, so this fallback only keeps mistyped or old links on the app); a missing path
  that looks like a file (`/console/assets/gone.js`) is a 404, never index.html served as script;
- `/console/config.json` → `{"apiUrl": ""}` ("" = the API is on this origin), whatever the build holds;
- Cache-Control: files under assets/ are content-hashed by Vite (`build.assetsDir`, file names
  `[name]-[hash]`: https://vite.dev/config/build-options#build-assetsdir) and cached for a year as
  immutable; everything else, index.html and config.json first, is `no-cache` (revalidated each time);
- the console's CSP and security headers (raas.domain.console_security) on every response, errors too;
- only GET and HEAD (405 otherwise); no `..`, `.`, hidden or absolute segments, no backslash or NUL,
  and no file reached through a symlink that leaves the build directory.

Where the build is: `RAAS_CONSOLE_DIR` (Settings.console_dir); else the repository's console/dist found
from this package's location, which exists when raas runs from the repository (the editable install that
scripts/dev.sh makes). A wheel installed elsewhere does not contain the console (npm builds it), so there
RAAS_CONSOLE_DIR must name a build; without one, /console/ answers a page saying how to build it.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from raas.domain.console_security import SECURITY_HEADERS, content_security_policy

PREFIX = "/console"
ALLOWED_METHODS = ("GET", "HEAD")
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
# The web's file types, fixed here rather than read from the system's mime.types, which differs between
# machines (.js as application/javascript or text/javascript, .mjs or .woff2 missing).
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".txt": "text/plain; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".avif": "image/avif",
    ".ico": "image/x-icon",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".ttf": "font/ttf",
    ".otf": "font/otf",
    ".wasm": "application/wasm",
    ".webmanifest": "application/manifest+json",
}
_FORBIDDEN_SEGMENT = re.compile(r"^\.|[\\\x00]|^[A-Za-z]:")


@dataclass
class ConsoleResponse:
    status: int
    headers: dict[str, str]
    body: bytes


def default_console_dir() -> Path | None:
    """The repository's console/dist when this package runs from the repository (lambdas/raas/local/ ->
    the repository root is three levels up), else None."""
    candidate = Path(__file__).resolve().parents[3] / "console" / "dist"
    return candidate if candidate.is_dir() else None


def is_console_path(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


class ConsoleSite:
    """The built console under /console/. `root` None or missing: every page explains how to build it."""

    def __init__(self, root: Path | None, connect_sources: tuple[str, ...] = ()):
        self.root = root.resolve() if root is not None else None
        self.csp = content_security_policy(connect_sources)

    @classmethod
    def from_settings(cls, console_dir: str | None, upload_prefix: str | None = None) -> ConsoleSite:
        """`console_dir`: Settings.console_dir (RAAS_CONSOLE_DIR); `upload_prefix`: where the platform's
        presigned uploads go locally (the S3 stand-in's URL and the documents bucket), which the SPA PUTs
        files to, so the CSP's connect-src names it as CloudFront's names the bucket in AWS."""
        root = Path(console_dir).expanduser() if console_dir else default_console_dir()
        return cls(root, (upload_prefix,) if upload_prefix else ())

    @property
    def built(self) -> bool:
        return self.root is not None and (self.root / "index.html").is_file()

    def describe(self, base_url: str) -> str:
        """One line for the start-up banner."""
        if self.built:
            return f"console: {base_url}{PREFIX}/ (from {self.root})"
        return f"console: not built ({self.root or 'no console/dist found'}); build it with: cd console && npm ci && npm run build"

    def handle(self, method: str, raw_path: str, request_headers: dict[str, str]) -> ConsoleResponse:
        """The answer to `method raw_path` (the path as sent, percent-encoded, without the query)."""
        if method not in ALLOWED_METHODS:
            return self._text(405, f"{method} is not allowed on the console; use GET or HEAD", {"Allow": ", ".join(ALLOWED_METHODS)})
        if raw_path == PREFIX:
            return self._respond(308, b"", {"Location": PREFIX + "/", "Content-Type": "text/plain; charset=utf-8"})
        relative = self._relative(raw_path)
        if relative is None:
            return self._text(400, "this path is not allowed: no '..', '.', hidden, absolute or backslash segments")
        if relative == "config.json":
            # The API is on this origin locally; in AWS the deployment writes the API's URL here.
            body = json.dumps({"apiUrl": ""}).encode()
            return self._respond(200, body, {"Content-Type": "application/json", "Cache-Control": REVALIDATE})
        root = self.root
        if root is None or not self.built:
            return self._not_built()
        target = _file(root, relative)
        if target is None:
            if _looks_like_a_file(relative):
                return self._text(404, f"no such file in the console build: {relative}")
            target = root / "index.html"  # the SPA fallback
            relative = "index.html"
        return self._send_file(target, relative, request_headers)

    # --- paths ------------------------------------------------------------------------------------
    @staticmethod
    def _relative(raw_path: str) -> str | None:
        """The path below /console/ as segments joined by "/", or None if any segment is refused.

        Checked after percent-decoding, so `%2e%2e` and `%2f` are refused as `..` and `/` would be; the
        empty path (/console/) is "". Empty segments (`a//b`) are dropped, as a file system would."""
        if not raw_path.startswith(PREFIX + "/"):
            return None
        try:
            decoded = unquote(raw_path[len(PREFIX) + 1 :], errors="strict")
        except UnicodeDecodeError:  # bytes that are not UTF-8 name no file of the build
            return None
        segments = decoded.split("/")
        if decoded.startswith("/") or any(_FORBIDDEN_SEGMENT.search(segment) for segment in segments):
            return None
        return "/".join(segment for segment in segments if segment)

    # --- responses --------------------------------------------------------------------------------
    def _send_file(self, target: Path, relative: str, request_headers: dict[str, str]) -> ConsoleResponse:
        try:
            stat = target.stat()
            body = target.read_bytes()
        except OSError:
            return self._text(404, f"no such file in the console build: {relative}")
        etag = '"' + hashlib.sha256(f"{stat.st_mtime_ns}:{stat.st_size}:{relative}".encode()).hexdigest()[:32] + '"'
        headers = {
            "Content-Type": CONTENT_TYPES.get(target.suffix.lower(), "application/octet-stream"),
            "Cache-Control": IMMUTABLE if relative.startswith("assets/") else REVALIDATE,
            "ETag": etag,
        }
        if_none_match = next((v for k, v in request_headers.items() if k.lower() == "if-none-match"), None)
        if if_none_match and etag in [tag.strip() for tag in if_none_match.split(",")]:
            return self._respond(304, b"", headers)
        return self._respond(200, body, headers)

    def _not_built(self) -> ConsoleResponse:
        where = html.escape(str(self.root) if self.root else "console/dist")
        page = (
            "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>raas console: not built</title></head>"
            "<body style='font-family: sans-serif; max-width: 40em; margin: 3em auto'>"
            "<h1>The raas console is not built</h1>"
            f"<p>No built console was found at <code>{where}</code>.</p>"
            "<p>Build it from the repository, then reload this page:</p>"
            "<pre>cd console &amp;&amp; npm ci &amp;&amp; npm run build</pre>"
            "<p>Or point <code>RAAS_CONSOLE_DIR</code> at a built console (a directory with index.html) and restart "
            "<code>raas local</code>.</p></body></html>"
        )
        return self._respond(404, page.encode(), {"Content-Type": "text/html; charset=utf-8", "Cache-Control": REVALIDATE})

    def _text(self, status: int, message: str, extra: dict[str, str] | None = None) -> ConsoleResponse:
        headers = {"Content-Type": "text/plain; charset=utf-8", "Cache-Control": REVALIDATE, **(extra or {})}
        return self._respond(status, (message + "\n").encode(), headers)

    def _respond(self, status: int, body: bytes, headers: dict[str, str]) -> ConsoleResponse:
        return ConsoleResponse(status, {**headers, **SECURITY_HEADERS, "Content-Security-Policy": self.csp}, body)


def _file(root: Path, relative: str) -> Path | None:
    """The regular file at `relative` inside the build `root`, after resolving symlinks; None if there is
    none or if it resolves outside the build directory."""
    if not relative:
        return None
    candidate = (root / relative).resolve()
    if not candidate.is_relative_to(root) or not candidate.is_file():
        return None
    return candidate


def _looks_like_a_file(relative: str) -> bool:
    last = relative.rsplit("/", 1)[-1]
    return relative.startswith("assets/") or "." in last
