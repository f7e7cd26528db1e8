"""Directory: who had which extension when, with department, cost centre and site.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 00:00:00

``directory_entries`` (datacenter/store/tables/directory.py) attributes a call to the person who
had its extension at the call's start; reports group by its department, cost centre and site,
and a user's scope may be limited to them.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from datacenter.store.tables.metadata import UTCDateTime

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "directory_entries",
        sa.Column(
            "tenant_id",
            sa.Integer,
            sa.ForeignKey(
                "tenants.tenant_id",
                name="fk_directory_entries_tenant_id_tenants",
                ondelete="RESTRICT",
            ),
            nullable=False,
        ),
        sa.Column("entry_id", sa.String(32), nullable=False),
        sa.Column("extension", sa.String(256), nullable=False),
        sa.Column("person", sa.String(200), nullable=False),
        sa.Column("email", sa.String(254), nullable=False, server_default=""),
        sa.Column("department", sa.String(200), nullable=False, server_default=""),
        sa.Column("cost_centre", sa.String(200), nullable=False, server_default=""),
        sa.Column("site", sa.String(200), nullable=False, server_default=""),
        sa.Column("valid_from", UTCDateTime, nullable=False),
        sa.Column("valid_to", UTCDateTime, nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("external_id", sa.String(1024), nullable=False, server_default=""),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.CheckConstraint(
            "source IN ('csv', 'ldap', 'manual')", name="ck_directory_entries_source"
        ),
        sa.PrimaryKeyConstraint("tenant_id", "entry_id", name="pk_directory_entries"),
    )
    for columns in (("tenant_id", "extension", "valid_from"), ("tenant_id", "department"),
                    ("tenant_id", "cost_centre")):  # fmt: skip
        op.create_index(f"ix_directory_entries_{'_'.join(columns)}", "directory_entries", columns)


def downgrade() -> None:
    op.drop_table("directory_entries")
