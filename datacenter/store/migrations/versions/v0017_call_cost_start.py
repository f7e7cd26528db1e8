"""``call_costs.start_utc``: each cost row carries its call's start, indexed with the cost.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 10:30:00

A cost-range filter ("cost at least 0.10" in June) used to visit every call of the period and
probe ``call_costs`` by primary key for each (82,000 probes for a month of a 1,000,000-call
tenant). With the call's start beside the cost, the filter reads ``call_costs`` by the new
``(tenant_id, start_utc, cost_minor)`` index and joins only the matching calls
(``datacenter.store.costs``; docs/web.md). The column is also the partition key ``call_costs``
needs when ``calls`` is partitioned by month (docs/scale.md).

Filling it from ``calls``:

- PostgreSQL: the column is added (a catalogue change, no rewrite) and committed, then filled
  outside the migration's transaction in batches of ``BATCH_ROWS`` cost rows of one tenant walked
  in primary-key order, each batch its own short transaction, so reads and ingest go on meanwhile
  and no lock is held for minutes. A ``NOT VALID`` check then refuses new rows without a start
  (a writer of the previous build), a last pass fills rows written in between, the check is
  validated without blocking writers, ``SET NOT NULL`` uses it instead of scanning again, and the
  index is built ``CONCURRENTLY``. The revision is therefore not all-or-nothing: if it stops
  half-way, running ``datacenter init`` again goes on where it stopped (filled rows are skipped;
  an index left invalid by a failed concurrent build is dropped and built again).
- SQLite: one ``UPDATE`` and a table rebuild (batch mode: SQLite cannot add ``NOT NULL`` to a
  column); SQLite locks the whole file for any write, so batches would not help. The rebuild
  drops the table's planner statistics, so a store that had been analysed is analysed again
  (without them SQLite read a week of one carrier from the carrier index: seconds, not ms).

Stop ingest while upgrading: a worker of the previous build cannot write a cost row once the
check is in place (its batch is left for the new build to ingest). Timings: docs/web.md.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from datacenter.store.tables.metadata import UTCDateTime

revision: str = "0017"
down_revision: str | Sequence[str] | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH_ROWS = 50_000
INDEX = "ix_call_costs_tenant_id_start_utc_cost_minor"
CHECK = "ck_call_costs_start_utc_filled"  # temporary: lets SET NOT NULL skip its scan

# One batch: a tenant's cost rows after the previous batch's last record id, up to ``upper``
# (the last batch: no upper bound). With the tenant a constant the planner estimates the range
# well and probes ``calls`` by its primary key; a (tenant_id, record_id) row comparison was
# estimated at a fifth of the table and hash-joined to a scan of all of ``calls`` per batch.
_FILL_RANGE = """
UPDATE call_costs AS cc SET start_utc = c.start_utc FROM calls AS c
WHERE cc.tenant_id = :tenant AND c.tenant_id = :tenant AND c.record_id = cc.record_id
  AND cc.start_utc IS NULL AND cc.record_id > :lower
"""
_UPPER_BOUND = " AND cc.record_id <= :upper"
_FILL_REST = """
UPDATE call_costs AS cc SET start_utc = c.start_utc FROM calls AS c
WHERE c.tenant_id = cc.tenant_id AND c.record_id = cc.record_id AND cc.start_utc IS NULL
"""
_UPPER = """
SELECT record_id FROM call_costs WHERE tenant_id = :tenant AND record_id > :lower
ORDER BY record_id LIMIT 1 OFFSET :skip
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _upgrade_postgresql()
    else:
        _upgrade_sqlite()


def _upgrade_sqlite() -> None:
    op.add_column("call_costs", sa.Column("start_utc", UTCDateTime, nullable=True))
    op.execute(
        "UPDATE call_costs SET start_utc = (SELECT c.start_utc FROM calls AS c "
        "WHERE c.tenant_id = call_costs.tenant_id AND c.record_id = call_costs.record_id)"
    )
    with op.batch_alter_table("call_costs") as batch:
        batch.alter_column("start_utc", existing_type=UTCDateTime, nullable=False)
    op.create_index(INDEX, "call_costs", ["tenant_id", "start_utc", "cost_minor"])
    # The rebuild dropped the table's planner statistics; a store that had them gets them back.
    analysed = op.get_bind().exec_driver_sql(
        "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'"
    ).first()
    if analysed is not None:
        op.execute("ANALYZE call_costs")


def _upgrade_postgresql() -> None:
    op.execute("ALTER TABLE call_costs ADD COLUMN IF NOT EXISTS start_utc timestamptz")
    with op.get_context().autocommit_block():  # commits the ADD COLUMN: its lock goes
        conn = op.get_bind()
        fill_in_batches(conn, batch_rows=BATCH_ROWS)
        conn.exec_driver_sql(f"ALTER TABLE call_costs DROP CONSTRAINT IF EXISTS {CHECK}")
        conn.exec_driver_sql(
            f"ALTER TABLE call_costs ADD CONSTRAINT {CHECK} CHECK (start_utc IS NOT NULL) "
            "NOT VALID"
        )
        conn.execute(sa.text(_FILL_REST))  # rows an older writer added during the batches
        conn.exec_driver_sql(f"ALTER TABLE call_costs VALIDATE CONSTRAINT {CHECK}")
        conn.exec_driver_sql("ALTER TABLE call_costs ALTER COLUMN start_utc SET NOT NULL")
        conn.exec_driver_sql(f"ALTER TABLE call_costs DROP CONSTRAINT {CHECK}")
        conn.exec_driver_sql(f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}")  # a failed build's
        conn.exec_driver_sql(
            f"CREATE INDEX CONCURRENTLY {INDEX} ON call_costs (tenant_id, start_utc, cost_minor)"
        )
        conn.exec_driver_sql("ANALYZE call_costs")  # every row just changed: fresh statistics


def fill_in_batches(conn: sa.Connection, *, batch_rows: int) -> int:
    """Fill ``start_utc`` of every cost row that has none: tenant by tenant, ``batch_rows``
    record ids per statement, walked in primary-key order.

    On an autocommit connection each statement is its own transaction. Returns the batches run.
    """
    batches = 0
    tenants = conn.execute(sa.text("SELECT tenant_id FROM tenants ORDER BY tenant_id")).scalars()
    for tenant in list(tenants):
        lower = ""  # below every record id
        while True:
            bounds = {"tenant": tenant, "lower": lower}
            upper = conn.execute(sa.text(_UPPER), {**bounds, "skip": batch_rows - 1}).scalar()
            batches += 1
            if upper is None:
                conn.execute(sa.text(_FILL_RANGE), bounds)
                break
            conn.execute(sa.text(_FILL_RANGE + _UPPER_BOUND), {**bounds, "upper": upper})
            lower = upper
    return batches


def downgrade() -> None:
    op.drop_index(INDEX, table_name="call_costs")
    with op.batch_alter_table("call_costs") as batch:
        batch.drop_column("start_utc")
