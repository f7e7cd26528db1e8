"""The whole product end to end, as a newcomer runs it: `scripts/demo.py`.

Simulated MiVB SMDR (plus IP SMDR and Lync) → `edge-agent run` → OpenSSH sshd → `datacenter
ingest --watch` → SQLite store → `datacenter serve`, all real processes on loopback. N simulated
SMDR calls go in; exactly N calls come out, with the fields the simulator says they carry; a
tenant sees them in headless Chromium and a technician sees the site; Ctrl-C stops everything.
"""

from __future__ import annotations

import os
import re
import runpy
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page, expect

from edge_agent.simulators.mivb_smdr import SimCall, generate_calls
from tests.fixtures.ports import free_port

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("demo-site")]

ROOT = Path(__file__).resolve().parents[2]
CALLS = 40
SEED = 7
ZONE = "Europe/London"
STARTUP_SECONDS = 120
DELIVERY_SECONDS = 150
DEMO_MEAN_GAP = 30  # scripts/demo.py's SMDR_MEAN_GAP: the simulator runs live with it


def _demo_directory() -> dict[str, tuple[str, str]]:
    """scripts/demo.py's DIRECTORY: extension -> (person, department)."""
    script = runpy.run_path(str(ROOT / "scripts" / "demo.py"), run_name="demo_script")
    return {row[0]: (row[1], row[2]) for row in script["DIRECTORY"]}


DIRECTORY = _demo_directory()


@dataclass
class DemoRun:
    process: subprocess.Popen[str]
    run_dir: Path
    url: str
    password: str
    smdr_start: datetime  # naive site wall clock of the first simulated call
    output: str  # what the demo printed on start

    def store(self) -> sqlite3.Connection:
        return sqlite3.connect(f"file:{self.run_dir / 'dc' / 'callcollect.db'}?mode=ro", uri=True)

    def log_tail(self) -> str:
        logs = sorted((self.run_dir / "logs").glob("*.log"))
        return "\n".join(
            f"== {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-8:])
            for log in logs
        )


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoRun]:
    run_dir = tmp_path_factory.mktemp("demo") / "run"
    port = free_port()
    # Calls that all ended in the past: the live simulator sends every line at once.
    smdr_start = (datetime.now(ZoneInfo(ZONE)) - timedelta(minutes=90)).replace(
        tzinfo=None, second=0, microsecond=0
    )
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "demo.py"), "--run-dir", str(run_dir),
         "--web-port", str(port), "--smdr-calls", str(CALLS),
         "--seed", str(SEED), "--smdr-start", smdr_start.isoformat()],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    output: list[str] = []
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        output.append(line)
        if "Ctrl-C stops everything" in line:
            break
    text = "".join(output)
    match = re.search(r"Tenant:\s+\S+\s+password (\S+)", text)
    if match is None:
        stop_demo(process)
        pytest.fail(f"the demo did not start within {STARTUP_SECONDS} s:\n{text}")
    run = DemoRun(process, run_dir, f"http://127.0.0.1:{port}", match[1], smdr_start, text)
    try:
        yield run
    finally:
        stop_demo(process)


def stop_demo(process: subprocess.Popen[str]) -> None:
    """Ctrl-C, as a person would, so the demo stops its own children; kill only as a last resort."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
    if process.stdout is not None and not process.stdout.closed:
        process.stdout.close()


def expected_calls(run: DemoRun) -> list[SimCall]:
    return generate_calls(
        count=CALLS, seed=SEED, start=run.smdr_start, tz=ZONE, mean_gap_seconds=DEMO_MEAN_GAP
    )


def stored_smdr_calls(run: DemoRun) -> list[tuple[object, ...]]:
    with run.store() as db:
        return db.execute(
            "SELECT calling, called, dialled_digits, start_utc, talk_seconds, direction, "
            "answered, account_code FROM calls WHERE source_id = 'mivb-london'"
        ).fetchall()


def facts(call: SimCall) -> tuple[object, ...]:
    start = call.start.astimezone(UTC).replace(tzinfo=None)
    return (call.calling, call.called, call.dialled_digits, start, call.talk_seconds,
            call.direction.value, call.answered, call.account_code)  # fmt: skip


def normalise(row: tuple[object, ...]) -> tuple[object, ...]:
    start = datetime.fromisoformat(str(row[3])).astimezone(UTC).replace(tzinfo=None)
    return (*row[:3], start, row[4], row[5], bool(row[6]), row[7])


def test_every_simulated_call_arrives_exactly_once_with_its_fields(demo: DemoRun) -> None:
    deadline = time.monotonic() + DELIVERY_SECONDS
    rows: list[tuple[object, ...]] = []
    while time.monotonic() < deadline:
        assert demo.process.poll() is None, f"the demo stopped:\n{demo.log_tail()}"
        rows = stored_smdr_calls(demo) if (demo.run_dir / "dc" / "callcollect.db").exists() else []
        if len(rows) >= CALLS:
            break
        time.sleep(1)
    assert len(rows) == CALLS, f"{len(rows)} of {CALLS} calls stored:\n{demo.log_tail()}"
    assert sorted(map(normalise, rows), key=repr) == sorted(
        map(facts, expected_calls(demo)), key=repr
    )
    with sqlite3.connect(f"file:{demo.run_dir / 'agent' / 'spool.db'}?mode=ro", uri=True) as db:
        quarantined = db.execute(
            "SELECT reason, count(*) FROM quarantine WHERE source_id = 'mivb-london' GROUP BY 1"
        ).fetchall()
    assert quarantined == [], "the simulator's lines must all parse"


def test_all_three_sources_deliver(demo: DemoRun) -> None:
    deadline = time.monotonic() + DELIVERY_SECONDS
    sources: dict[str, int] = {}
    while time.monotonic() < deadline:
        with demo.store() as db:
            sources = dict(
                db.execute("SELECT source_id, count(*) FROM calls GROUP BY 1").fetchall()
            )
        if {"mivb-london", "mcs1", "lync1"} <= sources.keys():
            break
        time.sleep(1)
    assert {"mivb-london", "mcs1", "lync1"} <= sources.keys(), f"{sources}\n{demo.log_tail()}"


def log_in(page: Page, demo: DemoRun, email: str) -> None:
    page.goto(f"{demo.url}/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(demo.password)
    page.get_by_role("button", name="Log in").click()


def test_tenant_sees_the_calls_in_the_browser(
    demo: DemoRun, chromium_page: Page, tmp_path: Path
) -> None:
    test_every_simulated_call_arrives_exactly_once_with_its_fields(demo)
    page = chromium_page
    log_in(page, demo, "demo@example.com")
    expect(page).to_have_url(f"{demo.url}/dashboard")  # the landing page
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Calls").click()
    expect(page).to_have_url(f"{demo.url}/calls")
    with demo.store() as db:
        total = db.execute("SELECT count(*) FROM calls").fetchone()[0]
    expect(page.locator("table#calls caption")).to_contain_text(f"{total} calls")
    # The demo rates with britline's UK tariff: the totals have a cost in pounds.
    expect(page.locator("#total-cost")).to_contain_text("GBP")
    # Each simulated outgoing call can be found by its number, with its fields on the row: To
    # is the dialled number (formatted for the UK), never the trunk.
    outgoing = [c for c in expected_calls(demo) if c.dialled_digits and c.direction.value == "out"]
    # The demo's directory names who made each call: person and department on the row.
    for call in outgoing[:5]:
        page.goto(f"{demo.url}/calls?number={call.dialled_digits}&extension={call.extension}")
        cells = page.locator("table#calls tbody tr").first.locator("td").all_inner_texts()
        assert call.dialled_digits in [cell.replace(" ", "") for cell in cells], cells
        assert call.extension in cells
        person, department = DIRECTORY[call.extension]
        assert person in cells and department in cells, cells
    page.screenshot(path=str(tmp_path / "demo-calls.png"), full_page=True)


def test_lync_users_are_in_the_directory_by_sip_address(demo: DemoRun, chromium_page: Page) -> None:
    test_all_three_sources_deliver(demo)
    page = chromium_page
    log_in(page, demo, "demo@example.com")
    page.goto(f"{demo.url}/calls?extension=alice@example.com")
    rows = page.locator("table#calls tbody tr")
    expect(rows.first).to_be_visible()
    for texts in (rows.nth(i).locator("td").all_inner_texts() for i in range(rows.count())):
        assert "Alice Adams" in texts and "Sales" in texts, texts


def test_the_demo_prints_a_tenant_admin_login_that_manages_users_and_the_directory(
    demo: DemoRun, chromium_page: Page, tmp_path: Path
) -> None:
    logins = dict(re.findall(r"^\s+(Tenant|Tenant admin|Technician):\s+(\S+)\s+password",
                             demo.output, re.M))  # fmt: skip
    assert logins.keys() == {"Tenant", "Tenant admin", "Technician"}, demo.output
    page = chromium_page
    log_in(page, demo, logins["Tenant admin"])
    page.goto(f"{demo.url}/admin/users")
    expect(page.locator("body")).to_contain_text("demo@example.com")
    page.goto(f"{demo.url}/directory")
    for person, department in DIRECTORY.values():
        expect(page.locator("body")).to_contain_text(person)
        expect(page.locator("body")).to_contain_text(department)
    page.screenshot(path=str(tmp_path / "demo-directory.png"), full_page=True)


def test_technician_sees_the_site(demo: DemoRun, chromium_page: Page) -> None:
    page = chromium_page
    log_in(page, demo, "tech@example.com")
    expect(page).to_have_url(re.compile(r"/tech/sites"))
    expect(page.locator("body")).to_contain_text("demo-site")


def test_ctrl_c_stops_everything(demo: DemoRun) -> None:
    demo.process.send_signal(signal.SIGINT)
    # 15 s of grace for every process together, then kills: 120 s leaves a slow machine room
    assert demo.process.wait(timeout=120) == 0
    rest, _ = demo.process.communicate()
    assert "stopping" in rest
    port = int(demo.url.rsplit(":", 1)[1])
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0, "the web server still listens"
    leftovers = subprocess.run(
        ["pgrep", "-f", str(demo.run_dir)], capture_output=True, text=True, check=False
    ).stdout.split()
    assert [pid for pid in leftovers if int(pid) != os.getpid()] == []
