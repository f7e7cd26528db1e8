"""Rebuilding a damaged ``spool.db`` from the journal, the batch ledger and the batch files.

Contract (``edge-agent spool rebuild``, and ``Service.open`` by itself when the spool is damaged):

- The damaged file is set aside, never deleted: ``spool.db`` (and its ``-wal``/``-shm``) is
  renamed ``spool.db.damaged-YYYYMMDDTHHMMSSZ`` in the state directory, for a post-mortem.
- A new spool is filled by replaying every source's journal from its first unit through the
  source's parser (``SourcePipeline.open`` with an empty cursor). Record ids are stable
  (agent, source, journal sequence, content), so each record comes back with its old id.
- Batches come back from the ledger (``edge_agent.delivery.ledger``): each entry's records are
  put back in their batch under the same number. A batch whose verified receipt the ledger kept
  is acknowledged; otherwise its status follows its file: in ``outbox/`` sealed (it will be
  sent), in ``sent/`` uploaded (the receipt timeout re-sends the same bytes
  under the same name, and the data centre's receipt, "already stored", acknowledges it), in
  neither acknowledged (retention had deleted it). Nothing that left is sealed into a new batch.
- Records of batches retention purged (their receipts were verified) are dropped again using
  the ledger's per-source marks (``purged.json``); batch numbering continues above every
  number the ledger, ``purged.json`` and the files in ``outbox/``/``sent/`` have used.
- The report says what was recoverable: per source the journal's range, the units replayed,
  sequence gaps (units the journal no longer holds: pruned, or lost to damage) and damaged
  bytes skipped; batches restored and their statuses; damaged ledger entries; batch files with
  no ledger entry (sealed by an agent older than the ledger: their records may be sent again in
  a new batch, and the data centre stores each record id once).
- Poll watermarks and source reports lived only in the spool: polling sources start from their
  first poll again (their record ids are stable too); the report says so.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from edge_agent.config import AgentSettings
from edge_agent.delivery.batches import OUTBOX_DIR, SENT_DIR
from edge_agent.delivery.ledger import Ledger, LedgerEntry
from edge_agent.journal import Journal
from edge_agent.pipeline import SourcePipeline
from edge_agent.sources import registry
from edge_agent.sources.base import Source, SourceContext
from edge_agent.spool import SPOOL_FILE, BatchRow, BatchStatus, Spool, open_spool
from shared.clock import Clock, utc_now
from shared.durable import fsync_dir
from shared.envelope import parse_batch_file_name
from shared.icdr import format_time

log = logging.getLogger(__name__)

JOURNAL_DIR = "journal"
DAMAGED_MARK = ".damaged-"
SourceFactory = Callable[[str, SourceContext, Mapping[str, Any]], Source]


@dataclass(slots=True)
class SourceRecovery:
    source_id: str
    first_seq: int = 0
    last_seq: int = 0
    units: int = 0
    gaps: list[tuple[int, int]] = field(default_factory=list)  # missing [from, to]
    damaged_bytes: int = 0
    records: int = 0
    dropped_purged: int = 0


@dataclass(slots=True)
class RebuildReport:
    set_aside: list[Path] = field(default_factory=list)
    sources: list[SourceRecovery] = field(default_factory=list)
    batches: dict[BatchStatus, int] = field(default_factory=dict)
    damaged_ledger: list[str] = field(default_factory=list)
    unledgered_files: list[str] = field(default_factory=list)
    next_batch: int = 1

    def lines(self) -> list[str]:
        out = [f"set aside: {p.name}" for p in self.set_aside]
        for s in self.sources:
            gaps = ", ".join(f"{a}-{b}" for a, b in s.gaps) or "none"
            out.append(f"source {s.source_id}: journal units {s.first_seq}-{s.last_seq} "
                       f"({s.units} replayed, {s.records} records; gaps: {gaps}; damaged bytes "
                       f"skipped: {s.damaged_bytes}; {s.dropped_purged} records of purged "
                       "batches dropped)")  # fmt: skip
        out.append("batches restored: " + (", ".join(
            f"{n} {status}" for status, n in self.batches.items() if n) or "none"))  # fmt: skip
        out.extend(f"damaged ledger entry (batch not restored): {n}" for n in self.damaged_ledger)
        out.extend(f"batch file without a ledger entry: {n} (its records may be sent again)"
                   for n in self.unledgered_files)  # fmt: skip
        out.append(f"next batch number: {self.next_batch}; poll watermarks start afresh")
        return out


def set_aside(state_dir: Path, now: datetime) -> list[Path]:
    """Rename ``spool.db`` and its side files out of the way (never deleted)."""
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    moved: list[Path] = []
    for suffix in ("", "-wal", "-shm"):
        path = state_dir / (SPOOL_FILE + suffix)
        if path.exists():
            target = state_dir / f"{SPOOL_FILE}{DAMAGED_MARK}{stamp}{suffix}"
            path.rename(target)
            moved.append(target)
    if moved:
        fsync_dir(state_dir)
    return moved


def rebuild_spool(
    settings: AgentSettings,
    *,
    clock: Clock = utc_now,
    make_source: SourceFactory = registry.make_source,
) -> RebuildReport:
    """Set the spool aside and rebuild it (module docstring); the agent must not be running."""
    state = settings.agent.state_dir
    report = RebuildReport(set_aside=set_aside(state, clock()))
    ledger = Ledger(state)
    with open_spool(settings) as spool:
        for source in settings.sources:
            report.sources.append(_replay(settings, source.id, source.kind, source.options,
                                          spool, clock, make_source))  # fmt: skip
        _restore_batches(state, spool, ledger, report)
        purged = ledger.purged()
        for recovery in report.sources:
            mark = purged.max_seq.get(recovery.source_id, 0)
            recovery.dropped_purged = spool.drop_unbatched_through(recovery.source_id, mark)
        spool.set_purged_through(max(purged.through_batch, _highest_file_number(state, settings)))
        report.next_batch = spool.next_batch_sequence()
    for line in report.lines():
        log.warning("spool rebuild: %s", line)
    return report


def _replay(
    settings: AgentSettings,
    source_id: str,
    kind: str,
    options: Mapping[str, Any],
    spool: Spool,
    clock: Clock,
    make_source: SourceFactory,
) -> SourceRecovery:
    recovery = SourceRecovery(source_id)
    with Journal.open(state_dir_journal(settings.agent.state_dir, source_id),
                      source_id=source_id, segment_bytes=settings.journal.segment_bytes,
                      retention=timedelta(days=settings.journal.retention_days)) as journal:  # fmt: skip
        # the journal says from where record ids use scheme 2: every record gets its old id
        ctx = SourceContext(agent_id=settings.agent.id, source_id=source_id,
                            timezone=settings.agent.timezone,
                            line_ids_from=journal.line_ids_from)  # fmt: skip
        source = make_source(kind, ctx, options)
        expected = 1
        for unit in journal.read_from(1):
            if recovery.units == 0:
                recovery.first_seq = unit.seq
            if unit.seq > expected:
                recovery.gaps.append((expected, unit.seq - 1))
            expected = unit.seq + 1
            recovery.units += 1
        recovery.last_seq = expected - 1
        recovery.damaged_bytes = journal.stats.corrupt_bytes
        pipeline = SourcePipeline.open(source_id=source_id, parser=source.parser,
                                       journal=journal, spool=spool, clock=clock)  # fmt: skip
        pipeline.flush_parser()
        recovery.records = spool.source_counts(source_id).spooled
    return recovery


def state_dir_journal(state_dir: Path, source_id: str) -> Path:
    return state_dir / JOURNAL_DIR / source_id


def _restore_batches(state: Path, spool: Spool, ledger: Ledger, report: RebuildReport) -> None:
    entries, report.damaged_ledger = ledger.entries()
    counts = dict.fromkeys(BatchStatus, 0)
    for entry in entries:
        batch = _batch_row(state, entry, ledger.receipt(entry.file_name))
        spool.restore_batch(batch, entry.record_ids)
        counts[batch.status] += 1
    report.batches = counts
    known = {e.file_name for e in entries}
    report.unledgered_files = sorted(
        p.name for folder in (OUTBOX_DIR, SENT_DIR) for p in (state / folder).glob("*.ccb")
        if p.name not in known
    )  # fmt: skip


def _batch_row(state: Path, entry: LedgerEntry, receipt: bytes | None) -> BatchRow:
    """The batch as its file and kept receipt say: a receipt makes it acknowledged, else where
    the file is gives the status (outbox: sealed, sent: uploaded, none: acknowledged, because
    only retention deletes a file); its bytes give the SHA-256."""
    outbox, sent = state / OUTBOX_DIR / entry.file_name, state / SENT_DIR / entry.file_name
    path = outbox if outbox.exists() else sent if sent.exists() else None
    status = (BatchStatus.ACKNOWLEDGED if receipt is not None or path is None else
              BatchStatus.SEALED if path == outbox else BatchStatus.UPLOADED)  # fmt: skip
    data = path.read_bytes() if path is not None else b""
    sha256 = hashlib.sha256(data).hexdigest() if path is not None else entry.content_sha256
    done = entry.created if status is not BatchStatus.SEALED else None
    return BatchRow(
        sequence=entry.sequence, file_name=entry.file_name, record_count=len(entry.record_ids),
        status=status, sha256=sha256, bytes=len(data), created=entry.created, uploaded=done,
        content_sha256=entry.content_sha256,
        acknowledged=entry.created if status is BatchStatus.ACKNOWLEDGED else None,
    )  # fmt: skip


def _highest_file_number(state: Path, settings: AgentSettings) -> int:
    numbers = [0]
    for folder in (OUTBOX_DIR, SENT_DIR):
        for path in (state / folder).glob("*"):
            parsed = parse_batch_file_name(path.name)
            if parsed is not None and parsed[0] == settings.agent.id:
                numbers.append(parsed[1])
    return max(numbers)


REBUILT_KEY = "spool_rebuilt"  # agent state: the last automatic rebuild, for status


def rebuilt_note(report: RebuildReport, now: datetime) -> str:
    """One line for the spool's state and ``edge-agent status``: the alarm after a rebuild."""
    aside = ", ".join(p.name for p in report.set_aside) or "nothing"
    return (f"{format_time(now)}: spool.db was damaged; set aside as {aside} and rebuilt from "
            f"the journal ({sum(s.units for s in report.sources)} units replayed)")  # fmt: skip
