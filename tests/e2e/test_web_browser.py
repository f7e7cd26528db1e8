"""The web console in a real browser: headless Chromium against the real gunicorn server.

One journey per test, through the same forms a person uses: log in, read the call list, filter
it, open a call, log out. The call list screenshot is kept in the test's tmp dir for a person
to look at.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.fixtures.browser import LiveServer
from tests.fixtures.web import ACME_CALLS, ACME_USER, LATE_EVENING, PASSWORD, SeededStore

pytestmark = pytest.mark.browser
LOG_WAIT_SECONDS = 3.0


def log_in(
    page: Page, server: LiveServer, *, email: str = ACME_USER, password: str = PASSWORD
) -> None:
    page.goto(f"{server.url}/")
    expect(page).to_have_title(re.compile(r"^Log in"))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def test_login_list_filter_detail_logout(
    chromium_page: Page, live_server: LiveServer, seeded_store: SeededStore, tmp_path: Path
) -> None:
    page = chromium_page
    log_in(page, live_server)

    # The call list: newest call first, on the tenant's clock, with every column filled.
    expect(page).to_have_url(f"{live_server.url}/dashboard")  # the landing page
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Calls").click()
    expect(page).to_have_url(f"{live_server.url}/calls")
    expect(page).to_have_title("Calls · callcollect")
    [cookie] = page.context.cookies()
    assert cookie["name"] == "callcollect_session"
    assert (cookie["httpOnly"], cookie["secure"], cookie["sameSite"]) == (True, True, "Lax")
    table = page.locator("table#calls")
    headers = table.locator("thead th").all_inner_texts()
    assert [h.strip().lower() for h in headers] == [
        "start", "direction", "from", "to", "person", "department", "destination", "carrier",
        "duration", "billed", "cost", "completion",
    ]  # fmt: skip
    expect(table.locator("tbody tr")).to_have_count(50)
    first = table.locator("tbody tr").first.locator("td").all_inner_texts()
    # This store has no dial plan or tariff: the call is not rated (tests/e2e/
    # test_portal_costs_browser.py shows rated calls).
    assert first == [
        "2025-07-15 00:30:00 BST", "Outgoing", "207", "01632960123", "", "", "", "", "1:02:05",
        "", "not rated", "Answered",  # the seeded store has no directory: no person, department
    ]  # fmt: skip
    expect(table.locator("caption")).to_contain_text(f"{ACME_CALLS} calls")
    page.screenshot(path=str(tmp_path / "calls.png"), full_page=True)
    assert (tmp_path / "calls.png").stat().st_size > 10_000

    # Filter by extension through the form: only that extension's calls remain.
    page.get_by_label("Extension").fill("203")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"extension=203"))
    # The extension is the From of its outgoing and internal calls, the To of its incoming ones.
    ends = zip(
        table.locator("tbody tr td:nth-child(3)").all_inner_texts(),
        table.locator("tbody tr td:nth-child(4)").all_inner_texts(),
        strict=True,
    )
    expected = sum(1 for call in seeded_store.acme_calls if call.extension == "203")
    assert [("203" in pair) for pair in ends] == [True] * expected
    expect(table.locator("caption")).to_contain_text(f"{expected} calls matching the filters")

    # Open the newest call's detail page: every field and the raw PBX line.
    page.get_by_role("link", name="Clear").click()
    table.locator("tbody tr").first.get_by_role("link").click()
    expect(page).to_have_url(f"{live_server.url}/calls/{LATE_EVENING.record_id}")
    expect(page.locator("pre.raw")).to_have_text(LATE_EVENING.raw)
    expect(page.locator("dl.fields")).to_contain_text(["Account code"])
    expect(page.get_by_text(LATE_EVENING.record_id)).to_be_visible()
    page.screenshot(path=str(tmp_path / "call-detail.png"), full_page=True)

    # Log out: back at the login form, and the list is no longer reachable.
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_title(re.compile(r"^Log in"))
    page.goto(f"{live_server.url}/calls")
    expect(page).to_have_url(re.compile(r"/login\?next=/calls$"))


def test_wrong_password_shows_one_generic_message(
    chromium_page: Page, live_server: LiveServer
) -> None:
    log_in(chromium_page, live_server, password="not the password")
    expect(chromium_page.get_by_role("alert")).to_have_text(
        "That email and password do not match an active account."
    )
    expect(chromium_page).to_have_title(re.compile(r"^Log in"))


def test_server_logs_each_request_to_stderr(chromium_page: Page, live_server: LiveServer) -> None:
    chromium_page.goto(f"{live_server.url}/login?from=access-log-test")
    expect(chromium_page).to_have_title(re.compile(r"^Log in"))
    # gunicorn writes the access line just after the response; give it a moment.
    pattern = re.compile(r'"GET /login\?from=access-log-test HTTP/1\.1" 200')
    deadline = time.monotonic() + LOG_WAIT_SECONDS
    while not pattern.search(live_server.log()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pattern.search(live_server.log()), live_server.log()
    assert live_server.stdout_path.read_text() == ""
