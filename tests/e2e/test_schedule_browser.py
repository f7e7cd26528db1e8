"""A user saves a report, schedules it and presses "Run now", in a real browser on the real
server (gunicorn); the scheduler's next pass sends it and a real SMTP server receives it.

Screenshots of the saved report, the schedule form and the run history are kept in the test's tmp dir.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from datacenter.reports.scheduler import ReportScheduler
from datacenter.store.engine import open_store
from tests.e2e.test_scopes_browser import sign_in
from tests.fixtures.browser import LiveServer
from tests.fixtures.scopes import PARTY_CALLS, ScopedWorld
from tests.fixtures.smtp import SmtpServer, mailer_for
from tests.fixtures.web import ACME_USER, PASSWORD

pytestmark = pytest.mark.browser
TITLE = "Browser: calls by extension on party day"


def test_a_schedule_made_in_the_browser_is_run_now_and_mailed(
    chromium_page: Page,
    scoped_live_server: LiveServer,
    scoped_world: ScopedWorld,
    smtp_server: SmtpServer,
    tmp_path: Path,
) -> None:
    page, server = chromium_page, scoped_live_server
    sign_in(page, server, ACME_USER, PASSWORD)
    page.goto(f"{server.url}/saved/new?report=summary&o.by=extension"
              "&from=2025-09-01&to=2025-09-01")  # fmt: skip
    page.get_by_label("Title").fill(TITLE)
    for column in ("Extension", "Calls", "Talk time"):
        page.get_by_label(column, exact=True).check()
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".flash.success")).to_contain_text(f"Saved “{TITLE}”")
    expect(page.locator("table#preview thead")).to_have_text(
        re.compile(r"Extension\s*Calls\s*Talk time")
    )
    page.screenshot(path=str(tmp_path / "saved-report.png"), full_page=True)

    page.get_by_role("link", name="Schedule it").click()
    page.get_by_label("Repeat").select_option("weekly")
    page.get_by_label("At (local time, HH:MM)").fill("06:45")
    page.get_by_label("Monday").check()
    page.get_by_label("Friday").check()
    # "Run now" covers the schedule's period as of today; the saved dates make it checkable.
    page.get_by_label("Covering").select_option("as_saved")
    page.get_by_label(re.compile("^Send to")).fill("finance@acme.example, cfo@acme.example")
    page.screenshot(path=str(tmp_path / "schedule-form.png"), full_page=True)
    page.get_by_role("button", name="Schedule").click()
    expect(page.locator(".flash.success")).to_contain_text(
        "Scheduled: Every Monday and Friday at 06:45"
    )
    expect(page.locator("dl.fields")).to_contain_text("finance@acme.example, cfo@acme.example")

    page.get_by_role("button", name="Run now").click()
    expect(page.locator(".flash.success")).to_contain_text("Queued")
    expect(page.locator("table#runs tbody tr")).to_have_count(1)
    expect(page.locator("table#runs tbody tr")).to_contain_text("queued")

    # The scheduler's next pass (what `datacenter alarms run` does every interval).
    engine = open_store(scoped_world.seeded.settings.store.url)
    try:
        scheduler = ReportScheduler(engine, scoped_world.seeded.settings,
                                    mailer=mailer_for(smtp_server))  # fmt: skip
        report = scheduler.run_due(datetime.now(UTC) + timedelta(seconds=1))
    finally:
        engine.dispose()
    assert report.sent == 1, report.failures

    page.reload()
    expect(page.locator("table#runs tbody tr")).to_contain_text("sent")
    page.screenshot(path=str(tmp_path / "run-history.png"), full_page=True)
    assert (tmp_path / "run-history.png").stat().st_size > 10_000

    [message] = smtp_server.inbox.messages
    assert message["Subject"].startswith(f"[callcollect] {TITLE}: ")
    [attachment] = list(message.iter_attachments())
    text = attachment.get_content()
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[0] == ["Extension", "Calls", "Talk time"]
    expected = {ext: 1 for slug, _, ext, _, _ in PARTY_CALLS.values() if slug == "acme"}
    assert {r[0]: int(r[1]) for r in rows[1:-1]} == expected  # one party call per extension
    assert rows[-1][:2] == ["Total", str(len(expected))]
