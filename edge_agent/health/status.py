"""The agent's own health: per-source outcomes, backlog, spool, disk, clock, and the heartbeat.

Contract:

- ``AgentHealth.snapshot()`` is the agent's state as a ``shared.heartbeat.Heartbeat``: per
  source the last poll/connection outcome (``SourcePipeline.report()``: ok or error with its
  message, attempts, failures in a row, reconnects), records parsed since start and the newest
  record; the backlog (spooled records not yet in a batch, sealed batches not yet sent and the
  oldest of them), spool use and level, free disk under ``agent.state_dir``, the measured clock
  offset, the version, start time and the uplink's record (last good session, failures in a row
  before this one, last error, highest batch number sent).
- A heartbeat goes up on EVERY uplink session, records or not: ``on_session`` is the uplink's
  session hook (``Uplink(on_session=...)``). It measures the clock offset, then uploads first any
  heartbeats kept from failed sessions (oldest first, so the data centre sees them arrive late),
  then a fresh one, each as ``heartbeats/NAME.part`` renamed (``posix_rename``) to
  ``heartbeats/NAME`` beside ``uplink.remote_dir``. It never raises: a heartbeat that cannot be
  sent is kept (at most ``MAX_PENDING``, the oldest dropped first) for the next session.
  With ``delivery.protection = "cms"`` each goes up signed with the agent's batch-signing key
  (``shared.cms.sign``: CMS SignedData around the JSON, same name), which the data centre
  verifies against the certificate it pinned; kept ones are stored plain and signed on sending.
- Clock offset = the landing host's clock minus ours. Each session writes a probe file
  (``heartbeats/.clock-probe-AGENT.part``, never picked up: ``.part``), reads back its
  modification time (set by the server's clock; SFTP gives whole seconds, so +0.5 s) and
  compares it with the midpoint of our clock around the write and stat. Error: about half the
  round trip plus 0.5 s, plenty for a two-minute skew alarm.
- ``refresh()`` (every supervisor cycle) rebuilds the snapshot and writes it to
  ``STATE/health.json`` (rename, no fsync: it is rewritten every cycle), which
  ``edge-agent status`` reads from another process, and which ``/metrics`` serves.
- ``goodbye(uplink)`` sends a last heartbeat with state ``stopping`` in its own short session,
  so the data centre can tell "stopped" from "unreachable".

On disk (``agent.state_dir``)::

    health.json         the latest snapshot (a heartbeat document)
    heartbeats/         heartbeats of failed sessions, sent late with the next good one
"""

from __future__ import annotations

import contextlib
import logging
import math
import posixpath
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from edge_agent import __version__
from edge_agent.capture.health import capture_source_status
from edge_agent.config import AgentSettings
from edge_agent.delivery.enrollment import identity_paths
from edge_agent.delivery.ssh import paramiko
from edge_agent.pipeline import SourcePipeline
from edge_agent.spool import BatchStatus, Spool, SpoolError
from edge_agent.systemd_service import Notifier
from shared import cms, keys
from shared.clock import Clock
from shared.durable import atomic_write
from shared.errors import CallCollectError, TransportError, ValidationError
from shared.heartbeat import (
    HEARTBEAT_FOLDER,
    AgentState,
    Heartbeat,
    SourceStatus,
    SpoolStatus,
    UplinkStatus,
    heartbeat_file_name,
    parse_heartbeat,
)
from shared.icdr import parse_time

if TYPE_CHECKING:
    from edge_agent.delivery.uplink import Uplink, UplinkSession, UploadOutcome
    from edge_agent.health.metrics import MetricsServer

log = logging.getLogger(__name__)

HEALTH_FILE = "health.json"
PENDING_DIR = "heartbeats"
MAX_PENDING = 30  # heartbeats kept across failed sessions; at 60 s that is half an hour of them
PART_SUFFIX = ".part"
PROBE_PREFIX = ".clock-probe-"
SFTP_MTIME_RESOLUTION = 1.0  # seconds: SFTP v3 attributes carry whole seconds
MAX_ERROR_CHARS = 500

DiskUsage = Callable[[Path], tuple[int, int, int]]  # shutil.disk_usage: total, used, free


@dataclass(frozen=True, slots=True)
class SourceView:
    """What health needs of one running source."""

    source_id: str
    kind: str
    pipeline: SourcePipeline


class AgentHealth:
    """The agent's health record for one run (see the module docstring)."""

    def __init__(
        self,
        settings: AgentSettings,
        *,
        clock: Clock,
        version: str = __version__,
        disk_usage: DiskUsage = shutil.disk_usage,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.version = version
        self.started_at = clock()
        self.state_dir = settings.agent.state_dir
        self.clock_offset_seconds: float | None = None
        self.uplink_last_ok_at: datetime | None = None
        self.uplink_failures = 0  # sessions failed in a row
        self.uplink_last_error = ""
        self.heartbeats_sent = 0
        self.latest: Heartbeat | None = None
        self._disk_usage = disk_usage
        self._wall = wall
        self._spool: Spool | None = None
        self._sources: Callable[[], Sequence[SourceView]] = tuple
        self._lock = threading.Lock()  # the metrics thread reads ``latest``
        self._identity: keys.AgentIdentity | None = None  # loaded at the first signed heartbeat

    def attach(self, spool: Spool, sources: Callable[[], Sequence[SourceView]]) -> None:
        """Give health the open spool and a view of the running sources."""
        self._spool = spool
        self._sources = sources

    # --- the snapshot -----------------------------------------------------------------------

    def snapshot(self, *, state: AgentState = AgentState.RUNNING) -> Heartbeat:
        """The agent's state now, as a heartbeat document."""
        spool = self._spool
        if spool is None:
            raise RuntimeError("AgentHealth.attach() first")
        now = self.clock()
        usage = spool.usage()
        sealed = spool.batches(status=BatchStatus.SEALED)
        # Sealed batches are sent oldest first, so everything below the oldest waiting one has
        # gone (a re-send request re-seals old numbers: this then under-reports, never over).
        next_sequence = spool.next_batch_sequence()
        last_sent = (min(b.sequence for b in sealed) if sealed else next_sequence) - 1
        total, _used, free = self._disk_usage(self.state_dir)
        sources = tuple(self._source_status(view, spool) for view in self._sources())
        if self.settings.capture.enabled:  # the capture process reports through status.json
            sources += (capture_source_status(self.state_dir, now=now),)
        return Heartbeat(
            agent_id=self.settings.agent.id,
            tenant=self.settings.agent.tenant,
            sent_at=now,
            agent_version=self.version,
            started_at=self.started_at,
            interval_seconds=self.expected_interval(now),
            state=state,
            clock_offset_seconds=self.clock_offset_seconds,
            spool=SpoolStatus(
                used_bytes=usage.used_bytes, quota_bytes=usage.quota_bytes, level=str(usage.level)
            ),
            disk_free_bytes=free,
            disk_total_bytes=total,
            unbatched_records=sum(spool.source_counts(s.source_id).unbatched for s in sources),
            unsent_batches=len(sealed),
            oldest_unsent_at=parse_time("created", sealed[0].created) if sealed else None,
            uplink=UplinkStatus(
                last_ok_at=self.uplink_last_ok_at,
                failures_in_a_row=self.uplink_failures,
                last_error=self.uplink_last_error,
                last_sequence_sent=last_sent if last_sent > 0 else None,
            ),
            sources=sources,
        )

    def expected_interval(self, now: datetime) -> int:
        """Seconds until the next planned session: the data centre's cue for "late".

        ``uplink.schedule`` decides (``every N minutes``, fixed times, or continuous at
        ``uplink.interval_seconds``); never less than ``uplink.interval_seconds``.
        """
        uplink, zone = self.settings.uplink, self.settings.agent.timezone
        base = timedelta(seconds=uplink.interval_seconds)
        due = uplink.schedule.next_after(now, zone=zone, interval=base)
        return max(uplink.interval_seconds, math.ceil((due - now).total_seconds()))

    def _source_status(self, view: SourceView, spool: Spool) -> SourceStatus:
        report = view.pipeline.last_report()
        counts = spool.source_counts(view.source_id)
        last_record = (
            parse_time("created", counts.last_record_at) if counts.last_record_at else None
        )
        if report is None:
            return SourceStatus(
                source_id=view.source_id,
                kind=view.kind,
                ok=False,
                message="not polled yet",
                records=view.pipeline.counts.records,
                last_record_at=last_record,
            )
        return SourceStatus(
            source_id=view.source_id,
            kind=view.kind,
            ok=report.ok,
            message=report.message[:MAX_ERROR_CHARS],
            at=parse_time("at", report.at),
            last_ok_at=parse_time("last_ok_at", report.last_ok_at) if report.last_ok_at else None,
            last_record_at=last_record,
            records=view.pipeline.counts.records,
            attempts=report.attempts,
            failures_in_a_row=report.failures_in_a_row,
            reconnects=report.reconnects,
        )

    def refresh(self) -> Heartbeat:
        """Rebuild the snapshot, keep it for /metrics and write ``STATE/health.json``."""
        heartbeat = self.snapshot()
        with self._lock:
            self.latest = heartbeat
        write_health_file(self.state_dir, heartbeat)
        return heartbeat

    def current(self) -> Heartbeat | None:
        with self._lock:
            return self.latest

    # --- the uplink's record ----------------------------------------------------------------

    def record_uplink(self, *, attempted: bool, error: BaseException | None) -> None:
        """Count a finished session (after ``on_session``); keep a heartbeat if it failed."""
        if not attempted:
            return
        if error is None:
            self.uplink_last_ok_at = self.clock()
            self.uplink_failures = 0
            self.uplink_last_error = ""
            return
        self.uplink_failures += 1
        self.uplink_last_error = str(error)[:MAX_ERROR_CHARS]
        if self._spool is not None:
            self._keep_pending(self.snapshot())

    def _keep_pending(self, heartbeat: Heartbeat) -> None:
        folder = self.state_dir / PENDING_DIR
        try:
            folder.mkdir(parents=True, exist_ok=True)
            name = heartbeat_file_name(heartbeat.agent_id, heartbeat.sent_at)
            atomic_write(folder / name, heartbeat.to_json(), mode=0o644, sync=False)
            for old in sorted(folder.glob("*.json"))[:-MAX_PENDING]:
                old.unlink(missing_ok=True)
        except OSError as exc:  # a full disk must not stop the agent over a heartbeat
            log.warning("cannot keep heartbeat for the next session: %s", exc)

    # --- sending ----------------------------------------------------------------------------

    def on_session(self, session: UplinkSession) -> None:
        """The uplink's session hook: clock probe, kept heartbeats, a fresh one. Never raises."""
        try:
            self._send(session, AgentState.RUNNING)
        except (OSError, EOFError, paramiko.SSHException, CallCollectError) as exc:
            log.warning("heartbeat not sent (kept for the next session): %s", exc)
            with contextlib.suppress(CallCollectError, OSError, RuntimeError):
                self._keep_pending(self.snapshot())

    def goodbye(self, uplink: Uplink) -> bool:
        """Send a ``stopping`` heartbeat in its own session; False if it could not be sent."""
        try:
            with uplink.connect() as session:
                self._send(session, AgentState.STOPPING)
        except (OSError, EOFError, paramiko.SSHException, CallCollectError) as exc:
            log.warning("could not tell the data centre that the agent stops: %s", exc)
            return False
        return True

    def _seal(self, document: bytes) -> bytes:
        """Sign the document with the agent's batch-signing key when batches are signed too
        (protection ``cms``: the data centre then pins the certificate and refuses unsigned
        heartbeats, so no account holder can forge this agent's health)."""
        if self.settings.delivery.protection != cms.PROTECTION:
            return document
        if self._identity is None:
            self._identity = keys.load_agent_identity(*identity_paths(self.state_dir))
        return cms.sign(document, signer=self._identity)

    def _send(self, session: UplinkSession, state: AgentState) -> None:
        sftp = session.sftp
        folder = remote_heartbeat_dir(session.settings.remote_dir)
        _ensure_dir(sftp, folder)
        self.clock_offset_seconds = measure_clock_offset(
            sftp, f"{folder}/{PROBE_PREFIX}{self.settings.agent.id}{PART_SUFFIX}",
            wall=self._wall,
        )  # fmt: skip
        pending = self.state_dir / PENDING_DIR
        for path in sorted(pending.glob("*.json")) if pending.is_dir() else []:
            _put(sftp, folder, path.name, self._seal(path.read_bytes()))
            path.unlink(missing_ok=True)
        heartbeat = self.snapshot(state=state)
        _put(sftp, folder, heartbeat_file_name(heartbeat.agent_id, heartbeat.sent_at),
             self._seal(heartbeat.to_json()))  # fmt: skip
        self.heartbeats_sent += 1
        with self._lock:
            self.latest = heartbeat
        log.debug("heartbeat sent (clock offset %s s)", self.clock_offset_seconds)


def remote_heartbeat_dir(remote_dir: str) -> str:
    """``heartbeats`` beside ``uplink.remote_dir`` (``incoming`` -> ``heartbeats``)."""
    parent = posixpath.dirname(remote_dir.rstrip("/"))
    return posixpath.join(parent, HEARTBEAT_FOLDER) if parent else HEARTBEAT_FOLDER


def measure_clock_offset(
    sftp: paramiko.SFTPClient, probe: str, *, wall: Callable[[], float] = time.time
) -> float:
    """The server's clock minus ours, in seconds, from a probe file's modification time."""
    before = wall()
    with sftp.open(probe, "wb") as remote:
        remote.write(b"clock probe\n")
    attrs = sftp.stat(probe)
    after = wall()
    with contextlib.suppress(OSError):
        sftp.remove(probe)
    if attrs.st_mtime is None:
        raise TransportError("the landing host reports no modification times")
    server = attrs.st_mtime + SFTP_MTIME_RESOLUTION / 2
    return round(server - (before + after) / 2, 3)


def _ensure_dir(sftp: paramiko.SFTPClient, folder: str) -> None:
    try:
        sftp.stat(folder)
    except FileNotFoundError:
        sftp.mkdir(folder)


def _put(sftp: paramiko.SFTPClient, folder: str, name: str, data: bytes) -> None:
    """``folder/name.part`` then ``posix_rename``: the data centre never sees half a file."""
    final = f"{folder}/{name}"
    part = final + PART_SUFFIX
    with sftp.open(part, "wb") as remote:
        remote.write(data)
    sftp.posix_rename(part, final)


class ServiceHealth:
    """The supervisor's health duties: a snapshot every cycle, sd_notify, /metrics, goodbye.

    ``Service`` calls ``attach`` and hands ``on_session`` to its uplink when it opens, then
    ``started()`` once the sources run (READY=1, /metrics on), ``cycled()`` after every pass of
    its loop (WATCHDOG=1 and STATUS=) and ``stopping()`` before it closes (STOPPING=1, the
    goodbye heartbeat, /metrics off).
    """

    def __init__(
        self, settings: AgentSettings, *, clock: Clock, notifier: Notifier | None = None
    ) -> None:
        self.agent = AgentHealth(settings, clock=clock)
        self.notifier = notifier or Notifier()
        self.metrics: MetricsServer | None = None
        self.on_session = self.agent.on_session

    def attach(self, spool: Spool, sources: Callable[[], Sequence[SourceView]]) -> None:
        self.agent.attach(spool, sources)

    def started(self) -> None:
        listen = self.agent.settings.metrics.listen
        if listen:  # prometheus-client (2 MB) is loaded only when /metrics is on
            from edge_agent.health.metrics import start_metrics

            token = self.agent.settings.metrics.token_file
            self.metrics = start_metrics(listen, self.agent, token_file=token)
            log.info("metrics on http://%s/metrics", listen)
        heartbeat = self._refresh()
        self.notifier.ready(status_line(heartbeat) if heartbeat else "running")

    def uploaded(self, outcome: UploadOutcome) -> None:
        """A batch is up: alive for systemd's watchdog, between two passes of a long session."""
        self.notifier.watchdog(f"uploading: {outcome.file_name} sent")

    def cycled(self, *, attempted: bool = False, error: BaseException | None = None) -> None:
        self.agent.record_uplink(attempted=attempted, error=error)
        heartbeat = self._refresh()
        self.notifier.watchdog(status_line(heartbeat) if heartbeat else None)

    def stopping(self, uplink: Uplink | None) -> None:
        self.notifier.stopping()
        try:
            if uplink is not None and self.agent.current() is not None:
                self.agent.goodbye(uplink)
        finally:
            if self.metrics is not None:
                self.metrics.close()
                self.metrics = None

    def _refresh(self) -> Heartbeat | None:
        try:
            return self.agent.refresh()
        except (SpoolError, OSError) as exc:  # health must never stop the agent
            log.error("health snapshot failed: %s", exc)
            return None


def status_line(hb: Heartbeat) -> str:
    """One line for systemctl status (STATUS=)."""
    failing = [s.source_id for s in hb.sources if not s.ok]
    sources = f"{len(hb.sources)} source(s)" + (
        f", failing: {', '.join(failing)}" if failing else ", all ok"
    )
    uplink = (
        f"uplink failing ({hb.uplink.failures_in_a_row} in a row)"
        if hb.uplink.failures_in_a_row
        else "uplink ok"
    )
    return (
        f"{sources}; {hb.unbatched_records} record(s) and {hb.unsent_batches} batch(es) waiting; "
        f"spool {hb.spool.percent:.0f} %; {uplink}"
    )


# --- health.json --------------------------------------------------------------------------------


def write_health_file(state_dir: Path, heartbeat: Heartbeat) -> None:
    try:
        atomic_write(state_dir / HEALTH_FILE, heartbeat.to_json(), mode=0o644, sync=False)
    except OSError as exc:
        log.warning("cannot write %s: %s", state_dir / HEALTH_FILE, exc)


def read_health_file(state_dir: Path) -> Heartbeat | None:
    """The last snapshot the agent wrote, or None (never ran, or unreadable: logged)."""
    path = state_dir / HEALTH_FILE
    try:
        return parse_heartbeat(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValidationError) as exc:
        log.warning("ignoring %s: %s", path, exc)
        return None


# --- the readable table (edge-agent status) -----------------------------------------------------


def render_health(heartbeat: Heartbeat, *, now: datetime) -> str:
    """The heartbeat as ``edge-agent status`` prints it."""
    hb = heartbeat
    age = _ago(now, hb.sent_at)
    offset = "not measured yet" if hb.clock_offset_seconds is None else (
        f"{hb.clock_offset_seconds:+.1f} s (landing host minus this appliance)"
    )  # fmt: skip
    uplink = hb.uplink
    failures = (
        f"{uplink.failures_in_a_row} failed session(s) in a row, last: {uplink.last_error}"
        if uplink.failures_in_a_row
        else "no failures"
    )
    pairs = [
        ("health as of", f"{_when(hb.sent_at)} ({age} ago), state {hb.state}"),
        ("version", hb.agent_version),
        ("up since", f"{_when(hb.started_at)} ({_span(timedelta(seconds=hb.uptime_seconds))})"),
        ("spool", f"{hb.spool.percent:.1f} % of {hb.spool.quota_bytes / 1e6:.0f} MB, {hb.spool.level}"),
        ("disk free", f"{hb.disk_free_bytes / 1e9:.2f} GB of {hb.disk_total_bytes / 1e9:.2f} GB"),
        ("backlog", f"{hb.unbatched_records} record(s) not batched, {hb.unsent_batches} "
                    f"batch(es) not sent" + (f" (oldest {_when(hb.oldest_unsent_at)})"
                                             if hb.oldest_unsent_at else "")),
        ("uplink", f"last good session {_when(uplink.last_ok_at)}; {failures}"),
        ("last batch sent", str(uplink.last_sequence_sent or "none")),
        ("clock offset", offset),
    ]  # fmt: skip
    width = max(len(k) for k, _ in pairs)
    lines = [f"{key.ljust(width)}  {value}" for key, value in pairs]
    rows = [("SOURCE", "KIND", "STATE", "LAST POLL", "LAST OK", "LAST RECORD", "RECORDS",
             "FAILS", "RECONNECTS", "MESSAGE")]  # fmt: skip
    for s in hb.sources:
        rows.append((
            s.source_id, s.kind, "ok" if s.ok else "ERROR", _when(s.at), _when(s.last_ok_at),
            _when(s.last_record_at), str(s.records), str(s.failures_in_a_row), str(s.reconnects),
            s.message,
        ))  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines.append("")
    lines.extend(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )
    return "\n".join(lines)


def _when(value: datetime | None) -> str:
    return "-" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _ago(now: datetime, then: datetime) -> str:
    return _span(now - then)


def _span(delta: timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
