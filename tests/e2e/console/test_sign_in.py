"""Signing in and out, the public pricing calculator, and what happens to a refused key, in a real browser."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.console.conftest import Console, new_tenant
from tests.helpers import HttpClient
from tests.helpers import expect as expect_status

pytestmark = [pytest.mark.e2e, pytest.mark.console]

# Recorded by an init script (Playwright injects it through the DevTools protocol, so the console's CSP does
# not apply to it) before any of the console's own code runs: every write to localStorage and document.cookie.
RECORD_STORAGE_WRITES = """
window.__storageWrites = [];
const setItem = Storage.prototype.setItem;
Storage.prototype.setItem = function (key, value) {
  if (this === window.localStorage) window.__storageWrites.push('localStorage:' + key);
  return setItem.call(this, key, value);
};
const cookie = Object.getOwnPropertyDescriptor(Document.prototype, 'cookie');
Object.defineProperty(Document.prototype, 'cookie', {
  get() { return cookie.get.call(this); },
  set(value) { window.__storageWrites.push('cookie:' + String(value).split('=')[0]); cookie.set.call(this, value); },
});
"""


def test_the_pricing_calculator_works_without_signing_in(console: Console, api: HttpClient) -> None:
    console.open("sign-in")
    console.expect_page("Sign in")
    console.page.get_by_role("link", name="Pricing calculator").first.click()
    console.expect_page("Pricing calculator")
    page = console.page

    console.choose("Tier", "midmarket")
    page.get_by_label("Queries per month value").fill("250000")
    page.get_by_label("API calls per month value").fill("1500000")
    page.get_by_label("Storage (GB) value").fill("40")
    monthly = expect_status(
        api.request(
            "POST", "/v1/pricing/estimate", json_body={"tier": "midmarket", "queries": 250000, "storage_gb": 40, "api_calls": 1500000}
        ),
        200,
    )
    total = page.get_by_test_id("quote-total")
    expect(total).to_have_text(_dollars(monthly["total_cents"]))
    expect(page.get_by_role("cell", name=re.compile(r"^queries beyond the")).first).to_be_visible()

    page.get_by_label("Annual billing").check()
    annual = expect_status(
        api.request(
            "POST",
            "/v1/pricing/estimate",
            json_body={"tier": "midmarket", "queries": 250000, "storage_gb": 40, "api_calls": 1500000, "annual": True},
        ),
        200,
    )
    assert annual["total_cents"] < monthly["total_cents"]
    expect(total).to_have_text(_dollars(annual["total_cents"]))
    console.check_accessibility("Pricing calculator (annual)")
    console.shot("pricing", showing=total)
    assert console.session_storage() == {}


def test_sign_in_and_the_side_navigation_by_keyboard_only(console: Console, api: HttpClient) -> None:
    tenant = new_tenant(api, "Keyboard Co")
    page = console.page
    console.open("sign-in")
    console.expect_page("Sign in")
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    console.tab_to(page.get_by_label("API key"))
    page.keyboard.type(tenant.admin_key)
    page.keyboard.press("Enter")
    console.expect_page("Overview")

    for title in ("Configuration", "Documents", "API keys"):
        console.tab_to(console.nav_link(title))
        page.keyboard.press("Enter")
        console.expect_page(title)
    # and back up the navigation with Shift+Tab
    console.tab_to(console.nav_link("Versions"), backwards=True)
    page.keyboard.press("Enter")
    console.expect_page("Versions")
    console.shot("keyboard-navigation")


def test_sign_out_forgets_the_key_and_nothing_else_is_stored(console: Console, api: HttpClient) -> None:
    tenant = new_tenant(api, "Forgetful Co")
    page = console.page
    page.add_init_script(RECORD_STORAGE_WRITES)
    console.sign_in(tenant.admin_key, "Overview")
    assert console.session_storage() == {"raas.apiKey": tenant.admin_key}
    console.go("Documents")
    assert console.local_storage_size() == 0
    assert page.context.cookies() == []

    console.sign_out()
    console.expect_page("Sign in")
    assert console.session_storage() == {}
    assert console.local_storage_size() == 0
    assert page.context.cookies() == []
    assert page.evaluate("() => window.__storageWrites") == []
    assert tenant.admin_key not in page.content()

    # the key is gone, not hidden: a signed-in page sends the browser back to sign-in, also after a reload
    console.open("configuration")
    console.expect_page("Sign in")
    page.reload()
    console.expect_page("Sign in")
    assert console.session_storage() == {}
    console.shot("sign-in")


def test_a_refused_key_returns_to_sign_in(console: Console, api: HttpClient) -> None:
    tenant = new_tenant(api, "Revoked Co")
    second = expect_status(api.request("POST", "/v1/keys", key=tenant.admin_key, json_body={"name": "laptop", "role": "admin"}), 201)
    console.sign_in(second["api_key"], "Overview")

    # revoked elsewhere while this tab is open: the next call answers 401
    assert api.request("DELETE", f"/v1/keys/{second['key']['key_id']}", key=tenant.admin_key).status == 204
    console.nav_link("Configuration").click()
    console.expect_page("Sign in")
    assert console.session_storage() == {}
    expect(console.page.get_by_text(re.compile("refused|expired|revoked", re.IGNORECASE)).first).to_be_visible()


def test_a_wrong_key_shows_the_api_error_at_the_field(console: Console) -> None:
    page = console.page
    response = page.goto(f"{console.base}#/sign-in")
    assert response is not None
    # the console runs under its real policy in every test here (a CSP refusal fails the test)
    policy = dict(part.strip().split(" ", 1) for part in response.headers["content-security-policy"].split(";") if part.strip())
    assert policy["script-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    console.expect_page("Sign in")
    page.get_by_label("API key").fill("raas_this-key-does-not-exist-0000000000")
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_text(re.compile(r"^unauthorized: "))).to_be_visible()
    console.expect_page("Sign in")
    assert console.session_storage() == {}


def _dollars(cents: int) -> str:
    return f"${cents // 100:,}.{cents % 100:02d}"
