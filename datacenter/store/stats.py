"""How big the store is: rows, bytes, partitions and dead rows per table, rows per tenant.

Contract:

- ``store_stats(conn)`` reads only catalogues and cheap aggregates, so it is safe on a live store
  of billions of calls. Every count says whether it is ``exact``:
  - SQLite: every count is exact (``count(*)``); sizes come from the ``dbstat`` virtual table
    (table plus its indexes) when the SQLite build has it, else they are None.
  - PostgreSQL: a table's rows are the planner's estimate (``pg_class.reltuples``, summed over
    its partitions; ``pg_stat_user_tables.n_live_tup`` while a table was never analysed), its
    size ``pg_total_relation_size`` (indexes and TOAST included), its bloat the dead rows
    autovacuum has not reclaimed yet (``n_dead_tup``). Per tenant, a table estimated under
    ``EXACT_BELOW`` rows is counted exactly; a larger one is the planner's estimate for
    ``WHERE tenant_id = ?`` (its most-common-values statistics), never a scan.
- A tenant's oldest and newest call come from ``min``/``max`` of ``start_utc``, which the
  ``(tenant_id, start_utc)`` index answers without reading the calls, on both backends.
- Partitions (PostgreSQL declarative partitioning) are listed per table with their bounds: the
  month partitions and the DEFAULT one (``DEFAULT``), whose rows are calls of a month that had
  no partition when they came (``datacenter store partitions --ahead``, docs/scale.md).
  ``call_keys`` (PostgreSQL only) is listed with the tables.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa

from datacenter.store.tables import metadata
from datacenter.store.tables.core import calls, tenants
from datacenter.store.tables.partitioning import postgres_metadata

EXACT_BELOW = 1_000_000  # PostgreSQL: per-tenant counts of smaller tables are exact


@dataclass(frozen=True, slots=True)
class Partition:
    name: str
    bounds: str  # PostgreSQL's own text, e.g. FOR VALUES FROM ('2026-03-01') TO ('2026-04-01')
    rows: int
    bytes: int


@dataclass(frozen=True, slots=True)
class TableStats:
    name: str
    rows: int
    exact: bool
    bytes: int | None  # table, indexes and TOAST; None where the backend cannot say
    dead_rows: int | None  # PostgreSQL: not yet vacuumed (bloat); None on SQLite
    partitions: tuple[Partition, ...] = ()


@dataclass(frozen=True, slots=True)
class TenantRows:
    table: str
    rows: int
    exact: bool


@dataclass(frozen=True, slots=True)
class TenantStats:
    slug: str
    tenant_id: int
    oldest_call: datetime | None
    newest_call: datetime | None
    tables: tuple[TenantRows, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class StoreStats:
    backend: str
    database_bytes: int | None
    tables: tuple[TableStats, ...]
    tenants: tuple[TenantStats, ...]

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self), option=orjson.OPT_INDENT_2)


def store_stats(conn: sa.Connection, *, tenant_slug: str | None = None) -> StoreStats:
    """The figures of every table and of every tenant (or only ``tenant_slug``'s)."""
    postgres = conn.dialect.name == "postgresql"
    tables = _postgres_tables(conn) if postgres else _sqlite_tables(conn)
    estimated = {t.name: t.rows for t in tables}
    chosen = sa.select(tenants.c.tenant_id, tenants.c.slug).order_by(tenants.c.slug)
    if tenant_slug is not None:
        chosen = chosen.where(tenants.c.slug == tenant_slug)
    per_tenant = tuple(
        _tenant(conn, row.tenant_id, row.slug, estimated if postgres else None)
        for row in conn.execute(chosen)
    )
    return StoreStats(conn.dialect.name, _database_bytes(conn), tables, per_tenant)


def tenant_tables() -> list[sa.Table]:
    """Every table with a ``tenant_id`` column, in name order."""
    return sorted(
        (t for t in metadata.tables.values() if "tenant_id" in t.c and t is not tenants),
        key=lambda t: t.name,
    )


def _tenant(
    conn: sa.Connection, tenant_id: int, slug: str, estimated: dict[str, int] | None
) -> TenantStats:
    # min and max take the column's type, so the times come back aware UTC on both backends.
    oldest, newest = conn.execute(
        sa.select(sa.func.min(calls.c.start_utc), sa.func.max(calls.c.start_utc)).where(
            calls.c.tenant_id == tenant_id
        )
    ).one()
    counts = []
    for table in tenant_tables():
        if estimated is not None and estimated.get(table.name, 0) >= EXACT_BELOW:
            counts.append(TenantRows(table.name, _planner_rows(conn, table, tenant_id), False))
        else:
            query = sa.select(sa.func.count()).select_from(table)
            rows = conn.execute(query.where(table.c.tenant_id == tenant_id)).scalar_one()
            counts.append(TenantRows(table.name, int(rows), True))
    return TenantStats(slug, tenant_id, oldest, newest, tuple(counts))


def _planner_rows(conn: sa.Connection, table: sa.Table, tenant_id: int) -> int:
    """PostgreSQL's estimate of the table's rows for one tenant, from its statistics.

    A partitioned table's plan appends one scan per partition, and the planner never estimates
    a scan below one row: the partitions ANALYZE found empty (made ahead, or emptied) are left
    out of the sum, or 36 empty months would add 36 rows.
    """
    plan = conn.exec_driver_sql(
        f"EXPLAIN (FORMAT JSON) SELECT 1 FROM {table.name} WHERE tenant_id = {int(tenant_id)}"
    ).scalar_one()
    top = plan[0]["Plan"]
    if top["Node Type"] != "Append":
        return int(top["Plan Rows"])
    empty = set(
        conn.execute(
            sa.text(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = to_regclass(:name) AND c.reltuples = 0"
            ),
            {"name": table.name},
        ).scalars()
    )
    return sum(
        int(child["Plan Rows"]) for child in top["Plans"] if child.get("Relation Name") not in empty
    )


# --- PostgreSQL --------------------------------------------------------------------------------

_PG_TABLES = sa.text(
    """
    SELECT c.relname AS name,
           c.reltuples::bigint AS reltuples,
           COALESCE(s.n_live_tup, 0) AS live,
           COALESCE(s.n_dead_tup, 0) AS dead,
           pg_total_relation_size(c.oid) AS bytes,
           c.relkind = 'p' AS partitioned
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
    WHERE n.nspname = current_schema() AND c.relname = ANY(:names)
    """
)

_PG_PARTITIONS = sa.text(
    """
    SELECT parent.relname AS parent, child.relname AS name,
           pg_get_expr(child.relpartbound, child.oid) AS bounds,
           CASE WHEN child.reltuples >= 0 THEN child.reltuples::bigint
                ELSE COALESCE(s.n_live_tup, 0) END AS rows,
           COALESCE(s.n_dead_tup, 0) AS dead,
           pg_total_relation_size(child.oid) AS bytes
    FROM pg_inherits i
    JOIN pg_class parent ON parent.oid = i.inhparent
    JOIN pg_class child ON child.oid = i.inhrelid
    JOIN pg_namespace n ON n.oid = parent.relnamespace
    LEFT JOIN pg_stat_user_tables s ON s.relid = child.oid
    WHERE n.nspname = current_schema() AND parent.relname = ANY(:names)
    ORDER BY parent.relname, child.relname
    """
)


def _postgres_tables(conn: sa.Connection) -> tuple[TableStats, ...]:
    names = sorted([*metadata.tables, *postgres_metadata.tables])  # with call_keys
    parts: dict[str, list[Any]] = {}
    for row in conn.execute(_PG_PARTITIONS, {"names": names}):
        parts.setdefault(row.parent, []).append(row)
    out = []
    for row in conn.execute(_PG_TABLES, {"names": names}).all():
        children = parts.get(row.name, [])
        if children:  # a partitioned table holds nothing itself: its partitions do
            rows = sum(int(c.rows) for c in children)
            dead = sum(int(c.dead) for c in children)
            size = sum(int(c.bytes) for c in children)
        else:
            # reltuples is -1 until the first ANALYZE; n_live_tup counts since then.
            rows = int(row.reltuples) if row.reltuples >= 0 else int(row.live)
            dead, size = int(row.dead), int(row.bytes)
        partitions = tuple(Partition(c.name, c.bounds, int(c.rows), int(c.bytes)) for c in children)
        out.append(TableStats(row.name, rows, False, size, dead, partitions))
    return tuple(sorted(out, key=lambda t: t.name))


def _database_bytes(conn: sa.Connection) -> int | None:
    if conn.dialect.name == "postgresql":
        return int(conn.exec_driver_sql("SELECT pg_database_size(current_database())").scalar_one())
    pages = conn.exec_driver_sql("PRAGMA page_count").scalar_one()
    size = conn.exec_driver_sql("PRAGMA page_size").scalar_one()
    return int(pages) * int(size)


# --- SQLite ------------------------------------------------------------------------------------


def _sqlite_tables(conn: sa.Connection) -> tuple[TableStats, ...]:
    sizes = _sqlite_sizes(conn)
    out = []
    for name in sorted(metadata.tables):
        rows = conn.execute(sa.select(sa.func.count()).select_from(metadata.tables[name]))
        size = sizes.get(name) if sizes is not None else None
        out.append(TableStats(name, int(rows.scalar_one()), True, size, None))
    return tuple(out)


def _sqlite_sizes(conn: sa.Connection) -> dict[str, int] | None:
    """Bytes per table with its indexes, from ``dbstat``; None if this SQLite lacks it."""
    try:
        found = conn.exec_driver_sql(
            "SELECT m.tbl_name, SUM(d.pgsize) FROM dbstat d "
            "JOIN sqlite_schema m ON m.name = d.name GROUP BY m.tbl_name"
        ).all()
    except sa.exc.OperationalError:  # built without SQLITE_ENABLE_DBSTAT_VTAB
        return None
    return {str(name): int(size) for name, size in found}
