"""Monthly partitions of calls and their results on PostgreSQL: make them, fill them, drop them.

Contract (the layout is ``tables/partitioning.py``'s; docs/scale.md has the figures):

- ``create_months(engine, months)`` / ``create_ahead(engine, n)`` make the month partitions of
  the four tables that are missing (``create_ahead``: this UTC month and the next ``n``), one
  month per transaction. A month whose calls wait in the DEFAULT partitions has them moved into
  its new partitions in the same transaction: its tables are made empty and unattached, filled
  by one ``DELETE ... RETURNING`` from the default, then attached (a ``CHECK`` on the month lets
  ``ATTACH`` skip re-reading them). Ingest never makes partitions: the data centre's alarm loop
  calls ``create_ahead`` once a day, and a call of a month without one lands in DEFAULT.
- ``convert(engine, progress)`` moves everything out of the DEFAULT partitions (a store just
  converted by migration 0018 holds all its calls there), oldest month first, one month per
  transaction (which also analyses the month's new partitions), calling ``progress`` after
  each, then vacuums the DEFAULT partitions of the dead rows the moves left. Ingest goes on
  meanwhile: a month being moved is locked only while it is moved, and the calls of other
  months never wait.
- ``drop_months_before(engine, month)`` detaches and drops every whole month before ``month``
  of all four tables (one transaction per month: the parent is locked only for the catalogue
  change), deletes what the DEFAULT partitions hold before it, then rebuilds the rollups of the
  days it touched for every tenant that had calls then. ``call_keys`` keeps the dropped calls'
  keys, so a batch re-sent after retention is still a duplicate.
- ``delete_calls_before(engine, tenant_id, before)`` is retention for one tenant, on both
  dialects: its calls and their results before ``before``, ``batch`` calls per transaction,
  then its rollups of those days rebuilt.
- Every function but ``delete_calls_before`` and ``move_call_start`` raises ``StoreError`` on
  SQLite, which stays one table per kind.
- Concurrent runs queue on one advisory lock; a month is never made twice.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from datacenter.store.engine import write_transaction
from datacenter.store.rollups import rebuild_before
from datacenter.store.tables.core import call_days, calls, tenants
from datacenter.store.tables.partitioning import PARTITIONED_TABLES, call_keys
from datacenter.store.tables.rating import call_cost_history, call_costs, unrated_calls
from shared.errors import StoreError

DELETE_BATCH = 5_000  # calls per transaction of a tenant's retention
PARTITIONS_AHEAD = 3  # months the alarm loop keeps ready beyond the current one
PARTITIONS_EVERY = timedelta(days=1)  # how often it looks
_LOCK = "callcollect.partitions"
_MONTH_NAME = re.compile(r"^calls_y(\d{4})m(\d{2})$")


@dataclass(frozen=True, slots=True)
class MonthMoved:
    """One month of ``convert``: its rows moved out of DEFAULT (all four tables)."""

    month: date
    rows: int
    done: int
    total: int


@dataclass(frozen=True, slots=True)
class ConvertResult:
    months: tuple[date, ...]
    rows: int
    seconds: float


@dataclass(frozen=True, slots=True)
class DropResult:
    months: tuple[date, ...]  # whole months dropped
    partitions: tuple[str, ...]  # tables dropped (every partitioned table's, each month)
    default_rows: int  # rows deleted from the DEFAULT partitions, before the month
    tenants_rebuilt: int
    seconds: float  # in all
    rollup_seconds: float  # of which fixing the rollups


def month_start(day: date) -> date:
    return day.replace(day=1)


def next_month(month: date) -> date:
    return (month.replace(day=28) + timedelta(days=4)).replace(day=1)


def partition_name(table: str, month: date) -> str:
    return f"{table}_y{month.year:04d}m{month.month:02d}"


def default_partition(table: str) -> str:
    return f"{table}_default"


def is_partitioned(conn: sa.Connection) -> bool:
    if conn.dialect.name != "postgresql":
        return False
    kind = conn.execute(
        sa.text("SELECT relkind FROM pg_class WHERE oid = to_regclass(:name)"), {"name": "calls"}
    ).scalar()
    return kind == "p"


def require_partitioned(conn: sa.Connection) -> None:
    if not is_partitioned(conn):
        raise StoreError(
            "this store's calls are not partitioned: only PostgreSQL stores are (SQLite stays "
            "one table); on PostgreSQL run `datacenter init` to migrate the store first"
        )


def attached_months(conn: sa.Connection) -> list[date]:
    """The months that have their own partition of ``calls``, oldest first."""
    names = conn.execute(
        sa.text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass('calls')"
        )
    ).scalars()
    found = (_MONTH_NAME.match(name) for name in names)
    return sorted(date(int(m[1]), int(m[2]), 1) for m in found if m)


# --- making months ------------------------------------------------------------------------------


def create_ahead(engine: sa.Engine, months: int, *, today: date | None = None) -> list[str]:
    """This UTC month's and the next ``months`` months' partitions, if missing; names made."""
    if months < 0:
        raise ValueError(f"months ahead must be 0 or more, not {months}")
    month = month_start(today or datetime.now(UTC).date())
    wanted = [month]
    for _ in range(months):
        wanted.append(next_month(wanted[-1]))
    return create_months(engine, wanted)


def create_months(engine: sa.Engine, months: Iterable[date]) -> list[str]:
    """Each month's partitions of the four tables, if missing (one transaction per month)."""
    made: list[str] = []
    for month in sorted({month_start(m) for m in months}):
        with write_transaction(engine) as conn:
            require_partitioned(conn)
            _lock(conn)
            if month in attached_months(conn):
                continue
            _add_month(conn, month)
        made += [partition_name(table, month) for table in PARTITIONED_TABLES]
    return made


def convert(
    engine: sa.Engine, progress: Callable[[MonthMoved], None] | None = None
) -> ConvertResult:
    """Move every month the DEFAULT partitions hold into its own partitions (module doc)."""
    started = time.monotonic()
    with engine.connect() as conn:
        pending = _default_months(conn)
    rows = 0
    for done, month in enumerate(pending, start=1):
        with write_transaction(engine) as conn:
            _lock(conn)
            moved = 0 if month in attached_months(conn) else _add_month(conn, month)
            if moved:
                _analyze_month(conn, month)
        rows += moved
        if progress is not None:
            progress(MonthMoved(month, moved, done, len(pending)))
    if rows:
        _vacuum_defaults(engine)
    return ConvertResult(tuple(pending), rows, time.monotonic() - started)


def _analyze_month(conn: sa.Connection, month: date) -> None:
    """Statistics for a month's new partitions, in its own transaction: until autovacuum
    analyses them, the planner guesses their sizes (a cost range without dates then hashed all
    of a tenant's calls instead of probing a few: ``probe_plan`` decides from these figures)."""
    for table in PARTITIONED_TABLES:
        conn.exec_driver_sql(f"ANALYZE {partition_name(table, month)}")


def _vacuum_defaults(engine: sa.Engine) -> None:
    """Vacuum the DEFAULT partitions the rows left (outside a transaction, as VACUUM must be).

    Every moved row stays there as a dead tuple until vacuumed, and an index scan of DEFAULT,
    which every query that cannot prune it makes, walks all of them: after moving 5,000,000
    calls, autovacuum may take minutes to get there.
    """
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in PARTITIONED_TABLES:
            conn.exec_driver_sql(f"VACUUM (ANALYZE) {default_partition(table)}")


def default_rows(conn: sa.Connection) -> int:
    """The calls the DEFAULT partition holds (counted: after conversion it is small)."""
    require_partitioned(conn)
    return int(
        conn.execute(sa.text(f"SELECT count(*) FROM {default_partition('calls')}")).scalar_one()
    )


def _default_months(conn: sa.Connection) -> list[date]:
    require_partitioned(conn)
    union = " UNION ".join(
        f"SELECT DISTINCT date_trunc('month', start_utc AT TIME ZONE 'UTC')::date AS month "
        f"FROM {default_partition(table)}"
        for table in PARTITIONED_TABLES
    )
    return sorted(conn.execute(sa.text(union)).scalars())


def _add_month(conn: sa.Connection, month: date) -> int:
    """Make ``month``'s partitions, moving its rows out of DEFAULT; the rows moved."""
    require_partitioned(conn)
    low, high = (_literal(each) for each in (month, next_month(month)))
    moved = 0
    for table in PARTITIONED_TABLES:
        name = partition_name(table, month)
        columns = ", ".join(c["name"] for c in sa.inspect(conn).get_columns(table))
        conn.exec_driver_sql(
            f"CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS, "
            f"CONSTRAINT {name}_month CHECK (start_utc >= {low} AND start_utc < {high}))"
        )
        result = conn.exec_driver_sql(
            f"WITH moved AS (DELETE FROM {default_partition(table)} "
            f"WHERE start_utc >= {low} AND start_utc < {high} RETURNING *) "
            f"INSERT INTO {name} ({columns}) SELECT {columns} FROM moved"
        )
        moved += max(result.rowcount, 0)
        conn.exec_driver_sql(
            f"ALTER TABLE {table} ATTACH PARTITION {name} FOR VALUES FROM ({low}) TO ({high})"
        )
        conn.exec_driver_sql(f"ALTER TABLE {name} DROP CONSTRAINT {name}_month")
    return moved


def _literal(month: date) -> str:
    """A month's first instant as a timestamptz literal (made from a date: nothing to escape)."""
    return f"'{month.isoformat()} 00:00:00+00'"


def _lock(conn: sa.Connection) -> None:
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": _LOCK})


# --- retention ----------------------------------------------------------------------------------


def drop_months_before(engine: sa.Engine, month: date) -> DropResult:
    """Drop every month before ``month`` (a first of month) from all four tables (module doc)."""
    if month.day != 1:
        raise ValueError(f"{month.isoformat()} is not the first day of a month")
    started = time.monotonic()
    cutoff = datetime(month.year, month.month, 1, tzinfo=UTC)
    with engine.connect() as conn:
        require_partitioned(conn)
        doomed = [m for m in attached_months(conn) if m < month]
        affected = _tenants_with_days_before(conn, month + timedelta(days=1))
    dropped: list[str] = []
    for each in doomed:
        with write_transaction(engine) as conn:
            _lock(conn)
            for table in reversed(PARTITIONED_TABLES):  # results first: nothing refers to them
                name = partition_name(table, each)
                conn.exec_driver_sql(f"ALTER TABLE {table} DETACH PARTITION {name}")
                conn.exec_driver_sql(f"DROP TABLE {name}")
                dropped.append(name)
    with write_transaction(engine) as conn:
        default_rows = sum(
            max(
                conn.execute(
                    sa.text(f"DELETE FROM {default_partition(table)} WHERE start_utc < :cutoff"),
                    {"cutoff": cutoff},
                ).rowcount,
                0,
            )
            for table in reversed(PARTITIONED_TABLES)
        )
    rebuilding = time.monotonic()
    for tenant_id, zone in affected:
        with write_transaction(engine) as conn:
            rebuild_before(
                conn, tenant_id, zone, cutoff.astimezone(zone).date() + timedelta(days=1)
            )
    done = time.monotonic()
    return DropResult(
        tuple(doomed), tuple(dropped), default_rows, len(affected), done - started,
        done - rebuilding,
    )  # fmt: skip


def _tenants_with_days_before(conn: sa.Connection, day: date) -> list[tuple[int, ZoneInfo]]:
    """Tenants whose daily rollup has a local day before ``day`` (they had calls then)."""
    query = (
        sa.select(tenants.c.tenant_id, tenants.c.timezone)
        .where(
            sa.exists().where(call_days.c.tenant_id == tenants.c.tenant_id, call_days.c.day < day)
        )
        .order_by(tenants.c.tenant_id)
    )
    return [(row.tenant_id, ZoneInfo(row.timezone)) for row in conn.execute(query)]


def delete_calls_before(
    engine: sa.Engine, tenant_id: int, before: datetime, *, batch: int = DELETE_BATCH
) -> int:
    """Delete the tenant's calls (and their results) that start before ``before``; how many."""
    deleted = 0
    while True:
        with write_transaction(engine) as conn:
            ids = list(
                conn.execute(
                    sa.select(calls.c.record_id)
                    .where(calls.c.tenant_id == tenant_id, calls.c.start_utc < before)
                    .order_by(calls.c.start_utc)
                    .limit(batch)
                ).scalars()
            )
            for table in (call_cost_history, unrated_calls, call_costs, calls):
                conn.execute(
                    table.delete().where(
                        table.c.tenant_id == tenant_id,
                        table.c.start_utc < before,  # prunes to the months concerned
                        table.c.record_id.in_(ids),
                    )
                )
        deleted += len(ids)
        if len(ids) < batch:
            break
    with write_transaction(engine) as conn:
        zone = ZoneInfo(
            conn.execute(
                sa.select(tenants.c.timezone).where(tenants.c.tenant_id == tenant_id)
            ).scalar_one()
        )
        rebuild_before(conn, tenant_id, zone, before.astimezone(zone).date() + timedelta(days=1))
    return deleted


def move_call_start(conn: sa.Connection, tenant_id: int, record_id: str, start: datetime) -> None:
    """A stored call's start changed: its result rows (and ``call_keys`` month) follow it."""
    for table in (call_costs, unrated_calls, call_cost_history):
        conn.execute(
            table.update()
            .where(table.c.tenant_id == tenant_id, table.c.record_id == record_id)
            .values(start_utc=start)
        )
    if conn.dialect.name == "postgresql":
        conn.execute(
            call_keys.update()
            .where(call_keys.c.tenant_id == tenant_id, call_keys.c.record_id == record_id)
            .values(start_month=start.astimezone(UTC).date().replace(day=1))
        )
