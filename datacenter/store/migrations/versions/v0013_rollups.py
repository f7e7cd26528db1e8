"""Report rollups per tenant, local day and dimension, filled from the calls already stored.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 05:00:00

``rollup_extension_days`` and ``rollup_route_days`` (datacenter/store/tables/rollups.py) are what
the report summaries read (docs/reports.md). The upgrade fills them from every tenant's stored
calls and costs (and rewrites ``call_days`` from the same calls), in the migration's
transaction, with the same code as `datacenter rollups rebuild`
(``datacenter.store.rollups.rebuild``); on a large store this reads every call once (one to
five minutes per 5,000,000 calls). A later revision that changes these tables must refill them
itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MEASURES = ("calls", "talk_seconds", "billed_seconds", "cost_micro", "rated")
TABLES = {
    "rollup_extension_days": (("direction", 16), ("extension", 256), ("answered", 0),
                              ("currency", 3)),
    "rollup_route_days": (("direction", 16), ("trunk", 256), ("carrier", 64),
                          ("number_class", 16), ("answered", 0), ("currency", 3)),
}  # fmt: skip


def _dimension(name: str, length: int) -> sa.Column[Any]:
    kind: Any = sa.Boolean() if length == 0 else sa.String(length)
    return sa.Column(name, kind, nullable=False)


def upgrade() -> None:
    for table, dimensions in TABLES.items():
        op.create_table(
            table,
            sa.Column(
                "tenant_id",
                sa.Integer,
                sa.ForeignKey(
                    "tenants.tenant_id", name=f"fk_{table}_tenant_id_tenants", ondelete="RESTRICT"
                ),
                nullable=False,
            ),
            sa.Column("day", sa.Date, nullable=False),
            *(_dimension(name, length) for name, length in dimensions),
            *(
                sa.Column(name, sa.Integer if name in ("calls", "rated") else sa.BigInteger,
                          nullable=False)
                for name in MEASURES
            ),  # fmt: skip
            sa.PrimaryKeyConstraint(
                "tenant_id", "day", *(name for name, _ in dimensions), name=f"pk_{table}"
            ),
        )
    _fill()


def _fill() -> None:
    from datacenter.store.rollups import rebuild  # the current code: see the module doc

    conn = op.get_bind()
    tenants = conn.execute(sa.text("SELECT tenant_id, timezone FROM tenants")).all()
    for tenant_id, zone in tenants:
        rebuild(conn, tenant_id, ZoneInfo(zone), costs_by_start=False)  # no start_utc yet


def downgrade() -> None:
    for table in TABLES:
        op.drop_table(table)
