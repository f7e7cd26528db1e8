"""Landed files count their claims: a file whose readers keep crashing is quarantined.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 00:00:00

``landed_files.attempts`` is how many workers have claimed the file (the first claim is 1; each
takeover of an expired claim adds one). A claim expires only when its worker stopped without
finishing, so when an expired claim has already been taken ``ingest.MAX_READ_ATTEMPTS`` times,
the file is quarantined unread instead of killing the next worker too. Existing rows are 1.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("landed_files") as batch:
        batch.add_column(sa.Column("attempts", sa.Integer, nullable=False, server_default="1"))


def downgrade() -> None:
    with op.batch_alter_table("landed_files") as batch:
        batch.drop_column("attempts")
