"""Sealing: spooled ICDRs become numbered batch files in the outbox.

Contract:

- ``seal_ready(now)`` seals the oldest unbatched rows into batches of at most
  ``max_records``; a partial batch is sealed only when its oldest row has waited
  ``max_age`` (or ``force=True``: ``edge-agent flush``). Sequence numbers start at 1 and have no
  gaps, so the data centre can tell a missing batch.
- The spool is the truth, the file is derived from it. One transaction assigns the rows to the
  batch and inserts the batch row (with the SHA-256 of the file and of the CCB1 content, and
  the creation time); only then is the file written, atomically, to ``STATE/outbox/NAME``.
- With a ``protect`` function (protection ``cms``: ``shared.cms.protect`` with the agent's
  identity) the file is the CCB1 content signed and encrypted. Sealing the *content* is
  deterministic given the rows and the creation time (gzip without a timestamp); CMS output is
  not (a fresh content key each time), which is why the row keeps both digests.
- ``recover()`` (on start) repairs what a crash left. A sealed batch whose file is missing from
  the outbox, or whose file's SHA-256 is not the recorded one (damaged on disk: it is moved to
  ``STATE/damaged/``, never deleted), was never uploaded (uploads read that file): its content is rebuilt, checked
  against the recorded content SHA-256, protected again, and the new file's SHA-256 is
  recorded *before* the file is written, so the row always names the file that may exist. A
  sealed batch whose file is in ``sent/`` (a re-send interrupted) moves back; it is never
  re-protected, because the data centre may hold those exact bytes. Leftover temporary files
  are deleted; an uploaded batch still in the outbox moves on to ``sent/``; a file whose batch
  retention has already deleted (a crash between the purge and the unlink) is removed.
- Sealing also writes the batch's ledger entry (``edge_agent.delivery.ledger``: its record ids,
  outside ``spool.db``) inside the same transaction, before the file: a spool rebuilt from the
  journal knows which records left in which batch.
- A file can never exist for a sequence number the spool does not know, so no two different
  contents ever carry the same number.

Batch files are 0600 and both folders 0700 (``shared.modes``): they hold call data.

On disk: ``STATE/outbox/`` sealed, not yet uploaded; ``STATE/sent/`` uploaded, kept until a
receipt and then ``delivery.retention_days`` allow deletion (``edge_agent.delivery.retention``).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from edge_agent.delivery.ledger import Ledger, LedgerEntry
from edge_agent.spool import BatchRow, BatchStatus, Spool, SpooledRow
from shared.crashpoints import crash_point
from shared.durable import atomic_write, durable_move, remove_temporaries
from shared.envelope import batch_file_name, parse_batch_file_name, seal_json
from shared.errors import AgentStateError
from shared.icdr import format_time, parse_time
from shared.modes import FILE_MODE, make_private_dir

log = logging.getLogger(__name__)

OUTBOX_DIR = "outbox"
DAMAGED_DIR = "damaged"  # batch files whose bytes did not match the spool, kept for a look
SENT_DIR = "sent"
DEFAULT_MAX_RECORDS = 5000
DEFAULT_MAX_AGE = timedelta(seconds=60)

Protect = Callable[[bytes], bytes]  # CCB1 content -> the file's bytes (CMS sign + encrypt)


class BatchError(AgentStateError):
    """A batch file cannot be rebuilt to match what the spool recorded."""

    exit_code = 9


@dataclass(frozen=True, slots=True)
class SealedBatch:
    sequence: int
    file_name: str
    path: Path
    record_count: int
    sha256: str


class Batcher:
    """Seals spool rows into batch files (see the module docstring)."""

    def __init__(
        self,
        spool: Spool,
        *,
        state_dir: Path,
        agent_id: str,
        tenant: str,
        max_records: int = DEFAULT_MAX_RECORDS,
        max_age: timedelta = DEFAULT_MAX_AGE,
        protect: Protect | None = None,
    ) -> None:
        self.spool = spool
        self.protect = protect
        self.outbox = state_dir / OUTBOX_DIR
        self.sent = state_dir / SENT_DIR
        self.agent_id = agent_id
        self.tenant = tenant
        self.max_records = max_records
        self.max_age = max_age
        for directory in (self.outbox, self.sent):
            make_private_dir(directory)
        self.ledger = Ledger(state_dir)
        self._needs_recovery = False  # a sealed batch's file could not be written

    def seal_ready(self, now: datetime, *, force: bool = False) -> list[SealedBatch]:
        """Seal every batch that is due; returns them oldest first.

        A batch file that could not be written (disk full) leaves its batch sealed without a
        file; ``recover()`` runs first on the next call and writes it (``BatchError`` now)."""
        if self._needs_recovery:
            self.recover()
            self._needs_recovery = False
        sealed: list[SealedBatch] = []
        while (batch := self._seal_one(now, force=force)) is not None:
            sealed.append(batch)
        return sealed

    def _seal_one(self, now: datetime, *, force: bool) -> SealedBatch | None:
        with self.spool.transaction():  # the write lock: another process cannot take our number
            rows = self.spool.unbatched(self.max_records)
            if not rows:
                return None
            age = now - parse_time("created", rows[0].created)
            # a negative age is a clock stepped back: waiting for it to catch up could take days
            if len(rows) < self.max_records and not force and timedelta(0) <= age < self.max_age:
                return None
            sequence = self.spool.next_batch_sequence()
            content = self._content(rows, sequence, created_at=now)
            data = self.protect(content) if self.protect else content
            row = BatchRow(
                sequence=sequence,
                file_name=batch_file_name(self.agent_id, sequence),
                record_count=len(rows),
                status=BatchStatus.SEALED,
                sha256=hashlib.sha256(data).hexdigest(),
                bytes=len(data),
                created=format_time(now),
                uploaded=None,
                content_sha256=hashlib.sha256(content).hexdigest(),
            )
            self.spool.add_batch(row, [r.record_id for r in rows])
            self._write_ledger(LedgerEntry(
                sequence, row.file_name, row.created, row.content_sha256,
                tuple(r.record_id for r in rows), self.spool.batch_extent(sequence),
            ))  # fmt: skip
            crash_point("batch.ledger_written")
        crash_point("batch.committed")
        path = self.outbox / row.file_name
        try:
            atomic_write(path, data, mode=FILE_MODE)
        except OSError as exc:
            self._needs_recovery = True
            raise BatchError(f"batch {row.file_name} is sealed but its file could not be "
                             f"written: {exc.strerror or exc}; written on the next cycle") from exc  # fmt: skip
        log.info("sealed %s: %d records", row.file_name, row.record_count)
        return SealedBatch(sequence, row.file_name, path, row.record_count, row.sha256)

    def _write_ledger(self, entry: LedgerEntry) -> None:
        """Inside the sealing transaction: a failure rolls the batch back too."""
        try:
            self.ledger.write(entry)
        except OSError as exc:
            raise BatchError(f"batch {entry.file_name}: cannot write its ledger entry: "
                             f"{exc.strerror or exc}; sealing is retried next cycle") from exc  # fmt: skip

    def recover(self) -> list[str]:
        """Repair the outbox after a crash; returns what was done, one line per action."""
        actions = [f"removed temporary {p.name}" for p in remove_temporaries(self.outbox)]
        for batch in self.spool.batches(status=BatchStatus.SEALED):
            if (self.outbox / batch.file_name).exists():
                if not self._damaged(batch):
                    continue
                actions.append(f"set aside damaged {batch.file_name} as "
                               f"{DAMAGED_DIR}/{self._set_aside(batch)}")  # fmt: skip
            if (self.sent / batch.file_name).exists():
                durable_move(self.sent / batch.file_name, self.outbox / batch.file_name)
                actions.append(f"moved re-queued {batch.file_name} back to {OUTBOX_DIR}/")
            else:
                self._rebuild(batch)
                actions.append(f"rebuilt {batch.file_name}")
        for batch in self.spool.batches(status=BatchStatus.UPLOADED):
            path = self.outbox / batch.file_name
            if path.exists():
                durable_move(path, self.sent / batch.file_name)
                actions.append(f"moved uploaded {batch.file_name} to {SENT_DIR}/")
        actions.extend(f"removed {name}, purged by retention" for name in self.remove_purged())
        for action in actions:
            log.warning("outbox recovery: %s", action)
        return actions

    def _damaged(self, batch: BatchRow) -> bool:
        """The outbox file's bytes are not the ones the spool recorded (a disk fault)."""
        digest = hashlib.sha256((self.outbox / batch.file_name).read_bytes()).hexdigest()
        return digest != batch.sha256

    def _set_aside(self, batch: BatchRow) -> str:
        """Move a damaged file to ``STATE/damaged/`` (never deleted); returns its new name."""
        folder = self.outbox.parent / DAMAGED_DIR
        make_private_dir(folder)
        name = f"{batch.file_name}.{secrets.token_hex(4)}"
        durable_move(self.outbox / batch.file_name, folder / name)
        return name

    def remove_purged(self) -> list[str]:
        """Delete our batch files whose batch retention has deleted; returns their names."""
        purged_through = self.spool.purged_through()
        known = {b.file_name for b in self.spool.batches()}
        removed: list[str] = []
        for directory in (self.outbox, self.sent):
            for path in sorted(directory.iterdir()):
                parsed = parse_batch_file_name(path.name)
                if (parsed is None or parsed[0] != self.agent_id or path.name in known
                        or parsed[1] > purged_through):  # fmt: skip
                    continue
                path.unlink()
                removed.append(path.name)
        return removed

    def _content(self, rows: list[SpooledRow], sequence: int, *, created_at: datetime) -> bytes:
        """The batch file's content: the spooled JSON as written (records are not re-encoded, so a
        rebuild by a later version of the agent gives the same bytes)."""
        return seal_json(
            [row.body for row in rows], first_record_id=rows[0].record_id,
            last_record_id=rows[-1].record_id, agent_id=self.agent_id, tenant=self.tenant,
            sequence=sequence, created_at=created_at,
        )  # fmt: skip

    def _rebuild(self, batch: BatchRow) -> None:
        rows = self.spool.batch_rows(batch.sequence)
        if not rows:
            raise BatchError(
                f"batch {batch.file_name} cannot be rebuilt: its records are no longer in the "
                "spool; ask the data centre which records it holds"
            )
        content = self._content(
            rows, batch.sequence, created_at=parse_time("created", batch.created)
        )
        if hashlib.sha256(content).hexdigest() != batch.content_sha256:
            raise BatchError(
                f"batch {batch.file_name} cannot be rebuilt identically (the spool rows changed, "
                "or the agent id/tenant in the config did); restore the file from a backup or "
                "ask the data centre which records it holds"
            )
        data = self.protect(content) if self.protect else content
        sha256 = hashlib.sha256(data).hexdigest()
        if sha256 != batch.sha256:  # record first: the row must name any file that exists
            self.spool.replace_batch_file(batch.sequence, sha256=sha256, size=len(data))
        atomic_write(self.outbox / batch.file_name, data, mode=FILE_MODE)

    def back_to_outbox(self, batches: list[BatchRow]) -> None:
        """Move re-sealed batches' files from sent/ back to the outbox, bytes unchanged: the
        data centre may already hold exactly these bytes, so they are never sealed again."""
        for batch in batches:
            sent = self.sent / batch.file_name
            if sent.exists():  # an interrupted move is finished by recover()
                durable_move(sent, self.outbox / batch.file_name)

    def path_of(self, batch: BatchRow) -> Path:
        """Where a batch file is now: the outbox until uploaded, then sent/."""
        outbox = self.outbox / batch.file_name
        return outbox if outbox.exists() else self.sent / batch.file_name
