"""A tenant admin's console in a real browser: the configuration (edit, versions, diff, rollback), API keys
(create shown once, revoke), documents (a PDF uploaded through the presigned URL until it is indexed), the
playground (an answer citing that PDF) and the overview's usage moving with it."""

from __future__ import annotations

import base64
import re

import httpx
import pytest
from playwright.sync_api import Route, expect

from tests.e2e.console.conftest import Console, new_tenant
from tests.e2e.console.pdf import text_pdf
from tests.helpers import HttpClient
from tests.helpers import expect as expect_status

pytestmark = [pytest.mark.e2e, pytest.mark.console]

# a 1x1 PNG: the tenant's logo in the branding test
TINY_PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")


def test_the_admin_edits_the_configuration_and_rolls_a_version_back(console: Console, api: HttpClient) -> None:
    tenant = new_tenant(api, "Configurable Co", "smb")
    page = console.page
    console.sign_in(tenant.admin_key, "Overview")
    console.go("Configuration")

    top_k = page.get_by_label("Top k", exact=True)
    top_k.fill("50")  # above smb's bound (10): refused in the form, not saved
    bound = re.compile(r"(at most|maximum|<=|≤|less than).*\b10\b", re.IGNORECASE)
    expect(page.get_by_text(bound).first).to_be_visible()
    expect(page.get_by_role("button", name="Save", exact=True)).to_be_disabled()
    top_k.fill("3")
    page.get_by_label("Temperature", exact=True).fill("0.2")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text(re.compile(r"version 1\b|v1\b", re.IGNORECASE)).first).to_be_visible()
    saved = expect_status(api.request("GET", "/v1/config", key=tenant.admin_key), 200)
    assert (saved["version"], saved["config"]["top_k"], saved["config"]["temperature"]) == (1, 3, 0.2)
    console.check_accessibility("Configuration (saved)")
    console.shot("configuration")

    page.get_by_label("Top k", exact=True).fill("7")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text(re.compile(r"version 2\b|v2\b", re.IGNORECASE)).first).to_be_visible()

    console.go("Versions")
    expect(page.get_by_role("cell", name="v2", exact=True)).to_be_visible()
    expect(page.get_by_role("cell", name="v1", exact=True)).to_be_visible()
    # the side-by-side diff of v1 and v2: top_k 3 -> 7
    console.choose("From version", re.compile(r"^v1\b"))
    console.choose("To version", re.compile(r"^v2\b"))
    diff_row = page.get_by_role("row").filter(has=page.get_by_role("cell", name="top_k", exact=True))
    expect(diff_row).to_contain_text("3")
    expect(diff_row).to_contain_text("7")
    console.check_accessibility("Versions (diff)")

    page.get_by_role("button", name="Roll back to v1").click()
    expect(page.get_by_role("cell", name="v3", exact=True)).to_be_visible()
    rolled = expect_status(api.request("GET", "/v1/config", key=tenant.admin_key), 200)
    assert (rolled["version"], rolled["config"]["top_k"], rolled["config"]["temperature"]) == (3, 3, 0.2)
    console.shot("versions")

    # replace save, behind a confirmation that lists what resets to its default
    console.go("Configuration")
    page.get_by_label("Max tokens", exact=True).fill("300")
    page.get_by_role("button", name="Replace save").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_text("These fields will reset to their defaults")).to_be_visible()
    console.check_accessibility("Configuration (replace confirmation)")
    dialog.get_by_role("button", name="Replace", exact=True).click()
    expect(page.get_by_text(re.compile(r"version 4\b|v4\b", re.IGNORECASE)).first).to_be_visible()
    replaced = expect_status(api.request("GET", "/v1/config", key=tenant.admin_key), 200)["config"]
    assert (replaced["max_tokens"], replaced["top_k"], replaced["temperature"]) == (300, 5, 0.7)  # the rest: defaults


def test_the_admin_checks_a_prompt_template_live_and_brands_the_console(console: Console, api: HttpClient) -> None:
    tenant = new_tenant(api, "Branded Co", "smb")
    page = console.page
    # the logo is served by the test itself: nothing leaves the machine
    page.route("https://logo.example/**", lambda route: route.fulfill(status=200, content_type="image/png", body=TINY_PNG))
    console.sign_in(tenant.admin_key, "Overview")
    console.go("Configuration")

    template = page.get_by_label("Prompt template", exact=True)
    template.fill("Answer briefly and politely.")
    expect(page.get_by_text("missing_placeholder").first).to_be_visible()  # the API's rule, shown live
    expect(page.get_by_role("button", name="Save", exact=True)).to_be_disabled()  # refused in the form
    assert expect_status(api.request("GET", "/v1/config", key=tenant.admin_key), 200)["version"] == 0
    template.fill("Use this context:\n{context}\n\nQuestion: {query}\nAnswer briefly.")
    expect(page.get_by_text("The template passes every rule")).to_be_visible()
    expect(page.get_by_test_id("prompt-preview")).to_contain_text("Question: ")
    console.check_accessibility("Configuration (prompt preview)")

    logo = page.get_by_label("Logo url", exact=True)
    preview = page.get_by_role("region", name="Branding preview")
    logo.fill("http://logo.example/acme.png")  # only https:// logos: refused in the form, never shown
    expect(logo).to_have_attribute("aria-invalid", "true")
    expect(preview.get_by_role("img")).to_have_count(0)
    logo.fill("https://logo.example/acme.png")
    page.get_by_label("Primary color", exact=True).fill("#1E40AF")
    expect(preview.get_by_role("img")).to_have_attribute("referrerpolicy", "no-referrer")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text(re.compile(r"version 1\b|v1\b", re.IGNORECASE)).first).to_be_visible()
    saved = expect_status(api.request("GET", "/v1/config", key=tenant.admin_key), 200)["config"]
    assert saved["branding"] == {"primary_color": "#1E40AF", "secondary_color": "#9CA3AF", "logo_url": "https://logo.example/acme.png"}
    assert "{query}" in saved["prompt_template"]
    # the console now wears the tenant's logo, fetched without a referrer
    brand = console.side_nav().get_by_role("img", name="Branded Co logo")
    expect(brand).to_have_attribute("referrerpolicy", "no-referrer")
    console.shot("branding", showing=preview)


def test_a_network_failure_offers_a_retry_and_keeps_what_was_typed(console: Console, api: HttpClient) -> None:
    tenant = new_tenant(api, "Flaky Network Co", "smb")
    page = console.page
    console.sign_in(tenant.admin_key, "Overview")
    console.go("Configuration")
    page.get_by_label("Temperature", exact=True).fill("0.35")

    # the save's request is cut off in the browser, as a dropped connection would be
    def cut_off_writes(route: Route) -> None:
        if route.request.method in ("PATCH", "PUT"):
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route("**/v1/config", cut_off_writes)
    page.get_by_role("button", name="Save", exact=True).click()
    retry = page.get_by_role("button", name="Retry")
    expect(retry).to_be_visible()
    expect(page.get_by_text(re.compile(r"^network_error: ")).first).to_be_visible()
    expect(page.get_by_label("Temperature", exact=True)).to_have_value("0.35")
    console.check_accessibility("Configuration (network failure)")
    assert expect_status(api.request("GET", "/v1/config", key=tenant.admin_key), 200)["version"] == 0

    page.unroute("**/v1/config")
    retry.click()
    expect(page.get_by_text(re.compile(r"version 1\b|v1\b", re.IGNORECASE)).first).to_be_visible()
    assert expect_status(api.request("GET", "/v1/config", key=tenant.admin_key), 200)["config"]["temperature"] == 0.35


def test_the_admin_reads_query_history_and_audit_log_and_exports(console: Console, api: HttpClient) -> None:
    tenant = new_tenant(api, "Recorded Co", "smb")
    expect_status(api.request("POST", "/v1/query", key=tenant.admin_key, json_body={"query": "Where is the handbook?"}), 200)
    expect_status(api.request("PATCH", "/v1/config", key=tenant.admin_key, json_body={"temperature": 0.4}), 200)
    page = console.page
    console.sign_in(tenant.admin_key, "Overview")

    console.go("Query history")
    expect(page.get_by_role("cell", name="Where is the handbook?")).to_be_visible()

    console.go("Audit log")
    entries = page.get_by_role("table", name=re.compile("Entries"))
    expect(entries.get_by_role("row")).not_to_have_count(1)  # more than the header
    page.get_by_role("searchbox", name="Search", exact=True).fill("temperature")
    expect(entries).to_contain_text("temperature")
    console.check_accessibility("Audit log (filtered)")

    console.go("Export")
    page.get_by_role("button", name="Request export").click()
    download = page.get_by_role("link", name=re.compile("Download the export bundle"))
    expect(download).to_be_visible(timeout=30_000)
    console.check_accessibility("Export (ready)")
    href = download.get_attribute("href")
    assert href
    bundle = httpx.get(href, timeout=30)
    assert bundle.status_code == 200
    assert bundle.content[:2] == b"PK"  # a zip


def test_the_admin_creates_a_key_sees_it_once_and_revokes_it(console: Console, api: HttpClient) -> None:
    tenant = new_tenant(api, "Keyed Co", "smb")
    page = console.page
    console.sign_in(tenant.admin_key, "Overview")
    console.go("API keys")
    # the only admin key cannot be revoked, and the page says why
    expect(page.get_by_text(re.compile("last admin key cannot be revoked", re.IGNORECASE)).first).to_be_visible()

    page.get_by_label("Key name").fill("ci pipeline")
    console.choose("Role", "reader")
    page.get_by_role("button", name="Create key").click()
    shown = page.get_by_test_id("new-api-key")
    expect(shown).to_have_text(re.compile(r"^raas_\S{20,}$"))
    new_key = shown.inner_text()
    expect(page.get_by_text(re.compile("shown once", re.IGNORECASE)).first).to_be_visible()
    console.check_accessibility("API keys (new key shown)")
    assert api.request("GET", "/v1/config", key=new_key).status == 200
    assert api.request("POST", "/v1/keys", key=new_key, json_body={"name": "x", "role": "reader"}).error_code == "insufficient_role"
    row = page.get_by_role("row").filter(has_text="ci pipeline")
    expect(row).to_contain_text("reader")
    expect(row).to_contain_text("active")

    page.get_by_role("button", name="Revoke ci pipeline").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    console.check_accessibility("API keys (revoke confirmation)")
    dialog.get_by_role("button", name="Revoke key").click()
    expect(row).to_contain_text("revoked")
    assert api.request("GET", "/v1/config", key=new_key).status == 401
    # the key is not shown again anywhere after a reload
    page.reload()
    console.expect_page("API keys")
    assert new_key not in page.content()
    console.shot("api-keys")


def test_the_admin_uploads_a_pdf_asks_about_it_and_sees_usage_move(console: Console, api: HttpClient) -> None:
    tenant = new_tenant(api, "Documented Co", "smb")
    page = console.page
    console.sign_in(tenant.admin_key, "Overview")
    queries_gauge = page.get_by_role("progressbar", name=re.compile(r"^Queries this month"))
    expect(queries_gauge).to_have_accessible_name(re.compile(r"^Queries this month: 0 of"))

    console.go("Documents")
    pdf = text_pdf(
        "Refund policy",
        [
            "Refund policy",
            "Customers may request a full refund within 30 days of purchase.",
            "Refunds are paid back to the original card within five business days.",
        ],
    )
    page.locator("input[type=file]").set_input_files({"name": "refund-policy.pdf", "mimeType": "application/pdf", "buffer": pdf})
    page.get_by_role("button", name=re.compile(r"^Upload")).click()
    expect(page.get_by_role("progressbar", name=re.compile("refund-policy.pdf"))).to_be_visible()
    expect(page.get_by_text(re.compile(r"^Uploaded")).first).to_be_visible()  # the bytes reached storage
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name=re.compile("Refund policy|refund-policy", re.IGNORECASE)))
    expect(row).to_contain_text("indexed", timeout=90_000)  # live status: no reload
    console.check_accessibility("Documents (indexed)")
    document = expect_status(api.request("GET", "/v1/documents", key=tenant.admin_key), 200)["documents"][0]
    assert (document["status"], document["content_type"]) == ("indexed", "application/pdf")

    row.get_by_role("link").first.click()
    expect(page.get_by_text("within 30 days of purchase").first).to_be_visible()  # its chunks
    console.check_accessibility("Document detail")

    console.go("Playground")
    page.get_by_label("Question").fill("How many days do customers have to ask for a refund?")
    page.get_by_role("button", name="Ask").click()
    citation = page.get_by_role("link", name=re.compile("Refund policy|refund-policy", re.IGNORECASE)).first
    expect(citation).to_be_visible(timeout=30_000)
    expect(page.get_by_text("30 days").first).to_be_visible()
    console.check_accessibility("Playground (answer)")
    console.shot("playground", showing=citation)
    # search only: the results with their scores
    page.get_by_role("button", name="Search only").click()
    page.get_by_role("button", name="Search", exact=True).click()
    results = page.get_by_role("table", name=re.compile("Search results"))
    expect(results.get_by_role("row").nth(1)).to_contain_text("refund")
    expect(results.get_by_role("cell", name=re.compile(r"^\d\.\d{4}$")).first).to_be_visible()
    citation.click()
    expect(page).to_have_url(re.compile(rf"#/documents/{document['document_id']}"))

    console.go("Overview")
    expect(queries_gauge).to_have_accessible_name(re.compile(r"^Queries this month: 1 of"))
    console.shot("overview", showing=page.get_by_role("heading", name="Queries per day"))

    # filter the documents, then delete the PDF behind a confirmation
    console.go("Documents")
    title_filter = page.get_by_role("searchbox", name="Filter by title")
    title_filter.fill("no such title")
    expect(page.get_by_text("No documents", exact=False).first).to_be_visible()
    title_filter.fill("refund")
    expect(row).to_be_visible()
    row.get_by_role("button", name=re.compile(r"^Delete")).click()
    page.get_by_role("dialog").get_by_role("button", name="Delete document").click()
    expect(row).to_have_count(0)
    assert expect_status(api.request("GET", "/v1/documents", key=tenant.admin_key), 200)["documents"] == []
