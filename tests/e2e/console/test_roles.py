"""What a key's role and tenant let the console show, in a real browser: a reader sees no write controls on
any page, and another tenant's key sees none of the first tenant's data."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from tests.conftest import TenantHandle
from tests.e2e.console.conftest import Console, new_tenant
from tests.helpers import HttpClient
from tests.helpers import expect as expect_status

pytestmark = [pytest.mark.e2e, pytest.mark.console]

TENANT_PAGES = (
    "Overview",
    "Configuration",
    "Versions",
    "API keys",
    "Documents",
    "Playground",
    "Query history",
    "Invoices",
    "Audit log",
    "Export",
)
# The actions a reader may not take (the contract: no Save/Upload/Delete/Create/Revoke/Rollback), with the
# other names the same actions can carry (replace save, roll back, request an export).
WRITE_CONTROL = re.compile(r"^(Save|Replace|Upload|Delete|Create|Revoke|Roll ?back|Request export)", re.IGNORECASE)


def _document(api: HttpClient, tenant: TenantHandle, title: str, text: str) -> str:
    accepted = expect_status(api.request("POST", "/v1/documents", key=tenant.admin_key, json_body={"title": title, "text": text}), 202)
    document_id: str = accepted["document_id"]
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        status = expect_status(api.request("GET", f"/v1/documents/{document_id}", key=tenant.admin_key), 200)["status"]
        if status == "indexed":
            return document_id
        assert status != "failed"
        time.sleep(0.3)
    raise AssertionError(f"{title} was not indexed")


def test_a_reader_sees_no_write_controls(console: Console, api: HttpClient) -> None:
    tenant = new_tenant(api, "Readers Digest")
    expect_status(api.request("PATCH", "/v1/config", key=tenant.admin_key, json_body={"temperature": 0.3}), 200)
    document_id = _document(api, tenant, "Reading list", "The reading list has twelve books about gardening.")
    reader = expect_status(api.request("POST", "/v1/keys", key=tenant.admin_key, json_body={"name": "auditor", "role": "reader"}), 201)

    page = console.page
    console.sign_in(reader["api_key"], "Overview")
    for title in TENANT_PAGES:
        if title != "Overview":
            console.go(title)
        buttons = page.get_by_role("button", name=WRITE_CONTROL)
        assert buttons.count() == 0, f"{title}: a reader sees {buttons.all_inner_texts()}"
    console.go("API keys")  # what the reader may not do is explained with the role it needs
    expect(page.get_by_text(re.compile(r"needs the admin role")).first).to_be_visible()
    console.go("Documents")
    page.get_by_role("link", name="Reading list").click()
    expect(page.get_by_role("heading", level=1, name="Reading list")).to_be_visible()
    console.check_accessibility("Document (reader)")
    expect(page.get_by_text("twelve books", exact=False).first).to_be_visible()
    assert page.get_by_role("button", name=WRITE_CONTROL).count() == 0
    assert document_id in page.url
    console.go("Configuration")
    for field in page.get_by_role("spinbutton").all() + page.get_by_role("textbox").all():
        assert not field.is_editable(), "a reader's configuration form must be read-only"
    console.shot("reader-configuration")


def test_another_tenants_key_sees_none_of_the_first_tenants_data(console: Console, api: HttpClient) -> None:
    first = new_tenant(api, "Nightingale Labs")
    document_id = _document(api, first, "Project Nightingale launch plan", "Nightingale launches on the ninth of March in Lisbon.")
    variables = {"prompt_variables": {"persona": "Nightingale's assistant"}}
    expect_status(api.request("PATCH", "/v1/config", key=first.admin_key, json_body=variables), 200)
    key = expect_status(api.request("POST", "/v1/keys", key=first.admin_key, json_body={"name": "nightingale-ci", "role": "editor"}), 201)
    expect_status(api.request("POST", "/v1/query", key=first.admin_key, json_body={"query": "When does Nightingale launch?"}), 200)
    # what would betray the first tenant: its ids, name, document, prompt, key and question
    own = [first.tenant_id, "Nightingale Labs", document_id, "Project Nightingale launch plan", "ninth of March", "Nightingale's assistant"]
    own += [key["key"]["prefix"], key["key"]["key_id"], "nightingale-ci", first.admin_key_id]
    question = "When does Nightingale launch?"

    other = new_tenant(api, "Kestrel Systems")
    page = console.page
    console.sign_in(other.admin_key, "Overview")

    def assert_nothing_of_the_first_tenant(where: str, also: tuple[str, ...] = ()) -> None:
        text = page.content()
        leaked = [s for s in (*own, *also) if s in text]
        assert not leaked, f"{where}: the other tenant's data is shown: {leaked}"

    for title in TENANT_PAGES:
        if title != "Overview":
            console.go(title)
        assert_nothing_of_the_first_tenant(title, also=(question,))

    console.go("Playground")
    page.get_by_label("Question").fill(question)
    page.get_by_role("button", name="Ask").click()
    expect(page.get_by_text(re.compile("offline-extractive|no relevant|no document|could not find", re.IGNORECASE)).first).to_be_visible(
        timeout=30_000
    )
    assert_nothing_of_the_first_tenant("Playground answer")

    # a link to the first tenant's document is a 404 for this key, not its content
    console.open(f"documents/{document_id}")
    expect(page.get_by_text(re.compile("not_found|document_not_found")).first).to_be_visible()
    assert "launch plan" not in page.content()
    console.shot("isolation")
