"""The store-jobs protocol: queue (tenant, kind, day) jobs, claim one, finish or fail it.

Contract (table: ``datacenter.store.tables.jobs``):

- ``queue_jobs`` inserts a job per day or asks again for one already there: a finished (``done``
  or ``failed``) job goes back to ``queued`` with its attempts reset; a claimed one keeps running
  and its new ``requested_at`` sends it back to ``queued`` when it finishes (``finish``).
- ``claim_job`` takes first a job ``claimed`` longer than ``timeout`` seconds ago (a dead
  worker's) or by this very worker (an earlier attempt of it failed on the store), else the
  oldest request's ``queued`` job. On PostgreSQL the candidate row is read ``FOR UPDATE SKIP LOCKED``, so
  workers never wait on each other and never take the same row; on SQLite the claim is one
  ``BEGIN IMMEDIATE`` transaction, so claims are serialised. ``attempts`` counts claims. An
  expired claim already taken ``MAX_ATTEMPTS`` times is not taken again: the job becomes
  ``failed`` with ``DIED_REASON`` (the job kills its worker: retrying forever helps no one).
- A job's work and its completion (``finish``) run in *one* transaction that first locks the
  job row as ours (``lock_claimed``; ``datacenter.jobs.run`` does it) (``FOR UPDATE``; SQLite: the write lock). So a job's effect commits
  exactly once with its ``done``: a worker killed mid-job leaves nothing but its claim, and a
  running job cannot be taken over (its row is locked, and ``SKIP LOCKED`` passes it by; on
  SQLite no claim runs during another transaction). A worker whose claim was taken over before
  its transaction began gets ``LostJob`` and changes nothing.
- ``record_failure`` ends an attempt that raised: ``queued`` again with its ``error`` while
  ``attempts < MAX_ATTEMPTS``, else ``failed``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from datacenter.store.dialect import dialect_insert
from datacenter.store.engine import write_transaction
from datacenter.store.tables.jobs import store_jobs
from shared.crashpoints import crash_point

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
DIED_REASON = "its worker died holding it {attempts} time(s) (last {worker}): not taken again"
ERROR_CHARS = 2_000  # of an exception's text kept in ``error``
FINISHED = ("done", "failed")

JobKey = tuple[int, str, date]  # (tenant_id, kind, day)


class LostJob(Exception):
    """Another worker took this job over (our claim had expired); leave it to it."""


@dataclass(frozen=True, slots=True)
class Job:
    """A claimed job, as the claim saw it."""

    tenant_id: int
    kind: str
    day: date
    requested_at: datetime
    attempts: int
    worker: str

    @property
    def key(self) -> JobKey:
        return (self.tenant_id, self.kind, self.day)


def queue_jobs(
    engine: sa.Engine, tenant_id: int, kind: str, days: Iterable[date], *, now: datetime
) -> list[JobKey]:
    """Queue (or ask again for) the tenant's ``kind`` job of each day; the keys queued."""
    wanted = sorted(set(days))
    rows = [
        {"tenant_id": tenant_id, "kind": kind, "day": day, "status": "queued",
         "requested_at": now, "attempts": 0}
        for day in wanted
    ]  # fmt: skip
    with write_transaction(engine) as conn:
        for start in range(0, len(rows), 1_000):
            insert = dialect_insert(conn, store_jobs)
            running = store_jobs.c.status == "claimed"
            conn.execute(
                insert.on_conflict_do_update(
                    index_elements=["tenant_id", "kind", "day"],
                    set_={
                        "requested_at": insert.excluded.requested_at,
                        "status": sa.case((running, store_jobs.c.status), else_="queued"),
                        "attempts": sa.case((running, store_jobs.c.attempts), else_=0),
                        "error": sa.case((running, store_jobs.c.error), else_=None),
                        "finished_at": sa.case((running, store_jobs.c.finished_at), else_=None),
                    },
                ),
                rows[start : start + 1_000],
            )
    return [(tenant_id, kind, day) for day in wanted]


def claim_job(
    engine: sa.Engine,
    *,
    worker: str,
    timeout: float,
    now: datetime | None = None,
) -> Job | None:
    """Claim the next job (module doc); None when there is none to take."""
    stamp = now or datetime.now(UTC)
    expired = stamp - timedelta(seconds=timeout)
    c = store_jobs.c
    # Claimed rows are few (one per live or dead worker): a dead worker's or our own first, so
    # a long queue does not keep them waiting; then the oldest request's queued jobs. Each query
    # is answered by an index on (status, ...), so a claim costs the same whatever the queue.
    candidates = (
        sa.select(store_jobs)
        .where(c.status == "claimed", sa.or_(c.claimed_at < expired, c.claimed_by == worker))
        .order_by(c.claimed_at),
        sa.select(store_jobs)
        .where(c.status == "queued")
        .order_by(c.requested_at, c.tenant_id, c.kind, c.day),
    )
    job = None
    with write_transaction(engine) as conn:
        for query in candidates:
            job = _first_taken(conn, query, worker=worker, now=stamp)
            if job is not None:
                break
    if job is not None:
        crash_point("jobs.claimed")  # fault tests: killed holding the claim, before any work
    return job


def _first_taken(
    conn: sa.Connection, query: sa.Select[Any], *, worker: str, now: datetime
) -> Job | None:
    """Take the first row of ``query`` not locked by another worker (SKIP LOCKED); a row that
    ``_take`` fails instead (its workers kept dying) is passed over for the next."""
    while True:
        row = conn.execute(query.limit(1).with_for_update(skip_locked=True)).one_or_none()
        if row is None:
            return None
        job = _take(conn, row, worker=worker, now=now)
        if job is not None:
            return job


def _take(conn: sa.Connection, row: Any, *, worker: str, now: datetime) -> Job | None:
    """Compare-and-set the row to our claim; None when it was failed instead (or lost)."""
    c = store_jobs.c
    same = store_jobs.update().where(
        c.tenant_id == row.tenant_id, c.kind == row.kind, c.day == row.day,
        c.status == row.status, c.attempts == row.attempts,
    )  # fmt: skip
    died = row.status == "claimed" and row.claimed_by != worker
    if died and row.attempts >= MAX_ATTEMPTS:
        reason = DIED_REASON.format(attempts=row.attempts, worker=row.claimed_by)
        conn.execute(same.values(status="failed", error=reason, finished_at=now))
        log.error("job %s %s %s failed: %s", row.tenant_id, row.kind, row.day, reason)
        return None
    ours = row.status == "claimed" and not died
    attempts = row.attempts if ours else row.attempts + 1
    taken = conn.execute(
        same.values(status="claimed", claimed_by=worker, claimed_at=now, attempts=attempts)
    )
    if taken.rowcount != 1:
        return None
    if died:
        log.info("job %s %s %s: took over claim from %s", row.tenant_id, row.kind, row.day,
                 row.claimed_by)  # fmt: skip
    return Job(row.tenant_id, row.kind, row.day, row.requested_at, attempts, worker)


def _ours(job: Job) -> tuple[sa.ColumnElement[bool], ...]:
    c = store_jobs.c
    return (
        c.tenant_id == job.tenant_id, c.kind == job.kind, c.day == job.day,
        c.status == "claimed", c.claimed_by == job.worker,
    )  # fmt: skip


def lock_claimed(conn: sa.Connection, job: Job) -> datetime:
    """Lock the job row as ours inside the job's transaction; its ``requested_at`` now."""
    requested = conn.execute(
        sa.select(store_jobs.c.requested_at).where(*_ours(job)).with_for_update()
    ).scalar_one_or_none()
    if requested is None:
        raise LostJob(f"{job.kind} job of tenant {job.tenant_id}, {job.day}")
    return requested  # type: ignore[no-any-return]


def finish(conn: sa.Connection, job: Job, result: dict[str, Any], *, now: datetime) -> str:
    """In the job's transaction: ``done``, or ``queued`` again if it was asked for meanwhile."""
    again = store_jobs.c.requested_at != job.requested_at
    status = conn.execute(
        store_jobs.update()
        .where(*_ours(job))
        .values(
            status=sa.case((again, "queued"), else_="done"),
            attempts=sa.case((again, 0), else_=store_jobs.c.attempts),
            result=result,
            error=None,
            finished_at=now,
        )
        .returning(store_jobs.c.status)
    ).scalar_one()
    return str(status)


def record_failure(engine: sa.Engine, job: Job, error: str) -> str:
    """An attempt raised: ``queued`` again or ``failed`` (module doc); the new status."""
    status = "failed" if job.attempts >= MAX_ATTEMPTS else "queued"
    with write_transaction(engine) as conn:
        conn.execute(
            store_jobs.update()
            .where(*_ours(job))
            .values(status=status, error=error[:ERROR_CHARS], finished_at=datetime.now(UTC))
        )
    return status


@dataclass(frozen=True, slots=True)
class JobRow:
    """A job as ``datacenter jobs list`` shows it."""

    tenant_id: int
    kind: str
    day: date
    status: str
    attempts: int
    claimed_by: str | None
    claimed_at: datetime | None
    finished_at: datetime | None
    error: str | None
    result: dict[str, Any] | None


def list_jobs(
    engine: sa.Engine,
    *,
    tenant_id: int | None = None,
    statuses: Sequence[str] = (),
    keys: Sequence[JobKey] = (),
) -> list[JobRow]:
    """Jobs, optionally of one tenant, with these statuses, or with these keys."""
    c = store_jobs.c
    query = sa.select(*(c[f.name] for f in fields(JobRow))).order_by(c.tenant_id, c.kind, c.day)
    if tenant_id is not None:
        query = query.where(c.tenant_id == tenant_id)
    if statuses:
        query = query.where(c.status.in_(statuses))
    found: list[JobRow] = []
    with engine.connect() as conn:
        if not keys:
            return [JobRow(*row) for row in conn.execute(query)]
        for start in range(0, len(keys), 500):  # tuple IN is not on SQLite: one tenant and kind
            chunk = keys[start : start + 500]
            for tenant, kind in sorted({(t, k) for t, k, _ in chunk}):
                days = [d for t, k, d in chunk if (t, k) == (tenant, kind)]
                where = (c.tenant_id == tenant, c.kind == kind, c.day.in_(days))
                found.extend(JobRow(*row) for row in conn.execute(query.where(*where)))
    return found


def status_counts(engine: sa.Engine) -> dict[tuple[str, str], int]:
    """Jobs per (kind, status) over every tenant."""
    c = store_jobs.c
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(c.kind, c.status, sa.func.count()).group_by(c.kind, c.status)
        ).all()
    return {(kind, status): int(count) for kind, status, count in rows}


def unfinished_keys(engine: sa.Engine) -> set[JobKey]:
    """Every job not yet ``done`` or ``failed``: one query, however many a request waits on."""
    c = store_jobs.c
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(c.tenant_id, c.kind, c.day).where(c.status.in_(("queued", "claimed")))
        ).all()
    return {(int(tenant), str(kind), day) for tenant, kind, day in rows}
