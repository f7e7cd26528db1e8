"""The pipeline: journal first, then parse and spool in one transaction; replay loses nothing."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from edge_agent.journal import Journal
from edge_agent.pipeline import SourcePipeline
from edge_agent.sources.base import ParseResult, Quarantined, RawUnit, SourceContext
from edge_agent.spool import Spool, SpoolError
from shared.icdr import make_record_id
from tests.fixtures.fake_source import FakeParser, call_line

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CTX = SourceContext(agent_id="agent-1", source_id="pbx-1", timezone=ZoneInfo("Europe/London"))
QUOTA = 64 * 1024 * 1024


@dataclass
class Site:
    """A source's journal and the spool, opened as the agent opens them."""

    root: Path
    quota: int = QUOTA

    def open(self, parser: FakeParser | None = None) -> tuple[SourcePipeline, FakeParser]:
        parser = parser or FakeParser(CTX)
        self.journal = Journal.open(self.root / "journal" / "pbx-1", source_id="pbx-1")
        self.spool = Spool.open(self.root, quota_bytes=self.quota)
        pipeline = SourcePipeline.open(
            source_id="pbx-1", parser=parser, journal=self.journal, spool=self.spool,
            clock=lambda: T0,
        )  # fmt: skip
        return pipeline, parser

    def crash(self) -> None:
        """Drop everything without any shutdown work (what survives is what was durable)."""
        self.journal.close()
        self.spool.close()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    s = Site(tmp_path)
    yield s
    s.crash()


def ids(*numbers: int) -> list[str]:
    return [make_record_id("pbx-1", str(n)) for n in numbers]


def test_deliver_journals_parses_and_spools(site: Site) -> None:
    pipeline, _ = site.open()
    pipeline.deliver([call_line(1), b"garbage", call_line(2)], received_at=T0)
    assert pipeline.cursor == 3
    assert site.spool.record_ids("pbx-1") == ids(1, 2)
    assert [(q.seq, q.reason, q.raw) for q in site.spool.quarantined("pbx-1")] == [
        (2, "not_a_record", b"garbage")
    ]
    assert [u.data for u in site.journal.read_from(1)] == [call_line(1), b"garbage", call_line(2)]
    assert site.spool.source_counts("pbx-1").cursor == 3


def test_crash_between_journal_and_spool_loses_nothing(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline, _ = site.open()
    pipeline.deliver([call_line(1), call_line(2)], received_at=T0)

    def disk_full(*args: object, **kwargs: object) -> None:
        raise SpoolError("disk I/O error")

    monkeypatch.setattr(site.spool, "store", disk_full)
    pipeline.deliver([call_line(3), call_line(4)], received_at=T0)  # journalled, not spooled
    assert pipeline.spool_error == "disk I/O error"
    site.crash()

    pipeline, parser = site.open()
    assert parser.fed == [3, 4]  # only what the spool did not have
    assert pipeline.counts.replayed == 2
    assert site.spool.record_ids("pbx-1") == ids(1, 2, 3, 4)
    assert pipeline.cursor == 4


def test_a_failed_spool_write_is_caught_up_in_order_on_the_next_delivery(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline, _ = site.open()
    real_store = site.spool.store

    def busy(*args: object, **kwargs: object) -> None:
        raise SpoolError("database is locked")

    monkeypatch.setattr(site.spool, "store", busy)
    pipeline.deliver([call_line(1)], received_at=T0)
    assert site.spool.record_ids("pbx-1") == []
    monkeypatch.setattr(site.spool, "store", real_store)
    pipeline.deliver([call_line(2)], received_at=T0)
    assert site.spool.record_ids("pbx-1") == ids(1, 2)
    assert pipeline.spool_error == ""
    assert pipeline.cursor == 2


def test_replaying_everything_stores_nothing_twice(site: Site) -> None:
    pipeline, _ = site.open()
    pipeline.deliver([call_line(n) for n in range(1, 51)] + [b"junk"], received_at=T0)
    site.spool.db.execute("DELETE FROM cursors")  # as if the cursor had never advanced
    site.crash()
    pipeline, parser = site.open()
    assert len(parser.fed) == 51
    assert site.spool.record_ids("pbx-1") == ids(*range(1, 51))
    assert len(site.spool.quarantined("pbx-1")) == 1
    assert pipeline.counts.records == 0  # every replayed record was already spooled


def test_a_parser_that_raises_quarantines_the_unit(site: Site) -> None:
    pipeline, _ = site.open()
    pipeline.deliver([b"BOOM", call_line(1)], received_at=T0)
    (q,) = site.spool.quarantined("pbx-1")
    assert (q.seq, q.reason, q.raw) == (1, "parser_error", b"BOOM")
    assert "RuntimeError: parser bug" in q.detail
    assert site.spool.record_ids("pbx-1") == ids(1)


class FlushingParser(FakeParser):
    """An event-stream parser that completes a call only when flushed."""

    def feed(self, unit: RawUnit) -> list[ParseResult]:
        self.held = super().feed(unit)
        return []

    def flush(self, now: datetime) -> list[ParseResult]:
        held, self.held = getattr(self, "held", []), []
        return held


def test_flush_parser_spools_what_the_parser_completes(site: Site) -> None:
    pipeline, _ = site.open(FlushingParser(CTX))
    pipeline.deliver([call_line(7)], received_at=T0)
    assert site.spool.record_ids("pbx-1") == []
    assert pipeline.cursor == 1
    pipeline.flush_parser()
    assert site.spool.record_ids("pbx-1") == ids(7)


def test_report_is_kept_in_the_spool(site: Site) -> None:
    pipeline, _ = site.open()
    assert pipeline.last_report() is None
    pipeline.report(ok=False, message="connection refused")
    pipeline.report(ok=False, message="connection refused")
    failing = pipeline.last_report()
    assert failing is not None
    assert (failing.ok, failing.failures_in_a_row, failing.attempts, failing.last_ok_at) == (
        False, 2, 2, None,
    )  # fmt: skip
    pipeline.report(ok=True, message="connected", records=5)
    site.crash()
    pipeline, _ = site.open()
    report = pipeline.last_report()
    assert report is not None
    assert (report.ok, report.message, report.records, report.attempts) == (True, "connected", 5, 3)
    assert report.failures_in_a_row == 0
    assert report.last_ok_at == "2026-03-02T09:00:00Z"


def test_a_report_the_spool_cannot_take_is_logged_not_raised(
    site: Site, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """On a full disk the source holding what it read reports it; the report must not end the
    source (its connection, and what the PBX sent on it, would go)."""
    pipeline, _ = site.open()

    def full(*args: object, **kwargs: object) -> None:
        raise SpoolError("spool spool.db: write failed: database or disk is full")

    monkeypatch.setattr(site.spool, "set_state", full)
    with caplog.at_level(logging.ERROR, logger="edge_agent.pipeline"):
        pipeline.report(ok=False, message="holding 100 units")
    assert "pbx-1: status not recorded (holding 100 units): spool spool.db" in caplog.text
    assert pipeline.last_report() is None


def test_state_is_per_source_and_durable(site: Site) -> None:
    pipeline, _ = site.open()
    pipeline.set_state("watermark", "42")
    site.crash()
    pipeline, _ = site.open()
    assert pipeline.get_state("watermark") == "42"
    assert site.spool.get_state("pbx-2", "watermark") is None


def test_may_read_is_false_when_the_spool_is_full(tmp_path: Path) -> None:
    site = Site(tmp_path, quota=16 * 1024 * 1024)
    pipeline, _ = site.open()
    try:
        assert pipeline.may_read()
        site.spool.quota_bytes = site.spool.usage().used_bytes  # 100 % used
        pipeline._may_read = (float("-inf"), True)  # skip the one-second cache
        assert not pipeline.may_read()
    finally:
        site.crash()


def test_a_paused_source_says_so_once_and_again_when_it_reads(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    site = Site(tmp_path, quota=16 * 1024 * 1024)
    pipeline, _ = site.open()
    room = site.spool.quota_bytes
    try:
        caplog.set_level(logging.INFO, logger="edge_agent.pipeline")
        site.spool.quota_bytes = site.spool.usage().used_bytes  # 100 % used
        for _ in range(5):  # five checks past the cache, as a paused source makes
            pipeline._may_read = (float("-inf"), pipeline._may_read[1])
            assert not pipeline.may_read()
        site.spool.quota_bytes = room
        pipeline._may_read = (float("-inf"), pipeline._may_read[1])
        assert pipeline.may_read()
    finally:
        site.crash()
    said = [r.getMessage() for r in caplog.records if r.name == "edge_agent.pipeline"]
    assert said == [
        "source pbx-1: spool full, not reading until batches leave",
        "source pbx-1: the spool has room again, reading",
    ]


def test_journal_pruning_follows_the_cursor(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path / "j", source_id="pbx-1", segment_bytes=200,
                           retention=timedelta(0))  # fmt: skip
    with Spool.open(tmp_path, quota_bytes=QUOTA) as spool:
        pipeline = SourcePipeline.open(source_id="pbx-1", parser=FakeParser(CTX),
                                       journal=journal, spool=spool, clock=lambda: T0)  # fmt: skip
        pipeline.deliver([call_line(n) for n in range(1, 6)], received_at=T0)
        pipeline.deliver([call_line(n) for n in range(6, 11)], received_at=T0)
        pipeline.deliver([call_line(11)], received_at=T0)
        assert len(journal.segments) == 3
        pipeline.prune_journal(now=datetime.now(UTC) + timedelta(seconds=1))
        assert len(journal.segments) == 1  # everything before the newest is spooled
        assert [u.seq for u in journal.read_from(1)] == [11]
    journal.close()


def test_quarantined_results_carry_their_source_and_seq(site: Site) -> None:
    pipeline, _ = site.open()
    pipeline.deliver([b"x", b"y"], received_at=T0)
    assert site.spool.quarantined("pbx-1") == [
        Quarantined("pbx-1", 1, "not_a_record", "not a CALL line", b"x"),
        Quarantined("pbx-1", 2, "not_a_record", "not a CALL line", b"y"),
    ]


def _ipsmdr_results(site: Site, lines: list[bytes], *, crash_after: int | None) -> dict[str, str]:
    """Run an IP SMDR stream through the pipeline, optionally crashing (and pruning the journal
    as the supervisor does) after ``crash_after`` lines; return the spooled calls by id."""
    from edge_agent.sources.mcs_ipsmdr.calls import IpSmdrParser

    ctx = SourceContext(agent_id="agent-1", source_id="pbx-1", timezone=ZoneInfo("America/Toronto"))
    cut = len(lines) if crash_after is None else crash_after
    pipeline, _ = site.open(IpSmdrParser(ctx))  # type: ignore[arg-type]
    for line in lines[:cut]:
        pipeline.deliver([line], received_at=T0)
    pipeline.prune_journal(now=T0 + timedelta(days=365))
    if crash_after is not None:
        site.crash()
        pipeline, _ = site.open(IpSmdrParser(ctx))  # type: ignore[arg-type]
        for line in lines[cut:]:
            pipeline.deliver([line], received_at=T0)
    rows = site.spool.unbatched(10_000)
    assert len(rows) == len({row.record_id for row in rows})
    return {row.record_id: row.body for row in rows}


def test_event_stream_calls_open_across_a_crash_are_rebuilt(tmp_path: Path) -> None:
    """Calls still open when the agent dies are rebuilt from the journal on restart: the calls
    stored equal those of an uninterrupted run, none lost, none duplicated, same ids."""
    from edge_agent.simulators.mcs_ipsmdr import generate_calls, interleave

    lines = [line.encode("latin-1") for line in interleave(generate_calls(count=12, seed=3))]
    whole = _ipsmdr_results(Site(tmp_path / "whole"), lines, crash_after=None)
    assert len(whole) >= 12
    for cut in (len(lines) // 3, len(lines) // 2, len(lines) - 2):
        site = Site(tmp_path / f"cut{cut}")
        assert _ipsmdr_results(site, lines, crash_after=cut) == whole, f"crash after {cut} lines"
        site.crash()
