"""Polling health: the heartbeats agents send on every uplink session.

Revision ID: 0005
Revises: 0004
Create Date: 2026-01-05 00:00:00

Written out in full, like 0001; datacenter/store/tables/health.py defines the same table and a
test checks that head matches the metadata.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UTC = sa.DateTime(timezone=True)
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "agent_heartbeats",
        sa.Column("tenant_id", sa.Integer, nullable=False),
        sa.Column("agent_id", sa.String(64), nullable=False),
        sa.Column("sent_at", _UTC, nullable=False),
        sa.Column("received_at", _UTC, nullable=False),
        sa.Column("stored_at", _UTC, nullable=False),
        sa.Column("file_name", sa.String(100), nullable=False),
        sa.Column("agent_state", sa.String(16), nullable=False),
        sa.Column("agent_version", sa.String(64), nullable=False),
        sa.Column("delay_seconds", sa.Float, nullable=False),
        sa.Column("uplink_failures", sa.Integer, nullable=False),
        sa.Column("document", _JSON, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "agent_id", "sent_at", name="pk_agent_heartbeats"),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.tenant_id"], name="fk_agent_heartbeats_tenant_id_tenants",
            ondelete="RESTRICT",
        ),  # fmt: skip
    )
    op.create_index(
        "ix_agent_heartbeats_tenant_id_received_at", "agent_heartbeats", ["tenant_id", "received_at"]
    )


def downgrade() -> None:
    op.drop_table("agent_heartbeats")
