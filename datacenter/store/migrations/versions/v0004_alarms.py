"""Alarms: technicians' tenants, alarm episodes, alarm history, digest bookkeeping.

Revision ID: 0004
Revises: 0002
Create Date: 2026-01-04 00:00:00

Written out in full, like 0001; datacenter/store/tables/alarms.py defines the same tables and a
test checks that head matches the metadata.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UTC = sa.DateTime(timezone=True)


def _tenant_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["tenant_id"], ["tenants.tenant_id"], name=f"fk_{table}_tenant_id_tenants",
        ondelete="RESTRICT",
    )  # fmt: skip


def _user_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["user_id"], ["users.user_id"], name=f"fk_{table}_user_id_users", ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "technician_tenants",
        sa.Column("tenant_id", sa.Integer, nullable=False),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("added_at", _UTC, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "user_id", name="pk_technician_tenants"),
        _tenant_fk("technician_tenants"),
        _user_fk("technician_tenants"),
    )
    op.create_index("ix_technician_tenants_user_id", "technician_tenants", ["user_id"])
    op.create_table(
        "alarms",
        sa.Column("tenant_id", sa.Integer, nullable=False),
        sa.Column("alarm_id", sa.String(32), nullable=False),
        sa.Column("agent_id", sa.String(64), nullable=False),
        sa.Column("source_id", sa.String(256), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("open_key", sa.String(354), nullable=True),
        sa.Column("raised_at", _UTC, nullable=False),
        sa.Column("last_seen_at", _UTC, nullable=False),
        sa.Column("cleared_at", _UTC, nullable=True),
        sa.Column("notified_at", _UTC, nullable=True),
        sa.Column("notifications", sa.Integer, nullable=False),
        sa.Column("acknowledged_at", _UTC, nullable=True),
        sa.Column("acknowledged_by", sa.String(254), nullable=True),
        sa.Column("silenced_until", _UTC, nullable=True),
        sa.Column("note", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "alarm_id", name="pk_alarms"),
        sa.UniqueConstraint("tenant_id", "open_key", name="uq_alarms_tenant_id_open_key"),
        _tenant_fk("alarms"),
    )
    op.create_index(
        "ix_alarms_tenant_id_agent_id_raised_at", "alarms", ["tenant_id", "agent_id", "raised_at"]
    )
    op.create_table(
        "alarm_events",
        sa.Column("tenant_id", sa.Integer, nullable=False),
        sa.Column("event_id", sa.String(32), nullable=False),
        sa.Column("alarm_id", sa.String(32), nullable=False),
        sa.Column("at", _UTC, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(254), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "event_id", name="pk_alarm_events"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "alarm_id"], ["alarms.tenant_id", "alarms.alarm_id"],
            name="fk_alarm_events_tenant_id_alarm_id_alarms", ondelete="CASCADE",
        ),  # fmt: skip
        _tenant_fk("alarm_events"),
    )
    op.create_index("ix_alarm_events_at", "alarm_events", ["at"])
    op.create_index(
        "ix_alarm_events_tenant_id_alarm_id", "alarm_events", ["tenant_id", "alarm_id"]
    )
    op.create_table(
        "technician_digests",
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("last_sent_at", _UTC, nullable=False),
        sa.Column("last_day", sa.Date, nullable=False),
        sa.PrimaryKeyConstraint("user_id", name="pk_technician_digests"),
        _user_fk("technician_digests"),
    )


def downgrade() -> None:
    for table in ("technician_digests", "alarm_events", "alarms", "technician_tenants"):
        op.drop_table(table)
