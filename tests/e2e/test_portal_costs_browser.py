"""Costs in a real browser: the call list's totals and costs, and a call's cost explanation.

The real `datacenter serve` (gunicorn) on the rated store of ``tests/fixtures/portal.py``,
headless Chromium through the same forms a person uses. The figures are the hand-worked ones
of tests/integration/test_web_costs.py. Screenshots of both pages are kept in the test's tmp
dir for a person to look at.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.fixtures.browser import LiveServer, serve
from tests.fixtures.portal import LOCAL, USER, seed_rated_store
from tests.fixtures.web import PASSWORD

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def rated_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    store = seed_rated_store(tmp_path_factory.mktemp("rated-browser"))
    with serve(store.config_path, tmp_path_factory.mktemp("rated-server")) as server:
        yield server


def test_list_with_totals_then_the_cost_explanation(
    chromium_page: Page, rated_server: LiveServer, tmp_path: Path
) -> None:
    page = chromium_page
    page.goto(f"{rated_server.url}/")
    page.get_by_label("Email").fill(USER)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{rated_server.url}/dashboard")  # the landing page
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Calls").click()
    expect(page).to_have_url(f"{rated_server.url}/calls")

    # Totals of all seven calls above the list (0.17 + 0.10 + 1.60 + 0.07 GBP; 515 s billed).
    expect(page.locator("#total-calls")).to_have_text("7")
    expect(page.locator("#total-cost")).to_have_text("1.94 GBP")
    expect(page.locator("#total-minutes")).to_have_text("8.58")
    expect(page.locator("#total-not-rated")).to_have_text("1")
    headers = page.locator("table#calls thead th").all_inner_texts()
    assert [h.strip().lower() for h in headers] == [
        "start", "direction", "from", "to", "person", "department", "destination", "carrier",
        "duration", "billed", "cost", "completion",
    ]  # fmt: skip
    page.screenshot(path=str(tmp_path / "calls-with-costs.png"), full_page=True)
    assert (tmp_path / "calls-with-costs.png").stat().st_size > 10_000

    # Filter to mobiles through the form: the totals follow the filter.
    page.get_by_label("Destination class").select_option("mobile")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"class=mobile"))
    expect(page.locator("#total-calls")).to_have_text("2")
    expect(page.locator("#total-cost")).to_have_text("0.17 GBP")

    # Open the London call: its explanation, with the arithmetic a person can check.
    page.get_by_role("link", name="Clear").click()
    page.locator("table#calls tbody tr", has_text="020 7946 0123").get_by_role("link").click()
    expect(page).to_have_url(f"{rated_server.url}/calls/{LOCAL.record_id}")
    expect(page.locator("#cost-amount")).to_contain_text("0.10 GBP")
    expect(page.locator("#tariff-version")).to_have_text("britline-2025-07")
    expect(page.locator("#charges tbody tr td").first).to_have_text("day")
    expect(page.locator("#arithmetic")).to_have_text(
        "0.0150 + 0.0200 x 240/60 = 0.0950 -> half_up to 2 decimals = 0.10"
    )
    page.screenshot(path=str(tmp_path / "call-cost-explanation.png"), full_page=True)
    assert (tmp_path / "call-cost-explanation.png").stat().st_size > 10_000
