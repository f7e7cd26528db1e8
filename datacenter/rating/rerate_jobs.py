"""Re-rating as (tenant, local day) store jobs that any worker claims (``datacenter rerate``).

Contract:

- ``rerate_with_workers(url, tenant_id, first_day=..., last_day=..., workers=N)`` does what
  ``rerate.rerate`` does over the tenant's local days ``first_day..last_day``: it queues one
  ``rerate`` store job per day (``datacenter.store.jobs``) and runs N workers until every one is
  finished (``datacenter.jobs.workers``). Each job is ``rerate.rerate_day_in`` in the job's own
  transaction, with the request's time stamp, so days share no rows and the result is the same
  as one process's, in any order and whoever runs them (any ``datacenter ingest --watch`` or
  ``datacenter jobs run`` worker on any host helps). The report adds the days' results up.
- A day whose job failed (``failed`` after its attempts) is in ``RerateOutcome.failed`` with
  its error; the days that finished count in the report all the same.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from datacenter.jobs.workers import queue_and_run
from datacenter.rating.rerate import RerateReport
from datacenter.store.jobs import JobRow


@dataclass
class RerateOutcome:
    report: RerateReport
    failed: list[JobRow] = field(default_factory=list)


def rerate_with_workers(
    url: str,
    tenant_id: int,
    *,
    first_day: date,
    last_day: date,
    workers: int,
    timeout: float,
    progress: Callable[[int], None] | None = None,
    now: datetime | None = None,
) -> RerateOutcome:
    """Re-rate the tenant's local days ``first_day..last_day`` as store jobs (module doc)."""
    days = [first_day + timedelta(days=n) for n in range((last_day - first_day).days + 1)]
    rows = queue_and_run(url, tenant_id, "rerate", days, workers=workers, timeout=timeout,
                         now=now or datetime.now(UTC), progress=progress)  # fmt: skip
    outcome = RerateOutcome(RerateReport())
    for row in rows:
        if row.status == "done" and row.result is not None:
            outcome.report.add(RerateReport.from_json(row.result))
        else:
            outcome.failed.append(row)
    return outcome
