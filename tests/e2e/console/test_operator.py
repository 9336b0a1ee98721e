"""The operator's console in a real browser: the create-tenant wizard, the tenants table, a tenant's detail
(tier preview, suspend/resume, timeline, delete with its receipt) and platform usage."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import expect

from tests.conftest import OPERATOR_KEY
from tests.e2e.console.conftest import Console, new_tenant
from tests.helpers import HttpClient
from tests.helpers import expect as expect_status

pytestmark = [pytest.mark.e2e, pytest.mark.console]

TENANT_PAGES = ("Overview", "Configuration", "Documents", "Playground", "API keys", "Invoices")


def test_the_operator_creates_a_tenant_in_the_wizard_and_sees_its_admin_key_once(console: Console, api: HttpClient) -> None:
    page = console.page
    console.sign_in(OPERATOR_KEY, "Tenants")
    for title in TENANT_PAGES:  # the operator never sees inside a tenant
        expect(console.side_nav().get_by_role("link", name=title, exact=True)).to_have_count(0)

    console.go("Create tenant")
    page.get_by_role("button", name="Next").click()  # no name yet: refused in the form
    expect(page.get_by_text("A name is required")).to_be_visible()
    page.get_by_label("Tenant name").fill("Acme Robotics")
    page.get_by_role("button", name="Next").click()
    page.get_by_role("radio", name=re.compile(r"^midmarket")).check()
    page.get_by_role("button", name="Next").click()
    review = page.get_by_role("heading", name="Review", exact=True)
    expect(review).to_be_visible()
    expect(page.get_by_text("Acme Robotics", exact=True)).to_be_visible()
    console.check_accessibility("Create tenant (review)")
    page.get_by_role("button", name="Create tenant", exact=True).click()

    shown = page.get_by_test_id("admin-key")
    expect(shown).to_have_text(re.compile(r"^raas_\S{20,}$"))
    admin_key = shown.inner_text()
    expect(page.get_by_text(re.compile("shown once", re.IGNORECASE)).first).to_be_visible()
    expect(page.get_by_role("button", name="Copy key")).to_be_visible()
    console.check_accessibility("Create tenant (key shown once)")
    console.shot("create-tenant-key")

    # the key is real: the new tenant's admin can use it
    keys = expect_status(api.request("GET", "/v1/keys", key=admin_key), 200)["keys"]
    assert [k["role"] for k in keys] == ["admin"]

    # ...and shown once: nowhere once the operator moves on
    page.get_by_role("button", name="Open tenant").click()
    console.expect_page("Acme Robotics")
    assert admin_key not in page.content()
    console.go("Tenants")
    expect(page.get_by_role("link", name="Acme Robotics", exact=True)).to_be_visible()
    assert admin_key not in page.content()
    page.go_back()
    page.go_back()
    assert admin_key not in page.content()

    # the tenant's admin signs in with that key and lands in the new tenant's console
    console.sign_out()
    console.sign_in(admin_key, "Overview")
    expect(page.get_by_role("banner").get_by_text("Acme Robotics").first).to_be_visible()
    expect(console.nav_link("Tenants")).to_have_count(0)


def test_the_operator_finds_a_tenant_and_manages_it(console: Console, api: HttpClient) -> None:
    page = console.page
    for name, tier in (("Northwind Traders", "smb"), ("Contoso Legal", "midmarket"), ("Fabrikam Health", "free")):
        new_tenant(api, name, tier)
    target = new_tenant(api, "Globex Research", "enterprise")
    # top_k 15 is within enterprise's bounds and above smb's (10), so moving to smb clamps it
    expect_status(api.request("PATCH", "/v1/config", key=target.admin_key, json_body={"top_k": 15}), 200)

    console.sign_in(OPERATOR_KEY, "Tenants")
    expect(page.get_by_role("link", name="Northwind Traders", exact=True)).to_be_visible()
    page.get_by_label("Search by name").fill("globex")
    expect(page.get_by_role("link", name="Globex Research", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="Northwind Traders", exact=True)).to_have_count(0)
    page.get_by_label("Search by name").fill("")
    console.choose("Tier", "midmarket")
    expect(page.get_by_role("link", name="Contoso Legal", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="Globex Research", exact=True)).to_have_count(0)
    console.choose("Tier", "Any tier")
    expect(page.get_by_role("link", name="Globex Research", exact=True)).to_be_visible()
    console.check_accessibility("Tenants (filtered)")
    console.shot("tenants")

    page.get_by_role("link", name="Globex Research", exact=True).click()
    console.expect_page("Globex Research")

    # tier change: the preview says what smb clamps before anything changes
    console.choose("New tier", "smb")
    expect(page.get_by_role("heading", name="What smb clamps")).to_be_visible()
    expect(page.get_by_role("cell", name="top_k", exact=True)).to_be_visible()
    console.check_accessibility("Tenant detail (tier preview)")
    assert expect_status(api.request("GET", f"/v1/tenants/{target.tenant_id}", key=OPERATOR_KEY), 200)["tier"] == "enterprise"

    # suspend and resume: the tenant's keys are refused, then accepted again
    page.get_by_role("button", name="Suspend tenant").click()
    expect(page.get_by_role("button", name="Resume tenant")).to_be_visible()
    assert api.request("GET", "/v1/config", key=target.admin_key).error_code == "tenant_suspended"
    page.get_by_role("button", name="Resume tenant").click()
    expect(page.get_by_role("button", name="Suspend tenant")).to_be_visible()
    assert api.request("GET", "/v1/config", key=target.admin_key).status == 200
    # the lifecycle timeline, oldest first, already showing what was just done (no reload)
    timeline = page.get_by_role("table", name="Timeline")
    events = [timeline.get_by_role("cell", name=kind, exact=True) for kind in ("created", "provisioned", "suspended", "resumed")]
    for event in events:
        expect(event).to_be_visible()
    tops = [event.bounding_box()["y"] for event in events]  # type: ignore[index]
    assert tops == sorted(tops), "the timeline is oldest first"

    # delete: the typed confirmation, then the receipt
    page.get_by_role("button", name="Delete tenant").click()
    dialog = page.get_by_role("dialog")
    confirm = dialog.get_by_role("button", name="Delete permanently")
    expect(confirm).to_be_disabled()
    dialog.get_by_label(re.compile("to confirm")).fill("Globex Research")
    console.check_accessibility("Tenant detail (delete confirmation)")
    confirm.click()
    expect(page.get_by_role("heading", name="Deletion receipt")).to_be_visible(timeout=30_000)
    assert httpx.get(f"{api.http.base_url}/v1/config", headers={"Authorization": f"Bearer {target.admin_key}"}).status_code in (401, 403)

    console.go("Platform usage")
    expect(page.get_by_role("button", name=re.compile("CSV", re.IGNORECASE))).to_be_visible()
    console.shot("platform-usage")
