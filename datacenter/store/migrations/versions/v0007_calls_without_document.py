"""Calls keep the record in their columns only: the ``icdr`` JSON document gives way to ``extra``.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22 00:00:00

Every ICDR field already had its column except the driver's ``extra`` map and ``icdr_version``;
the ``icdr`` document repeated all of them (about 900 bytes a call, a third of a stored call with
its rating). On PostgreSQL, parsing it into ``jsonb`` cost ingest a quarter of its time. The two
missing fields become columns, filled from the documents, and the document goes.

Downgrade is refused: it would rebuild every document from the columns in SQL; restore the
backup taken before the upgrade instead (docs/operations.md says to take one).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("extra", _JSON, nullable=True))
        batch.add_column(sa.Column("icdr_version", sa.SmallInteger, nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "UPDATE calls SET extra = COALESCE(icdr -> 'extra', '{}'::jsonb), "
            "icdr_version = COALESCE((icdr ->> 'icdr_version')::smallint, 1)"
        )
    else:
        op.execute(
            "UPDATE calls SET extra = COALESCE(json_extract(icdr, '$.extra'), '{}'), "
            "icdr_version = COALESCE(json_extract(icdr, '$.icdr_version'), 1)"
        )
    with op.batch_alter_table("calls") as batch:
        batch.alter_column("extra", existing_type=_JSON, nullable=False)
        batch.alter_column("icdr_version", existing_type=sa.SmallInteger, nullable=False)
        batch.drop_column("icdr")


def downgrade() -> None:
    raise NotImplementedError(
        "revision 0007 cannot be downgraded: restore the store's backup from before the upgrade"
    )
