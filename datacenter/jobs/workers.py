"""Queue a request's store jobs and run worker processes until every one of them is finished.

Contract:

- ``queue_and_run(url, tenant_id, kind, days, workers=N)`` queues the tenant's ``kind`` job of
  each day (``store.jobs.queue_jobs``), then runs N workers until each of those jobs is ``done``
  or ``failed``, and returns their rows (results, errors). ``workers=1`` works in this process;
  more are separate processes (spawned: no inherited connections), each with its own engine.
- Workers take *any* job, and any other worker (``datacenter ingest --watch``, ``datacenter
  jobs run``, on any host) takes these: whoever is free helps, and the request is finished when
  its jobs are, whoever ran them. A worker process that dies leaves its claim to expire
  (``timeout``) and be taken over by the others; if every worker died, ``JobsUnfinished``.
- ``progress(finished)`` is called with the count of the request's jobs finished so far.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from time import sleep

from datacenter.ingest.worker import new_worker_id
from datacenter.jobs.run import POLL_SECONDS, unfinished, work_until_finished
from datacenter.store.engine import open_store
from datacenter.store.jobs import JobKey, JobRow, list_jobs, queue_jobs
from shared.errors import StoreError


class JobsUnfinished(StoreError):
    """Every worker of a request stopped before its jobs were finished."""

    exit_code = 13


def queue_and_run(
    url: str,
    tenant_id: int,
    kind: str,
    days: Iterable[date],
    *,
    workers: int,
    timeout: float,
    now: datetime,
    progress: Callable[[int], None] | None = None,
) -> list[JobRow]:
    """Queue the jobs, run ``workers`` workers until they are finished, return their rows."""
    engine = open_store(url)
    try:
        keys = queue_jobs(engine, tenant_id, kind, days, now=now)
        run_workers(url, keys, workers=workers, timeout=timeout, progress=progress)
        return list_jobs(engine, keys=keys)
    finally:
        engine.dispose()


def run_workers(
    url: str,
    keys: Sequence[JobKey],
    *,
    workers: int,
    timeout: float,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Run ``workers`` workers until every job of ``keys`` is finished (module doc)."""
    total = len(keys)

    def report(left: int) -> None:
        if progress is not None:
            progress(total - left)

    if workers <= 1:
        _work(url, timeout, keys, report)
        return
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_work, args=(url, timeout, keys), daemon=True)
        for _ in range(workers)
    ]
    for process in processes:
        process.start()
    engine = open_store(url)
    try:
        while any(process.is_alive() for process in processes):
            report(unfinished(engine, keys))
            sleep(POLL_SECONDS)
        left = unfinished(engine, keys)
        report(left)
    finally:
        engine.dispose()
        for process in processes:
            process.join()
    if left:
        raise JobsUnfinished(
            f"{left} job(s) unfinished: every worker stopped (see their log); run "
            "`datacenter jobs run` to finish them"
        )


def _work(
    url: str, timeout: float, keys: Sequence[JobKey], progress: Callable[[int], None] | None = None
) -> None:
    engine = open_store(url)
    try:
        work_until_finished(engine, worker=new_worker_id(), timeout=timeout, keys=keys,
                            progress=progress)  # fmt: skip
    finally:
        engine.dispose()
