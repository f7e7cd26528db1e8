"""A tenant user downloads report exports in a real browser from the real server (gunicorn).

The download is started the way a page's export link starts it (an ``<a download>`` clicked in
the signed-in page), caught with playwright's ``expect_download`` and opened: the CSV and the
workbook hold every acme call of March 2025 (``tests.fixtures.web``) and no call of the other
tenant, under the file name the server gave (tenant, report, period). A screenshot of the page
the download started from is kept in the test's tmp dir.
"""

from __future__ import annotations

import csv
from pathlib import Path

import openpyxl
import pytest
from playwright.sync_api import Page

from tests.fixtures.browser import LiveServer
from tests.fixtures.web import ACME_USER, GLOBEX_CALL, PASSWORD, SeededStore, bulk_calls

pytestmark = pytest.mark.browser
MARCH = "from=2025-03-01&to=2025-03-31"


def sign_in(page: Page, server: LiveServer) -> None:
    page.goto(f"{server.url}/login")
    page.get_by_label("Email").fill(ACME_USER)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{server.url}/dashboard")  # the tenant landing page


def download(page: Page, path: str, folder: Path) -> tuple[str, Path]:
    """Click a link to ``path`` in the current page; (suggested file name, saved file)."""
    page.evaluate(
        """path => { const a = document.createElement("a"); a.href = path; a.id = "export";
                     a.textContent = "Export"; a.download = ""; document.body.append(a); }""",
        path,
    )
    with page.expect_download() as caught:
        page.locator("#export").click()
    got = caught.value
    assert got.failure() is None, got.failure()
    saved = folder / got.suggested_filename
    got.save_as(saved)
    page.evaluate('document.getElementById("export").remove()')
    return got.suggested_filename, saved


def test_a_tenant_user_downloads_the_call_detail_as_csv_and_xlsx(
    chromium_page: Page, live_server: LiveServer, seeded_store: SeededStore, tmp_path: Path
) -> None:
    page = chromium_page
    sign_in(page, live_server)
    page.screenshot(path=str(tmp_path / "before-export.png"), full_page=True)
    march = {call.record_id for call in bulk_calls()}

    name, saved = download(page, f"/reports/detail/export.csv?{MARCH}", tmp_path)
    assert name == "acme-detail-2025-03-01-2025-03-31.csv"
    with saved.open(encoding="utf-8-sig", newline="") as file:
        header, *rows = list(csv.reader(file))
    assert header[:3] == ["Record", "Start", "Direction"]
    exported = [row[0] for row in rows]
    assert march <= set(exported) and len(set(exported)) == len(exported)
    assert GLOBEX_CALL.record_id not in exported
    assert all(row[1].startswith("2025-03-") for row in rows)

    name, saved = download(page, f"/reports/detail/export.xlsx?{MARCH}", tmp_path)
    assert name == "acme-detail-2025-03-01-2025-03-31.xlsx"
    sheet = openpyxl.load_workbook(saved).active
    assert sheet is not None
    ids = [row[0] for row in sheet.iter_rows(min_row=2, values_only=True)]
    assert ids == exported  # the same rows in the same order as the CSV
    assert sheet["B2"].is_date
