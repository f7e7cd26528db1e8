"""The per-source pipeline: the ``UnitSink`` an acquirer delivers into.

Contract:

- ``deliver(units, received_at)`` journals and fsyncs the units first (after which the acquirer
  may acknowledge upstream), then feeds them to the parser, then stores the ICDRs and quarantined
  units and advances the parse cursor in one spool transaction. When it returns, all of it is
  durable.
- Nothing is lost between the journal and the spool: if the process dies (or the spool write
  fails: ``deliver`` logs it and returns, the units being durable) after the journal write, the
  units after the cursor are parsed again from the journal, on ``open``, on the next
  delivery and on the supervisor's next ``flush_parser`` (so a source that went quiet waits for
  nothing). Record ids are stable, so a replay stores nothing
  twice.
- A parser that raises (a bug: parsers must not) does not lose the unit: it is quarantined with
  reason ``parser_error``.
- ``report()`` keeps the last outcome of the source (ok or error, message, attempts, failures in
  a row) in the spool's state table, so ``edge-agent status`` in another process can show it.
- Event-stream parsers (IP SMDR, OAI) hold calls open across units. Such a parser may offer
  ``oldest_needed_seq()``: the lowest journal seq an open call still needs. The pipeline keeps
  that position in the spool's state table; on ``open`` it feeds the journal from there up to the
  cursor again, discarding the results (they were spooled), so the open calls are rebuilt as they
  were, and it never prunes the journal above that position.
- ``may_read()`` is False once the spool is full (its quota reached, or the free disk down to
  ``spool.min_free_mb``: ``Spool.usage``): acquirers stop reading and the PBX buffers.
- A journal append that fails (disk full) is rolled back by the journal and raises
  ``JournalWriteError`` (a ``SinkUnavailable``) to the acquirer, which keeps the units and
  delivers them again: they get the numbers the failed append would have used.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from functools import partial

from edge_agent.journal import Journal
from edge_agent.sources.base import ParseResult, Quarantined, RawUnit, RecordParser
from edge_agent.spool import Spool, SpoolError, SpoolLevel
from shared.clock import Clock
from shared.icdr import ICDR, format_time

log = logging.getLogger(__name__)

REPORT_KEY = "_agent.report"  # state key of the persisted SourceReport
KEEP_KEY = "_agent.keep_from"  # state key: lowest journal seq an open call still needs
MAY_READ_CACHE_SECONDS = 1.0  # acquirers may ask per read; the size query need not run that often
REPLAY_CHUNK = 1000  # units per spool transaction while replaying


@dataclass(frozen=True, slots=True)
class SourceReport:
    """The last outcome of a source, as ``status`` and health show it."""

    ok: bool
    message: str
    at: str  # ISO 8601 UTC
    records: int = 0  # as reported by the acquirer for that poll or connection
    attempts: int = 0
    failures_in_a_row: int = 0
    last_ok_at: str | None = None
    reconnects: int = 0  # ok outcomes that ended a run of failures (health's reconnect count)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> SourceReport:
        return cls(**json.loads(text))


@dataclass(slots=True)
class PipelineCounts:
    """Counts since this process started (the spool holds the totals)."""

    units: int = 0
    records: int = 0
    quarantined: int = 0
    replayed: int = 0


class SourcePipeline:
    """Journal → parser → spool for one source; implements ``UnitSink``."""

    def __init__(
        self,
        *,
        source_id: str,
        parser: RecordParser,
        journal: Journal,
        spool: Spool,
        clock: Clock,
    ) -> None:
        self.source_id = source_id
        self.parser = parser
        self.journal = journal
        self.spool = spool
        self.clock = clock
        self.counts = PipelineCounts()
        self.spool_error = ""  # the last spool failure, until a delivery succeeds
        self._lock = threading.Lock()  # deliver (acquirer thread) vs flush_parser (supervisor)
        self._cursor = spool.cursor(source_id)
        self._may_read = (0.0, True)  # (monotonic time checked, answer)
        self._keep_from: int | None = None  # last value persisted under KEEP_KEY

    @classmethod
    def open(
        cls,
        *,
        source_id: str,
        parser: RecordParser,
        journal: Journal,
        spool: Spool,
        clock: Clock,
    ) -> SourcePipeline:
        """Build the pipeline and replay whatever the journal holds beyond the cursor."""
        pipeline = cls(
            source_id=source_id, parser=parser, journal=journal, spool=spool, clock=clock
        )
        with pipeline._lock:
            pipeline._rebuild_open_calls()
            pipeline._catch_up()
        return pipeline

    @property
    def cursor(self) -> int:
        return self._cursor

    # --- UnitSink -------------------------------------------------------------------------

    def deliver(self, data: Sequence[bytes], *, received_at: datetime) -> None:
        if not data:
            return
        with self._lock:
            units = self.journal.append_many(data, received_at=received_at)
            self.counts.units += len(units)
            # The units are durable now. A spool failure past this point loses nothing: they
            # stay after the cursor and are parsed from the journal on the next delivery or
            # start, so the acquirer is not told to fail (it may acknowledge upstream).
            try:
                if self._cursor == units[0].seq - 1:
                    self._process(units)
                else:  # an earlier spool write failed: parse from the journal, in order
                    self._catch_up()
            except SpoolError as exc:
                self.spool_error = str(exc)
                log.error("source %s: spooling failed, will retry from the journal: %s",
                          self.source_id, exc)  # fmt: skip
            else:
                self.spool_error = ""

    def report(self, *, ok: bool, message: str = "", records: int = 0) -> None:
        """Record a poll's or connection's outcome for ``edge-agent status``: best effort. On a
        full disk the spool cannot take it, and that is logged, never raised: the source is
        then holding units it read and must go on holding them and retrying. Raising ended the
        acquirer, dropping its connection with what the PBX had sent on it (seen in the
        disk-full fault test: 2,409 of 3,000 calls lost)."""
        try:
            self._report(ok=ok, message=message, records=records)
        except SpoolError as exc:
            log.error("source %s: status not recorded (%s): %s", self.source_id, message, exc)

    def _report(self, *, ok: bool, message: str, records: int) -> None:
        previous = self.last_report()
        now = format_time(self.clock())
        failures = 0 if ok else (previous.failures_in_a_row if previous else 0) + 1
        report = SourceReport(
            ok=ok,
            message=message,
            at=now,
            records=records,
            attempts=(previous.attempts if previous else 0) + 1,
            failures_in_a_row=failures,
            last_ok_at=now if ok else (previous.last_ok_at if previous else None),
            reconnects=(previous.reconnects if previous else 0)
            + int(ok and previous is not None and not previous.ok),
        )
        if not ok:
            log.warning("source %s: %s", self.source_id, message)
        self.spool.set_state(self.source_id, REPORT_KEY, report.to_json())

    def last_report(self) -> SourceReport | None:
        text = self.spool.get_state(self.source_id, REPORT_KEY)
        return SourceReport.from_json(text) if text else None

    def get_state(self, key: str) -> str | None:
        return self.spool.get_state(self.source_id, key)

    def set_state(self, key: str, value: str) -> None:
        self.spool.set_state(self.source_id, key, value)

    def may_read(self) -> bool:
        checked, previous = self._may_read
        now = time.monotonic()
        if now - checked < MAY_READ_CACHE_SECONDS:
            return previous
        answer = self.spool.usage().level is not SpoolLevel.FULL
        # Said once when it changes, not at every check: a paused source checks every second.
        if previous and not answer:
            log.warning("source %s: spool full, not reading until batches leave", self.source_id)
        elif answer and not previous:
            log.info("source %s: the spool has room again, reading", self.source_id)
        self._may_read = (now, answer)
        return answer

    # --- supervisor -----------------------------------------------------------------------

    def flush_parser(self) -> None:
        """Store what an event-stream parser completes or times out by now; first, retry
        spooling what a failed spool write (a full disk) left after the cursor."""
        with self._lock:
            if self.spool_error:
                self._catch_up()
                self.spool_error = ""
            results = self._safe(lambda: self.parser.flush(self.clock()), unit=None)
            if results:
                self._store(results, seq=self._cursor, cursor=None)

    def prune_journal(self, *, now: datetime) -> None:
        self.journal.prune(below=self._needed_from() - 1, now=now)

    # --- internals ------------------------------------------------------------------------

    def _needed_from(self) -> int:
        """The first journal seq still needed: after the cursor, or an open call's first unit."""
        oldest = getattr(self.parser, "oldest_needed_seq", None)
        seq = oldest() if callable(oldest) else None
        return self._cursor + 1 if seq is None else min(int(seq), self._cursor + 1)

    def _remember_open_calls(self) -> None:
        """Persist where open calls start; written only when it moves, and only for parsers
        that keep calls open (the value only grows, so a stale one is merely conservative)."""
        if not callable(getattr(self.parser, "oldest_needed_seq", None)):
            return
        needed = self._needed_from()
        if needed != self._keep_from:
            self.spool.set_state(self.source_id, KEEP_KEY, str(needed))
            self._keep_from = needed

    def _rebuild_open_calls(self) -> None:
        """Feed the parser the units before the cursor that open calls need; results dropped."""
        text = self.spool.get_state(self.source_id, KEEP_KEY)
        if text is None:
            return
        self._keep_from = int(text)
        fed = 0
        for unit in self.journal.read_from(self._keep_from):
            if unit.seq > self._cursor:
                break
            self._safe(partial(self.parser.feed, unit), unit=unit)
            fed += 1
        if fed:
            log.info("source %s: rebuilt open calls from %d journalled units", self.source_id, fed)

    def _catch_up(self) -> None:
        """Parse and spool every journalled unit after the cursor (crash or failed write)."""
        chunk: list[RawUnit] = []
        for unit in self.journal.read_from(self._cursor + 1):
            chunk.append(unit)
            if len(chunk) >= REPLAY_CHUNK:
                self._process(chunk)
                self.counts.replayed += len(chunk)
                chunk = []
        if chunk:
            self._process(chunk)
            self.counts.replayed += len(chunk)
        if self.counts.replayed:
            log.info(
                "source %s: replayed %d journalled units", self.source_id, self.counts.replayed
            )

    def _process(self, units: Sequence[RawUnit]) -> None:
        records: list[tuple[int, ICDR]] = []
        quarantined: list[Quarantined] = []
        for unit in units:
            for result in self._safe(partial(self.parser.feed, unit), unit=unit):
                if isinstance(result, ICDR):
                    records.append((unit.seq, result))
                else:
                    quarantined.append(result)
        self._store_split(records, quarantined, cursor=units[-1].seq)

    def _store(self, results: Sequence[ParseResult], *, seq: int, cursor: int | None) -> None:
        records = [(seq, r) for r in results if isinstance(r, ICDR)]
        quarantined = [r for r in results if isinstance(r, Quarantined)]
        self._store_split(records, quarantined, cursor=cursor)

    def _store_split(
        self,
        records: list[tuple[int, ICDR]],
        quarantined: list[Quarantined],
        *,
        cursor: int | None,
    ) -> None:
        result = self.spool.store(
            self.source_id, records, quarantined, cursor=cursor, now=self.clock()
        )
        if cursor is not None:
            self._cursor = cursor
        self._remember_open_calls()
        self.counts.records += result.inserted
        self.counts.quarantined += result.quarantined

    def _safe(
        self, call: Callable[[], Sequence[ParseResult]], *, unit: RawUnit | None
    ) -> list[ParseResult]:
        """Run the parser; a parser bug quarantines the unit instead of losing it."""
        try:
            return list(call())
        except Exception as exc:  # a parser must not raise; keep the bytes with the reason
            log.exception("source %s: parser raised", self.source_id)
            if unit is None:
                return []
            return [
                Quarantined(
                    source_id=self.source_id,
                    seq=unit.seq,
                    reason="parser_error",
                    detail=f"the parser raised {type(exc).__name__}: {exc}",
                    raw=unit.data,
                )
            ]
