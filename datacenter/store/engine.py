"""Opening the store and bringing its schema to the current version.

Contract:

- ``open_store(url)`` returns an ``Engine`` for SQLite (``sqlite:///PATH``) or PostgreSQL
  (``postgresql+psycopg://...``, psycopg 3). It does not create or migrate anything; the SQLite
  file's folder is created so a first ``datacenter init`` works on an empty data dir.
- SQLite connections run in WAL mode with foreign keys on, a busy timeout and
  ``synchronous=FULL``: ingest moves a batch file to the archive right after its commit, so the
  commit must survive a power cut. Transactions use a real ``BEGIN`` (pysqlite's own transaction
  handling is switched off, as SQLAlchemy's SQLite docs recommend).
- ``write_transaction(engine)`` is the way to write: on SQLite it takes the write lock at
  ``BEGIN IMMEDIATE``, so a read-then-write transaction cannot fail half-way on a lock upgrade
  (writers queue on the busy timeout instead). Plain ``engine.connect()`` is for reads.
- ``upgrade(engine)`` runs the Alembic migrations shipped in ``datacenter/store/migrations`` to
  head, one transaction per revision; ``current_revision(engine)`` says where a database is. Only ``datacenter init`` (and
  tests) call ``upgrade``: the web app never migrates.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from shared.errors import StoreError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000
POSTGRES_CONNECT_TIMEOUT_SECONDS = 10
_BEGIN_OPTION = "callcollect_sqlite_begin"


def open_store(url: str, *, echo: bool = False, **engine_kwargs: Any) -> sa.Engine:
    """An engine for ``url``; raises ``StoreError`` for a URL this store does not support."""
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise StoreError(f"store URL {url!r} is not a database URL: {exc}") from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _open_sqlite(parsed, echo=echo, **engine_kwargs)
    if backend == "postgresql":
        if parsed.get_driver_name() != "psycopg":
            raise StoreError(
                f"store URL {url!r} uses driver {parsed.get_driver_name()!r}: "
                "write postgresql+psycopg://USER@HOST/DB (psycopg 3)"
            )
        connect_args = {"connect_timeout": POSTGRES_CONNECT_TIMEOUT_SECONDS}
        connect_args.update(engine_kwargs.pop("connect_args", {}))
        return sa.create_engine(
            parsed, echo=echo, pool_pre_ping=True, connect_args=connect_args, **engine_kwargs
        )
    raise StoreError(
        f"store URL {url!r}: only sqlite:/// and postgresql+psycopg:// stores are supported"
    )


def _open_sqlite(parsed: sa.URL, *, echo: bool, **engine_kwargs: Any) -> sa.Engine:
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        raise StoreError(
            "the SQLite store must be a file: write sqlite:////absolute/path/callcollect.db"
        )
    Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(parsed, echo=echo, **engine_kwargs)

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        # Hand transaction control to SQLAlchemy (the "begin" hook below emits BEGIN).
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = FULL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        mode = conn.get_execution_options().get(_BEGIN_OPTION, "")
        conn.exec_driver_sql(f"BEGIN {mode}".strip())

    return engine


@contextmanager
def write_transaction(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A connection in a transaction that commits on success and rolls back on error.

    On SQLite the transaction starts with ``BEGIN IMMEDIATE`` (takes the write lock up front).
    """
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})
        with conn.begin():
            yield conn


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """The Alembic configuration, built in code: no alembic.ini is needed at run time."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade(engine: sa.Engine, *, revision: str = "head") -> None:
    """Migrate the store to ``revision`` (default: the newest). Safe to run again.

    Alembic runs each revision in its own transaction (``migrations/env.py``), so a revision
    may commit part of its work and fill a large table in short transactions (0017); a run that
    stops leaves the store at its last whole revision, and running it again goes on from there.
    On SQLite each of those transactions takes the write lock at ``BEGIN IMMEDIATE``.
    """
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})
        command.upgrade(alembic_config(conn), revision)
        conn.commit()  # what Alembic read outside a revision (its version table)


def head_revision() -> str:
    """The newest migration this build ships."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships migrations
        raise StoreError("no migrations found in the package: reinstall callcollect")
    return head


def current_revision(engine: sa.Engine) -> str | None:
    """The store's schema revision, or None for an empty database."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def check_current(engine: sa.Engine) -> None:
    """Raise ``StoreError`` unless the store is at this build's head (for serve and ingest)."""
    current = current_revision(engine)
    head = head_revision()
    if current != head:
        state = "empty" if current is None else f"at revision {current}"
        raise StoreError(
            f"the store is {state}, this build needs {head}: run `datacenter init` to migrate it"
        )
