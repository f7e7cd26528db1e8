"""Claim and run store jobs in this process (``datacenter.store.jobs`` is the protocol).

Contract:

- ``run_next_job`` claims one job of any kind and tenant and runs it: the work
  (``datacenter.jobs.kinds``) and the job's completion in one transaction that first locks the
  job as ours. It answers what happened (``RunOutcome``) or None when no job could be taken.
  An exception from the work is the job's (``record_failure``: retried up to
  ``store.jobs.MAX_ATTEMPTS``, then ``failed`` with its error), except a store outage
  (``OperationalError``), which is the worker's: it propagates and the claim, still ours, is
  taken back on the worker's next claim.
- ``work_until_finished`` runs jobs until every one of the given keys is finished (``done`` or
  ``failed``): it takes any job meanwhile (so it helps whoever queued them) and, when none is
  free, waits ``poll`` seconds for another worker's claim to end or expire. A store outage is
  waited out for up to ``rerate.STORE_OUTAGE_SECONDS`` (its claim is taken back at once).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from time import monotonic, sleep

import sqlalchemy as sa

from datacenter.jobs.kinds import KINDS
from datacenter.rating.rerate import STORE_OUTAGE_SECONDS
from datacenter.store.engine import write_transaction
from datacenter.store.jobs import (
    Job,
    JobKey,
    LostJob,
    claim_job,
    finish,
    lock_claimed,
    record_failure,
    unfinished_keys,
)

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5


@dataclass(frozen=True, slots=True)
class RunOutcome:
    job: Job
    status: str  # done, queued (asked again meanwhile, or failed and retried), failed, lost
    error: str | None = None


def run_next_job(engine: sa.Engine, *, worker: str, timeout: float) -> RunOutcome | None:
    """Claim and run one job (module doc); None when none could be taken."""
    job = claim_job(engine, worker=worker, timeout=timeout)
    if job is None:
        return None
    return run_job(engine, job)


def run_job(engine: sa.Engine, job: Job) -> RunOutcome:
    work = KINDS[job.kind]
    try:
        with write_transaction(engine) as conn:
            lock_claimed(conn, job)
            status = finish(conn, job, work(conn, job), now=datetime.now(UTC))
    except LostJob:
        log.warning("%s: taken over by another worker, left to it", _name(job))
        return RunOutcome(job, "lost")
    except sa.exc.OperationalError:
        raise  # the store's, not the job's: the worker retries, the claim is still ours
    except Exception as exc:  # the job's own failure, whatever it is: record it, go on
        error = f"{type(exc).__name__}: {exc}"
        status = record_failure(engine, job, error)
        log.error("%s attempt %d: %s (%s)", _name(job), job.attempts, error, status)
        return RunOutcome(job, status, error)
    log.info("%s: %s", _name(job), status)
    return RunOutcome(job, status)


def _name(job: Job) -> str:
    return f"{job.kind} job of tenant {job.tenant_id} for {job.day}"


def unfinished(engine: sa.Engine, keys: Sequence[JobKey]) -> int:
    """How many of these jobs are not yet ``done`` or ``failed``."""
    waiting = unfinished_keys(engine)
    return sum(key in waiting for key in keys)


def work_until_finished(
    engine: sa.Engine,
    *,
    worker: str,
    timeout: float,
    keys: Sequence[JobKey],
    poll: float = POLL_SECONDS,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Run jobs until all of ``keys`` are finished (module doc); ``progress(unfinished)`` now
    and then (at most every ``poll`` seconds: counting reads every key)."""
    counted = 0.0
    give_up: float | None = None  # while the store is unreachable: until when to keep trying
    while True:
        try:
            ran = run_next_job(engine, worker=worker, timeout=timeout) is not None
            give_up = None
        except sa.exc.OperationalError as exc:  # a restart, a failover: our claim stays ours
            give_up = give_up or monotonic() + STORE_OUTAGE_SECONDS
            if monotonic() >= give_up:
                raise
            log.warning("store unreachable running jobs (%s): trying again", exc.orig)
            sleep(poll)
            continue
        if ran and monotonic() - counted < poll:
            continue
        left = unfinished(engine, keys)
        counted = monotonic()
        if progress is not None:
            progress(left)
        if left == 0:
            return
        if not ran:
            sleep(poll)
