"""The spool: the agent's durable queue of parsed ICDRs, quarantined units and batch bookkeeping.

Contract:

- One SQLite file (``STATE/spool.db``) in WAL mode with ``synchronous=FULL``: a method that
  writes has committed durably when it returns.
- ``store(source_id, records, quarantined, cursor=...)`` inserts ICDRs and quarantined units and
  advances the source's parse cursor in ONE transaction: after a crash either all of it is there
  or none of it is, and the journal replays the units after the cursor.
- Inserting a ``record_id`` that is already spooled is a no-op (ids are stable, so replays and
  re-reads are harmless); so is quarantining the same (source, seq, reason, detail) twice. One
  exception: a record spooled *incomplete* (flag ``end_pending``, docs/icdr.md) is superseded
  by the next version without the flag. Not yet in a batch, it is simply replaced; already in
  one, the old row stays with its batch (which must rebuild byte for byte) under the key
  ``record_id~superseded~N`` and the new version is spooled for a later batch.
- ``usage()`` reports the bytes the agent's state uses against its quota and a level: ``ok``
  below 70 %, ``warning`` from 70 %, ``critical`` from 90 %, ``full`` at 100 % (sources stop
  reading). "Used" is everything the agent writes in the state directory: the spool's live
  pages, its WAL and shared-memory file (free pages of ``spool.db`` are reused, so they do not
  count), the journal, ``outbox/``, ``sent/``, ``damaged/`` and the batch ledger. The quota is ``quota_bytes`` or, when the disk is shorter of room,
  what is used plus what is free beyond the minimum that must stay free (``min_free_bytes``,
  or ``min_free_percent`` of the file system if larger): a filling disk raises the same
  alarms and pauses reading before any write fails, and room returning lifts them.
- Rows leave the spool only through ``purge_acknowledged``: a batch whose receipt was verified
  (``acknowledge``) and is older than the retention period goes, with its ICDR rows, in one
  transaction. Nothing unacknowledged is ever deleted. Batch sequence numbers never go back:
  the highest purged number is kept in ``state``.
- ``requeue(since, until)`` turns acknowledged batches back into ``sealed`` ones (a re-send the
  data centre asked for); they keep their file, name and SHA-256.

Tables::

    icdrs       record_id PK, source_id, seq, body (ICDR JSON), batch_seq (NULL until sealed),
                created
    quarantine  id PK, source_id, seq, reason, detail, raw, created; unique per unit and reason
    cursors     source_id PK, seq (last journal seq parsed and spooled), updated
    state       (source_id, key) PK, value: small values drivers persist (poll watermarks)
    batches     sequence PK, file_name, record_count, status (sealed/uploaded/acknowledged),
                sha256 (of the file as uploaded), bytes, created, uploaded, acknowledged,
                content_sha256 (of the CCB1 bytes inside: equal to sha256 for protection none),
                receipt (the verified receipt, as received)

One ``Spool`` object may be shared by threads: a lock serialises use of its connection. Other
processes (``edge-agent status``) open their own; SQLite's busy timeout makes them wait.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_agent.sources.base import Quarantined
from shared.clock import utc_now
from shared.crashpoints import crash_point
from shared.errors import AgentStateError
from shared.icdr import ICDR, format_time, lone_surrogate_field, parse_time
from shared.modes import make_private_dir, restrict_file

if TYPE_CHECKING:
    from edge_agent.config import AgentSettings

SPOOL_FILE = "spool.db"
BUSY_TIMEOUT_SECONDS = 30.0
WARNING_PERCENT = 70.0
CRITICAL_PERCENT = 90.0
CURSOR_NONE = 0  # journal sequence numbers start at 1
AGENT_STATE = "_agent"  # state rows of the agent itself rather than of a source
INCOMPLETE_FLAG = "end_pending"  # superseded by the next version of the record without it
SUPERSEDED_MARK = "~superseded~"  # key suffix of a batched row a complete version superseded
LOOKUP_CHUNK = 500
PURGED_SEQUENCE_KEY = "batch_sequence_purged"  # highest batch number retention deleted
WAL_SIZE_LIMIT_BYTES = 1 << 20  # the write-ahead log is cut back to this after a checkpoint
WAL_CHECKPOINT_PAGES = 256  # ... and checkpointed at about that size (4 KiB pages), so its file
# stays near 1 MiB instead of growing to 4 MiB and shrinking: with a small quota that swing
# made the quota alarm flap between levels
# What the agent writes beside spool.db, all counted against the quota: the journal
# (edge_agent.service), outbox/, sent/ and damaged/ (edge_agent.delivery.batches) and the batch
# ledger (edge_agent.delivery.ledger). Named here because those modules import this one.
AGENT_FOLDERS = ("journal", "outbox", "sent", "damaged", "ledger")
FOLDER_SCAN_SECONDS = 5.0  # the folders are walked at most this often (free disk: every call)


class SpoolLevel(StrEnum):
    OK = "ok"
    WARNING = "warning"
    CRITICAL = "critical"
    FULL = "full"


class BatchStatus(StrEnum):
    SEALED = "sealed"
    UPLOADED = "uploaded"
    ACKNOWLEDGED = "acknowledged"


class AckOutcome(StrEnum):
    ACKNOWLEDGED = "acknowledged"
    ALREADY = "already"  # acknowledged before (a receipt for a re-sent batch, or twice)
    UNKNOWN = "unknown"  # no batch of that name (another agent's, or purged long ago)
    MISMATCH = "mismatch"  # the receipt is for different bytes under our name


class SpoolError(AgentStateError):
    """The spool database refused an operation (disk full, corrupt file, locked too long)."""

    exit_code = 9


class SpoolCorrupt(SpoolError):
    """``spool.db`` is not a database, or fails SQLite's integrity check: rebuild it."""

    exit_code = 9


@dataclass(frozen=True, slots=True)
class SpoolUsage:
    used_bytes: int
    quota_bytes: int  # the effective quota: the configured one, or less when the disk is short
    free_bytes: int | None = None  # on the state directory's file system (None: not measured)
    min_free_bytes: int = 0  # what must stay free there
    disk_limited: bool = False  # free disk, not the configured quota, sets ``quota_bytes``

    @property
    def percent(self) -> float:
        return 100.0 * self.used_bytes / max(self.quota_bytes, 1)

    @property
    def level(self) -> SpoolLevel:
        if self.percent >= 100.0:
            return SpoolLevel.FULL
        if self.percent >= CRITICAL_PERCENT:
            return SpoolLevel.CRITICAL
        if self.percent >= WARNING_PERCENT:
            return SpoolLevel.WARNING
        return SpoolLevel.OK


@dataclass(frozen=True, slots=True)
class StoreResult:
    inserted: int  # new ICDR rows (duplicates are not counted)
    quarantined: int


@dataclass(frozen=True, slots=True)
class SpooledRow:
    record_id: str
    body: str
    created: str


@dataclass(frozen=True, slots=True)
class BatchRow:
    sequence: int
    file_name: str
    record_count: int
    status: BatchStatus
    sha256: str
    bytes: int
    created: str
    uploaded: str | None
    content_sha256: str = ""
    acknowledged: str | None = None


@dataclass(frozen=True, slots=True)
class SourceCounts:
    source_id: str
    cursor: int
    spooled: int
    unbatched: int
    quarantined: int
    last_record_at: str | None


_SCHEMA = """
CREATE TABLE IF NOT EXISTS icdrs (
    record_id TEXT PRIMARY KEY,
    source_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    body TEXT NOT NULL,
    batch_seq INTEGER,
    created TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS icdrs_batch ON icdrs (batch_seq);
CREATE INDEX IF NOT EXISTS icdrs_source ON icdrs (source_id, batch_seq);
CREATE TABLE IF NOT EXISTS quarantine (
    id INTEGER PRIMARY KEY,
    source_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL,
    raw BLOB NOT NULL,
    created TEXT NOT NULL,
    UNIQUE (source_id, seq, reason, detail)
);
CREATE TABLE IF NOT EXISTS cursors (
    source_id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    updated TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS state (
    source_id TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (source_id, key)
);
CREATE TABLE IF NOT EXISTS batches (
    sequence INTEGER PRIMARY KEY,
    file_name TEXT NOT NULL UNIQUE,
    record_count INTEGER NOT NULL,
    status TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    created TEXT NOT NULL,
    uploaded TEXT,
    acknowledged TEXT
);
"""


class Spool:
    """The durable ICDR queue (see the module docstring)."""

    def __init__(
        self,
        path: Path,
        *,
        quota_bytes: int,
        min_free_bytes: int = 0,
        min_free_percent: float = 0.0,
        verify: bool = False,
    ) -> None:
        """Open (or create) the spool; ``verify`` also runs SQLite's ``quick_check``."""
        self.path = path
        self.quota_bytes = quota_bytes
        self.min_free_bytes = min_free_bytes
        self.min_free_percent = min_free_percent
        self._folders = (float("-inf"), 0)  # (monotonic time walked, bytes)
        self._lock = threading.RLock()
        self._depth = 0  # nesting of transaction()
        try:
            conn = sqlite3.connect(
                path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise SpoolError(f"cannot open the spool {path}: {exc}") from exc
        self.db = conn
        try:
            with self._mapped("open"):
                self.db.execute("PRAGMA journal_mode=WAL")
                # The WAL file keeps its largest size after a checkpoint unless limited, and the
                # quota counts it: a burst left megabytes of it counted long after the data had
                # gone, holding a drained spool at "full". Truncated to this after checkpoints.
                self.db.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT_BYTES}")
                self.db.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
                self.db.execute("PRAGMA synchronous=FULL")
                self.db.execute("PRAGMA foreign_keys=ON")
                self.db.executescript(_SCHEMA)
                self._add_columns()
                if verify:
                    self._check_integrity()
        except SpoolError as exc:
            conn.close()
            if _is_damage(exc.__cause__):
                raise SpoolCorrupt(_corrupt_message(path, str(exc.__cause__))) from exc
            raise
        for suffix in ("", "-wal", "-shm"):  # SQLite creates them with the umask's mode
            restrict_file(path.with_name(path.name + suffix))

    def _check_integrity(self) -> None:
        """``quick_check`` finds a damaged page without reading every row's index entries."""
        problems = [row[0] for row in self.db.execute("PRAGMA quick_check(5)").fetchall()]
        if problems != ["ok"]:
            raise SpoolCorrupt(_corrupt_message(self.path, "; ".join(map(str, problems))))

    def _add_columns(self) -> None:
        """Columns added after the first release; an older spool gains them on open."""
        have = {row[1] for row in self.db.execute("PRAGMA table_info(batches)").fetchall()}
        for column in ("content_sha256", "receipt"):
            if column not in have:
                self.db.execute(f"ALTER TABLE batches ADD COLUMN {column} TEXT")

    @classmethod
    def open(
        cls,
        state_dir: Path,
        *,
        quota_bytes: int,
        min_free_bytes: int = 0,
        min_free_percent: float = 0.0,
        verify: bool = False,
    ) -> Spool:
        make_private_dir(state_dir)
        return cls(state_dir / SPOOL_FILE, quota_bytes=quota_bytes, min_free_bytes=min_free_bytes,
                   min_free_percent=min_free_percent, verify=verify)  # fmt: skip

    def close(self) -> None:
        with self._lock:
            self.db.close()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- transactions ---------------------------------------------------------------------

    @contextmanager
    def _mapped(self, what: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise SpoolError(f"spool {self.path}: {what} failed: {exc}") from exc

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction; nested use joins the outer one (which commits or rolls back).

        BEGIN IMMEDIATE takes the write lock up front, so two processes never race to upgrade a
        read lock (which SQLite answers with "database is locked" at once, not after a wait).
        """
        with self._lock, self._mapped("write"):
            if self._depth:
                self._depth += 1
                try:
                    yield self.db
                finally:
                    self._depth -= 1
                return
            self.db.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield self.db
                crash_point("spool.before_commit")
                self.db.execute("COMMIT")
                crash_point("spool.after_commit")
            except BaseException:
                self.db.rollback()
                raise
            finally:
                self._depth = 0

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self._lock, self._mapped("read"):
            return list(_query(self.db, sql, params))

    # --- parsed units in ------------------------------------------------------------------

    def store(
        self,
        source_id: str,
        records: Sequence[tuple[int, ICDR]],
        quarantined: Sequence[Quarantined],
        *,
        cursor: int | None,
        now: datetime | None = None,
    ) -> StoreResult:
        """Spool (journal seq, record) pairs and quarantined units and advance the cursor.

        All in one transaction; ``cursor=None`` leaves the cursor where it is. ``now`` is the
        spooling time batches age from.
        """
        created = format_time(now or utc_now())
        complete = {rec.record_id for _, rec in records if INCOMPLETE_FLAG not in rec.flags}
        records = [  # a replay may hold both versions: the complete one wins
            (seq, rec) for seq, rec in records
            if INCOMPLETE_FLAG not in rec.flags or rec.record_id not in complete
        ]  # fmt: skip
        rows, unspoolable = _spoolable(source_id, records, created)
        quarantined = [*quarantined, *unspoolable]
        with self.transaction() as db:
            self._supersede_incomplete(db, [rec for _, rec in records])
            # ON CONFLICT DO NOTHING skips only duplicates; OR IGNORE would also swallow a
            # NOT NULL violation, silently dropping a row
            before = db.total_changes
            db.executemany(
                "INSERT INTO icdrs (record_id, source_id, seq, body, created) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                rows,
            )
            inserted = db.total_changes - before
            db.executemany(
                "INSERT INTO quarantine (source_id, seq, reason, detail, raw, created) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                [(q.source_id, q.seq, q.reason, q.detail, q.raw, created) for q in quarantined],
            )
            if cursor is not None:
                db.execute(
                    "INSERT INTO cursors (source_id, seq, updated) VALUES (?, ?, ?) "
                    "ON CONFLICT (source_id) DO UPDATE SET seq = MAX(seq, excluded.seq), "
                    "updated = excluded.updated",
                    (source_id, cursor, created),
                )
        return StoreResult(inserted=inserted, quarantined=len(quarantined))

    def _supersede_incomplete(self, db: sqlite3.Connection, records: Sequence[ICDR]) -> None:
        """Make room for complete versions of records spooled ``end_pending`` (module doc)."""
        complete = [rec.record_id for rec in records if INCOMPLETE_FLAG not in rec.flags]
        for start in range(0, len(complete), LOOKUP_CHUNK):
            chunk = complete[start : start + LOOKUP_CHUNK]
            stale = db.execute(
                f"SELECT record_id, batch_seq FROM icdrs WHERE record_id IN "
                f"({', '.join('?' for _ in chunk)}) AND EXISTS (SELECT 1 FROM "
                "json_each(icdrs.body, '$.flags') WHERE value = ?)",
                (*chunk, INCOMPLETE_FLAG),
            ).fetchall()
            for record_id, batch_seq in stale:
                if batch_seq is None:
                    db.execute("DELETE FROM icdrs WHERE record_id = ?", (record_id,))
                else:
                    db.execute(
                        "UPDATE icdrs SET record_id = ? WHERE record_id = ?",
                        (f"{record_id}{SUPERSEDED_MARK}{batch_seq}", record_id),
                    )

    def cursor(self, source_id: str) -> int:
        rows = self._rows("SELECT seq FROM cursors WHERE source_id = ?", (source_id,))
        return int(rows[0]["seq"]) if rows else CURSOR_NONE

    def get_state(self, source_id: str, key: str) -> str | None:
        rows = self._rows(
            "SELECT value FROM state WHERE source_id = ? AND key = ?", (source_id, key)
        )
        return str(rows[0]["value"]) if rows else None

    def set_state(self, source_id: str, key: str, value: str) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO state (source_id, key, value) VALUES (?, ?, ?) "
                "ON CONFLICT (source_id, key) DO UPDATE SET value = excluded.value",
                (source_id, key, value),
            )

    # --- batches --------------------------------------------------------------------------

    def unbatched(self, limit: int) -> list[SpooledRow]:
        """The oldest rows not yet in a batch, in arrival order."""
        rows = self._rows(
            "SELECT record_id, body, created FROM icdrs WHERE batch_seq IS NULL "
            "ORDER BY rowid LIMIT ?",
            (limit,),
        )
        return [SpooledRow(r["record_id"], r["body"], r["created"]) for r in rows]

    def bodies_spooled_since(self, since: datetime) -> list[str]:
        """Records spooled at or after ``since``; call recording links its files to them."""
        rows = self._rows(
            "SELECT body FROM icdrs WHERE created >= ? ORDER BY rowid", (format_time(since),)
        )
        return [r["body"] for r in rows]

    def next_batch_sequence(self) -> int:
        rows = self._rows("SELECT COALESCE(MAX(sequence), 0) AS last FROM batches")
        purged = self.get_state(AGENT_STATE, PURGED_SEQUENCE_KEY)
        return max(int(rows[0]["last"]), int(purged or 0)) + 1

    def add_batch(self, batch: BatchRow, record_ids: Sequence[str]) -> None:
        """Record a sealed batch and mark its rows, in one transaction."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO batches (sequence, file_name, record_count, status, sha256, bytes, "
                "created, content_sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (batch.sequence, batch.file_name, batch.record_count, batch.status,
                 batch.sha256, batch.bytes, batch.created, batch.content_sha256 or batch.sha256),
            )  # fmt: skip
            db.executemany(
                "UPDATE icdrs SET batch_seq = ? WHERE record_id = ? AND batch_seq IS NULL",
                [(batch.sequence, rid) for rid in record_ids],
            )

    def restore_batch(self, batch: BatchRow, record_ids: Sequence[str]) -> int:
        """Put back a batch known from the ledger (a rebuild); returns the rows it claimed."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO batches (sequence, file_name, record_count, status, sha256, bytes, "
                "created, uploaded, acknowledged, content_sha256) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (batch.sequence, batch.file_name, batch.record_count, batch.status, batch.sha256,
                 batch.bytes, batch.created, batch.uploaded, batch.acknowledged,
                 batch.content_sha256 or batch.sha256),
            )  # fmt: skip
            before = db.total_changes
            db.executemany(
                "UPDATE icdrs SET batch_seq = ? WHERE record_id = ? AND batch_seq IS NULL",
                [(batch.sequence, rid) for rid in record_ids],
            )
            return db.total_changes - before

    def drop_unbatched_through(self, source_id: str, seq: int) -> int:
        """Delete unbatched rows of ``source_id`` up to journal ``seq`` (a rebuild: they were in
        batches retention purged after their receipts); returns how many."""
        with self.transaction() as db:
            return db.execute(
                "DELETE FROM icdrs WHERE source_id = ? AND seq <= ? AND batch_seq IS NULL",
                (source_id, seq),
            ).rowcount

    def set_purged_through(self, sequence: int) -> None:
        """Batch numbers up to ``sequence`` are taken (a rebuild: files and ledger say so)."""
        if sequence > self.purged_through():
            self.set_state(AGENT_STATE, PURGED_SEQUENCE_KEY, str(sequence))

    def batch_extent(self, sequence: int) -> dict[str, int]:
        """Per source, the highest journal sequence of the batch's records."""
        rows = self._rows(
            "SELECT source_id, MAX(seq) AS top FROM icdrs WHERE batch_seq = ? GROUP BY source_id",
            (sequence,),
        )
        return {str(r["source_id"]): int(r["top"]) for r in rows}

    def batch_bodies(self, sequence: int) -> list[str]:
        return [row.body for row in self.batch_rows(sequence)]

    def batch_rows(self, sequence: int) -> list[SpooledRow]:
        """A batch's rows, in the order it was sealed with."""
        rows = self._rows(
            "SELECT record_id, body, created FROM icdrs WHERE batch_seq = ? ORDER BY rowid",
            (sequence,),
        )
        return [
            SpooledRow(r["record_id"].partition(SUPERSEDED_MARK)[0], r["body"], r["created"])
            for r in rows
        ]

    def batches(self, *, status: BatchStatus | None = None) -> list[BatchRow]:
        where, params = ("WHERE status = ?", (str(status),)) if status else ("", ())
        rows = self._rows(f"SELECT * FROM batches {where} ORDER BY sequence", params)
        return [_batch_row(r) for r in rows]

    def batch_named(self, file_name: str) -> BatchRow | None:
        rows = self._rows("SELECT * FROM batches WHERE file_name = ?", (file_name,))
        return _batch_row(rows[0]) if rows else None

    def replace_batch_file(self, sequence: int, *, sha256: str, size: int) -> None:
        """A sealed, never-uploaded batch got a new file (CMS output differs per sealing)."""
        with self.transaction() as db:
            changed = db.execute(
                "UPDATE batches SET sha256 = ?, bytes = ? WHERE sequence = ? AND status = ?",
                (sha256, size, sequence, BatchStatus.SEALED),
            ).rowcount
        if changed != 1:
            raise SpoolError(f"batch {sequence} is not a sealed batch; its file cannot change")

    def acknowledge(self, file_name: str, *, sha256: str, receipt: str, at: datetime) -> AckOutcome:
        """Record a verified receipt: the data centre holds this batch file."""
        with self.transaction() as db:
            rows = list(_query(db, "SELECT * FROM batches WHERE file_name = ?", (file_name,)))
            if not rows:
                return AckOutcome.UNKNOWN
            batch = _batch_row(rows[0])
            if batch.sha256 != sha256:
                return AckOutcome.MISMATCH
            if batch.status is BatchStatus.ACKNOWLEDGED:
                return AckOutcome.ALREADY
            # a sealed batch can be acknowledged too: uploaded by a session that died before
            # recording it, then stored; there is nothing left to send
            db.execute(
                "UPDATE batches SET status = ?, acknowledged = ?, receipt = ?, "
                "uploaded = COALESCE(uploaded, ?) WHERE sequence = ?",
                (BatchStatus.ACKNOWLEDGED, format_time(at), receipt, format_time(at),
                 batch.sequence),
            )  # fmt: skip
        return AckOutcome.ACKNOWLEDGED

    def purge_acknowledged(self, *, before: datetime) -> list[BatchRow]:
        """Delete acknowledged batches (row and ICDRs) acknowledged before ``before``.

        Returns them, so the caller deletes their files after this commit. Only the status
        ``acknowledged`` qualifies: whatever else happens, unacknowledged records stay.
        """
        with self.transaction() as db:
            # times compare as datetimes: ISO text with and without microseconds does not sort
            batches = [
                batch for batch in self._batches_in(db, BatchStatus.ACKNOWLEDGED)
                if parse_time("acknowledged", batch.acknowledged) < before
            ]  # fmt: skip
            if not batches:
                return []
            for batch in batches:
                db.execute("DELETE FROM icdrs WHERE batch_seq = ?", (batch.sequence,))
                db.execute(
                    "DELETE FROM batches WHERE sequence = ? AND status = ?",
                    (batch.sequence, BatchStatus.ACKNOWLEDGED),
                )
            db.execute(
                "INSERT INTO state (source_id, key, value) VALUES (?, ?, ?) "
                "ON CONFLICT (source_id, key) DO UPDATE SET "
                "value = MAX(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))",
                (AGENT_STATE, PURGED_SEQUENCE_KEY, str(batches[-1].sequence)),
            )
        return batches

    def purged_through(self) -> int:
        """The highest batch sequence number retention has deleted (0: none)."""
        return int(self.get_state(AGENT_STATE, PURGED_SEQUENCE_KEY) or 0)

    def requeue(self, *, since: datetime, until: datetime | None = None) -> list[BatchRow]:
        """Batches created in [since, until) that were sent (acknowledged or still awaiting a
        receipt) become sealed again, to be re-sent. A batch the data centre quarantined never
        gets a receipt, so a technician's re-send must include the unacknowledged ones."""
        with self.transaction() as db:
            batches = [
                batch
                for status in (BatchStatus.ACKNOWLEDGED, BatchStatus.UPLOADED)
                for batch in self._batches_in(db, status)
                if since <= parse_time("created", batch.created)
                and (until is None or parse_time("created", batch.created) < until)
            ]
            self._reseal(db, batches)
        return batches

    def requeue_overdue(self, *, uploaded_before: datetime) -> list[BatchRow]:
        """Uploaded batches still without a receipt since before ``uploaded_before`` become
        sealed again: the file was lost or quarantined in the landing area, or the data centre
        has not ingested it; sending it again is harmless (same name, same bytes)."""
        with self.transaction() as db:
            batches = [
                batch
                for batch in self._batches_in(db, BatchStatus.UPLOADED)
                if batch.uploaded is not None
                and parse_time("uploaded", batch.uploaded) < uploaded_before
            ]
            self._reseal(db, batches)
        return batches

    @staticmethod
    def _reseal(db: sqlite3.Connection, batches: list[BatchRow]) -> None:
        db.executemany(
            "UPDATE batches SET status = ?, uploaded = NULL, acknowledged = NULL "
            "WHERE sequence = ? AND status = ?",
            [(BatchStatus.SEALED, b.sequence, b.status) for b in batches],
        )

    @staticmethod
    def _batches_in(db: sqlite3.Connection, status: BatchStatus) -> list[BatchRow]:
        rows = _query(db, "SELECT * FROM batches WHERE status = ? ORDER BY sequence", (status,))
        return [_batch_row(r) for r in rows]

    def mark_uploaded(self, sequence: int, *, at: datetime) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE batches SET status = ?, uploaded = ? WHERE sequence = ? AND status = ?",
                (BatchStatus.UPLOADED, format_time(at), sequence, BatchStatus.SEALED),
            )

    def batch_counts(self) -> dict[BatchStatus, int]:
        rows = self._rows("SELECT status, COUNT(*) AS n FROM batches GROUP BY status")
        counts = dict.fromkeys(BatchStatus, 0)
        counts.update({BatchStatus(r["status"]): int(r["n"]) for r in rows})
        return counts

    # --- accounting -----------------------------------------------------------------------

    def usage(self) -> SpoolUsage:
        """Bytes the agent's state uses against the effective quota (module docstring)."""
        with self._lock, self._mapped("size"):
            page_size = self.db.execute("PRAGMA page_size").fetchone()[0]
            pages = self.db.execute("PRAGMA page_count").fetchone()[0]
            free = self.db.execute("PRAGMA freelist_count").fetchone()[0]
        wal = self.path.with_name(self.path.name + "-wal")
        wal_bytes = wal.stat().st_size if wal.exists() else 0
        shm = self.path.with_name(self.path.name + "-shm")
        used = (pages - free) * page_size + wal_bytes + (shm.stat().st_size if shm.exists() else 0)
        used += self._folder_bytes()
        disk = os.statvfs(self.path.parent)
        free_bytes = disk.f_bavail * disk.f_frsize
        keep = max(self.min_free_bytes,
                   int(disk.f_blocks * disk.f_frsize * self.min_free_percent / 100))  # fmt: skip
        room = used + free_bytes - keep
        return SpoolUsage(used, max(min(self.quota_bytes, room), 0), free_bytes=free_bytes,
                          min_free_bytes=keep, disk_limited=room < self.quota_bytes)  # fmt: skip

    def _folder_bytes(self) -> int:
        """Bytes in the agent's folders, walked at most every ``FOLDER_SCAN_SECONDS``: sent/
        can hold thousands of files, and sources ask about room every second."""
        checked, total = self._folders
        now = time.monotonic()
        if now - checked >= FOLDER_SCAN_SECONDS:
            total = sum(_bytes_under(self.path.parent / folder) for folder in AGENT_FOLDERS)
            self._folders = (now, total)
        return total

    def source_counts(self, source_id: str) -> SourceCounts:
        rows = self._rows(
            "SELECT COUNT(*) AS spooled, "
            "COALESCE(SUM(batch_seq IS NULL), 0) AS unbatched, MAX(created) AS last "
            "FROM icdrs WHERE source_id = ?",
            (source_id,),
        )
        quarantined = self._rows(
            "SELECT COUNT(*) AS n FROM quarantine WHERE source_id = ?", (source_id,)
        )
        return SourceCounts(
            source_id=source_id,
            cursor=self.cursor(source_id),
            spooled=int(rows[0]["spooled"]),
            unbatched=int(rows[0]["unbatched"]),
            quarantined=int(quarantined[0]["n"]),
            last_record_at=rows[0]["last"],
        )

    def quarantined(self, source_id: str) -> list[Quarantined]:
        rows = self._rows(
            "SELECT source_id, seq, reason, detail, raw FROM quarantine WHERE source_id = ? "
            "ORDER BY id",
            (source_id,),
        )
        return [
            Quarantined(r["source_id"], r["seq"], r["reason"], r["detail"], bytes(r["raw"]))
            for r in rows
        ]

    def record_ids(self, source_id: str) -> list[str]:
        """The spool keys of a source's rows (a superseded version keeps its marked key)."""
        rows = self._rows(
            "SELECT record_id FROM icdrs WHERE source_id = ? ORDER BY rowid", (source_id,)
        )
        return [r["record_id"] for r in rows]

    def bodies(self, source_id: str) -> list[str]:
        """The ICDR JSON of a source's current rows (not the versions superseded), in order."""
        rows = self._rows(
            "SELECT record_id, body FROM icdrs WHERE source_id = ? ORDER BY rowid", (source_id,)
        )
        return [r["body"] for r in rows if SUPERSEDED_MARK not in r["record_id"]]


def open_spool(settings: AgentSettings, *, verify: bool = False) -> Spool:
    """The spool of a configured agent, with its quota and free-disk minimum."""
    return Spool.open(
        settings.agent.state_dir,
        quota_bytes=settings.spool.quota_bytes,
        min_free_bytes=settings.spool.min_free_bytes,
        min_free_percent=settings.spool.min_free_percent,
        verify=verify,
    )


def _is_damage(exc: BaseException | None) -> bool:
    """SQLite's own word for a damaged file (an OperationalError is a lock, a full disk...)."""
    return isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError)


def _corrupt_message(path: Path, detail: str) -> str:
    return (
        f"spool {path} is damaged ({detail}): run `edge-agent spool rebuild` (it sets the file "
        "aside, never deleting it, and rebuilds the spool from the journal)"
    )


def _bytes_under(directory: Path) -> int:
    """Bytes of the regular files under ``directory`` (a file deleted meanwhile counts 0)."""
    total = 0
    for root, _, files in os.walk(directory):
        for name in files:
            with contextlib.suppress(FileNotFoundError):
                total += (Path(root) / name).lstat().st_size
    return total


def _batch_row(r: dict[str, Any]) -> BatchRow:
    return BatchRow(
        sequence=r["sequence"], file_name=r["file_name"], record_count=r["record_count"],
        status=BatchStatus(r["status"]), sha256=r["sha256"], bytes=r["bytes"],
        created=r["created"], uploaded=r["uploaded"],
        content_sha256=r.get("content_sha256") or r["sha256"], acknowledged=r.get("acknowledged"),
    )  # fmt: skip


def _spoolable(
    source_id: str, records: Sequence[tuple[int, ICDR]], created: str
) -> tuple[list[tuple[str, str, int, str, str]], list[Quarantined]]:
    """The ``icdrs`` rows of the records, and the records no UTF-8 file can hold, quarantined.

    A record with a lone surrogate (a driver bug) would otherwise fail the whole store, and
    the source would retry it for ever behind its cursor. Only non-ASCII JSON is looked at.
    """
    rows: list[tuple[str, str, int, str, str]] = []
    refused: list[Quarantined] = []
    for seq, rec in records:
        body = rec.to_json()
        field = None if body.isascii() else lone_surrogate_field(rec)
        if field is None:
            rows.append((rec.record_id, source_id, seq, body, created))
            continue
        refused.append(
            Quarantined(
                source_id, seq, "invalid_record",
                f"field {field} holds a lone surrogate (U+D800-U+DFFF), which no UTF-8 file can "
                "carry: a driver bug; the record's raw text is kept here",
                rec.raw.encode("utf-8", "surrogatepass"),
            )
        )  # fmt: skip
    return rows, refused


def _query(
    db: sqlite3.Connection, sql: str, params: Sequence[Any] = ()
) -> Iterator[dict[str, Any]]:
    """The rows of ``sql`` as dicts keyed by column name."""
    cursor = db.execute(sql, params)
    names = [column[0] for column in cursor.description]
    for row in cursor:
        yield dict(zip(names, row, strict=True))
