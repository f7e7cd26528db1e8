"""Cost alarms in a real browser: the tenant admin finds an alarm, opens its call, acknowledges.

The real `datacenter serve` (gunicorn) on the rated store of ``tests/fixtures/portal.py``, with
a tenant admin and a rule "a call over 1.00" evaluated by one pass of the cost alarm runner: of
the seven calls only the premium one (1.60 GBP, 16:00 BST on 16 July 2025) is over it.
Screenshots of the list and the acknowledged alarm are kept in the test's tmp dir.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from datacenter.accounts.tenants import get_tenant
from datacenter.accounts.users import create_user
from datacenter.cost_alarms.runner import CostAlarmRunner
from datacenter.cost_alarms.store import list_alarms, save_rules
from datacenter.health.notify import Mailer
from datacenter.settings import load_settings
from datacenter.store.engine import open_store, write_transaction
from tests.fixtures.browser import LiveServer, serve
from tests.fixtures.portal import PREMIUM, seed_rated_store
from tests.fixtures.web import PASSWORD

pytestmark = pytest.mark.browser
ADMIN = "ada@acme.example"
EVERY_CALL = datetime(2025, 1, 1, tzinfo=UTC)  # marks before the seeded calls: all evaluated


@pytest.fixture(scope="module")
def alarm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    seeded = seed_rated_store(tmp_path_factory.mktemp("cost-alarm-browser"))
    settings = load_settings(seeded.config_path, env={})
    engine = open_store(settings.store.url)
    try:
        with write_transaction(engine) as conn:
            acme = get_tenant(conn, "acme")
            assert acme is not None
            create_user(conn, ADMIN, PASSWORD, "tenant_admin", acme.tenant_id)
            save_rules(conn, acme.tenant_id, '[[rules]]\nkind = "call_cost"\nover = "1.00"\n',
                       actor="test", now=EVERY_CALL)  # fmt: skip
        report = CostAlarmRunner(engine, mailer=Mailer(settings.smtp)).run_once(datetime.now(UTC))
        assert report.new_calls == 1, report.summary()
        with engine.connect() as conn:
            assert len(list_alarms(conn, acme.tenant_id)) == 1
    finally:
        engine.dispose()
    with serve(seeded.config_path, tmp_path_factory.mktemp("cost-alarm-server")) as server:
        yield server


def test_find_open_and_acknowledge_an_alarm(
    chromium_page: Page, alarm_server: LiveServer, tmp_path: Path
) -> None:
    page = chromium_page
    page.goto(f"{alarm_server.url}/")
    page.get_by_label("Email").fill(ADMIN)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="Cost alarms").click()
    expect(page).to_have_url(f"{alarm_server.url}/cost-alarms")
    row = page.locator("table#cost-alarms tbody tr")
    expect(row).to_have_count(1)
    expect(row.locator("td.status")).to_have_text("Open")
    expect(row).to_contain_text("extension 2201")
    page.screenshot(path=str(tmp_path / "cost-alarms.png"), full_page=True)

    # Filtering on acknowledged hides it; back to open ones shows it.
    page.get_by_label("Status").select_option("acknowledged")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("table#cost-alarms")).to_have_count(0)
    page.get_by_label("Status").select_option("open")
    page.get_by_role("button", name="Filter").click()
    row.get_by_role("link").click()

    calls = page.locator("table#alarm-calls tbody tr")
    expect(calls).to_have_count(1)
    expect(calls).to_contain_text("1.60 GBP")
    expect(calls).to_contain_text("premium")
    page.get_by_role("button", name="Acknowledge").click()
    expect(page.locator("#alarm-status")).to_contain_text(f"Acknowledged by {ADMIN}")
    expect(page.get_by_role("button", name="Acknowledge")).to_have_count(0)
    page.screenshot(path=str(tmp_path / "cost-alarm-acknowledged.png"), full_page=True)
    assert (tmp_path / "cost-alarm-acknowledged.png").stat().st_size > 10_000

    # The call's link opens its page in the call list, with its cost explanation.
    calls.get_by_role("link").click()
    expect(page).to_have_url(f"{alarm_server.url}/calls/{PREMIUM.record_id}")
    expect(page.locator("#cost-amount")).to_contain_text("1.60 GBP")

    # The audit log shows who acknowledged it.
    page.get_by_role("link", name="Audit").click()
    expect(page.locator("body")).to_contain_text("cost_alarm_acknowledged")
