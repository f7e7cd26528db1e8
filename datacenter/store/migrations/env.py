"""Alembic environment: runs migrations on the connection ``engine.upgrade`` hands in.

There is no alembic.ini and no URL here: the caller builds the Config in code and passes an open
connection in ``config.attributes["connection"]``, so migrations run on exactly the engine (and
SQLite pragmas) the application uses. Offline (SQL script) mode is not supported.
"""

from __future__ import annotations

from alembic import context

from datacenter.store.tables import metadata


def run_migrations() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None or context.is_offline_mode():
        raise RuntimeError(
            "run migrations through `datacenter init` (datacenter.store.engine.upgrade)"
        )
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things: batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        # One transaction per revision: a revision may commit early to fill a big table in
        # short transactions (``op.get_context().autocommit_block()``, 0017).
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
