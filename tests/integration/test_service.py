"""The supervisor end to end: a fake PBX source, the real sshd, a clean stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from edge_agent.config import from_mapping
from edge_agent.service import AgentBusy, Service, holder_pid
from edge_agent.sources import registry
from edge_agent.spool import BatchStatus, Spool
from shared.envelope import open_batch, parse_batch_file_name
from shared.icdr import make_record_id
from tests.fixtures.sshd import SshdServer

pytestmark = pytest.mark.sshd
ROOT = Path(__file__).resolve().parents[2]
CALLS = 250


@pytest.fixture(autouse=True)
def fake_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.DRIVERS, "fake", "tests.fixtures.fake_source")


def agent_config(sshd: SshdServer, state: Path, *, calls: int = CALLS) -> dict[str, Any]:
    return {
        "agent": {"id": "agent-1", "tenant": "demo", "timezone": "Europe/London",
                  "state_dir": str(state)},
        "spool": {"batch_max_records": 100, "batch_max_age_seconds": 1, "quota_mb": 16},
        "uplink": {"host": "127.0.0.1", "port": sshd.port, "username": sshd.username,
                   "private_key": str(sshd.client_key), "known_hosts": str(sshd.known_hosts),
                   "interval_seconds": 1, "connect_timeout_seconds": 5.0,
                   "backoff_min_seconds": 0.1, "backoff_max_seconds": 0.5},
        "sources": [{"id": "pbx-1", "kind": "fake", "calls": calls, "chunk": 20}],
        "delivery": {"protection": "none"},  # plain files: the tests read what lands
    }  # fmt: skip


def landed_ids(sshd: SshdServer) -> list[str]:
    ids: list[str] = []
    for path in sorted((sshd.landing / "incoming").glob("*.ccb")):
        ids.extend(r.record_id for r in open_batch(path.read_bytes()).records)
    return ids


def wait_for(condition: Callable[[], bool], *, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture
def start_service(
    sshd: SshdServer, tmp_path: Path
) -> Iterator[Callable[[], tuple[Service, threading.Thread]]]:
    started: list[tuple[Service, threading.Thread]] = []

    def start() -> tuple[Service, threading.Thread]:
        config = agent_config(sshd, tmp_path / "state")
        service = Service(from_mapping(config, base=tmp_path))
        thread = threading.Thread(target=service.run, name="agent")
        thread.start()
        started.append((service, thread))
        return service, thread

    yield start
    for service, thread in started:
        service.request_stop()
        thread.join(15)


def test_service_delivers_every_record_and_stops_cleanly(
    start_service: Callable[[], tuple[Service, threading.Thread]],
    sshd: SshdServer,
    tmp_path: Path,
) -> None:
    service, thread = start_service()
    expected = {make_record_id("pbx-1", str(n)) for n in range(1, CALLS + 1)}
    wait_for(lambda: set(landed_ids(sshd)) == expected)
    ids = landed_ids(sshd)
    assert len(ids) == len(expected)  # nothing twice
    names = sorted(p.name for p in (sshd.landing / "incoming").iterdir())
    sequences = [parse_batch_file_name(n) for n in names]
    assert sequences == [("agent-1", n) for n in range(1, len(names) + 1)]  # no gaps, no .part
    state = tmp_path / "state"
    assert holder_pid(state / "agent.lock") == os.getpid()
    with pytest.raises(AgentBusy, match="another edge-agent"):
        Service(service.settings).flush()

    service.request_stop()
    thread.join(15)
    assert not thread.is_alive()
    assert holder_pid(state / "agent.lock") is None
    with Spool.open(state, quota_bytes=16 * 1024 * 1024) as spool:
        counts = spool.source_counts("pbx-1")
        assert (counts.spooled, counts.unbatched, counts.cursor) == (CALLS, 0, CALLS)
        assert spool.batch_counts()[BatchStatus.SEALED] == 0
        report = spool.get_state("pbx-1", "_agent.report")
        assert report is not None and '"ok": true' in report


def test_upload_outage_backs_off_and_catches_up(
    start_service: Callable[[], tuple[Service, threading.Thread]], sshd: SshdServer
) -> None:
    sshd.stop()
    service, _ = start_service()
    wait_for(lambda: service.backoff.failures >= 2)
    assert landed_ids(sshd) == []
    sshd.start()
    wait_for(lambda: len(landed_ids(sshd)) == CALLS)
    assert service.backoff.failures == 0


def test_edge_agent_run_stops_on_sigterm(sshd: SshdServer, tmp_path: Path) -> None:
    """The real command: SIGTERM ends it with exit 0 after syncing, and frees the state dir."""
    state = tmp_path / "state"
    raw = agent_config(sshd, state, calls=30)
    config = tmp_path / "agent.toml"
    config.write_text(_to_toml(raw))
    launcher = (
        "from edge_agent.sources import registry; "
        "registry.DRIVERS['fake'] = 'tests.fixtures.fake_source'; "
        "from edge_agent.cli import main; main()"
    )
    with subprocess.Popen(
        [sys.executable, "-c", launcher, "run", "-c", str(config)],
        cwd=ROOT, stderr=subprocess.PIPE, text=True,
    ) as process:  # fmt: skip
        try:
            wait_for(lambda: len(landed_ids(sshd)) == 30)
        finally:
            process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate(timeout=20)
    assert process.returncode == 0, stderr
    assert "signal 15: stopping" in stderr and "agent agent-1 stopped" in stderr
    assert holder_pid(state / "agent.lock") is None


def _to_toml(raw: dict[str, Any]) -> str:
    def value(v: Any) -> str:
        return f'"{v}"' if isinstance(v, str) else str(v).lower() if isinstance(v, bool) else str(v)

    lines: list[str] = []
    for section, table in raw.items():
        if section == "sources":
            for source in table:
                lines.append("[[sources]]")
                lines.extend(f"{k} = {value(v)}" for k, v in source.items())
        else:
            lines.append(f"[{section}]")
            lines.extend(f"{k} = {value(v)}" for k, v in table.items())
    return "\n".join(lines) + "\n"


def test_service_with_the_mivb_smdr_simulator(sshd: SshdServer, tmp_path: Path) -> None:
    """The real driver end to end, through a dropped connection: every call lands once."""
    from edge_agent.simulators.mivb_smdr import SmdrSimulatorServer, generate_calls

    calls = generate_calls(count=120, seed=7, start=datetime(2026, 3, 2, 9, 0), tz="Europe/London")
    with SmdrSimulatorServer(calls, drop_after_lines=50) as pbx:
        config = agent_config(sshd, tmp_path / "state")
        config["sources"] = [{"id": "pbx-main", "kind": "mivb-smdr", "host": "127.0.0.1",
                              "port": pbx.port, "reconnect_min_seconds": 0.05}]  # fmt: skip
        service = Service(from_mapping(config, base=tmp_path))
        thread = threading.Thread(target=service.run, name="agent")
        thread.start()
        try:
            wait_for(lambda: len(landed_ids(sshd)) >= len(calls))
        finally:
            service.request_stop()
            thread.join(15)
    assert not thread.is_alive()
    assert pbx.connections >= 2
    assert len(set(landed_ids(sshd))) == len(landed_ids(sshd)) == len(calls)
