"""Saved reports, their schedules and the runs of those schedules.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 08:00:00

``saved_reports``, ``report_schedules`` and ``schedule_runs``: see
datacenter/store/tables/saved_reports.py. New tables only; nothing existing changes.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from datacenter.store.tables.metadata import JSONDocument, UTCDateTime

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RUN_STATUS_CHECK = (
    "status IN ('queued', 'claimed', 'sending', 'sent', 'retrying', 'failed', 'interrupted')"
)


def _tenant(table: str) -> sa.Column[int]:
    return sa.Column(
        "tenant_id",
        sa.Integer,
        sa.ForeignKey(
            "tenants.tenant_id", name=f"fk_{table}_tenant_id_tenants", ondelete="RESTRICT"
        ),
        nullable=False,
    )


def upgrade() -> None:
    op.create_table(
        "saved_reports",
        _tenant("saved_reports"),
        sa.Column("saved_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "owner_id",
            sa.Integer,
            sa.ForeignKey(
                "users.user_id", name="fk_saved_reports_owner_id_users", ondelete="CASCADE"
            ),
            nullable=False,
        ),
        sa.Column("report", sa.String(64), nullable=False),
        sa.Column("query", sa.String(4000), nullable=False),
        sa.Column("columns", JSONDocument, nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("shared", sa.Boolean, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("saved_id", name="pk_saved_reports"),
    )
    op.create_index(
        "ix_saved_reports_tenant_id_owner_id", "saved_reports", ["tenant_id", "owner_id"]
    )
    op.create_table(
        "report_schedules",
        _tenant("report_schedules"),
        sa.Column("schedule_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "saved_id",
            sa.Integer,
            sa.ForeignKey(
                "saved_reports.saved_id",
                name="fk_report_schedules_saved_id_saved_reports",
                ondelete="CASCADE",
            ),
            nullable=False,
        ),
        sa.Column("recurrence", JSONDocument, nullable=False),
        sa.Column("period", sa.String(32), nullable=False),
        sa.Column("recipients", JSONDocument, nullable=False),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("delivery", sa.String(16), nullable=False),
        sa.Column("link_days", sa.Integer, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("next_due_at", UTCDateTime, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("schedule_id", name="pk_report_schedules"),
    )
    op.create_index(
        "ix_report_schedules_tenant_id_saved_id", "report_schedules", ["tenant_id", "saved_id"]
    )
    op.create_index(
        "ix_report_schedules_active_next_due_at", "report_schedules", ["active", "next_due_at"]
    )
    op.create_table(
        "schedule_runs",
        _tenant("schedule_runs"),
        sa.Column("run_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "schedule_id",
            sa.Integer,
            sa.ForeignKey(
                "report_schedules.schedule_id",
                name="fk_schedule_runs_schedule_id_report_schedules",
                ondelete="CASCADE",
            ),
            nullable=False,
        ),
        sa.Column("due_at", UTCDateTime, nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
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
        sa.PrimaryKeyConstraint("run_id", name="pk_schedule_runs"),
        sa.UniqueConstraint(
            "tenant_id", "schedule_id", "due_at",
            name="uq_schedule_runs_tenant_id_schedule_id_due_at",
        ),  # fmt: skip
        sa.CheckConstraint(RUN_STATUS_CHECK, name="ck_schedule_runs_status"),
    )
    op.create_index(
        "ix_schedule_runs_status_next_attempt_at", "schedule_runs", ["status", "next_attempt_at"]
    )


def downgrade() -> None:
    op.drop_table("schedule_runs")
    op.drop_table("report_schedules")
    op.drop_table("saved_reports")
