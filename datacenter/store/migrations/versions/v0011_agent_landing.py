"""Landing: each agent's own SFTP account, and a second certificate during a key rotation.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 00:00:00

``agents.landing_account`` is the agent's own landing account (system user and chroot folder
``<landing.root>/<account>/``), set by ``datacenter agent approve``; NULL for agents that still
deliver into their tenant's shared folder. ``previous_certificate_fingerprint`` is the agent's
former batch-signing certificate, still accepted until ``previous_certificate_until`` (a key
rotation's overlap; ``datacenter agent rotate``).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.add_column(sa.Column("landing_account", sa.String(32), nullable=True))
        batch.add_column(
            sa.Column("previous_certificate_fingerprint", sa.String(80), nullable=True)
        )
        batch.add_column(sa.Column("previous_certificate_until", _UTC, nullable=True))
        batch.create_unique_constraint("uq_agents_landing_account", ["landing_account"])


def downgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.drop_constraint("uq_agents_landing_account", type_="unique")
        batch.drop_column("previous_certificate_until")
        batch.drop_column("previous_certificate_fingerprint")
        batch.drop_column("landing_account")
