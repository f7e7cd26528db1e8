"""The technicians' console in headless Chromium against the real `datacenter serve`."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from datacenter.health.runner import AlarmRunner
from datacenter.store.engine import open_store
from tests.fixtures.console import ACME_DOWN, ACME_TRANSPORT, seed_console_store
from tests.fixtures.ports import ServerExited, start_listening
from tests.fixtures.web import ACME_AGENT, ACME_USER, PASSWORD, TECH_USER

pytestmark = pytest.mark.browser

DATACENTER = Path(sys.executable).with_name("datacenter")
STOP_SECONDS = 10.0
SCREENSHOTS = (
    Path(os.environ.get("CALLCOLLECT_SCREENSHOTS", ""))
    if os.environ.get("CALLCOLLECT_SCREENSHOTS")
    else None
)
# rgb() of the state colours in static/tech.css
RED = "rgb(179, 38, 30)"
GREEN = "rgb(30, 122, 70)"


@dataclass(frozen=True)
class Console:
    url: str
    log: Path


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    store = seed_console_store(tmp_path_factory.mktemp("console-browser"))
    engine = open_store(store.settings.store.url)
    try:
        AlarmRunner(engine, store.settings).run_once(datetime.now(UTC))  # raise the alarms
    finally:
        engine.dispose()
    log = store.settings.data_dir / "serve.log"

    def start(port: int) -> subprocess.Popen[bytes]:
        command = [str(DATACENTER), "serve", "--config", str(store.config_path),
                   "--bind", f"127.0.0.1:{port}", "--workers", "2"]  # fmt: skip
        with log.open("ab") as stderr:
            return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)

    try:
        process, port = start_listening(start, timeout=20)
    except (TimeoutError, ServerExited) as error:
        pytest.fail(f"datacenter serve did not start ({error}):\n{log.read_text()}")
    try:
        yield Console(f"http://127.0.0.1:{port}", log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_SECONDS)


def log_in(page: Page, console: Console, email: str) -> None:
    page.goto(f"{console.url}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def shot(page: Page, tmp_path: Path, name: str) -> Path:
    folder = SCREENSHOTS or tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def test_the_grid_shows_every_state_in_colour(
    chromium_page: Page, console: Console, tmp_path: Path
) -> None:
    page = chromium_page
    errors: list[str] = []
    failed: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("response", lambda r: failed.append(r.url) if r.status >= 400 else None)
    log_in(page, console, TECH_USER)
    expect(page).to_have_url(f"{console.url}/tech/sites")
    rows = page.locator("table#sites tbody tr")
    expect(rows).to_have_count(3)
    expected = {ACME_DOWN: "Agent down", ACME_TRANSPORT: "Transport down", ACME_AGENT: "OK"}
    for index, (site, label) in enumerate(expected.items()):  # worst first
        row = rows.nth(index)
        expect(row).to_contain_text(site)
        expect(row.locator(".state-badge")).to_have_text(label)
    # to_have_css retries until the stylesheet has loaded and applies
    expect(rows.nth(0).locator(".state-badge")).to_have_css("color", RED)
    expect(rows.nth(2).locator(".state-badge")).to_have_css("color", GREEN)
    expect(rows.nth(0).locator("td").first).to_have_css("border-left-color", RED)
    page.wait_for_load_state("load")
    shot(page, tmp_path, "tech-grid")

    # Sorting by clicking a header, and a click on a row opens the site (static tech.js).
    page.get_by_role("link", name="Site", exact=True).click()
    expect(rows.nth(0)).to_contain_text(ACME_AGENT)
    rows.nth(1).locator("td.reason").click()
    expect(page).to_have_url(f"{console.url}/tech/sites/acme/{ACME_DOWN}")
    # The CSP refused nothing (the browser's own favicon request may 404: there is none).
    assert [e for e in errors if "Refused" in e or "Content Security Policy" in e] == []
    assert [url for url in failed if not url.endswith("/favicon.ico")] == []


def test_acknowledging_an_alarm(chromium_page: Page, console: Console, tmp_path: Path) -> None:
    page = chromium_page
    log_in(page, console, TECH_USER)
    page.goto(f"{console.url}/tech/sites/acme/{ACME_TRANSPORT}")
    expect(page.locator("h1")).to_contain_text(ACME_TRANSPORT)
    expect(page.locator("svg.chart rect.bar")).to_have_count(24)
    alarm = page.locator("article.alarm").first
    expect(alarm).to_contain_text("Transport down")
    shot(page, tmp_path, "tech-site-before")
    alarm.get_by_label("Note").first.fill("ISP ticket 4711 open, waiting for the line")
    alarm.get_by_role("button", name="Acknowledge").click()
    expect(page.locator(".flash.success")).to_contain_text("acknowledged")
    expect(page.locator(".ack-status")).to_contain_text(f"Acknowledged by {TECH_USER}")
    expect(page.locator(".ack-status")).to_contain_text("ISP ticket 4711")
    expect(page.locator("ol.timeline")).to_contain_text(f"acknowledged by {TECH_USER}")
    shot(page, tmp_path, "tech-site-acknowledged")

    page.goto(f"{console.url}/tech/sites")
    row = page.locator("tr", has_text=ACME_TRANSPORT)
    expect(row.locator(".ack")).to_contain_text(TECH_USER)


def test_a_tenant_user_cannot_open_the_console(chromium_page: Page, console: Console) -> None:
    page = chromium_page
    log_in(page, console, ACME_USER)
    for path in ("/tech/sites", f"/tech/sites/acme/{ACME_AGENT}", "/tech/alarms"):
        response = page.goto(f"{console.url}{path}")
        assert response is not None and response.status == 403, path
        expect(page.locator("body")).to_contain_text("does not have access")
