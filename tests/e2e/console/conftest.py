"""The console in a real browser: Debian's chromium driven by Playwright against `raas local`.

- One `raas local` per xdist worker (see `platform`; test_invoices.py starts its own), serving the built
  console (console/dist, or $RAAS_CONSOLE_DIR) at /console/. Build it first: `scripts/dev.sh test` does, or
  `cd console && npm ci && npm run build`.
- One chromium per worker (pytest-playwright's session-scoped `browser`), launched from /usr/bin/chromium:
  Playwright's own browser download is not reachable from these machines, so `playwright install` is never
  run. A new browser context (cookies, storage) for every test (pytest-playwright's `page`).
- Every test saves a screenshot into $RAAS_CONSOLE_SCREENSHOTS (default: a directory under the system's
  temporary directory): `<test name>.png` at its end, plus the named ones it takes (`console.shot("tenants")`),
  which scripts/screenshots.sh copies into docs/screenshots for the README.
- Every page a test lands on is checked with axe-core: serious or critical violations fail the test; the rest
  are written to $RAAS_CONSOLE_SCREENSHOTS/axe/<test>.json.
- A test fails when the page throws or the browser refuses something under the console's CSP.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from io import TextIOWrapper
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import ConsoleMessage, Locator, Page, expect

from tests.conftest import OPERATOR_KEY, TenantHandle, create_tenant
from tests.e2e.conftest import LocalServer, start_local
from tests.helpers import HttpClient

REPO = Path(__file__).resolve().parents[3]
# the build under test: RAAS_CONSOLE_DIR when set (as raas local reads it), else the repository's console/dist
CONSOLE_DIST = Path(os.environ.get("RAAS_CONSOLE_DIR") or REPO / "console" / "dist")
CHROMIUM = "/usr/bin/chromium"
# What these machines need (the machine notes): no sandbox as root, no GPU, and none of chromium's own
# background connections (update checks, sync, QUIC probes), which the closed network refuses at every start.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 800}
STOP_GRACE_SECONDS = 5
# Auto-waiting limits: generous, because two workers share two cores with the platform they drive; a passing
# step takes what it takes, only a failing one waits this long.
ACTION_TIMEOUT_MS = 20_000
expect.set_options(timeout=ACTION_TIMEOUT_MS)
SCREENSHOTS = Path(os.environ.get("RAAS_CONSOLE_SCREENSHOTS") or Path(tempfile.gettempdir()) / "raas-console-screenshots")
# axe-core, from the console's devDependencies (npm ci installs it beside the build's own packages)
AXE_SOURCE = REPO / "console" / "node_modules" / "axe-core" / "axe.min.js"
FAILING_IMPACTS = ("serious", "critical")


# ---------------------------------------------------------------- the platform


def require_build() -> None:
    if not (CONSOLE_DIST / "index.html").is_file():
        pytest.fail(f"no console build at {CONSOLE_DIST}: run scripts/dev.sh test (or npm ci && npm run build in console/)")


def _console_env() -> dict[str, str]:
    from raas.settings import Settings

    # the hosting side's setting; without it raas local serves the repository's console/dist
    return {"RAAS_CONSOLE_DIR": str(CONSOLE_DIST)} if "console_dir" in Settings.model_fields else {}


@pytest.fixture(scope="session")
def stopping() -> Iterator[list[LocalServer]]:
    """Platforms no longer needed: asked to stop (SIGTERM) at once, waited for at the end of the session, so
    that a module's own platform shuts down (several seconds of draining) while the next tests run."""
    servers: list[LocalServer] = []
    yield servers
    for server in servers:
        try:
            server.process.wait(timeout=STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            # in memory: nothing to persist, so the rest of a graceful stop (draining the ingest queue's long
            # poll, the scheduler's tick) is not worth waiting for at the end of the session
            server.process.kill()
            server.process.wait()


def retire(server: LocalServer, stopping: list[LocalServer]) -> None:
    if isinstance(server.process.stdin, TextIOWrapper):
        server.process.stdin.close()
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
    stopping.append(server)


@pytest.fixture(scope="session")
def platform(stopping: list[LocalServer]) -> Iterator[LocalServer]:
    """`raas local` (in memory) serving the built console, one per xdist worker.

    Per worker rather than per module: xdist's default distribution hands a module's tests to both workers, so
    a module-scoped platform started up to twice per module, each start loading the embedding model again.
    Every test makes its own tenants, so tests share a platform without seeing each other's data (which the
    isolation test checks in the browser). A module that needs another kind of platform overrides this
    fixture (test_invoices.py)."""
    require_build()
    server = start_local(extra_env=_console_env())
    yield server
    retire(server, stopping)


@pytest.fixture(scope="module")
def api(platform: LocalServer) -> HttpClient:
    return HttpClient(platform.url)


def new_tenant(api: HttpClient, name: str, tier: str = "enterprise") -> TenantHandle:
    """A tenant made through the API (for tests whose subject is not the creation wizard)."""
    return create_tenant(api, name, tier, operator_key=OPERATOR_KEY)


class InvokableLocal(LocalServer):
    """`raas local` started by tests/e2e/console/local_invoke.py: it can run one of the platform's event
    functions now, with an explicit event (what `aws lambda invoke` does for an operator in AWS)."""

    results: queue.Queue[str]

    def invoke(self, function: str, event: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"function": function, "event": event}) + "\n")
        self.process.stdin.flush()
        line = self.results.get(timeout=timeout)
        reply = json.loads(line)
        if "error" in reply:
            raise AssertionError(f"invoking {function} failed: {reply['error']}")
        result: dict[str, Any] = reply["result"]
        return result


def start_invokable_local(timeout: float = 60) -> InvokableLocal:
    """As tests/e2e/conftest.py's start_local (same environment, same start lines), with standard input
    kept open for invocations and their results read back from standard output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(_console_env())
    env.update({"RAAS_LOCAL_ACCESS_LOG": "0", "POWERTOOLS_METRICS_DISABLED": "true", "POWERTOOLS_LOG_LEVEL": "WARNING"})
    env["AWS_PROFILE"] = "raas-e2e-must-not-be-used"
    env["RAAS_OPERATOR_KEY"] = OPERATOR_KEY
    command = [sys.executable, "-m", "tests.e2e.console.local_invoke", "--port", "0"]
    process = subprocess.Popen(
        command, env=env, cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: queue.Queue[str] = queue.Queue()
    results: queue.Queue[str] = queue.Queue()
    output: list[str] = []

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            if line.startswith("invoked: "):
                results.put(line.split(": ", 1)[1])
            else:
                lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    url = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not url:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            if process.poll() is not None:
                break
            continue
        if "listening on " in line:
            url = line.rsplit(" ", 1)[-1].strip()
    if not url:
        process.kill()
        raise RuntimeError("raas local did not start:\n" + "".join(output))
    httpx.get(f"{url}/v1/health", timeout=10).raise_for_status()
    server = InvokableLocal(process, url, OPERATOR_KEY, output)
    server.results = results
    return server


# ---------------------------------------------------------------- the browser


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """pytest-playwright's launch options, on Debian's chromium with the flags these machines need.
    Playwright gives every launch a new, empty user data directory."""
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} is missing: scripts/dev.sh test installs Debian's chromium (apt-get install chromium)")
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    return {**browser_context_args, "viewport": VIEWPORT, "locale": "en-US", "timezone_id": "UTC", "reduced_motion": "reduce"}


@dataclass
class AxeFinding:
    page: str
    violations: list[dict[str, Any]]


@dataclass
class Console:
    """The console in one test's page, with what every test does: open a route, sign in, follow the side
    navigation, check a page with axe, take screenshots."""

    page: Page
    base: str  # http://127.0.0.1:PORT/console/
    test_name: str
    axe_source: str
    findings: list[AxeFinding] = field(default_factory=list)
    shots: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    # navigation
    def open(self, route: str = "") -> None:
        self.page.goto(f"{self.base}#/{route}" if route else self.base)

    def heading(self, title: str) -> Locator:
        return self.page.get_by_role("heading", level=1, name=title, exact=True)

    def expect_page(self, title: str) -> None:
        """The page titled `title` is shown (its h1), and axe finds nothing serious on it."""
        expect(self.heading(title)).to_be_visible()
        self.check_accessibility(title)

    def side_nav(self) -> Locator:
        # Cloudscape's SideNavigation is a <nav>; breadcrumbs are another one, so look for the link in any
        # navigation landmark and take the first (the side navigation comes before the content).
        return self.page.get_by_role("navigation")

    def nav_link(self, name: str) -> Locator:
        return self.side_nav().get_by_role("link", name=name, exact=True).first

    def go(self, title: str) -> None:
        """Follow the side navigation's link `title` and land on the page of that title."""
        self.nav_link(title).click()
        self.expect_page(title)

    def choose(self, label: str, option: str | re.Pattern[str]) -> None:
        """Pick `option` in the Cloudscape Select labelled `label` (its trigger is a button; the label also
        names the option list, hence the role)."""
        self.page.get_by_label(label, exact=True).and_(self.page.get_by_role("button")).click()
        self.page.get_by_role("option", name=option, exact=isinstance(option, str)).click()

    # sign-in
    def sign_in(self, key: str, landing: str) -> None:
        self.open("sign-in")
        expect(self.heading("Sign in")).to_be_visible()
        self.page.get_by_label("API key").fill(key)
        self.page.get_by_role("button", name="Sign in", exact=True).click()
        self.expect_page(landing)

    def sign_out(self) -> None:
        self.page.get_by_role("button", name="Sign out").click()
        expect(self.heading("Sign in")).to_be_visible()

    def session_storage(self) -> dict[str, str]:
        stored: dict[str, str] = self.page.evaluate("() => Object.fromEntries(Object.entries(sessionStorage))")
        return stored

    def local_storage_size(self) -> int:
        size: int = self.page.evaluate("() => localStorage.length")
        return size

    # keyboard
    def tab_to(self, target: Locator, *, limit: int = 60, backwards: bool = False) -> None:
        """Press Tab (Shift+Tab) until `target` has the focus; fails if it never does within `limit` presses."""
        handle = target.element_handle()
        assert handle is not None
        for _ in range(limit):
            if self.page.evaluate("element => element === document.activeElement", handle):
                return
            self.page.keyboard.press("Shift+Tab" if backwards else "Tab")
        focused = self.page.evaluate("() => document.activeElement && document.activeElement.outerHTML.slice(0, 200)")
        raise AssertionError(f"{limit} presses of Tab never reached {target}; the focus is on {focused}")

    # evidence
    def shot(self, name: str, showing: Locator | None = None) -> Path:
        """A named screenshot (the README's come from these: scripts/screenshots.sh), scrolled so that
        `showing` is in view."""
        if showing is not None:
            showing.evaluate("element => element.scrollIntoView({block: 'center'})")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path))
        self.shots.append(name)
        return path

    def check_accessibility(self, page_name: str) -> None:
        """axe-core on the page as it is now: serious or critical violations fail, the rest are logged.

        axe is evaluated through the DevTools protocol, which the page's CSP (script-src 'self') does not
        govern, so the console is checked under its real policy."""
        self.settle()
        if not self.page.evaluate("() => typeof window.axe === 'object'"):
            self.page.evaluate(self.axe_source)
        violations: list[dict[str, Any]] = self.page.evaluate(
            """async () => {
                const result = await window.axe.run(document, {resultTypes: ['violations']});
                return result.violations.map(v => ({
                    id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
                    nodes: v.nodes.slice(0, 5).map(n => ({target: n.target.join(' '), summary: n.failureSummary})),
                }));
            }"""
        )
        self.findings.append(AxeFinding(page_name, violations))
        serious = [v for v in violations if v["impact"] in FAILING_IMPACTS]
        assert not serious, f"axe: serious or critical violations on {page_name!r}:\n" + json.dumps(serious, indent=2)

    def settle(self) -> None:
        """Waits until the console has no API call in flight (counted by TRACK_REQUESTS) and has painted what
        the last ones answered: a page checked while its table is still loading would not be the page users see.
        (Playwright's "networkidle" is a load state: after a hash route change it is already reached.)"""
        self.page.wait_for_function("() => (window.__raasInFlight || 0) === 0")
        self.page.evaluate("() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")

    def assert_no_page_problems(self) -> None:
        assert not self.problems, "the page reported problems:\n" + "\n".join(self.problems)


def _test_file_name(nodeid: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid.split("::", 1)[-1]).strip("_")[:120]


@pytest.fixture(scope="session")
def axe_source() -> str:
    if not AXE_SOURCE.is_file():
        pytest.fail(f"{AXE_SOURCE} is missing: axe-core is one of the console's devDependencies (cd console && npm ci)")
    return AXE_SOURCE.read_text(encoding="utf-8")


# Counts the page's fetch and XMLHttpRequest calls in flight (init scripts run before the console's own code and,
# injected through the DevTools protocol, are not subject to its CSP).
TRACK_REQUESTS = """
window.__raasInFlight = 0;
const originalFetch = window.fetch;
window.fetch = function (...args) {
  window.__raasInFlight += 1;
  return originalFetch.apply(this, args).finally(() => { window.__raasInFlight -= 1; });
};
const originalSend = XMLHttpRequest.prototype.send;
XMLHttpRequest.prototype.send = function (...args) {
  window.__raasInFlight += 1;
  this.addEventListener('loadend', () => { window.__raasInFlight -= 1; }, { once: true });
  return originalSend.apply(this, args);
};
"""

_CSP_REFUSAL = re.compile(r"Content Security Policy|Refused to (load|execute|apply|connect|frame)", re.IGNORECASE)


@pytest.fixture
def console(page: Page, platform: LocalServer, axe_source: str, request: pytest.FixtureRequest) -> Iterator[Console]:
    """The console at this module's `raas local`, in a fresh browser context. At the end: the test's
    screenshot, its axe log, and no uncaught script error or CSP refusal."""
    ui = Console(page, f"{platform.url}/console/", _test_file_name(request.node.nodeid), axe_source)
    page.set_default_timeout(ACTION_TIMEOUT_MS)
    page.add_init_script(TRACK_REQUESTS)

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            print(f"browser console: {message.text}")  # shown with a failing test's output
            if _CSP_REFUSAL.search(message.text):
                ui.problems.append(f"CSP: {message.text}")

    page.on("console", on_console)
    page.on("response", lambda r: print(f"HTTP {r.status} {r.request.method} {r.url}") if r.status >= 400 else None)
    page.on("pageerror", lambda error: ui.problems.append(f"uncaught: {error}"))
    yield ui
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    try:
        page.screenshot(path=str(SCREENSHOTS / f"{ui.test_name}.png"))
    except Exception as exc:  # a crashed page still fails the test by itself; the screenshot is evidence only
        print(f"no end screenshot for {ui.test_name}: {exc}")
    axe_dir = SCREENSHOTS / "axe"
    axe_dir.mkdir(parents=True, exist_ok=True)
    (axe_dir / f"{ui.test_name}.json").write_text(
        json.dumps([{"page": f.page, "violations": f.violations} for f in ui.findings], indent=2), encoding="utf-8"
    )
    for finding in ui.findings:
        for violation in finding.violations:
            print(f"axe ({violation['impact']}) on {finding.page!r}: {violation['id']}: {violation['help']}")
    ui.assert_no_page_problems()
