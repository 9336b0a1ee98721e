"""The tenant admin opens an invoice in a real browser.

Invoices are issued by the metering function's monthly schedule for the month just closed; a tenant made by
a test has no closed month yet. This module's platform is therefore started by local_invoke.py, through which
the test invokes the metering function for the current month, as an operator can in AWS with
`aws lambda invoke` (the handler takes an explicit `period` for that). The invoice is then the platform's own,
read by the console through GET /v1/invoices."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import LocalServer
from tests.e2e.console.conftest import Console, InvokableLocal, new_tenant, require_build, retire, start_invokable_local
from tests.helpers import HttpClient
from tests.helpers import expect as expect_status

pytestmark = [pytest.mark.e2e, pytest.mark.console]


@pytest.fixture(scope="module")
def platform(stopping: list[LocalServer]) -> Iterator[InvokableLocal]:
    require_build()
    server = start_invokable_local()
    yield server
    retire(server, stopping)


def test_the_tenant_admin_opens_an_invoice(console: Console, api: HttpClient, platform: InvokableLocal) -> None:
    page = console.page
    tenant = new_tenant(api, "Invoiced Co", "smb")
    for question in ("What is the refund window?", "How fast is shipping?"):
        expect_status(api.request("POST", "/v1/query", key=tenant.admin_key, json_body={"query": question}), 200)

    console.sign_in(tenant.admin_key, "Overview")
    console.go("Invoices")
    period = datetime.now(UTC).strftime("%Y-%m")
    expect(page.get_by_role("link", name=period)).to_have_count(0)

    result = platform.invoke("metering", {"action": "invoice", "period": period})
    assert result["invoices"] >= 1
    invoice = expect_status(api.request("GET", f"/v1/invoices/{period}", key=tenant.admin_key), 200)

    console.go("Overview")
    console.go("Invoices")
    page.get_by_role("link", name=period).click()
    expect(page.get_by_role("heading", level=1, name=re.compile(period))).to_be_visible()
    console.check_accessibility(f"Invoice {period}")
    expect(page.get_by_text(_dollars(invoice["total_cents"])).first).to_be_visible()
    for line in invoice["lines"]:
        expect(page.get_by_role("cell", name=line["description"], exact=True).first).to_be_visible()
    console.shot("invoice")

    # the print-friendly view: the print stylesheet hides the navigation
    page.emulate_media(media="print")
    expect(console.side_nav().first).to_be_hidden()
    expect(page.get_by_text(_dollars(invoice["total_cents"])).first).to_be_visible()
    page.emulate_media(media="screen")


def _dollars(cents: int) -> str:
    return f"${cents // 100:,}.{cents % 100:02d}"
