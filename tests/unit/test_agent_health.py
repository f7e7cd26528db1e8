"""The agent's health record: snapshots, kept heartbeats, the status table, metrics, systemd bits."""

from __future__ import annotations

import io
import logging
import os
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from edge_agent.config import AgentSettings, from_mapping
from edge_agent.health import status as health_module
from edge_agent.health.metrics import start_metrics
from edge_agent.health.status import (
    HEALTH_FILE,
    PENDING_DIR,
    AgentHealth,
    SourceView,
    measure_clock_offset,
    read_health_file,
    remote_heartbeat_dir,
    render_health,
    status_line,
)
from edge_agent.journal import Journal
from edge_agent.pipeline import SourcePipeline
from edge_agent.sources.base import SourceContext
from edge_agent.spool import Spool
from edge_agent.systemd_service import Notifier, configure_logging, under_systemd
from shared.errors import TransportError
from shared.heartbeat import AgentState, parse_heartbeat, parse_heartbeat_file_name
from tests.fixtures.fake_source import FakeParser, call_line

T0 = datetime(2026, 3, 3, 14, 0, tzinfo=UTC)
GB = 10**9
QUOTA = 4 * 1024**3  # large enough that the test spool shows as 0 %


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def settings_for(tmp_path: Path, **uplink: Any) -> AgentSettings:
    config: dict[str, Any] = {
        "agent": {"id": "edge-1", "tenant": "acme", "timezone": "Europe/London",
                  "state_dir": str(tmp_path / "state")},
        "uplink": {"host": "127.0.0.1", "port": 2222, "username": "acme",
                   "private_key": "key", "known_hosts": "known_hosts", "interval_seconds": 30},
        "sources": [{"id": "pbx-1", "kind": "fake"}],
        "delivery": {"datacentre_certificates": "datacentre-certificates.pem"},
    }  # fmt: skip
    config["uplink"].update(uplink)
    return from_mapping(config, base=tmp_path)


@dataclass
class Agent:
    health: AgentHealth
    pipeline: SourcePipeline
    spool: Spool
    clock: Clock


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[Agent]:
    settings = settings_for(tmp_path)
    state = settings.agent.state_dir
    state.mkdir(parents=True)
    clock = Clock()
    ctx = SourceContext(agent_id="edge-1", source_id="pbx-1", timezone=settings.agent.timezone)
    journal = Journal.open(state / "journal" / "pbx-1", source_id="pbx-1")
    spool = Spool.open(state, quota_bytes=QUOTA)
    pipeline = SourcePipeline.open(
        source_id="pbx-1", parser=FakeParser(ctx), journal=journal, spool=spool, clock=clock
    )
    health = AgentHealth(
        settings, clock=clock, version="9.9.9", disk_usage=lambda _p: (4 * GB, 3 * GB, 1 * GB)
    )
    health.attach(spool, lambda: [SourceView("pbx-1", "fake", pipeline)])
    try:
        yield Agent(health, pipeline, spool, clock)
    finally:
        journal.close()
        spool.close()


def test_snapshot_before_the_first_poll(agent: Agent) -> None:
    hb = agent.health.snapshot()
    (source,) = hb.sources
    assert (source.ok, source.message, source.at) == (False, "not polled yet", None)
    assert hb.spool.quota_bytes == QUOTA
    assert (hb.disk_free_bytes, hb.disk_total_bytes) == (1 * GB, 4 * GB)
    assert (hb.agent_version, hb.interval_seconds, hb.state) == ("9.9.9", 30, AgentState.RUNNING)
    assert hb.uplink.last_sequence_sent is None


def test_snapshot_follows_every_outcome_and_counts_reconnects(agent: Agent) -> None:
    agent.pipeline.deliver([call_line(1), call_line(2)], received_at=T0)
    agent.pipeline.report(ok=True, message="connected")
    agent.clock.now = T0 + timedelta(minutes=1)
    agent.pipeline.report(ok=False, message="connection refused")
    agent.clock.now = T0 + timedelta(minutes=2)
    agent.pipeline.report(ok=False, message="connection refused")
    failing = agent.health.snapshot().sources[0]
    assert (failing.ok, failing.message, failing.failures_in_a_row) == (
        False, "connection refused", 2,
    )  # fmt: skip
    assert failing.last_ok_at == T0 and failing.at == T0 + timedelta(minutes=2)
    agent.clock.now = T0 + timedelta(minutes=3)
    agent.pipeline.report(ok=True, message="connected")
    hb = agent.health.snapshot()
    (source,) = hb.sources
    assert (source.ok, source.reconnects, source.attempts, source.records) == (True, 1, 4, 2)
    assert source.last_record_at == T0  # spooled at T0
    assert hb.unbatched_records == 2
    assert hb.sent_at == T0 + timedelta(minutes=3)
    assert hb.uptime_seconds == 180


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        ("continuous", 30),
        ("every 15 minutes", 900),
        (["02:00"], 12 * 3600),
        (["14:00"], 24 * 3600),
        (["13:00", "14:01"], 60),
    ],
)
def test_the_next_heartbeat_is_expected_by_the_schedule(
    tmp_path: Path, schedule: Any, expected: int
) -> None:
    """A nightly uploader is not late at noon: the heartbeat says when the next one comes."""
    settings = settings_for(tmp_path, schedule=schedule)
    health = AgentHealth(settings, clock=Clock())
    assert health.expected_interval(T0) == expected  # T0 is 14:00 in London (GMT)


def test_uplink_record_and_heartbeats_kept_for_later(
    agent: Agent, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(health_module, "MAX_PENDING", 3)
    state = agent.health.state_dir
    for minute in range(5):
        agent.clock.now = T0 + timedelta(minutes=minute)
        agent.health.record_uplink(attempted=True, error=TransportError("connection refused"))
    kept = sorted(p.name for p in (state / PENDING_DIR).iterdir())
    assert [parse_heartbeat_file_name(name)[1].minute for name in kept] == [2, 3, 4]  # type: ignore[index]
    last = parse_heartbeat((state / PENDING_DIR / kept[-1]).read_bytes())
    assert (last.uplink.failures_in_a_row, last.uplink.last_error) == (5, "connection refused")
    agent.health.record_uplink(attempted=False, error=None)  # nothing was due: no change
    assert agent.health.uplink_failures == 5
    agent.health.record_uplink(attempted=True, error=None)
    hb = agent.health.snapshot()
    assert (hb.uplink.failures_in_a_row, hb.uplink.last_ok_at) == (0, T0 + timedelta(minutes=4))


def test_refresh_writes_the_file_status_reads(agent: Agent) -> None:
    agent.pipeline.report(ok=False, message="refused by 127.0.0.1:1752")
    written = agent.health.refresh()
    assert read_health_file(agent.health.state_dir) == written
    assert agent.health.current() == written
    (agent.health.state_dir / HEALTH_FILE).write_text("{not json")
    assert read_health_file(agent.health.state_dir) is None


def test_the_status_table_and_line(agent: Agent) -> None:
    agent.pipeline.deliver([call_line(1)], received_at=T0)
    agent.pipeline.report(ok=False, message="refused by 127.0.0.1:1752")
    agent.health.clock_offset_seconds = -2.5
    agent.health.record_uplink(attempted=True, error=TransportError("timed out"))
    hb = agent.health.snapshot()
    table = render_health(hb, now=T0 + timedelta(minutes=5))
    assert "2026-03-03 14:00:00Z (5 min ago), state running" in table
    assert "1 record(s) not batched, 0 batch(es) not sent" in table
    assert "1 failed session(s) in a row, last: timed out" in table
    assert "-2.5 s (landing host minus this appliance)" in table
    assert "1.00 GB of 4.00 GB" in table
    header, row = table.splitlines()[-2:]
    assert header.split() == ["SOURCE", "KIND", "STATE", "LAST", "POLL", "LAST", "OK", "LAST",
                              "RECORD", "RECORDS", "FAILS", "RECONNECTS", "MESSAGE"]  # fmt: skip
    assert row.split()[:3] == ["pbx-1", "fake", "ERROR"]
    assert row.endswith("refused by 127.0.0.1:1752")
    assert status_line(hb) == (
        "1 source(s), failing: pbx-1; 1 record(s) and 0 batch(es) waiting; spool 0 %; "
        "uplink failing (1 in a row)"
    )


@dataclass
class _Attrs:
    st_mtime: int | None


class FakeSftp:
    """Only what the probe uses; the server clock is ``server``."""

    def __init__(self, server: float) -> None:
        self.server = server
        self.files: dict[str, bytes] = {}

    def open(self, path: str, mode: str) -> Any:
        sftp = self

        class _File(io.BytesIO):
            def close(self) -> None:
                sftp.files[path] = self.getvalue()
                super().close()

        return _File()

    def stat(self, path: str) -> _Attrs:
        assert path in self.files
        return _Attrs(int(self.server))

    def remove(self, path: str) -> None:
        del self.files[path]


@pytest.mark.parametrize(
    ("server", "local", "offset"),
    [(1000.0, 1000.0, 0.5), (1300.2, 1000.0, 300.5), (700.9, 1000.0, -299.5)],
)
def test_clock_offset_from_the_probe_mtime(server: float, local: float, offset: float) -> None:
    times = iter([local - 0.1, local + 0.1])
    sftp = FakeSftp(server)
    measured = measure_clock_offset(sftp, "heartbeats/.probe.part", wall=lambda: next(times))  # type: ignore[arg-type]
    assert measured == pytest.approx(offset)
    assert sftp.files == {}  # the probe is removed


@pytest.mark.parametrize(
    ("remote_dir", "expected"),
    [("incoming", "heartbeats"), ("incoming/", "heartbeats"), ("/acme/incoming", "/acme/heartbeats"),
     ("a/b/incoming", "a/b/heartbeats")],
)  # fmt: skip
def test_heartbeats_go_beside_the_remote_dir(remote_dir: str, expected: str) -> None:
    assert remote_heartbeat_dir(remote_dir) == expected


def test_metrics_are_served_from_the_snapshot(agent: Agent) -> None:
    agent.pipeline.deliver([call_line(1), call_line(2)], received_at=T0)
    agent.pipeline.report(ok=False, message="refused")
    agent.health.clock_offset_seconds = 1.25
    agent.health.refresh()
    server = start_metrics("127.0.0.1:0", agent.health)
    try:
        url = f"http://127.0.0.1:{server.port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
    finally:
        server.close()
    lines = set(text.splitlines())
    assert 'callcollect_agent_info{agent_id="edge-1",tenant="acme",version="9.9.9"} 1.0' in lines
    assert 'callcollect_agent_source_up{kind="fake",source="pbx-1"} 0.0' in lines
    assert 'callcollect_agent_source_records_total{source="pbx-1"} 2.0' in lines
    assert "callcollect_agent_unbatched_records 2.0" in lines
    assert "callcollect_agent_clock_offset_seconds 1.25" in lines
    assert "callcollect_agent_disk_free_bytes 1e+09" in lines


class Sent(list[str]):
    def __call__(self, message: str) -> bool:
        self.append(message)
        return True


def test_notifier_is_silent_without_a_socket() -> None:
    sent = Sent()
    notifier = Notifier(env={}, send=sent)
    assert notifier.ready("up") is False
    assert sent == []


def test_notifier_keeps_status_on_one_line() -> None:
    sent = Sent()
    notifier = Notifier(env={"NOTIFY_SOCKET": "/x"}, send=sent)
    assert notifier.watchdog("two\nlines") is True
    assert sent == ["WATCHDOG=1\nSTATUS=two lines"]


def test_under_systemd(tmp_path: Path) -> None:
    assert under_systemd({"INVOCATION_ID": "abc"}) is True
    assert under_systemd({}) is False
    assert under_systemd({"JOURNAL_STREAM": "garbage"}) is False
    stat = os.fstat(sys.stderr.fileno())
    assert under_systemd({"JOURNAL_STREAM": f"{stat.st_dev}:{stat.st_ino}"}) is True
    assert under_systemd({"JOURNAL_STREAM": f"{stat.st_dev}:{stat.st_ino + 1}"}) is False


def test_logging_goes_to_stderr_off_systemd() -> None:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        assert configure_logging("warning", env={}) == "stderr"
        assert root.level == logging.WARNING
        (handler,) = root.handlers
        assert isinstance(handler, logging.StreamHandler) and handler.stream is sys.stderr
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
