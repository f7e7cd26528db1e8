"""Monthly partitions of calls and their results on PostgreSQL; ``start_utc`` on the results.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06 10:30:00

Both dialects: ``call_costs``, ``unrated_calls`` and ``call_cost_history`` get their call's
``start_utc`` (filled from ``calls``; a column another revision already added is kept and only
its empty values are filled), so the same queries run on both.

PostgreSQL converts the store in place (datacenter/store/tables/partitioning.py, docs/scale.md):

1. ``call_keys`` (tenant, record id, UTC month) is filled from ``calls``: from now on its primary
   key, not ``calls``'s, stores a call once.
2. The results' foreign keys to ``calls`` are dropped (they will point at ``call_keys``).
3. Each of the four tables is renamed ``<table>_default`` (its indexes too), a partitioned
   ``<table>`` of the same columns is created with the key widened by ``start_utc`` and the same
   secondary indexes, and the old table is attached as its DEFAULT partition. The old indexes
   are attached as they are (no rebuild); the new primary keys are built once.

No month partitions are made here: ``datacenter store partitions --ahead N`` makes them and
``--convert`` moves the old rows into them one month per transaction, while ingest runs.
SQLite stays unpartitioned. There is no way down but the backup taken before upgrading.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | Sequence[str] | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of tables/partitioning.py's declarations as of this revision.
_TABLES = ("calls", "call_costs", "unrated_calls", "call_cost_history")
_RESULTS = _TABLES[1:]
_KEYS = {
    "calls": "tenant_id, record_id, start_utc",
    "call_costs": "tenant_id, record_id, start_utc",
    "unrated_calls": "tenant_id, record_id, start_utc",
    "call_cost_history": "tenant_id, record_id, changed_at, start_utc",
}
_SQLITE_EPOCH = "1970-01-01 00:00:00.000000"  # only a placeholder until the fill below


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name == "sqlite":
        _sqlite_start_columns(conn)
    else:
        _postgres_start_columns(conn)
        _postgres_call_keys(conn)
        for table in _TABLES:
            _partition(conn, table)


def downgrade() -> None:
    raise NotImplementedError(
        "revision 0018 cannot be undone in place: restore the store's backup taken before it"
    )


def _sqlite_start_columns(conn: sa.Connection) -> None:
    for table in _RESULTS:
        columns = {c["name"] for c in sa.inspect(conn).get_columns(table)}
        if "start_utc" not in columns:
            # SQLite adds a NOT NULL column only with a default; every row is filled below.
            conn.exec_driver_sql(
                f"ALTER TABLE {table} ADD COLUMN start_utc DATETIME NOT NULL "
                f"DEFAULT '{_SQLITE_EPOCH}'"
            )
        conn.exec_driver_sql(
            f"UPDATE {table} SET start_utc = (SELECT c.start_utc FROM calls c "
            f"WHERE c.tenant_id = {table}.tenant_id AND c.record_id = {table}.record_id) "
            f"WHERE start_utc IS NULL OR start_utc = '{_SQLITE_EPOCH}'"
        )


def _postgres_start_columns(conn: sa.Connection) -> None:
    for table in _RESULTS:
        conn.exec_driver_sql(
            f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS start_utc TIMESTAMP WITH TIME ZONE"
        )
        conn.exec_driver_sql(
            f"UPDATE {table} AS r SET start_utc = c.start_utc FROM calls c "
            "WHERE c.tenant_id = r.tenant_id AND c.record_id = r.record_id "
            "AND r.start_utc IS NULL"
        )
        conn.exec_driver_sql(f"ALTER TABLE {table} ALTER COLUMN start_utc SET NOT NULL")


def _postgres_call_keys(conn: sa.Connection) -> None:
    conn.exec_driver_sql(
        "CREATE TABLE call_keys ("
        "tenant_id INTEGER NOT NULL, record_id VARCHAR(128) NOT NULL, start_month DATE NOT NULL, "
        "CONSTRAINT pk_call_keys PRIMARY KEY (tenant_id, record_id))"
    )
    conn.exec_driver_sql(
        "INSERT INTO call_keys (tenant_id, record_id, start_month) "
        "SELECT tenant_id, record_id, date_trunc('month', start_utc AT TIME ZONE 'UTC')::date "
        "FROM calls"
    )
    for table in _RESULTS:
        for (name,) in conn.exec_driver_sql(
            "SELECT conname FROM pg_constraint WHERE contype = 'f' "
            f"AND conrelid = '{table}'::regclass AND confrelid = 'calls'::regclass"
        ).all():
            conn.exec_driver_sql(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')


def _partition(conn: sa.Connection, table: str) -> None:
    legacy = f"{table}_default"
    indexes = conn.exec_driver_sql(
        "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x "
        "JOIN pg_class i ON i.oid = x.indexrelid "
        f"WHERE x.indrelid = '{table}'::regclass AND NOT x.indisprimary ORDER BY i.relname"
    ).all()
    conn.exec_driver_sql(f"ALTER TABLE {table} RENAME TO {legacy}")
    conn.exec_driver_sql(f"ALTER TABLE {legacy} DROP CONSTRAINT pk_{table}")
    for name, _definition in indexes:
        conn.exec_driver_sql(f'ALTER INDEX "{name}" RENAME TO "{name}_default"')
    conn.exec_driver_sql(
        f"CREATE TABLE {table} (LIKE {legacy} INCLUDING DEFAULTS INCLUDING CONSTRAINTS) "
        "PARTITION BY RANGE (start_utc)"
    )
    conn.exec_driver_sql(
        f"ALTER TABLE {table} ADD CONSTRAINT pk_{table} PRIMARY KEY ({_KEYS[table]})"
    )
    for _name, definition in indexes:
        # The same index on the parent (a partitioned index): ATTACH finds the old one matches.
        conn.exec_driver_sql(re.sub(rf" ON (\S+\.)?{table} ", f" ON {table} ", definition, count=1))
    if table == "calls":
        conn.exec_driver_sql(
            "ALTER TABLE calls ADD CONSTRAINT fk_calls_tenant_id_tenants FOREIGN KEY (tenant_id) "
            "REFERENCES tenants (tenant_id) ON DELETE RESTRICT"
        )
    else:
        conn.exec_driver_sql(
            f"ALTER TABLE {table} ADD CONSTRAINT fk_{table}_tenant_id_record_id_call_keys "
            "FOREIGN KEY (tenant_id, record_id) REFERENCES call_keys (tenant_id, record_id) "
            "ON DELETE CASCADE"
        )
    conn.exec_driver_sql(f"ALTER TABLE {table} ATTACH PARTITION {legacy} DEFAULT")
