"""The spool quota: alarms on each level change, and a full spool stops a real TCP source."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from edge_agent.health.quota import QuotaWatch, stored_state
from edge_agent.journal import Journal
from edge_agent.pipeline import SourcePipeline
from edge_agent.sources.base import RawUnit, SourceContext
from edge_agent.sources.streams.tcp import TcpClientAcquirer
from edge_agent.spool import Spool, SpoolLevel
from shared.backoff import Backoff
from shared.icdr import ICDR
from tests.fixtures.fake_source import FakeParser, call_line

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CTX = SourceContext(agent_id="agent-1", source_id="pbx-1", timezone=ZoneInfo("Europe/London"))
LINES = 40


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    with Spool.open(tmp_path, quota_bytes=2**30) as opened:
        yield opened


def set_fill(spool: Spool, percent: float) -> None:
    """Move the quota so that what the spool holds is ``percent`` of it."""
    spool.quota_bytes = int(spool.usage().used_bytes * 100 / percent)


@pytest.mark.parametrize(
    ("percents", "levels", "severities"),
    [
        ([10, 75, 80, 95, 100, 50], ["warning", "critical", "full", "ok"],
         [logging.WARNING, logging.ERROR, logging.CRITICAL, logging.INFO]),
        # rising past levels between two checks logs each level passed, in order
        ([91, 92], ["warning", "critical"], [logging.WARNING, logging.ERROR]),
        ([10, 100, 95, 20], ["warning", "critical", "full", "critical", "ok"],
         [logging.WARNING, logging.ERROR, logging.CRITICAL, logging.ERROR, logging.INFO]),
        ([10, 20], [], []),
    ],
)  # fmt: skip
def test_each_level_change_is_logged_once_and_stored(
    spool: Spool, caplog: pytest.LogCaptureFixture, percents: list[float], levels: list[str],
    severities: list[int],
) -> None:  # fmt: skip
    watch = QuotaWatch(spool, clock=lambda: T0)
    caplog.set_level(logging.INFO, logger="edge_agent.health.quota")
    for percent in percents:
        set_fill(spool, percent)
        watch.check()
    records = [r for r in caplog.records if r.name == "edge_agent.health.quota"]
    assert [r.message.split(":")[0] for r in records] == [f"spool quota {lv}" for lv in levels]
    assert [r.levelno for r in records] == severities
    state = stored_state(spool)
    assert (state.level if state else SpoolLevel.OK) == (levels[-1] if levels else "ok")
    # a restarted agent remembers the alarm instead of raising it again
    assert QuotaWatch(spool, clock=lambda: T0).level == watch.level


class LinePbx:
    """A PBX on loopback that writes its call lines as soon as the agent connects."""

    def __init__(self, lines: list[bytes]) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(5)
        self.port = self.listener.getsockname()[1]
        self.lines = lines
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve)
        self.thread.start()

    def _serve(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except TimeoutError:
            return
        with conn:
            conn.sendall(b"".join(line + b"\r\n" for line in self.lines))
            self.stop.wait(10)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)
        self.listener.close()


def test_a_full_spool_stops_the_tcp_source_until_there_is_room(
    tmp_path: Path, spool: Spool
) -> None:
    spool.store("pbx-0", [(n, icdr(n)) for n in range(1000, 1300)], [], cursor=None, now=T0)
    set_fill(spool, 100)
    journal = Journal.open(tmp_path / "journal", source_id="pbx-1")
    pipeline = SourcePipeline.open(source_id="pbx-1", parser=FakeParser(CTX), journal=journal,
                                   spool=spool, clock=lambda: T0)  # fmt: skip
    pbx = LinePbx([call_line(n) for n in range(1, LINES + 1)])
    stop = threading.Event()
    acquirer = TcpClientAcquirer(host="127.0.0.1", port=pbx.port, poll_interval=0.05,
                                 backoff=Backoff(min_seconds=0.05, max_seconds=0.1, jitter=0.2))  # fmt: skip
    thread = threading.Thread(target=acquirer.run, args=(pipeline, stop))
    thread.start()
    try:
        time.sleep(1.5)  # longer than the pipeline's one-second may_read cache
        assert spool.source_counts("pbx-1").spooled == 0  # nothing read: the PBX holds it
        assert journal.last_seq == 0
        set_fill(spool, 50)  # batches were acknowledged and purged
        deadline = time.monotonic() + 10
        while spool.source_counts("pbx-1").spooled < LINES:
            assert time.monotonic() < deadline, "the source never resumed"
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(10)
        pbx.close()
        journal.close()
    assert spool.record_ids("pbx-1") == [icdr(n).record_id for n in range(1, LINES + 1)]


def icdr(n: int) -> ICDR:
    (result,) = FakeParser(CTX).feed(RawUnit("pbx-1", n, T0, call_line(n)))
    assert isinstance(result, ICDR)
    return result
