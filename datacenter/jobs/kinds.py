"""What a claimed store job does, by kind; each runs inside the job's own transaction.

- ``rerate``: ``datacenter.rating.rerate.rerate_day_in`` over the tenant-local day, with the
  tenant's rating configuration as stored now and the request's time stamp; the result is the
  day's ``RerateReport`` as JSON.
- ``rollups``: ``datacenter.store.rollups.rebuild_day``; the result is the rows written.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from datacenter.accounts.tenants import get_tenant_by_id
from datacenter.rating.rerate import rerate_day_in
from datacenter.rating.store import load_rating_config
from datacenter.reports.periods import local_midnight
from datacenter.store.jobs import Job
from datacenter.store.rollups import rebuild_day

Work = Callable[[sa.Connection, Job], dict[str, Any]]


def rerate(conn: sa.Connection, job: Job) -> dict[str, Any]:
    config = load_rating_config(conn, job.tenant_id)
    zone = _zone(conn, job)
    window = (local_midnight(job.day, zone), local_midnight(job.day + timedelta(days=1), zone))
    return rerate_day_in(conn, config, window, job.requested_at).to_json()


def rollups(conn: sa.Connection, job: Job) -> dict[str, Any]:
    return {"rows": rebuild_day(conn, job.tenant_id, _zone(conn, job), job.day)}


def _zone(conn: sa.Connection, job: Job) -> ZoneInfo:
    tenant = get_tenant_by_id(conn, job.tenant_id)
    if tenant is None:  # the foreign key keeps it; a clear error all the same
        raise LookupError(f"no tenant {job.tenant_id} for its {job.kind} job")
    return tenant.zone


KINDS: dict[str, Work] = {"rerate": rerate, "rollups": rollups}
