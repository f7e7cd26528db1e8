"""Call recordings, per-tenant recording policies and per-user permissions.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 08:00:00

``recordings``, ``recording_policies`` and ``user_permissions``
(datacenter/store/tables/recordings.py; docs/capture.md). New tables only: nothing to fill.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from datacenter.store.tables.metadata import JSONDocument, UTCDateTime

revision: str = "0016"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _tenant_fk(table: str, **kwargs: Any) -> sa.Column[int]:
    return sa.Column(
        "tenant_id",
        sa.Integer,
        sa.ForeignKey(
            "tenants.tenant_id", name=f"fk_{table}_tenant_id_tenants", ondelete="RESTRICT"
        ),
        **kwargs,
    )


def upgrade() -> None:
    op.create_table(
        "recordings",
        _tenant_fk("recordings", nullable=False),
        sa.Column("recording_id", sa.String(64), nullable=False),
        sa.Column("agent_id", sa.String(64), nullable=False),
        sa.Column("record_id", sa.String(128), nullable=True),
        sa.Column("linked_by", sa.String(16), nullable=True),
        sa.Column("start_time", UTCDateTime, nullable=True),
        sa.Column("end_time", UTCDateTime, nullable=True),
        sa.Column("duration_seconds", sa.Float, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(256), nullable=False, server_default=""),
        sa.Column("audio_path", sa.String(256), nullable=True),
        sa.Column("audio_bytes", sa.BigInteger, nullable=False),
        sa.Column("sip_path", sa.String(256), nullable=True),
        sa.Column("batch_file", sa.String(128), nullable=False),
        sa.Column("stored_at", UTCDateTime, nullable=False),
        sa.Column("deleted_at", UTCDateTime, nullable=True),
        sa.Column("metadata", JSONDocument, nullable=False),
        sa.CheckConstraint(
            "status IN ('stored', 'no_audio', 'deleted')", name=op.f("ck_recordings_status")
        ),
        sa.PrimaryKeyConstraint("tenant_id", "recording_id", name="pk_recordings"),
    )
    op.create_index("ix_recordings_tenant_id_record_id", "recordings", ["tenant_id", "record_id"])
    op.create_index(
        "ix_recordings_tenant_id_start_time", "recordings", ["tenant_id", "start_time"]
    )
    op.create_table(
        "recording_policies",
        _tenant_fk("recording_policies", nullable=False),
        sa.Column("retention_days", sa.Integer, nullable=True),
        sa.Column("technicians_may_play", sa.Boolean, nullable=False),
        sa.CheckConstraint(
            "retention_days IS NULL OR retention_days >= 1",
            name=op.f("ck_recording_policies_retention_days"),
        ),
        sa.PrimaryKeyConstraint("tenant_id", name="pk_recording_policies"),
    )
    op.create_table(
        "user_permissions",
        _tenant_fk("user_permissions", nullable=False),
        sa.Column(
            "user_id",
            sa.Integer,
            sa.ForeignKey(
                "users.user_id", name="fk_user_permissions_user_id_users", ondelete="CASCADE"
            ),
            nullable=False,
        ),
        sa.Column("permission", sa.String(32), nullable=False),
        sa.CheckConstraint(
            "permission IN ('recordings', 'recordings_download')",
            name=op.f("ck_user_permissions_permission"),
        ),
        sa.PrimaryKeyConstraint(
            "tenant_id", "user_id", "permission", name="pk_user_permissions"
        ),
    )


def downgrade() -> None:
    op.drop_table("user_permissions")
    op.drop_table("recording_policies")
    op.drop_index("ix_recordings_tenant_id_start_time", table_name="recordings")
    op.drop_index("ix_recordings_tenant_id_record_id", table_name="recordings")
    op.drop_table("recordings")
