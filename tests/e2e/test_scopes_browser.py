"""A tenant admin limits a new user to one department, in a real browser on the real server.

The journey a customer's administrator takes: sign in, add a user limited to the Sales
department through the Users page, sign out; the new user signs in and the call list holds only
calls of Sales extensions (201 and 202 in the directory), never Support's, and its totals count
only those, with the rated Sales call's cost. Screenshots of the
form and of the user's list are kept in the test's tmp dir.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.fixtures.browser import LiveServer
from tests.fixtures.scopes import ACME_ADMIN, ScopedWorld
from tests.fixtures.web import PASSWORD

pytestmark = pytest.mark.browser
NEW_USER = "dora@acme.example"
NEW_PASSWORD = "marble orchid tundra violin"


def sign_in(page: Page, server: LiveServer, email: str, password: str) -> None:
    page.goto(f"{server.url}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def test_tenant_admin_adds_a_department_user_who_sees_only_that_department(
    chromium_page: Page, scoped_live_server: LiveServer, scoped_world: ScopedWorld, tmp_path: Path
) -> None:
    page, server = chromium_page, scoped_live_server
    sign_in(page, server, ACME_ADMIN, PASSWORD)
    page.get_by_role("link", name="Users").click()
    expect(page).to_have_url(f"{server.url}/admin/users")
    page.get_by_role("link", name="Add a user").click()
    page.get_by_label("Email").fill(NEW_USER)
    page.get_by_label("Name").fill("Dora Sales")
    page.get_by_label("Role").select_option("tenant")
    page.get_by_label("Password").fill(NEW_PASSWORD)
    page.get_by_label("Departments").fill("Sales")
    page.screenshot(path=str(tmp_path / "add-user.png"), full_page=True)
    page.get_by_role("button", name="Add user").click()
    expect(page.locator(".flash.success")).to_contain_text(f"Added {NEW_USER}")
    expect(page.get_by_role("row", name=re.compile(NEW_USER))).to_contain_text("Departments: Sales")
    page.get_by_role("button", name="Log out").click()

    sign_in(page, server, NEW_USER, NEW_PASSWORD)
    expect(page).to_have_url(f"{server.url}/calls")
    table = page.locator("table#calls")
    # the Department column (the directory's, at each call's start): only Sales calls listed
    departments = set(table.locator("tbody tr td:nth-child(6)").all_inner_texts())
    assert departments == {"Sales"}, departments
    # The totals are of the user's calls only, with the cost of the rated Sales call.
    listed = table.locator("tbody tr").count()
    expect(page.locator("#total-calls")).to_have_text(str(listed))
    expect(page.locator("#total-cost")).to_contain_text("GBP")
    sales_row = page.get_by_role("row", name=re.compile(r"\+?0?1632 ?960 ?701|01632960701"))
    expect(sales_row.locator("td.money")).to_contain_text("GBP")
    body = page.content()
    assert scoped_world.parties["sales"].number in body
    for other in ("support", "ext203", "globex"):
        assert scoped_world.parties[other].number not in body, other
    page.screenshot(path=str(tmp_path / "department-calls.png"), full_page=True)
    assert (tmp_path / "department-calls.png").stat().st_size > 10_000
    # Support's call is "not found" for this user, exactly like one that does not exist.
    response = page.goto(f"{server.url}/calls/{scoped_world.parties['support'].record_id}")
    assert response is not None and response.status == 404
