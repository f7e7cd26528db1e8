"""The claim protocol: which worker ingests a landed file, decided through the store.

- A worker takes a file only by *claiming* it: an insert into ``landed_files`` on the unique key
  ``(tenant_id, file_name)``. Exactly one claim wins; the others skip the file (``busy``). A
  claim older than ``ingest.claim_timeout_seconds`` is from a dead worker and is taken over by a
  compare-and-set on the old claim, so two workers cannot both take it. A worker's own claim
  (an earlier pass of it failed, e.g. the store restarted) is taken back at once.
- A file already stored under that name is ``resent`` (same SHA-256) or a ``conflict``.
- The claim is taken *before* the file is read (only its SHA-256 is streamed first, in constant
  memory), so a worker that dies while reading, decrypting or decompressing it leaves its claim
  behind. ``attempts`` counts the claims; an expired claim already taken ``MAX_READ_ATTEMPTS``
  times is not taken over again: the row becomes ``quarantined`` with ``CRASH_REASON`` and the
  caller moves the file away unread (``crashed``). One crash may be bad luck (power, OOM killer
  for another reason), two on the same file are the file.
- ``our_claim`` is the condition every later update of the row adds, so a worker whose claim was
  taken over changes nothing (``LostClaim``). ``mark_quarantined`` and ``record_conflict`` write
  the row's end when a file is kept for a technician.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from datacenter.ingest.files import Landed
from datacenter.store.dialect import dialect_insert
from datacenter.store.engine import write_transaction
from datacenter.store.tables.core import landed_files
from shared.crashpoints import crash_point

log = logging.getLogger(__name__)

MAX_READ_ATTEMPTS = 2
CRASH_REASON = (
    "reading this file crashed the worker {attempts} time(s) (its claim was left behind, last by "
    "{worker}): kept unread so ingest goes on; look at the worker's log and report it with the file"
)


class LostClaim(Exception):
    """Another worker took over this file's claim (ours had expired); leave the file to it."""


def claim_file(engine: sa.Engine, landed: Landed, *, worker: str, timeout: float) -> str:
    """``claimed`` (ours), ``busy`` (another worker's live claim), ``resent``, ``conflict``, or
    ``crashed`` (the row is now quarantined with ``CRASH_REASON``: move the file, do not read it).
    """
    outcome = _claim(engine, landed, worker=worker, timeout=timeout)
    if outcome == "claimed":
        crash_point("ingest.claimed")  # fault tests: killed holding the claim, file unread
    return outcome


def _claim(engine: sa.Engine, landed: Landed, *, worker: str, timeout: float) -> str:
    now = datetime.now(UTC)
    key = (landed_files.c.tenant_id == landed.tenant.tenant_id) & (
        landed_files.c.file_name == landed.name
    )
    values = {
        "tenant_id": landed.tenant.tenant_id,
        "file_name": landed.name,
        "agent_id": landed.agent_id,
        "sequence": landed.sequence,
        "sha256": landed.sha256,
        "size": landed.size,
        "status": "claimed",
        "claimed_by": worker,
        "claimed_at": now,
    }
    with write_transaction(engine) as conn:
        # RETURNING says whether the row went in (rowcount of an INSERT is not portable).
        insert = (
            dialect_insert(conn, landed_files)
            .values(**values)
            .on_conflict_do_nothing()
            .returning(landed_files.c.file_name)
        )
        if conn.execute(insert).first() is not None:
            return "claimed"
        # SKIP LOCKED: on PostgreSQL a row another worker is busy taking over is not waited for.
        row = conn.execute(
            sa.select(landed_files).where(key).with_for_update(skip_locked=True)
        ).one_or_none()
        if row is None:
            return "busy"
        if row.status in ("stored", "duplicate"):
            return "resent" if row.sha256 == landed.sha256 else "conflict"
        expired = row.status == "claimed" and row.claimed_at < now - timedelta(seconds=timeout)
        # Our own claim: an earlier pass of this worker failed (the store went away) before
        # finishing the file. A worker id runs one pass at a time, so take it back at once.
        ours = row.status == "claimed" and row.claimed_by == worker
        if row.status != "quarantined" and not expired and not ours:
            return "busy"
        # Compare-and-set on the old claim, so two workers cannot both take it over.
        takeover = (
            landed_files.update()
            .where(key, landed_files.c.status == row.status)
            .where(landed_files.c.claimed_by == row.claimed_by)
            .where(landed_files.c.claimed_at == row.claimed_at)
        )
        if expired and not ours and row.attempts >= MAX_READ_ATTEMPTS:
            reason = CRASH_REASON.format(attempts=row.attempts, worker=row.claimed_by)
            crashed = takeover.values(status="quarantined", reason=reason, finished_at=now)
            return "crashed" if conn.execute(crashed).rowcount == 1 else "busy"
        # A file moved back from quarantine starts counting again; our own retry is no crash.
        attempts = row.attempts if ours else row.attempts + 1 if expired else 1
        fresh = {"reason": None, "records": None, "inserted": None, "duplicates": None}
        if conn.execute(takeover.values(**values, **fresh, attempts=attempts)).rowcount == 1:
            log.info("%s: took over claim from %s", landed.name, row.claimed_by)
            return "claimed"
        return "busy"


def our_claim(landed: Landed, worker: str) -> tuple[sa.ColumnElement[bool], ...]:
    return (
        landed_files.c.tenant_id == landed.tenant.tenant_id,
        landed_files.c.file_name == landed.name,
        landed_files.c.status == "claimed",
        landed_files.c.claimed_by == worker,
    )


def mark_quarantined(engine: sa.Engine, landed: Landed, reason: str, *, worker: str) -> bool:
    """End our claim as ``quarantined`` with the reason; False if the claim was lost."""
    with write_transaction(engine) as conn:
        done = conn.execute(
            landed_files.update()
            .where(*our_claim(landed, worker))
            .values(status="quarantined", reason=reason, finished_at=datetime.now(UTC))
        )
        return bool(done.rowcount == 1)


def record_conflict(
    engine: sa.Engine, landed: Landed, name: str, reason: str, *, worker: str
) -> None:
    """A row for a different file under a name already stored, kept as ``name`` (quarantined)."""
    now = datetime.now(UTC)
    with write_transaction(engine) as conn:
        conn.execute(
            dialect_insert(conn, landed_files)
            .values(
                tenant_id=landed.tenant.tenant_id,
                file_name=name,
                agent_id=landed.agent_id,
                sequence=landed.sequence,
                sha256=landed.sha256,
                size=landed.size,
                status="quarantined",
                reason=reason,
                claimed_by=worker,
                claimed_at=now,
                finished_at=now,
            )
            .on_conflict_do_nothing()
        )


def crash_reason(engine: sa.Engine, landed: Landed) -> str:
    """The reason ``claim_file`` wrote when it answered ``crashed``."""
    with engine.connect() as conn:
        reason = conn.execute(
            sa.select(landed_files.c.reason).where(
                landed_files.c.tenant_id == landed.tenant.tenant_id,
                landed_files.c.file_name == landed.name,
            )
        ).scalar_one()
    return str(reason)


def stored_file(engine: sa.Engine, landed: Landed) -> tuple[int, datetime | None]:
    """How many records the stored file of this name held, and when it was committed."""
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(landed_files.c.records, landed_files.c.finished_at).where(
                landed_files.c.tenant_id == landed.tenant.tenant_id,
                landed_files.c.file_name == landed.name,
            )
        ).one()
    return row.records or 0, row.finished_at
