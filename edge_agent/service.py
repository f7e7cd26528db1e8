"""The supervisor: runs every configured source and the batch-and-upload loop.

Contract:

- ``open()`` takes the agent lock (one ``run`` or ``flush`` per state directory), opens the
  spool (SQLite ``quick_check`` first; a damaged spool is set aside and rebuilt from the journal
  and the batch ledger, ``edge_agent.rebuild``, logged CRITICAL and noted for ``status``),
  repairs the outbox (``Batcher.recover``), and builds each source with its journal and
  pipeline, replaying journalled units the spool has not got yet. It starts no thread.
- ``start()`` runs each source's acquirer in its own thread. An acquirer that raises (a driver
  bug) is reported and restarted after a back-off; it never takes the agent down.
- ``cycle()`` flushes the parsers' open state, prunes journals, seals due batches, checks the
  spool quota (``QuotaWatch``: alarm on each level change), applies retention to acknowledged
  batches (at most every ``RETENTION_EVERY``; at once under quota pressure) and, when the
  uplink is due, runs a delivery session (receipts in, sealed batches out). A failed session is
  retried after an exponential back-off with jitter; a good one schedules the next by
  ``uplink.schedule`` (continuous: ``uplink.interval_seconds``). A fixed-times schedule waits
  for its first slot after start; the others deliver at once. A stepped wall clock
  (``ClockJumpWatch``: more than 60 s off monotonic time) is logged, and retention and the
  upload slot, which the wall clock schedules, are re-checked at once.
- With ``delivery.protection = "cms"`` batches are sealed signed and encrypted
  (``edge_agent.delivery.enrollment.load_delivery``); a missing identity stops ``open()`` with the fix.
- ``run()`` = open, start, cycle until ``request_stop()`` (SIGTERM/SIGINT in ``edge-agent run``),
  then ``close()``: stop the acquirers, join them (bounded), close journals (fsync) and spool.
  ``request_flush()`` (SIGUSR1) runs a forced cycle now.

On disk (``agent.state_dir``)::

    agent.lock          held (flock) by the running agent; names its pid
    spool.db            the spool (with -wal/-shm beside it)
    journal/SOURCE/     raw journal segments per source
    identity/           agent.key, agent.crt: the batch-signing identity (edge-agent enroll)
    outbox/             sealed batches waiting for upload
    sent/               uploaded batches (kept for receipts and re-sends)
"""

from __future__ import annotations

import dataclasses
import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from edge_agent.capture.process import CaptureProcess
from edge_agent.capture.setup import capture_settings, recording_outbox
from edge_agent.config import AgentSettings, SourceSettings
from edge_agent.delivery.batches import Batcher, SealedBatch
from edge_agent.delivery.enrollment import load_delivery
from edge_agent.delivery.receipts import ReceiptInbox, ReceiptOutcome
from edge_agent.delivery.recordings import RecordingOutbox
from edge_agent.delivery.retention import Retention
from edge_agent.delivery.uplink import Uplink, UploadOutcome
from edge_agent.health.clock_jump import ClockJumpWatch
from edge_agent.health.quota import QuotaWatch, at_least
from edge_agent.health.status import ServiceHealth, SourceView
from edge_agent.journal import Journal
from edge_agent.pipeline import SourcePipeline
from edge_agent.rebuild import REBUILT_KEY, rebuild_spool, rebuilt_note
from edge_agent.sources import registry
from edge_agent.sources.base import Source, SourceContext
from edge_agent.spool import AGENT_STATE, Spool, SpoolCorrupt, SpoolLevel, open_spool
from shared.backoff import Backoff, Retries
from shared.clock import Clock, utc_now
from shared.errors import AgentStateError, CallCollectError, TransportError
from shared.modes import FILE_MODE, make_private_dir

log = logging.getLogger(__name__)

LOCK_FILE = "agent.lock"
JOURNAL_DIR = "journal"
JOIN_TIMEOUT_SECONDS = 10.0  # per acquirer thread at shutdown; acquirers check `stop` often
ACQUIRER_RESTART_MIN_SECONDS = 1.0
ACQUIRER_RESTART_MAX_SECONDS = 60.0
RETENTION_EVERY_SECONDS = 600.0  # retention needs no more; quota pressure runs it at once

SourceFactory = Callable[[str, SourceContext, Mapping[str, Any]], Source]


class AgentBusy(AgentStateError):
    """Another agent process holds the state directory."""

    exit_code = 10


class AgentLock:
    """An exclusive ``flock`` on ``STATE/agent.lock``; released when the process ends."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        make_private_dir(self.path.parent)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            raise AgentBusy(
                f"another edge-agent (pid {holder_pid(self.path) or '?'}) is using "
                f"{self.path.parent}; it uploads on its own schedule (send it SIGUSR1 to flush "
                "now), or stop it first"
            ) from exc
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def holder_pid(lock_path: Path) -> int | None:
    """The pid of the process holding the agent lock, or None when nobody holds it."""
    try:
        fd = os.open(lock_path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.pread(fd, 32, 0).decode(errors="replace").strip()
            return int(text) if text.isdigit() else -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


@dataclass(slots=True)
class RunningSource:
    settings: SourceSettings
    source: Source
    journal: Journal
    pipeline: SourcePipeline
    thread: threading.Thread | None = None


@dataclass(frozen=True, slots=True)
class CycleResult:
    sealed: list[SealedBatch] = field(default_factory=list)
    uploaded: list[UploadOutcome] = field(default_factory=list)
    upload_attempted: bool = False
    error: TransportError | None = None
    receipts: list[ReceiptOutcome] = field(default_factory=list)
    purged: int = 0  # acknowledged batches retention deleted
    spool_level: SpoolLevel = SpoolLevel.OK


def _report_failure(running: RunningSource, message: str) -> None:
    """Record an acquirer's failure for ``edge-agent status``. The record goes to the spool, and
    on a full disk (often why the acquirer failed) it cannot be written: that is logged, and the
    acquirer is restarted all the same. Raising here ended the source's thread for good, so it
    never read the PBX again once the disk had room (seen in the disk-full fault test)."""
    try:
        running.pipeline.report(ok=False, message=message)
    except (CallCollectError, OSError) as exc:
        log.error("source %s: cannot record its failure for status: %s", running.settings.id, exc)


class Service:
    """The agent's supervisor (see the module docstring)."""

    def __init__(
        self,
        settings: AgentSettings,
        *,
        clock: Clock = utc_now,
        make_source: SourceFactory = registry.make_source,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.make_source = make_source
        self.monotonic = monotonic
        self.state_dir = settings.agent.state_dir
        self.sources: list[RunningSource] = []
        self.stop_event = threading.Event()
        self._wake = threading.Event()
        self._flush_requested = False
        self._lock = AgentLock(self.state_dir)
        self._spool: Spool | None = None
        self._batcher: Batcher | None = None
        self._uplink: Uplink | None = None
        self._retention: Retention | None = None
        self._quota: QuotaWatch | None = None
        self._next_retention = 0.0  # monotonic time retention is due
        self._clock_jumps = ClockJumpWatch()
        self.backoff = Retries(
            Backoff(
                min_seconds=settings.uplink.backoff_min_seconds,
                max_seconds=settings.uplink.backoff_max_seconds,
            )
        )
        self._next_upload = 0.0  # monotonic time the uplink is due
        self.health = ServiceHealth(settings, clock=clock)  # heartbeat, sd_notify, /metrics
        self._capture: CaptureProcess | None = None  # call recording (edge_agent/capture/)
        self._recordings: RecordingOutbox | None = None

    # --- life cycle -----------------------------------------------------------------------

    def open(self) -> None:
        self._lock.acquire()
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    def _open(self) -> None:
        s = self.settings
        delivery = load_delivery(s)
        self._spool = spool = self._open_spool()
        self._batcher = Batcher(
            spool,
            state_dir=self.state_dir,
            agent_id=s.agent.id,
            tenant=s.agent.tenant,
            max_records=s.spool.batch_max_records,
            max_age=timedelta(seconds=s.spool.batch_max_age_seconds),
            protect=delivery.protect,
        )
        self._batcher.recover()
        inbox = None
        if delivery.receipts_certificate is not None:
            inbox = ReceiptInbox(spool, agent_id=s.agent.id,
                                 certificate=delivery.receipts_certificate, clock=self.clock,
                                 ledger=self._batcher.ledger)  # fmt: skip
        else:
            log.warning("delivery.datacentre_certificates is not set: receipts cannot be "
                        "verified, so no batch is ever acknowledged or deleted")  # fmt: skip
        if s.capture.enabled:
            self._recordings = recording_outbox(
                s, spool, protect=delivery.protect,
                receipts_certificate=delivery.receipts_certificate,
            )  # fmt: skip
        self._uplink = Uplink(s.uplink, spool=spool, batcher=self._batcher, clock=self.clock,
                              inbox=inbox, on_session=self.health.on_session,
                              receipt_timeout=_minutes(s.delivery.receipt_timeout_minutes),
                              after_records=self._recordings.upload if self._recordings else None,
                              on_upload=self.health.uploaded)  # fmt: skip
        self.health.attach(spool, self._source_views)
        self._retention = Retention(spool, self._batcher,
                                    keep=timedelta(days=s.delivery.retention_days))  # fmt: skip
        self._quota = QuotaWatch(spool, clock=self.clock)
        if s.uplink.schedule.times:  # fixed times: the first session waits for its slot
            self._next_upload = self.monotonic() + self._seconds_to_slot(self.clock())
        for source_settings in s.sources:
            self.sources.append(self._open_source(source_settings, spool))

    def _open_spool(self) -> Spool:
        """The spool; a damaged one is set aside and rebuilt from the journal, with an alarm."""
        try:
            return open_spool(self.settings, verify=True)
        except SpoolCorrupt as exc:
            log.critical("%s; rebuilding it now", exc)
        report = rebuild_spool(self.settings, clock=self.clock, make_source=self.make_source)
        spool = open_spool(self.settings, verify=True)
        note = rebuilt_note(report, self.clock())
        spool.set_state(AGENT_STATE, REBUILT_KEY, note)
        log.critical("spool rebuilt: %s", note)
        return spool

    def _open_source(self, settings: SourceSettings, spool: Spool) -> RunningSource:
        journal = Journal.open(
            self.state_dir / JOURNAL_DIR / settings.id,
            source_id=settings.id,
            segment_bytes=self.settings.journal.segment_bytes,
            retention=timedelta(days=self.settings.journal.retention_days),
        )
        ctx = SourceContext(
            agent_id=self.settings.agent.id,
            source_id=settings.id,
            timezone=self.settings.agent.timezone,
            line_ids_from=journal.line_ids_from,
        )
        try:
            source = self.make_source(settings.kind, ctx, settings.options)
        except BaseException:
            journal.close()
            raise
        pipeline = SourcePipeline.open(
            source_id=settings.id,
            parser=source.parser,
            journal=journal,
            spool=spool,
            clock=self.clock,
        )
        return RunningSource(settings, source, journal, pipeline)

    def _source_views(self) -> list[SourceView]:
        return [SourceView(r.settings.id, r.settings.kind, r.pipeline) for r in self.sources]

    def start(self) -> None:
        """Start one thread per acquirer, and the capture process when capture is enabled."""
        if self.settings.capture.enabled:
            self._capture = CaptureProcess(capture_settings(self.settings))
            self._capture.start()
        for running in self.sources:
            if running.source.acquirer is None:
                log.warning(
                    "source %s (%s) has no acquirer", running.settings.id, running.source.kind
                )
                continue
            running.thread = threading.Thread(
                target=self._acquire, args=(running,), name=f"source-{running.settings.id}"
            )
            running.thread.start()

    def _acquire(self, running: RunningSource) -> None:
        assert running.source.acquirer is not None
        restart = Retries(
            Backoff(
                min_seconds=ACQUIRER_RESTART_MIN_SECONDS, max_seconds=ACQUIRER_RESTART_MAX_SECONDS
            )
        )
        while not self.stop_event.is_set():
            try:
                running.source.acquirer.run(running.pipeline, self.stop_event)
                return
            except Exception as exc:  # a driver bug must not stop the other sources
                log.exception("source %s: acquirer failed", running.settings.id)
                _report_failure(running, f"acquirer failed: {exc}")
                self.stop_event.wait(restart.next_delay())

    def run(self) -> None:
        """Run until ``request_stop()``; then shut down cleanly."""
        self.open()
        try:
            self.start()
            log.info("agent %s running %d sources", self.settings.agent.id, len(self.sources))
            self.health.started()  # READY=1
            while not self.stop_event.is_set():
                force, self._flush_requested = self._flush_requested, False
                result = CycleResult()
                try:
                    result = self.cycle(force=force)
                except (CallCollectError, OSError) as exc:  # e.g. disk full: sources go on
                    log.error("batch cycle failed, retrying in %d s: %s",
                              self.settings.uplink.interval_seconds, exc)  # fmt: skip
                self.health.cycled(attempted=result.upload_attempted, error=result.error)
                self._wake.wait(self._seconds_to_next())
                self._wake.clear()
        finally:
            self.health.stopping(self._uplink)  # STOPPING=1, the goodbye heartbeat
            self.close()

    def request_stop(self) -> None:
        self.stop_event.set()
        self._wake.set()

    def request_flush(self) -> None:
        self._flush_requested = True
        self._wake.set()

    def close(self) -> None:
        self.stop_event.set()
        if self._capture is not None:
            self._capture.stop()  # writes every open call as a recording first
            self._capture = None
        for running in self.sources:
            if running.thread is not None:
                running.thread.join(JOIN_TIMEOUT_SECONDS)
                if running.thread.is_alive():
                    log.error("source %s did not stop within %.0f s", running.settings.id,
                              JOIN_TIMEOUT_SECONDS)  # fmt: skip
        for running in self.sources:
            running.journal.close()
        self.sources = []
        if self._spool is not None:
            self._spool.close()
            self._spool = None
        self._lock.release()
        log.info("agent %s stopped", self.settings.agent.id)

    # --- the batch and upload loop ----------------------------------------------------------

    def _seconds_to_next(self) -> float:
        """Seal every interval; wake sooner when a back-off ends before that."""
        interval = float(self.settings.uplink.interval_seconds)
        until_upload = self._next_upload - self.monotonic()
        # overdue means the cycle failed before it could upload: wait a whole interval
        return min(interval, until_upload) if until_upload > 0 else interval

    def cycle(self, *, force: bool = False) -> CycleResult:
        """Flush parsers, prune journals, seal due batches, upload if due (or ``force``)."""
        assert self._batcher is not None and self._uplink is not None, "call open() first"
        assert self._quota is not None and self._retention is not None
        now = self.clock()
        if self._clock_jumps.observe(now, self.monotonic()) is not None:
            self._next_retention = 0.0  # what the wall clock schedules is due again
            self._next_upload = min(self._next_upload, self.monotonic())
        level = self._quota.check().level  # first: the alarm must not wait for a write to work
        purged = self._apply_retention(now, level)  # then room, before anything needs it
        for running in self.sources:
            running.pipeline.flush_parser()
            running.pipeline.prune_journal(now=now)
        sealed = self._batcher.seal_ready(now, force=force)
        if self._recordings is not None:  # call recording: link to ICDRs, then seal
            self._recordings.link_pending(now)
            self._recordings.seal_ready(now, force=force)
        result = CycleResult(sealed=sealed, purged=purged, spool_level=level)
        if not force and self.monotonic() < self._next_upload:
            return result
        try:
            report = self._uplink.deliver()
        except TransportError as exc:
            delay = self.backoff.next_delay()
            self._next_upload = self.monotonic() + delay
            log.error("uplink failed (attempt %d, next in %.0f s): %s", self.backoff.failures,
                      delay, exc)  # fmt: skip
            return dataclasses.replace(result, upload_attempted=True, error=exc)
        self.backoff.reset()
        self._next_upload = self.monotonic() + self._seconds_to_slot(self.clock())
        return dataclasses.replace(result, uploaded=report.uploaded, receipts=report.receipts,
                                   upload_attempted=True)  # fmt: skip

    def _seconds_to_slot(self, now: datetime) -> float:
        """Seconds from ``now`` until the schedule's next session after a good one."""
        s = self.settings
        due = s.uplink.schedule.next_after(
            now, zone=s.agent.timezone, interval=timedelta(seconds=s.uplink.interval_seconds)
        )
        return max(0.0, (due - now).total_seconds())

    def _apply_retention(self, now: datetime, level: SpoolLevel) -> int:
        assert self._retention is not None
        pressure = at_least(level, SpoolLevel.CRITICAL)
        if not pressure and self.monotonic() < self._next_retention:
            return 0
        self._next_retention = self.monotonic() + RETENTION_EVERY_SECONDS
        return len(self._retention.purge(now, under_pressure=pressure).batches)

    def flush(self) -> CycleResult:
        """Seal everything spooled and upload now (``edge-agent flush``); one attempt."""
        self.open()
        try:
            return self.cycle(force=True)
        finally:
            self.close()


def _minutes(value: int) -> timedelta | None:
    """A timeout in minutes from the config, where 0 means never."""
    return timedelta(minutes=value) if value else None
