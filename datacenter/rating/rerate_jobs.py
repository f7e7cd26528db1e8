"""Re-rating split into (tenant, local day) jobs that several worker processes take in turn.

Contract:

- ``rerate_with_workers(url, tenant_id, since=..., until=..., zone=..., workers=N)`` does what
  ``rerate.rerate`` does, with N processes: each opens its own engine on ``url`` and loads the
  tenant's rating configuration once, then takes days from a shared queue
  (``rerate.rerate_day``: one transaction per day, retried through a store outage). Days share no
  rows, so the result is the same as one process's, in any order; the report adds the days up.
- ``workers=1`` runs in this process (``rerate.rerate``). Progress is reported per finished day.
- The queue lives in the command that started the workers: jobs are not claimed through the
  store, so two ``datacenter rerate`` runs of the same month would both do it (the second finds
  every call unchanged and writes nothing). Claiming jobs through the store is planned
  (docs/scale.md).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from datacenter.rating.rerate import RerateReport, local_days, rerate, rerate_day
from datacenter.rating.store import RatingConfig, load_rating_config
from datacenter.store.engine import open_store

_engine: sa.Engine | None = None  # one per worker process
_config: RatingConfig | None = None


def rerate_with_workers(
    url: str,
    tenant_id: int,
    *,
    since: datetime,
    until: datetime,
    zone: ZoneInfo,
    workers: int,
    progress: Callable[[int], None] | None = None,
    now: datetime | None = None,
) -> RerateReport:
    """Re-rate the tenant's calls in ``[since, until)`` with ``workers`` processes, a day a job."""
    stamp = now or datetime.now(UTC)
    if workers <= 1:
        engine = open_store(url)
        try:
            return rerate(engine, tenant_id, since=since, until=until, zone=zone,
                          progress=progress, now=stamp)  # fmt: skip
        finally:
            engine.dispose()
    report = RerateReport()
    context = multiprocessing.get_context("spawn")  # no inherited connections or locks
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_start,
                             initargs=(url, tenant_id)) as pool:  # fmt: skip
        jobs = [pool.submit(_job, tenant_id, day, stamp) for day in local_days(since, until, zone)]
        for done in as_completed(jobs):
            day = done.result()
            report.add(day)
            if progress is not None:
                progress(day.examined)
    return report


def _start(url: str, tenant_id: int) -> None:
    global _engine, _config
    _engine = open_store(url)
    with _engine.connect() as conn:
        _config = load_rating_config(conn, tenant_id)


def _job(tenant_id: int, day: tuple[datetime, datetime], stamp: datetime) -> RerateReport:
    assert _engine is not None and _config is not None  # set by _start in this process
    return rerate_day(_engine, _config, tenant_id, day, stamp)
