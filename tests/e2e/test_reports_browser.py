"""Reports in a real browser: the dashboard, a filtered summary, a drill-down to a call's cost.

The real `datacenter serve` (gunicorn) on the rated store of ``tests/fixtures/portal.py`` (all
seven calls on Wednesday 16 July 2025; figures worked by hand in tests/integration/test_web_costs.py),
headless Chromium through the same forms and links a person uses. Screenshots of each page are
saved in the ``artefacts`` folder (tests/fixtures/browser.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.fixtures.browser import LiveServer, serve
from tests.fixtures.portal import MOBILE, USER, seed_rated_store
from tests.fixtures.web import PASSWORD

pytestmark = pytest.mark.browser
MIN_SCREENSHOT_BYTES = 10_000


@pytest.fixture(scope="module")
def rated_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    store = seed_rated_store(tmp_path_factory.mktemp("reports-browser"))
    with serve(store.config_path, tmp_path_factory.mktemp("reports-server")) as server:
        yield server


def _shot(page: Page, folder: Path, name: str) -> None:
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > MIN_SCREENSHOT_BYTES


def test_dashboard_then_a_filtered_summary_then_a_cost_explanation(
    chromium_page: Page, rated_server: LiveServer, artefacts: Path
) -> None:
    page = chromium_page
    page.goto(f"{rated_server.url}/")
    page.get_by_label("Email").fill(USER)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{rated_server.url}/dashboard")  # the landing page

    # The dashboard as it stood on 16 July 2025: seven calls, 1.94 GBP, drawn as SVG.
    page.goto(f"{rated_server.url}/dashboard?day=2025-07-16")
    expect(page.locator("#calls-today")).to_contain_text("Today: 7")
    expect(page.locator("#cost-today")).to_contain_text("1.94 GBP")
    # international, local, mobile, premium (the incoming call has no charge in GBP)
    expect(page.locator("#chart-class_today svg rect.bar.current")).to_have_count(4)
    assert page.locator("#dashboard svg").count() == 8
    _shot(page, artefacts, "dashboard")

    # A summary by destination class, filtered through the form to mobiles and premium rate.
    page.get_by_role("navigation", name="Main").get_by_role(
        "link", name="Reports", exact=True
    ).click()
    page.get_by_role("link", name="Summary", exact=True).click()
    page.get_by_label("From").fill("2025-07-01")
    page.get_by_label("To").fill("2025-07-31")
    page.get_by_label("Summarise by").select_option("destination_class")
    page.locator("details.more-filters summary").click()
    page.get_by_label("Destination class").fill("m%,p%")
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"f\.destination_class=m%25%2Cp%25"))
    rows = page.locator("table#report tbody tr")
    expect(rows).to_have_count(2)
    expect(page.locator("#totals")).to_contain_text("1.77")  # 0.17 + 1.60
    _shot(page, artefacts, "summary-filtered")

    # Drill down: the mobile row's cost opens the calls behind it, a call's cost its explanation.
    rows.filter(has_text="mobile").get_by_role("link", name="0.17").click()
    expect(page).to_have_url(re.compile(r"/reports/detail\?.*f\.destination_class=mobile"))
    expect(page.locator("table#report tbody tr")).to_have_count(2)
    _shot(page, artefacts, "detail-drilled")
    page.locator("table#report tbody tr", has_text="07700900123").get_by_role(
        "link", name="0.17"
    ).click()
    expect(page).to_have_url(f"{rated_server.url}/calls/{MOBILE.record_id}")
    expect(page.locator("#cost-amount")).to_contain_text("0.17 GBP")
    expect(page.locator("#cost-changed")).to_contain_text("re-rated")
    _shot(page, artefacts, "cost-explanation")


def test_a_bad_filter_is_explained_on_the_page(
    chromium_page: Page, rated_server: LiveServer, artefacts: Path
) -> None:
    page = chromium_page
    page.goto(f"{rated_server.url}/login?next=/reports/summary?f.cost%3Dcheap")
    page.get_by_label("Email").fill(USER)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(f"{rated_server.url}/reports/summary?f.cost=cheap")
    expect(page.locator("#report-error")).to_contain_text("cost")
    expect(page.get_by_label("Cost", exact=True)).to_have_value("cheap")
    _shot(page, artefacts, "bad-filter")
