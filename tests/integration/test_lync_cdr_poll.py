"""Polling a real LcsCDR stand-in (PostgreSQL through psqlODBC) and FreeTDS's error paths."""

from __future__ import annotations

import math
import re
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from click.testing import CliRunner

from edge_agent.cli import main
from edge_agent.commands import test_source as lync_test_source
from edge_agent.journal import Journal
from edge_agent.pipeline import SourcePipeline
from edge_agent.simulators.lcscdr import ExpectedCall, Generation, Session, phone_user, sip, tel
from edge_agent.sources import registry
from edge_agent.sources.base import Quarantined, RawUnit, SourceContext
from edge_agent.sources.lync_cdr.driver import (
    WATERMARK_KEY,
    LcsCdrDatabase,
    LcsCdrPoller,
    LyncOptions,
    SessionKey,
)
from edge_agent.sources.lync_cdr.parser import LyncCdrParser
from edge_agent.spool import Spool
from shared.errors import SourceError
from shared.icdr import ICDR
from tests.fixtures.lcscdr import SCENARIO_BASE, LcsCdrFactory, LcsCdrSite
from tests.fixtures.ports import free_port

pytestmark = pytest.mark.postgres

CTX = SourceContext(agent_id="agent-1", source_id="lync", timezone=ZoneInfo("UTC"))
NOW = (SCENARIO_BASE + timedelta(hours=2)).replace(tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class MemorySink:
    """A UnitSink that parses what it is given, keeps the latest version of each record."""

    def __init__(self, *, fail: bool = False) -> None:
        self.parser = LyncCdrParser(CTX)
        self.units: list[bytes] = []
        self.records: dict[str, ICDR] = {}
        self.quarantined: list[Quarantined] = []
        self.state: dict[str, str] = {}
        self.reports: list[tuple[bool, str, int]] = []
        self.fail = fail
        self.stop_on_report: threading.Event | None = None

    def deliver(self, data: Sequence[bytes], *, received_at: datetime) -> None:
        if self.fail:
            raise OSError(28, "No space left on device")
        for unit in data:
            seq = len(self.units) + 1
            self.units.append(unit)
            for result in self.parser.feed(RawUnit("lync", seq, received_at, unit)):
                if isinstance(result, ICDR):
                    self.records[result.record_id] = result
                else:
                    self.quarantined.append(result)

    def report(self, *, ok: bool, message: str = "", records: int = 0) -> None:
        self.reports.append((ok, message, records))
        if self.stop_on_report is not None:
            self.stop_on_report.set()

    def get_state(self, key: str) -> str | None:
        return self.state.get(key)

    def set_state(self, key: str, value: str) -> None:
        self.state[key] = value

    def may_read(self) -> bool:
        return True


def poller(site: LcsCdrSite, clock: Clock | None = None, **options: Any) -> LcsCdrPoller:
    settings = LyncOptions.from_mapping(CTX, {"connection_string": site.odbc, **options})
    return LcsCdrPoller(settings, clock=clock or Clock())


def record_of(sink: MemorySink, call: ExpectedCall) -> ICDR:
    return sink.records[sink.parser.record_id(call.session_time, call.session_seq)]


def check_call(record: ICDR, call: ExpectedCall, sink: MemorySink) -> None:
    """The driver's record agrees with the simulator's account of the session."""
    got = (record.direction.value, record.calling, record.called, record.answered)
    assert got == (call.direction, call.calling, call.called, call.answered), call.scenario
    assert record.completion.value == call.completion, call.scenario
    assert record.talk_seconds == math.ceil(call.talk_ms / 1000), call.scenario
    billed = record.answered and "not_billed" not in record.flags
    assert billed == call.billed, call.scenario
    assert (record.conference, record.transferred) == (call.conference, call.transferred)
    assert set(call.flags) <= set(record.flags), call.scenario
    if call.extension is not None:
        assert record.extension == call.extension, call.scenario
    if call.ring_seconds is not None:
        assert record.ring_seconds == call.ring_seconds, call.scenario
    if call.parent is not None:
        assert record.parent_call_id == sink.parser.record_id(*call.parent), call.scenario


@pytest.fixture
def site(lcscdr: LcsCdrSite) -> Iterator[LcsCdrSite]:
    yield lcscdr


# --- the first poll --------------------------------------------------------------------------------


def test_first_poll_delivers_every_pstn_call_and_stores_the_watermark(site: LcsCdrSite) -> None:
    sink = MemorySink()
    result = poller(site).poll(sink)
    expected = {
        (c.session_time, c.session_seq): c for c in site.expected if c.pstn and not c.end_pending
    }
    assert len(sink.records) == len(expected) == result.delivered
    for call in expected.values():
        check_call(record_of(sink, call), call, sink)
    late = site.by_scenario("late_end")
    assert result.held == 1  # the open session waits for a later sweep
    assert sink.parser.record_id(late.session_time, late.session_seq) not in sink.records
    assert not sink.quarantined
    last = max((c.session_time, c.session_seq) for c in site.expected if c.pstn)
    assert SessionKey.decode(sink.state[WATERMARK_KEY]) == SessionKey(*last)
    assert "Skype for Business 2015/2019" in result.variant


def test_include_internal_adds_internal_calls_but_never_im(site: LcsCdrSite) -> None:
    sink = MemorySink()
    poller(site, include_internal=True).poll(sink)
    for call in site.expected:
        wanted = call.scenario != "im_only" and not call.end_pending
        assert (sink.parser.record_id(call.session_time, call.session_seq) in sink.records) is (
            wanted
        ), call.scenario
        if wanted:
            check_call(record_of(sink, call), call, sink)


def test_billing_once_per_call(site: LcsCdrSite) -> None:
    """The RGS caller's leg and the retry that connected are billed; the legs beside them not."""
    sink = MemorySink()
    poller(site).poll(sink)
    rgs = [record_of(sink, site.by_scenario(n)) for n in ("rgs_caller_leg", "rgs_agent_leg")]
    assert rgs[0].call_id == rgs[1].call_id  # linked by CorrelationId
    assert [("not_billed" not in leg.flags) for leg in rgs] == [True, False]
    names = ("retry_failed_first", "retry_failed_second", "retry_connected")
    attempts = [record_of(sink, site.by_scenario(name)) for name in names]
    assert len({a.call_id for a in attempts}) == 1 and attempts[0].call_id
    billed = [a.answered and "not_billed" not in a.flags for a in attempts]
    assert billed == [False, False, True]  # the retry that connected, never the first attempt
    assert [a.trunk for a in attempts] == [
        "gw01.example.com", "gw02.example.com", "gw03.example.com"
    ]  # fmt: skip
    assert "replaced_by_retry" in attempts[0].flags and attempts[2].talk_seconds == 42


def test_only_a_retry_of_the_same_call_replaces_an_attempt(lcscdr_factory: LcsCdrFactory) -> None:
    """Legs that share a CorrelationId but are not the same call stay billed: a retried
    Response Group agent leg (CallFlag 0x03), and a retry by another caller or to another number."""
    site = lcscdr_factory(scenarios=False)
    base = SCENARIO_BASE
    did, caller = "+441632960200", "+442079460009"

    def inbound(at: int, user: str, **kw: Any) -> Session:
        return Session(time=base + timedelta(minutes=at), started_by=phone_user(caller),
                       user1=phone_user(caller), user2=sip(user), target=phone_user(did),
                       from_number=tel(caller), from_gateway="gw01.example.com", **kw)  # fmt: skip

    rgs = inbound(0, "sales-rgs", talk=95.0)
    agent = inbound(1, "erin", call_flag=3, correlation=rgs.correlation, talk=80.0)
    other = Session(time=base + timedelta(minutes=2), started_by=sip("bob"), user1=sip("bob"),
                    target=phone_user("+441632960070"), connected_number=tel("+441632960070"),
                    to_gateway="gw01.example.com", code=503, talk=None)  # fmt: skip
    retry_elsewhere = Session(time=base + timedelta(minutes=3), started_by=sip("bob"),
                              user1=sip("bob"), target=phone_user("+441632960071"),
                              connected_number=tel("+441632960071"), to_gateway="gw02.example.com",
                              correlation=other.correlation, call_flag=1, talk=30.0)  # fmt: skip
    site.simulator.write_sessions([rgs, agent, other, retry_elsewhere])
    sink = MemorySink()
    poller(site).poll(sink)
    flags = {key: sink.records[sink.parser.record_id(*key)].flags
             for key in (rgs.key, agent.key, other.key, retry_elsewhere.key)}  # fmt: skip
    assert "not_billed" not in flags[rgs.key]  # the caller's leg stays the billed one
    assert "not_billed" in flags[agent.key] and "rgs_agent_leg" in flags[agent.key]
    assert "replaced_by_retry" not in flags[other.key]  # a retry to another number
    assert "not_billed" not in flags[retry_elsewhere.key]


def test_failed_session_without_end_is_delivered_at_once(site: LcsCdrSite) -> None:
    """A final error with no SessionEndTime is complete: not held for a day like an open call."""
    clock = Clock(NOW - timedelta(minutes=80))  # the first poll: the sessions are minutes old
    sink = MemorySink()
    result = poller(site, clock).poll(sink)
    for name in ("failed_no_end", "retry_failed_first", "retry_failed_second"):
        call = site.by_scenario(name)
        check_call(record_of(sink, call), call, sink)
    failed = record_of(sink, site.by_scenario("failed_no_end"))
    assert failed.end == failed.start + timedelta(seconds=30)  # ends at its final response
    assert result.held == 1  # only the answered call still in progress


# --- incremental polls ------------------------------------------------------------------------------


def test_incremental_poll_delivers_only_new_sessions(site: LcsCdrSite) -> None:
    clock = Clock()
    source, sink = poller(site, clock), MemorySink()
    source.poll(sink)
    first_units = len(sink.units)
    clock.now += timedelta(minutes=5)
    again = source.poll(sink)
    assert (again.delivered, len(sink.units), again.window.sweep) == (0, first_units, False)
    new = Session(time=clock.now.replace(tzinfo=None) - timedelta(minutes=1), started_by=sip("bob"),
                  user1=sip("bob"), user2=None, connected_number=tel("+441632960050"),
                  to_gateway="gw01.example.com", talk=20.0)  # fmt: skip
    site.simulator.write_sessions([new])
    clock.now += timedelta(minutes=5)
    third = source.poll(sink)
    assert third.delivered == 1
    assert SessionKey.decode(sink.state[WATERMARK_KEY]) == SessionKey(new.time, 1)
    # The poll starts a short overlap before what was already read, not at the watermark.
    assert third.window.start == NOW.replace(tzinfo=None) + timedelta(minutes=3 - 30)


def test_restart_rereads_the_overlap_with_the_same_record_ids(site: LcsCdrSite) -> None:
    clock = Clock()
    sink = MemorySink()
    poller(site, clock).poll(sink)
    before = dict(sink.records)
    clock.now += timedelta(minutes=5)
    restarted = poller(site, clock)  # a new process: no memory of what it delivered
    result = restarted.poll(sink)
    assert result.delivered > 0  # the overlap sweep reads the rows again ...
    assert sink.records.keys() == before.keys()  # ... and they are the same records
    assert all(sink.records[k].to_dict() == before[k].to_dict() for k in before)


def test_late_end_time_is_picked_up_by_the_sweep(site: LcsCdrSite) -> None:
    clock = Clock()
    source, sink = poller(site, clock), MemorySink()
    source.poll(sink)
    late = site.by_scenario("late_end")
    late_id = sink.parser.record_id(late.session_time, late.session_seq)
    assert late_id not in sink.records
    site.simulator.complete_pending(talk_seconds=240.0)
    clock.now += timedelta(minutes=5)
    source.poll(sink)  # a frequent poll starts 30 min before the watermark: not yet
    assert late_id not in sink.records
    clock.now += timedelta(hours=1)
    swept = source.poll(sink)
    assert swept.window.sweep and swept.delivered == 1
    assert sink.records[late_id].talk_seconds == 240
    assert "end_pending" not in sink.records[late_id].flags


def test_open_session_is_tracked_beyond_the_overlap_window(site: LcsCdrSite) -> None:
    """Delivered incomplete when it leaves the window, its end is still picked up hours later."""
    clock = Clock()
    source, sink = poller(site, clock, overlap_hours=1), MemorySink()
    first = source.poll(sink)
    late = site.by_scenario("late_end")
    late_id = sink.parser.record_id(late.session_time, late.session_seq)
    assert "end_pending" in sink.records[late_id].flags and first.pending == 1
    clock.now += timedelta(hours=5)
    new_session(site, clock)
    assert source.poll(sink).pending == 1  # still open: read by key, not delivered again
    site.simulator.complete_pending(talk_seconds=240.0)
    clock.now += timedelta(hours=1)
    new_session(site, clock)
    restarted = poller(site, clock, overlap_hours=1)  # the tracked keys are kept with the spool
    result = restarted.poll(sink)
    assert result.window.start > late.session_time + timedelta(hours=5)  # far outside the window
    # The two new sessions (a restart re-reads its short overlap) and the one that ended.
    assert (result.delivered, result.pending) == (3, 0)
    assert sink.records[late_id].talk_seconds == 240
    assert "end_pending" not in sink.records[late_id].flags
    assert restarted.poll(sink).delivered == 0  # no longer tracked


def new_session(site: LcsCdrSite, clock: Clock) -> None:
    """A plain call a few minutes before the clock: the watermark moves on, as on a live site."""
    when = clock.now.replace(tzinfo=None) - timedelta(minutes=5)
    site.simulator.write_sessions([
        Session(time=when, started_by=sip("bob"), user1=sip("bob"), user2=None,
                connected_number=tel("+441632960051"), to_gateway="gw01.example.com", talk=20.0)
    ])  # fmt: skip


def test_tracking_gives_up_after_pending_max_hours(site: LcsCdrSite) -> None:
    clock = Clock()
    source, sink = poller(site, clock, overlap_hours=1, pending_max_hours=3), MemorySink()
    assert source.poll(sink).pending == 1
    clock.now += timedelta(hours=3)
    assert source.poll(sink).pending == 0  # the session started more than 3 h ago
    site.simulator.complete_pending(talk_seconds=240.0)
    clock.now += timedelta(minutes=5)
    assert source.poll(sink).delivered == 0


def test_late_end_replaces_an_open_version_within_the_overlap(site: LcsCdrSite) -> None:
    """With a short overlap an open session is delivered at once, then again once it ends."""
    clock = Clock()
    source, sink = poller(site, clock, overlap_hours=1), MemorySink()
    source.poll(sink)
    late = site.by_scenario("late_end")
    late_id = sink.parser.record_id(late.session_time, late.session_seq)
    assert "end_pending" in sink.records[late_id].flags
    site.simulator.complete_pending(talk_seconds=240.0)
    clock.now += timedelta(hours=1)
    source = poller(site, clock, overlap_hours=3)  # the window still reaches the session
    result = source.poll(sink)
    assert result.delivered >= 1
    assert sink.records[late_id].talk_seconds == 240  # same record id, newer version


def test_watermark_not_advanced_when_the_sink_fails(site: LcsCdrSite) -> None:
    broken = MemorySink(fail=True)
    source = poller(site)
    with pytest.raises(OSError, match="No space"):
        source.poll(broken)
    assert WATERMARK_KEY not in broken.state
    healthy = MemorySink()
    healthy.state = broken.state
    assert source.poll(healthy).delivered == len(
        [c for c in site.expected if c.pstn and not c.end_pending]
    )


def test_run_reports_each_poll_and_failures(site: LcsCdrSite) -> None:
    for sink, ok in ((MemorySink(), True), (MemorySink(fail=True), False)):
        stop = threading.Event()
        sink.stop_on_report = stop
        thread = threading.Thread(target=poller(site).run, args=(sink, stop))
        thread.start()
        thread.join(timeout=30)
        assert not thread.is_alive()
        assert [r[0] for r in sink.reports] == [ok]
        message, records = sink.reports[0][1], sink.reports[0][2]
        if ok:
            assert records == len(sink.records) and "rows" in message
        else:
            assert "could not store" in message and WATERMARK_KEY not in sink.state


def test_poll_into_the_real_journal_and_spool(site: LcsCdrSite, tmp_path: Path) -> None:
    source = registry.make_source("lync-cdr", CTX, {"connection_string": site.odbc})
    assert source.acquirer is not None and source.kind == "lync-cdr"
    with (
        Journal.open(tmp_path / "journal", source_id="lync") as journal,
        Spool.open(tmp_path, quota_bytes=10**8) as spool,
    ):
        pipeline = SourcePipeline.open(
            source_id="lync", parser=source.parser, journal=journal, spool=spool, clock=Clock()
        )
        acquirer = poller(site)
        acquirer.poll(pipeline)
        stored = spool.record_ids("lync")
        assert len(stored) == len([c for c in site.expected if c.pstn and not c.end_pending])
        assert spool.get_state("lync", WATERMARK_KEY) is not None
        poller(site).poll(pipeline)  # a restart re-reads the overlap: nothing stored twice
        assert sorted(spool.record_ids("lync")) == sorted(stored)


# --- schema variants --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("generation", "replaces", "label"),
    [
        (Generation.LYNC_2010, False, "Lync 2010"),
        (Generation.LYNC_2013, True, "Lync 2013"),
        (Generation.SFB_2015, False, "Skype for Business 2015/2019"),
    ],
)
def test_schema_variants(
    lcscdr_factory: LcsCdrFactory, generation: Generation, replaces: bool, label: str
) -> None:
    site = lcscdr_factory(generation, replaces_spelling=replaces)
    sink = MemorySink()
    source = poller(site)
    result = source.poll(sink)
    assert result.variant.startswith(label)
    assert source.retention_days == (None if generation is Generation.LYNC_2010 else 60)
    assert ("ReplacesDialogId" in result.variant) is replaces
    for call in site.expected:
        if call.pstn and not call.end_pending:
            check_call(record_of(sink, call), call, sink)
    has_last_modified = generation is Generation.SFB_2015
    assert any('"LastModifiedTime"' in unit.decode() for unit in sink.units) is has_last_modified


def test_unsupported_schemas_are_reported(lcscdr_factory: LcsCdrFactory) -> None:
    empty = lcscdr_factory(scenarios=False)
    with psycopg.connect(empty.conninfo, autocommit=True) as conn:
        conn.execute("DROP SCHEMA dbo CASCADE")
    with pytest.raises(SourceError, match="DATABASE=LcsCDR"):
        poller(empty).poll(MemorySink())
    broken = lcscdr_factory(scenarios=False)
    with psycopg.connect(broken.conninfo, autocommit=True) as conn:
        conn.execute('ALTER TABLE dbo."SessionDetails" DROP COLUMN "SessionStartedById"')
    with pytest.raises(SourceError, match=r"dbo\.SessionDetails\.SessionStartedById"):
        poller(broken).poll(MemorySink())


def test_the_session_is_read_only(site: LcsCdrSite) -> None:
    db = LcsCdrDatabase(site.odbc, login_timeout_seconds=5, query_timeout_seconds=5)
    try:
        with pytest.raises(SourceError, match="failed"):
            list(db.pages('DELETE FROM dbo."SessionDetails"', (), page_size=10))
    finally:
        db.close()
    with psycopg.connect(site.conninfo) as conn:
        row = conn.execute('SELECT count(*) FROM dbo."SessionDetails"').fetchone()
    assert row is not None and row[0] == len(site.expected)


def test_query_timeout_is_a_clear_error(site: LcsCdrSite) -> None:
    db = LcsCdrDatabase(site.odbc, login_timeout_seconds=5, query_timeout_seconds=1)
    try:
        started = time.monotonic()
        with pytest.raises(SourceError, match=r"timed out.*query_timeout_seconds"):
            list(db.pages("SELECT pg_sleep(5)", (), page_size=1))
        assert time.monotonic() - started < 4
    finally:
        db.close()


# --- connection errors (FreeTDS, the production driver) ---------------------------------------------


def freetds(port: int) -> str:
    return (
        "DRIVER={FreeTDS};SERVER=127.0.0.1;"
        f"PORT={port};DATABASE=LcsCDR;UID=callcollect;PWD=s3cret;TDS_Version=7.4;"
    )


@pytest.fixture
def silent_peer() -> Iterator[int]:
    """A loopback port that accepts TCP connections (the backlog) and never says a word."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield int(server.getsockname()[1])


def _poll_error(connection_string: str, **options: Any) -> tuple[str, float]:
    settings = LyncOptions.from_mapping(CTX, {"connection_string": connection_string, **options})
    started = time.monotonic()
    with pytest.raises(SourceError) as info:
        LcsCdrPoller(settings, clock=Clock()).poll(MemorySink())
    return str(info.value), time.monotonic() - started


def test_refused_port_fails_fast_and_clearly() -> None:
    message, elapsed = _poll_error(freetds(free_port()), login_timeout_seconds=10)
    assert elapsed < 3
    assert "cannot connect to SERVER=127.0.0.1;PORT=" in message
    assert "check SERVER and PORT" in message and "s3cret" not in message


def test_silent_peer_hits_the_login_timeout(silent_peer: int) -> None:
    message, elapsed = _poll_error(freetds(silent_peer), login_timeout_seconds=1)
    assert 0.8 < elapsed < 5
    assert "login to SERVER=127.0.0.1" in message and "timed out" in message
    assert "s3cret" not in message


def test_missing_driver_and_database_are_named(site: LcsCdrSite) -> None:
    message, _ = _poll_error("DRIVER={ODBC Driver 18 for SQL Server};SERVER=127.0.0.1;")
    assert "not installed" in message and "tdsodbc" in message
    wrong_db = site.odbc.replace(f"DATABASE={site.dbname}", "DATABASE=NoSuchLcsCDR")
    message, _ = _poll_error(wrong_db)
    assert "does not exist" in message and "DATABASE=NoSuchLcsCDR" in message


# --- test-source ------------------------------------------------------------------------------------


def test_test_source_prints_the_next_poll_without_advancing(
    lcscdr_factory: LcsCdrFactory,
) -> None:
    site = lcscdr_factory(scenarios=False)  # test-source runs on the real clock
    expected = site.simulator.write_scenarios(datetime.now(UTC) - timedelta(hours=2))
    runner = CliRunner()
    args = ["--kind", "lync-cdr", "-o", f"connection_string={site.odbc}"]
    result = runner.invoke(lync_test_source.test_source_command, args)
    assert result.exit_code == 0, result.output
    pstn = [c for c in expected if c.pstn]
    outgoing = sum(1 for c in pstn if c.direction == "out")
    assert f"sessions: {len(pstn)} (" in result.output
    assert f"{outgoing} out" in result.output
    assert "Skype for Business 2015/2019" in result.output
    first = min((c.session_time, c.session_seq) for c in pstn)
    assert f"first session: {first[0].isoformat(timespec='milliseconds')} #1" in result.output
    assert "1 still open" in result.output and "watermark: none" in result.output
    with psycopg.connect(site.conninfo) as conn:
        row = conn.execute('SELECT count(*) FROM dbo."SessionDetails"').fetchone()
    assert row is not None and row[0] == len(expected)
    # The calls as they will be billed, and the retried call beside the attempts it replaces.
    billed = [c for c in pstn if c.billed and not c.end_pending]
    unanswered = [c for c in pstn if not c.answered and "not_billed" not in c.flags]
    talk = sum(math.ceil(c.talk_ms / 1000) for c in billed)
    assert f"billed calls: {len(billed)} ({talk} s of talk)" in result.output
    assert "not-billed legs: 2 (replaced_by_retry, rgs_agent_leg)" in result.output
    assert f"unanswered attempts: {len(unanswered)}" in result.output
    assert "in progress (billed once they end): 1" in result.output
    assert "retried calls: 1 (" in result.output
    retry_line = next(line for line in result.output.splitlines() if "+441632960007:" in line)
    assert re.search(
        r"via gw03\.example\.com \(answered 42 s\) \| .* via gw01\.example\.com \(503\), "
        r".* via gw02\.example\.com \(503\)$",
        retry_line,
    ), retry_line
    assert "WARNING: no sessions since the watermark" not in result.output


def test_test_source_warns_when_nothing_happened_since_the_watermark(
    lcscdr_factory: LcsCdrFactory,
) -> None:
    site = lcscdr_factory(scenarios=False)
    site.simulator.write_scenarios(datetime.now(UTC) - timedelta(hours=2))
    mark = (datetime.now(UTC) - timedelta(minutes=30)).isoformat(timespec="seconds")
    args = ["--kind", "lync-cdr", "-o", f"connection_string={site.odbc}", "--watermark", mark]
    result = CliRunner().invoke(lync_test_source.test_source_command, args)
    assert result.exit_code == 0, result.output
    assert "WARNING: no sessions since the watermark" in result.output


def test_test_source_prints_the_export_query(lcscdr_factory: LcsCdrFactory) -> None:
    """The printed query is the poll's, with its window filled in: it runs as printed."""
    site = lcscdr_factory(scenarios=False)
    expected = site.simulator.write_scenarios(datetime.now(UTC) - timedelta(hours=2))
    args = ["--kind", "lync-cdr", "-o", f"connection_string={site.odbc}", "--print-query"]
    result = CliRunner().invoke(lync_test_source.test_source_command, args)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("-- lync-cdr source lync: sessions ")
    assert "?" not in result.output and 'AS "RetryConnected"' in result.output
    with psycopg.connect(site.conninfo) as conn:
        rows = conn.execute(result.output).fetchall()  # the text runs unchanged
    assert len(rows) == len([c for c in expected if c.pstn])


def test_test_source_errors_are_one_sentence() -> None:
    runner = CliRunner()
    result = runner.invoke(
        main,
        ["test-source", "--kind", "lync-cdr", "-o", f"connection_string={freetds(free_port())}"],
    )
    assert result.exit_code == 5  # SourceError
    assert "Error: cannot connect" in result.output and "Traceback" not in result.output
    result = runner.invoke(main, ["test-source", "--kind", "lync-cdr", "-o", "page_size=0"])
    assert result.exit_code == 2 and "sources.lync.page_size" in result.output  # ConfigError
