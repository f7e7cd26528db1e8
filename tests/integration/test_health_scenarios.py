"""Each polling-health state produced end to end, with real processes where it matters.

The chain: MiVB SMDR simulator (TCP) -> ``edge-agent run`` (a real process) -> OpenSSH sshd (the
landing area) -> ``ingest_once`` (batches and heartbeats into the store, SQLite and PostgreSQL)
-> ``site_health`` -> the state. Stop the simulator: source down. Stop the agent: agent down.
Stop sshd: transport down (heartbeats late; then, once sshd is back, the failed sessions the
agent reports). No calls on a Tuesday afternoon that usually has them: silent (history ingested
from real batch files, the clock injected).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from datacenter.health.facts import site_health
from datacenter.health.model import HealthPolicy, SiteHealth, State
from datacenter.ingest.worker import ingest_once
from datacenter.settings import LandingSettings, Settings
from edge_agent.health.status import read_health_file
from edge_agent.simulators.mivb_smdr import SmdrSimulatorServer, generate_calls
from shared.heartbeat import HEARTBEAT_FOLDER, Heartbeat, SourceStatus, heartbeat_file_name
from tests.factories import gen_outgoing_call
from tests.fixtures.sshd import SshdServer
from tests.fixtures.store import gen_agent, gen_batch, gen_tenant, land

pytestmark = pytest.mark.sshd
ROOT = Path(__file__).resolve().parents[2]
EDGE_AGENT = ROOT / ".venv" / "bin" / "edge-agent"
TENANT, AGENT = "demo", "edge-1"  # the sshd fixture's landing folder is .../landing/demo
WAIT_SECONDS = 12.0
# Fast thresholds for a 1-second uplink: late after 3 s, source down at once, 2 failures.
POLICY = HealthPolicy(heartbeat_late_min=timedelta(seconds=3), source_down_after=timedelta(0),
                      uplink_failures=2)  # fmt: skip


@dataclass
class Site:
    sshd: SshdServer
    engine: sa.Engine
    settings: Settings
    tmp: Path
    smdr_port: int = 9  # nothing listens there unless a simulator runs
    process: subprocess.Popen[str] | None = None
    simulators: list[SmdrSimulatorServer] = field(default_factory=list)

    @property
    def state_dir(self) -> Path:
        return self.tmp / "agent-state"

    def start_simulator(self, calls: int = 5) -> SmdrSimulatorServer:
        lines = generate_calls(count=calls, seed=7, start=datetime.now(UTC) - timedelta(hours=1),
                               tz="Europe/London")  # fmt: skip
        simulator = SmdrSimulatorServer(lines).start()
        self.simulators.append(simulator)
        self.smdr_port = simulator.port
        return simulator

    def start_agent(self) -> None:
        config = self.tmp / "agent.toml"
        config.write_text(
            f'[agent]\nid = "{AGENT}"\ntenant = "{TENANT}"\ntimezone = "Europe/London"\n'
            f'state_dir = "{self.state_dir}"\n\n'
            "[spool]\nbatch_max_age_seconds = 1\n\n"
            '[delivery]\nprotection = "none"\n\n'  # plain files, as dc_settings accept them
            f'[uplink]\nhost = "127.0.0.1"\nport = {self.sshd.port}\n'
            f'username = "{self.sshd.username}"\nprivate_key = "{self.sshd.client_key}"\n'
            f'known_hosts = "{self.sshd.known_hosts}"\ninterval_seconds = 1\n'
            "connect_timeout_seconds = 2.0\nbackoff_min_seconds = 0.2\nbackoff_max_seconds = 0.5\n\n"
            f'[[sources]]\nid = "pbx"\nkind = "mivb-smdr"\nhost = "127.0.0.1"\n'
            f"port = {self.smdr_port}\nreconnect_min_seconds = 0.2\nreconnect_max_seconds = 0.5\n"
        )
        env = {k: v for k, v in os.environ.items()
               if k not in ("NOTIFY_SOCKET", "INVOCATION_ID", "JOURNAL_STREAM")}  # fmt: skip
        self.process = subprocess.Popen(
            [str(EDGE_AGENT), "run", "-c", str(config)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip

    def stop_agent(self, sig: int = signal.SIGTERM) -> None:
        assert self.process is not None
        self.process.send_signal(sig)
        self.process.communicate(timeout=15)
        self.process = None

    def health(self, *, now: datetime | None = None, policy: HealthPolicy = POLICY) -> SiteHealth:
        ingest_once(self.engine, self.settings)
        with self.engine.connect() as conn:
            (site,) = site_health(conn, now=now, policy=policy)
        return site

    def wait_for(
        self, check: Callable[[SiteHealth], bool], *, now: Callable[[], datetime] | None = None,
        policy: HealthPolicy = POLICY,
    ) -> SiteHealth:  # fmt: skip
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            site = self.health(now=now() if now else None, policy=policy)
            if check(site):
                return site
            if time.monotonic() > deadline:
                errors = self.process.stderr if self.process else None
                pytest.fail(f"still {site.state}: {site.reason} {errors}")
            time.sleep(0.2)

    def close(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.communicate(timeout=10)
        for simulator in self.simulators:
            simulator.stop()


@pytest.fixture
def site(
    sshd: SshdServer, store: sa.Engine, dc_settings: Settings, tmp_path: Path
) -> Iterator[Site]:
    settings = replace(dc_settings, landing=LandingSettings(root=sshd.landing.parent))
    gen_tenant(store, TENANT, timezone="Europe/London")
    gen_agent(store, TENANT, AGENT)
    s = Site(sshd=sshd, engine=store, settings=settings, tmp=tmp_path)
    try:
        yield s
    finally:
        s.close()


def polling(site: SiteHealth) -> bool:
    return site.state is State.OK and bool(site.sources) and site.sources[0].ok is True


def test_stopping_the_simulator_makes_the_source_down(site: Site) -> None:
    simulator = site.start_simulator(calls=5)
    site.start_agent()
    healthy = site.wait_for(lambda s: polling(s) and (s.last_sequence or 0) >= 1)
    assert healthy.reason.startswith("All well")
    simulator.stop()
    down = site.wait_for(lambda s: s.state is State.SOURCE_DOWN)
    finding = down.findings[0]
    assert finding.source_id == "pbx"
    assert "Source pbx (mivb-smdr) failing" in down.reason
    assert finding.evidence["failures_in_a_row"] >= 1
    assert down.sources[0].state is State.SOURCE_DOWN


def test_stopping_the_agent_makes_it_down(site: Site) -> None:
    site.start_agent()
    site.wait_for(lambda s: s.last_heartbeat_at is not None)
    site.stop_agent(signal.SIGTERM)  # the goodbye heartbeat says it stopped
    down = site.health()
    assert down.state is State.AGENT_DOWN
    assert "shut down" in down.reason


def test_a_killed_agent_is_down_once_its_heartbeats_stop(site: Site) -> None:
    site.start_agent()
    alive = site.wait_for(lambda s: s.last_heartbeat_at is not None)
    site.stop_agent(signal.SIGKILL)  # no goodbye
    assert alive.last_heartbeat_at is not None
    later = site.health(now=alive.last_heartbeat_at + timedelta(minutes=31))
    assert later.state is State.AGENT_DOWN
    assert "No heartbeat for 31 min" in later.reason


def test_blocking_sftp_makes_the_transport_down(site: Site) -> None:
    site.start_agent()
    site.wait_for(lambda s: s.last_heartbeat_at is not None)
    site.sshd.stop()
    deadline = time.monotonic() + WAIT_SECONDS
    while (hb := read_health_file(site.state_dir)) is None or hb.uplink.failures_in_a_row < 2:
        assert time.monotonic() < deadline, "the agent never noticed the outage"
        time.sleep(0.1)
    blocked = site.wait_for(lambda s: s.state is State.TRANSPORT_DOWN)
    assert "Heartbeats late" in blocked.reason
    site.sshd.start()  # the agent's next session reports the sessions that failed
    recovered = site.wait_for(lambda s: "sessions in a row" in s.reason)
    assert recovered.state is State.TRANSPORT_DOWN
    evidence = recovered.findings[0].evidence
    assert evidence["uplink_failures"] >= 2
    assert "connect" in evidence["last_error"]


# --- silent: history from real batch files, the clock injected ----------------------------------

TUESDAY_3PM = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)  # Europe/London is on GMT in March


def land_history(site: Site, *, today_calls: int) -> None:
    """Ten calls between 09:00 and 14:00 on each of the four previous Tuesdays, plus today's."""
    records = []
    for week in range(1, 5):
        day = TUESDAY_3PM - timedelta(weeks=week)
        for n in range(10):
            start = day.replace(hour=9) + timedelta(minutes=30 * n)
            records.append(
                gen_outgoing_call(week * 100 + n, start=start, agent_id=AGENT, source_id="pbx")
            )
    for n in range(today_calls):
        start = TUESDAY_3PM.replace(hour=10) + timedelta(minutes=n)
        records.append(gen_outgoing_call(900 + n, start=start, agent_id=AGENT, source_id="pbx"))
    name, data = gen_batch(records, tenant=TENANT, agent_id=AGENT, sequence=1)
    land(site.settings, TENANT, name, data)


def land_heartbeat(site: Site, sent_at: datetime) -> None:
    """A heartbeat as the agent writes it, landed at ``sent_at`` by the landing host's clock."""
    pbx = SourceStatus(source_id="pbx", kind="mivb-smdr", ok=True, message="connected",
                       at=sent_at, last_ok_at=sent_at)  # fmt: skip
    heartbeat = Heartbeat(agent_id=AGENT, tenant=TENANT, sent_at=sent_at, agent_version="0.1.0",
                          started_at=sent_at - timedelta(hours=8), interval_seconds=60,
                          sources=(pbx,))  # fmt: skip
    folder = site.settings.landing.root / TENANT / HEARTBEAT_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / heartbeat_file_name(AGENT, sent_at)
    path.write_bytes(heartbeat.to_json())
    os.utime(path, (sent_at.timestamp(), sent_at.timestamp()))


@pytest.mark.parametrize(("today_calls", "state"), [(0, State.SILENT), (1, State.OK)])
def test_no_calls_on_a_tuesday_afternoon_is_silent(
    site: Site, today_calls: int, state: State
) -> None:
    # Keep the injected past's heartbeat: retention prunes by the real clock.
    site.settings = replace(site.settings,
                            health=replace(site.settings.health, heartbeat_retention_days=3650))  # fmt: skip
    land_history(site, today_calls=today_calls)
    land_heartbeat(site, TUESDAY_3PM - timedelta(seconds=20))
    health = site.health(now=TUESDAY_3PM, policy=HealthPolicy())
    assert health.state is state, health.reason
    (pbx,) = health.sources
    assert (pbx.calls_today, pbx.usual_calls) == (today_calls, 10)
    if state is State.SILENT:
        assert health.reason == (
            "No calls from source pbx since 08:00 (Europe/London) today, though this weekday "
            "usually has 10 by now (median of the last 4 weeks)."
        )
        assert health.findings[0].evidence["previous_weeks"] == [10, 10, 10, 10]
