"""Initial schema: tenants, agents, users, landed files, calls and the daily call rollup.

Revision ID: 0001
Revises:
Create Date: 2026-01-01 00:00:00

Written out in full (not generated from tables.py at run time) so that this revision stays what
it was when it shipped; tests check that head matches datacenter/store/tables/core.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UTC = sa.DateTime(timezone=True)
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _tenant_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["tenant_id"],
        ["tenants.tenant_id"],
        name=f"fk_{table}_tenant_id_tenants",
        ondelete="RESTRICT",
    )


def _text(name: str) -> sa.Column[str]:
    return sa.Column(name, sa.String(256), nullable=False)


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("tenant_id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("slug", sa.String(63), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("created_at", _UTC, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", name="pk_tenants"),
        sa.UniqueConstraint("slug", name="uq_tenants_slug"),
    )
    op.create_table(
        "agents",
        sa.Column("tenant_id", sa.Integer, nullable=False),
        sa.Column("agent_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), server_default="", nullable=False),
        sa.Column("enrolled_at", _UTC, nullable=False),
        sa.Column("last_seen_at", _UTC, nullable=True),
        sa.Column("last_sequence", sa.BigInteger, nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "agent_id", name="pk_agents"),
        _tenant_fk("agents"),
    )
    op.create_table(
        "users",
        sa.Column("user_id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("tenant_id", sa.Integer, nullable=True),
        sa.Column("display_name", sa.String(200), server_default="", nullable=False),
        sa.Column("created_at", _UTC, nullable=False),
        sa.Column("last_login_at", _UTC, nullable=True),
        sa.Column("disabled", sa.Boolean, server_default=sa.false(), nullable=False),
        sa.CheckConstraint("role IN ('tenant', 'technician', 'admin')", name=op.f("ck_users_role")),
        sa.CheckConstraint(
            "(role = 'tenant' AND tenant_id IS NOT NULL) OR (role <> 'tenant' AND tenant_id IS NULL)",
            name=op.f("ck_users_role_tenant"),
        ),
        sa.PrimaryKeyConstraint("user_id", name="pk_users"),
        sa.UniqueConstraint("email", name="uq_users_email"),
        _tenant_fk("users"),
    )
    op.create_table(
        "landed_files",
        sa.Column("tenant_id", sa.Integer, nullable=False),
        sa.Column("file_name", sa.String(100), nullable=False),
        sa.Column("agent_id", sa.String(64), nullable=False),
        sa.Column("sequence", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("records", sa.Integer, nullable=True),
        sa.Column("inserted", sa.Integer, nullable=True),
        sa.Column("duplicates", sa.Integer, nullable=True),
        sa.Column("claimed_by", sa.String(200), nullable=False),
        sa.Column("claimed_at", _UTC, nullable=False),
        sa.Column("finished_at", _UTC, nullable=True),
        sa.CheckConstraint(
            "status IN ('claimed', 'stored', 'duplicate', 'quarantined')",
            name=op.f("ck_landed_files_status"),
        ),
        sa.PrimaryKeyConstraint("tenant_id", "file_name", name="pk_landed_files"),
        _tenant_fk("landed_files"),
    )
    op.create_index("ix_landed_files_sha256", "landed_files", ["sha256"])
    op.create_table(
        "calls",
        sa.Column("tenant_id", sa.Integer, nullable=False),
        sa.Column("record_id", sa.String(128), nullable=False),
        sa.Column("agent_id", sa.String(64), nullable=False),
        _text("source_id"),
        sa.Column("source_kind", sa.String(64), nullable=False),
        sa.Column("start_utc", _UTC, nullable=False),
        sa.Column("answer_utc", _UTC, nullable=True),
        sa.Column("end_utc", _UTC, nullable=False),
        sa.Column("utc_offset_minutes", sa.Integer, nullable=False),
        sa.Column("ring_seconds", sa.Integer, nullable=False),
        sa.Column("talk_seconds", sa.Integer, nullable=False),
        sa.Column("hold_seconds", sa.Integer, nullable=False),
        sa.Column("direction", sa.String(16), nullable=False),
        _text("calling"),
        _text("called"),
        _text("dialled_digits"),
        _text("extension"),
        _text("trunk"),
        _text("route"),
        _text("third_party"),
        _text("account_code"),
        _text("ani"),
        _text("dnis"),
        sa.Column("answered", sa.Boolean, nullable=False),
        sa.Column("completion", sa.String(16), nullable=False),
        _text("completion_source"),
        sa.Column("transferred", sa.Boolean, nullable=False),
        sa.Column("conference", sa.Boolean, nullable=False),
        _text("call_id"),
        _text("parent_call_id"),
        sa.Column("flags", _JSON, nullable=False),
        sa.Column("raw", sa.Text, nullable=False),
        sa.Column("parser_version", sa.String(64), nullable=False),
        sa.Column("icdr", _JSON, nullable=False),
        sa.Column("landed_file", sa.String(100), nullable=False),
        sa.Column("ingested_at", _UTC, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "record_id", name="pk_calls"),
        _tenant_fk("calls"),
    )
    op.create_index("ix_calls_tenant_id_start_utc", "calls", ["tenant_id", "start_utc"])
    op.create_index(
        "ix_calls_tenant_id_extension_start_utc", "calls", ["tenant_id", "extension", "start_utc"]
    )
    op.create_table(
        "call_days",
        sa.Column("tenant_id", sa.Integer, nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("direction", sa.String(16), nullable=False),
        sa.Column("calls", sa.Integer, nullable=False),
        sa.Column("answered", sa.Integer, nullable=False),
        sa.Column("talk_seconds", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "day", "direction", name="pk_call_days"),
        _tenant_fk("call_days"),
    )


def downgrade() -> None:
    for table in ("call_days", "calls", "landed_files", "users", "agents", "tenants"):
        op.drop_table(table)
