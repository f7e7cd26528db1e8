"""Store jobs: (tenant, kind, tenant-local day) units of work any worker may claim (v0019).

Contract:

- One row per (tenant, kind, day): ``rerate`` (re-rate the tenant's calls of that local day,
  ``datacenter.rating.rerate.rerate_day_in``) or ``rollups`` (rebuild the tenant's rollup rows of
  that day from its raw calls, ``datacenter.store.rollups.rebuild_day``). Queuing a job that is
  already there asks for it again (``requested_at`` moves on): a finished one runs again.
- ``status``: ``queued`` -> ``claimed`` (``claimed_by``, ``claimed_at``) -> ``done`` (with
  ``result``, what the job did) or back to ``queued`` after an error (``error`` kept) until
  ``attempts`` reaches the limit, then ``failed``. ``datacenter.store.jobs`` is the protocol.
- ``requested_at`` is the request's time stamp: a re-rate writes it as the history's
  ``changed_at``, so a day run twice for one request writes the same rows.
"""

from __future__ import annotations

import sqlalchemy as sa

from datacenter.store.tables.metadata import JSONDocument, UTCDateTime, metadata, tenant_fk

JOB_KINDS = ("rerate", "rollups")
JOB_STATUSES = ("queued", "claimed", "done", "failed")

store_jobs = sa.Table(
    "store_jobs",
    metadata,
    tenant_fk(primary_key=True),
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("requested_at", UTCDateTime, nullable=False),
    sa.Column("claimed_by", sa.String(200), nullable=True),
    sa.Column("claimed_at", UTCDateTime, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("finished_at", UTCDateTime, nullable=True),
    sa.Column("result", JSONDocument, nullable=True),
    sa.CheckConstraint("kind IN ('rerate', 'rollups')", name="kind"),
    sa.CheckConstraint("status IN ('queued', 'claimed', 'done', 'failed')", name="status"),
    sa.Index(None, "status", "claimed_at"),  # a claim: expired (or our own) claimed jobs
    sa.Index(None, "status", "requested_at"),  # then the oldest request's queued jobs
)
