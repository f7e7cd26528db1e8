"""Delivery: each agent's pinned batch-signing certificate; landed files by agent and sequence.

Revision ID: 0006
Revises: 0005
Create Date: 2026-01-06 00:00:00

``agents.certificate`` (PEM) and ``certificate_fingerprint`` (``sha256:`` + hex) are set by
``datacenter agent add --certificate``; ingest accepts a CMS batch only when it is signed by
exactly that certificate. Both are NULL for agents enrolled before, which can then deliver only
unprotected files (``ingest.accept_unprotected``) until their certificate is set.

The index serves the per-agent sequence look-ups (missing batches, health's gaps), which would
otherwise scan a tenant's every landed file.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.add_column(sa.Column("certificate", sa.Text, nullable=True))
        batch.add_column(sa.Column("certificate_fingerprint", sa.String(80), nullable=True))
    op.create_index(
        "ix_landed_files_tenant_id_agent_id_sequence",
        "landed_files",
        ["tenant_id", "agent_id", "sequence"],
    )


def downgrade() -> None:
    op.drop_index("ix_landed_files_tenant_id_agent_id_sequence", table_name="landed_files")
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("certificate_fingerprint")
        batch.drop_column("certificate")
