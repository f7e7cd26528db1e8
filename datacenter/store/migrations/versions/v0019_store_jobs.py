"""Store jobs: (tenant, kind, day) units of work claimed by any worker.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06 10:30:00

``store_jobs`` (datacenter/store/tables/jobs.py; docs/scale.md): re-rating and rollup rebuilds
split into (tenant, local day) jobs that any worker on any host claims. A new table only.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from datacenter.store.tables.metadata import JSONDocument, UTCDateTime

revision: str = "0019"
down_revision: str | Sequence[str] | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "store_jobs",
        sa.Column(
            "tenant_id",
            sa.Integer,
            sa.ForeignKey(
                "tenants.tenant_id", name="fk_store_jobs_tenant_id_tenants", ondelete="RESTRICT"
            ),
            nullable=False,
        ),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("requested_at", UTCDateTime, nullable=False),
        sa.Column("claimed_by", sa.String(200), nullable=True),
        sa.Column("claimed_at", UTCDateTime, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("finished_at", UTCDateTime, nullable=True),
        sa.Column("result", JSONDocument, nullable=True),
        sa.CheckConstraint("kind IN ('rerate', 'rollups')", name=op.f("ck_store_jobs_kind")),
        sa.CheckConstraint(
            "status IN ('queued', 'claimed', 'done', 'failed')", name=op.f("ck_store_jobs_status")
        ),
        sa.PrimaryKeyConstraint("tenant_id", "kind", "day", name="pk_store_jobs"),
    )
    op.create_index("ix_store_jobs_status_claimed_at", "store_jobs", ["status", "claimed_at"])
    op.create_index(
        "ix_store_jobs_status_requested_at", "store_jobs", ["status", "requested_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_store_jobs_status_requested_at", table_name="store_jobs")
    op.drop_index("ix_store_jobs_status_claimed_at", table_name="store_jobs")
    op.drop_table("store_jobs")
