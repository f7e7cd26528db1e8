"""Writing many rows at once, the fastest way each dialect offers (ingest's hot path).

Contract:

- Rows are tuples in the table's column order. ``encoded_rows`` makes them from mappings of
  column to value as the table's types take them; the hot caller (ingest's ``calls``) builds
  them itself with ``time_encoder(conn)``, which writes a ``UTCDateTime`` value the way that type
  stores it (PostgreSQL: the aware datetime; SQLite: naive UTC text), and ``json_text``. JSON
  columns take JSON text on both dialects (SQLite's JSON type stores text; PostgreSQL parses it
  into ``jsonb``). A test reads rows written here back through the tables' own types.
- ``append_rows(conn, table, rows)`` adds rows none of which may exist yet: a key conflict raises
  and so rolls back the caller's transaction. PostgreSQL: one ``COPY ... FROM STDIN``; SQLite: one
  prepared ``executemany``.
- On PostgreSQL ``calls`` is partitioned by month and its identity lives in ``call_keys``
  (``tables/partitioning.py``): every call written here has its ``call_keys`` row written first,
  in the same transaction, and it is ``call_keys``'s primary key that refuses a call stored
  before, whichever month's partition the copy would fall into.
- ``insert_new_rows(conn, table, rows, key=...)`` adds the rows whose key is not taken and returns
  their key values. PostgreSQL: first one COPY straight into the table under a savepoint (the
  usual case: every key is new); if a key is taken, that is rolled back to the savepoint and the
  rows go by COPY into a temporary staging table, then one ``INSERT ... SELECT ... ON CONFLICT DO
  NOTHING RETURNING`` (for ``calls``: one statement that inserts the keys into ``call_keys ... ON
  CONFLICT DO NOTHING RETURNING`` and the calls of the keys it returned). Both stay right with
  concurrent writers (a unique key is checked against uncommitted rows too: the COPY waits for
  the other transaction, then fails or goes on). SQLite: the taken keys are looked up first,
  which is exact because the caller's ``write_transaction`` holds SQLite's single write lock
  from ``BEGIN IMMEDIATE``.

Why not SQLAlchemy's executemany: on psycopg it sends "insertmanyvalues" statements of up to
1,000 rows, each too long for psycopg's query cache, so psycopg re-parses every one with a regular
expression (65 ms per statement for 36 columns): ingest into PostgreSQL ran at 2,200 calls/s.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

import orjson
import psycopg
import sqlalchemy as sa

from datacenter.store.dialect import same
from datacenter.store.tables.metadata import UTCDateTime
from datacenter.store.tables.partitioning import PARTITION_KEY, call_keys

LOOKUP_CHUNK = 500  # keys per IN (...) look-up, well under SQLite's parameter limit

Row = tuple[Any, ...]


def time_encoder(conn: sa.Connection) -> Callable[[datetime], Any]:
    """How ``UTCDateTime`` stores an aware datetime on this connection's dialect."""
    return _sqlite_time if conn.dialect.name == "sqlite" else same  # timestamptz takes it as is


def append_rows(conn: sa.Connection, table: sa.Table, rows: Sequence[Row]) -> None:
    """Add rows that must all be new (their keys are not in the table)."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        if table.name == "calls":
            _copy(conn, call_keys.name, _names(call_keys), _key_rows(table, rows))
        _copy(conn, table.name, _names(table), rows)
    else:
        conn.exec_driver_sql(_insert_sql(table), list(rows))


def insert_new_rows(
    conn: sa.Connection,
    table: sa.Table,
    rows: Sequence[Row],
    *,
    key: str,
    scope: tuple[str, Any],
) -> set[Any]:
    """Add the rows whose ``key`` is not taken within ``scope`` (column, value); the keys added.

    Every row must carry ``scope``'s value, and ``(scope column, key)`` must be unique in the
    table. A key repeated within ``rows`` is added once, from its first row.
    """
    position = _names(table).index(key)
    first: dict[Any, Row] = {}
    for row in rows:
        first.setdefault(row[position], row)
    if not first:
        return set()
    if conn.dialect.name == "postgresql":
        return _insert_new_postgres(conn, table, list(first.values()), key, scope[0])
    taken = _taken_keys(conn, table, key, scope, list(first))
    append_rows(conn, table, [row for k, row in first.items() if k not in taken])
    return set(first) - taken


def _taken_keys(
    conn: sa.Connection, table: sa.Table, key: str, scope: tuple[str, Any], keys: list[Any]
) -> set[Any]:
    taken: set[Any] = set()
    for start in range(0, len(keys), LOOKUP_CHUNK):
        taken.update(
            conn.execute(
                sa.select(table.c[key]).where(
                    table.c[scope[0]] == scope[1],
                    table.c[key].in_(keys[start : start + LOOKUP_CHUNK]),
                )
            ).scalars()
        )
    return taken


def _insert_new_postgres(
    conn: sa.Connection, table: sa.Table, rows: list[Row], key: str, scope_column: str
) -> set[Any]:
    # Most batches are all new: COPY them straight in, under a savepoint. A key already there
    # (a re-send, or a concurrent worker's commit) fails the COPY with a unique violation; the
    # savepoint takes it back and the staging path sorts new from taken. The direct COPY writes
    # each row once instead of twice (staging, then INSERT ... SELECT): about a third of
    # PostgreSQL's CPU per ingested call (benchmarks/scale_ingest.py, docs/scale.md).
    try:
        with conn.begin_nested():
            append_rows(conn, table, rows)
    except sa.exc.IntegrityError:
        return _insert_new_through_staging(conn, table, rows, key, scope_column)
    position = _names(table).index(key)
    return {row[position] for row in rows}


def _insert_new_through_staging(
    conn: sa.Connection, table: sa.Table, rows: list[Row], key: str, scope_column: str
) -> set[Any]:
    staging = f"{table.name}_staging"
    columns = ", ".join(_names(table))
    # Temporary: private to this session, created once per connection; ON COMMIT DELETE ROWS
    # empties it at every commit, and a rollback takes its rows (or its creation) back.
    conn.exec_driver_sql(
        f"CREATE TEMPORARY TABLE IF NOT EXISTS {staging} "
        f"(LIKE {table.name} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
    )
    _copy(conn, staging, _names(table), rows)
    if table.name == "calls":
        added = conn.exec_driver_sql(_INSERT_NEW_CALLS.format(columns=columns, staging=staging))
    else:
        added = conn.exec_driver_sql(
            f"INSERT INTO {table.name} ({columns}) SELECT {columns} FROM {staging} "
            f"ON CONFLICT ({scope_column}, {key}) DO NOTHING RETURNING {key}"
        )
    return set(added.scalars())


# Exactly-once on the partitioned calls, in one statement: the keys call_keys did not have are
# inserted (a concurrent writer's uncommitted key makes ON CONFLICT wait for its transaction),
# and only the calls of the keys returned are.
_INSERT_NEW_CALLS = (
    "WITH new AS (INSERT INTO call_keys (tenant_id, record_id, start_month) "
    "SELECT tenant_id, record_id, date_trunc('month', start_utc AT TIME ZONE 'UTC')::date "
    "FROM {staging} ON CONFLICT (tenant_id, record_id) DO NOTHING "
    "RETURNING tenant_id, record_id) "
    "INSERT INTO calls ({columns}) SELECT {columns} FROM {staging} "
    "JOIN new USING (tenant_id, record_id) RETURNING record_id"
)


def _key_rows(table: sa.Table, rows: Sequence[Row]) -> list[Row]:
    """The ``call_keys`` rows of these ``calls`` rows (the start as an aware datetime)."""
    names = _names(table)
    tenant, record, start = (names.index(n) for n in ("tenant_id", "record_id", PARTITION_KEY))
    return [(row[tenant], row[record], _month(row[start])) for row in rows]


def _month(start: datetime) -> date:
    return start.astimezone(UTC).date().replace(day=1)


def _copy(conn: sa.Connection, target: str, columns: list[str], rows: Sequence[Row]) -> None:
    """COPY rows through this SQLAlchemy connection's psycopg connection, so in its transaction."""
    driver = conn.connection.driver_connection
    assert driver is not None  # an open SQLAlchemy connection always has one
    statement = f"COPY {target} ({', '.join(columns)}) FROM STDIN"
    try:
        with driver.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)
    except psycopg.Error as exc:  # raised as SQLAlchemy raises its own: sa.exc.DataError, ...
        raise sa.exc.DBAPIError.instance(statement, None, exc, psycopg.Error) from exc


def _names(table: sa.Table) -> list[str]:
    return [column.name for column in table.columns]


def _insert_sql(table: sa.Table) -> str:
    names = _names(table)
    return f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"


def _sqlite_time(value: datetime) -> str:
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def encoded_rows(
    conn: sa.Connection, table: sa.Table, values: Iterable[Mapping[str, Any]]
) -> list[Row]:
    """Rows for ``append_rows`` from mappings of every column to the value its type takes."""
    encoders = [(column.name, _encoder(conn, column)) for column in table.columns]
    return [tuple(encode(each[name]) for name, encode in encoders) for each in values]


def _encoder(conn: sa.Connection, column: sa.Column[Any]) -> Callable[[Any], Any]:
    if isinstance(column.type, UTCDateTime):
        encode_time = time_encoder(conn)
        return lambda value: None if value is None else encode_time(value)
    if isinstance(column.type, sa.JSON):
        return json_text
    return same


def json_text(value: Any) -> str:
    return orjson.dumps(value).decode()  # several times json.dumps's speed; same JSON
