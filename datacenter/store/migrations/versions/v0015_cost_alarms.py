"""Cost and fraud alarms: per-tenant rules, evaluation marks, alarms and their calls.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 07:30:00

Written out in full; datacenter/store/tables/cost_alarms.py defines the same tables and a test
checks that head matches the metadata. Two indexes let the alarm loop find new calls
(``calls.ingested_at``) and new or changed costs (``call_costs.rated_at``) per tenant without
reading the tenant's whole history; on a large PostgreSQL store building them reads every call
once (docs/cost-alarms.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UTC = sa.DateTime(timezone=True)


def _tenant(table: str) -> list[Any]:
    return [
        sa.Column("tenant_id", sa.Integer, nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.tenant_id"],
            name=f"fk_{table}_tenant_id_tenants",
            ondelete="RESTRICT",
        ),
    ]


def upgrade() -> None:
    op.create_table(
        "cost_alarm_rules",
        *_tenant("cost_alarm_rules"),
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("webhook_secret", sa.String(64), nullable=False),
        sa.Column("updated_at", _UTC, nullable=False),
        sa.Column("updated_by", sa.String(254), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", name="pk_cost_alarm_rules"),
    )
    op.create_table(
        "cost_alarm_marks",
        *_tenant("cost_alarm_marks"),
        sa.Column("ingested_through", _UTC, nullable=True),
        sa.Column("rated_through", _UTC, nullable=True),
        sa.Column("evaluated_at", _UTC, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", name="pk_cost_alarm_marks"),
    )
    op.create_table(
        "cost_alarms",
        *_tenant("cost_alarms"),
        sa.Column("alarm_id", sa.String(32), nullable=False),
        sa.Column("rule_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(256), nullable=False),
        sa.Column("period", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("raised_at", _UTC, nullable=False),
        sa.Column("updated_at", _UTC, nullable=False),
        sa.Column("calls", sa.Integer, nullable=False),
        sa.Column("acknowledged_at", _UTC, nullable=True),
        sa.Column("acknowledged_by", sa.String(254), nullable=True),
        sa.Column("email_calls", sa.Integer, nullable=False),
        sa.Column("email_attempts", sa.Integer, nullable=False),
        sa.Column("email_next_at", _UTC, nullable=True),
        sa.Column("email_error", sa.Text, nullable=False),
        sa.Column("webhook_calls", sa.Integer, nullable=False),
        sa.Column("webhook_attempts", sa.Integer, nullable=False),
        sa.Column("webhook_next_at", _UTC, nullable=True),
        sa.Column("webhook_error", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "alarm_id", name="pk_cost_alarms"),
        sa.UniqueConstraint(
            "tenant_id",
            "rule_id",
            "subject",
            "period",
            name="uq_cost_alarms_tenant_id_rule_id_subject_period",
        ),
    )
    op.create_index("ix_cost_alarms_tenant_id_raised_at", "cost_alarms", ["tenant_id", "raised_at"])
    op.create_table(
        "cost_alarm_calls",
        *_tenant("cost_alarm_calls"),
        sa.Column("alarm_id", sa.String(32), nullable=False),
        sa.Column("record_id", sa.String(128), nullable=False),
        sa.Column("attached_at", _UTC, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "alarm_id", "record_id", name="pk_cost_alarm_calls"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "alarm_id"],
            ["cost_alarms.tenant_id", "cost_alarms.alarm_id"],
            name="fk_cost_alarm_calls_tenant_id_alarm_id_cost_alarms",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_calls_tenant_id_ingested_at", "calls", ["tenant_id", "ingested_at"])
    op.create_index("ix_call_costs_tenant_id_rated_at", "call_costs", ["tenant_id", "rated_at"])


def downgrade() -> None:
    op.drop_index("ix_call_costs_tenant_id_rated_at", table_name="call_costs")
    op.drop_index("ix_calls_tenant_id_ingested_at", table_name="calls")
    op.drop_table("cost_alarm_calls")
    op.drop_index("ix_cost_alarms_tenant_id_raised_at", table_name="cost_alarms")
    op.drop_table("cost_alarms")
    op.drop_table("cost_alarm_marks")
    op.drop_table("cost_alarm_rules")
