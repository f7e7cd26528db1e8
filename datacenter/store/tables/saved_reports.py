"""Saved and scheduled reports (migration: v0014_saved_reports).

Contract:

- ``saved_reports``: a report a user kept — catalogue name, its parameters as the query string
  of ``datacenter.reports.query_string``, the chosen columns (JSON list of column keys, empty for
  all), a title, and whether it is shared with the owner's tenant. It never stores a scope: the
  report always runs under the viewer's (or, scheduled, the owner's) scope at the time it runs.
- ``report_schedules``: when and to whom a saved report is sent: the recurrence (frequency,
  weekdays, day of month or n-th weekday, local time, in the tenant's time zone), the period a
  run covers, the recipients, the format and the delivery (attachment or signed link).
  ``next_due_at`` is the next occurrence in UTC, kept by the scheduler.
- ``schedule_runs``: one row per run. The unique key ``(tenant_id, schedule_id, due_at)`` is the
  claim: a scheduler that inserts the row owns that due time, a second one is refused by the
  store. ``status`` records how far the run got (docs/reports.md, "Running"):
  queued → claimed → sending → sent, or retrying → ... → failed, or interrupted.

``tenant_id`` leads every key, as everywhere in the store; a saved report goes with its
schedules and their runs.
"""

from __future__ import annotations

import sqlalchemy as sa

from datacenter.store.tables.metadata import JSONDocument, UTCDateTime, metadata, tenant_fk

TITLE_LENGTH = 200
QUERY_LENGTH = 4000
REPORT_NAME_LENGTH = 64
RUN_STATUSES = ("queued", "claimed", "sending", "sent", "retrying", "failed", "interrupted")
RUN_STATUS_CHECK = "status IN ('" + "', '".join(RUN_STATUSES) + "')"

saved_reports = sa.Table(
    "saved_reports",
    metadata,
    tenant_fk(nullable=False),
    sa.Column("saved_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "owner_id", sa.Integer, sa.ForeignKey("users.user_id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("report", sa.String(REPORT_NAME_LENGTH), nullable=False),
    sa.Column("query", sa.String(QUERY_LENGTH), nullable=False),
    sa.Column("columns", JSONDocument, nullable=False),
    sa.Column("title", sa.String(TITLE_LENGTH), nullable=False),
    sa.Column("shared", sa.Boolean, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Index(None, "tenant_id", "owner_id"),
)

report_schedules = sa.Table(
    "report_schedules",
    metadata,
    tenant_fk(nullable=False),
    sa.Column("schedule_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "saved_id",
        sa.Integer,
        sa.ForeignKey("saved_reports.saved_id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("recurrence", JSONDocument, nullable=False),  # reports.recurrence.Recurrence
    sa.Column("period", sa.String(32), nullable=False),
    sa.Column("recipients", JSONDocument, nullable=False),  # list of addresses
    sa.Column("format", sa.String(16), nullable=False),
    sa.Column("delivery", sa.String(16), nullable=False),  # attachment | link
    sa.Column("link_days", sa.Integer, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("next_due_at", UTCDateTime, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Index(None, "tenant_id", "saved_id"),
    sa.Index(None, "active", "next_due_at"),
)

schedule_runs = sa.Table(
    "schedule_runs",
    metadata,
    tenant_fk(nullable=False),
    sa.Column("run_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "schedule_id",
        sa.Integer,
        sa.ForeignKey("report_schedules.schedule_id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("due_at", UTCDateTime, nullable=False),
    sa.Column("trigger", sa.String(16), nullable=False),  # schedule | manual
    sa.Column("requested_by", sa.String(254), nullable=False),
    sa.Column("first_day", sa.Date, nullable=False),
    sa.Column("last_day", sa.Date, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", UTCDateTime, nullable=True),
    sa.Column("claimed_at", UTCDateTime, nullable=True),
    sa.Column("claimed_by", sa.String(128), nullable=False),
    sa.Column("sent_at", UTCDateTime, nullable=True),
    sa.Column("rows", sa.Integer, nullable=True),
    sa.Column("error", sa.Text, nullable=False),
    sa.UniqueConstraint("tenant_id", "schedule_id", "due_at"),
    sa.CheckConstraint(RUN_STATUS_CHECK, name="status"),
    sa.Index(None, "status", "next_attempt_at"),
)
