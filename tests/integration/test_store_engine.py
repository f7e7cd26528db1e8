"""The store engine: migrations from empty, schema == tables.py, UTC round-trips, both backends."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from datacenter.ingest.rows import CALL_COLUMNS, call_values
from datacenter.store.engine import (
    alembic_config,
    check_current,
    current_revision,
    head_revision,
    open_store,
    upgrade,
    write_transaction,
)
from datacenter.store.scoped import TenantScope
from datacenter.store.tables import metadata
from datacenter.store.tables.core import tenants
from datacenter.store.tables.partitioning import (
    PARTITIONED_TABLES,
    RESULT_TABLES,
    postgres_metadata,
)
from shared.errors import StoreError
from shared.icdr import ICDR
from tests.factories import gen_outgoing_call
from tests.fixtures.store import gen_tenant

NOW = datetime(2026, 1, 3, 0, 0, tzinfo=UTC)


def schema_differences(conn: sa.Connection) -> list[Any]:
    """What Alembic finds between the store and the declared tables.

    On PostgreSQL the declared tables are laid out as ``tables/partitioning.py`` says: the
    month and DEFAULT partitions are not tables of their own, ``call_keys`` is declared on its
    own metadata, and the results' foreign keys point at ``call_keys`` (checked here too).
    """
    postgres = conn.dialect.name == "postgresql"
    if postgres:
        for name in RESULT_TABLES:
            (fk,) = sa.inspect(conn).get_foreign_keys(name)
            assert (fk["referred_table"], fk["constrained_columns"]) == (
                "call_keys",
                ["tenant_id", "record_id"],
            ), name
        partitioned = set(
            conn.exec_driver_sql("SELECT relname FROM pg_class WHERE relkind = 'p'").scalars()
        )
        assert partitioned == set(PARTITIONED_TABLES)

    def include(obj: Any, name: str | None, kind: str, _reflected: bool, _other: Any) -> bool:
        if not postgres:
            return True
        if kind == "table" and name is not None and _PARTITION.match(name):
            return False
        return not (kind == "foreign_key_constraint" and obj.table.name in RESULT_TABLES)

    context = MigrationContext.configure(
        conn, opts={"compare_type": True, "include_object": include}
    )
    declared = metadata
    if postgres:  # the tables and call_keys on one MetaData
        declared = sa.MetaData(naming_convention=metadata.naming_convention)
        for table in (*metadata.tables.values(), *postgres_metadata.tables.values()):
            table.to_metadata(declared)
    return list(compare_metadata(context, declared))


_PARTITION = re.compile(rf"^({'|'.join(PARTITIONED_TABLES)})_(default|y\d{{4}}m\d{{2}})$")


def downgrade(engine: sa.Engine, *, revision: str) -> None:
    with write_transaction(engine) as conn:
        command.downgrade(alembic_config(conn), revision)


def test_migrations_run_up_from_empty_and_match_the_tables(store_url: str) -> None:
    engine = open_store(store_url)
    try:
        assert current_revision(engine) is None
        with pytest.raises(StoreError, match="datacenter init"):
            check_current(engine)
        upgrade(engine)
        assert current_revision(engine) == head_revision()
        check_current(engine)
        upgrade(engine)  # running it again changes nothing
        with engine.connect() as conn:
            assert schema_differences(conn) == []
            names = set(sa.inspect(conn).get_table_names())
        assert {"tenants", "agents", "users", "landed_files", "calls", "call_days"} <= names
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    "stored",
    [
        datetime(2026, 3, 29, 0, 59, 59, 123456, tzinfo=UTC),
        # an aware non-UTC time comes back as the same instant, in UTC
        datetime(2026, 3, 29, 2, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    ],
)
def test_times_round_trip_as_aware_utc(store: sa.Engine, stored: datetime) -> None:
    with write_transaction(store) as conn:
        conn.execute(tenants.insert().values(slug="t", name="T", timezone="UTC", created_at=stored))
    with store.connect() as conn:
        back = conn.execute(sa.select(tenants.c.created_at)).scalar_one()
    assert back == stored
    assert back.tzinfo is not None and back.utcoffset() == timedelta(0)


def test_naive_times_are_refused(store: sa.Engine) -> None:
    with (
        pytest.raises(sa.exc.StatementError, match="naive datetime"),
        write_transaction(store) as conn,
    ):
        conn.execute(
            tenants.insert().values(
                slug="t", name="T", timezone="UTC", created_at=datetime(2026, 1, 1)
            )
        )


def test_failed_write_transaction_rolls_back(store: sa.Engine) -> None:
    with pytest.raises(RuntimeError), write_transaction(store) as conn:
        conn.execute(
            tenants.insert().values(
                slug="t", name="T", timezone="UTC", created_at=datetime.now(UTC)
            )
        )
        raise RuntimeError("boom")
    with store.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(tenants)).scalar_one() == 0


def test_sqlite_connections_use_wal_and_foreign_keys(tmp_path: Path) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 'new' / 'x.db'}")  # the folder is created
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite://", "must be a file"),
        ("sqlite:///:memory:", "must be a file"),
        ("postgresql+psycopg2://u@127.0.0.1/db", "psycopg 3"),
        ("mysql://u@127.0.0.1/db", "only sqlite"),
        ("not a url", "not a database URL"),
    ],
)
def test_unsupported_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(StoreError, match=message):
        open_store(url)


def test_revision_0007_moves_the_record_documents_extras_into_columns(store_url: str) -> None:
    """Calls stored before 0007 (with an ``icdr`` document) read back as the same ICDR after it."""
    engine = open_store(store_url)
    rec = gen_outgoing_call(
        1, start=datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC), extra={"k": "v"}
    )
    old = gen_outgoing_call(2)  # a document without ``extra``, as a hand-made one may be
    try:
        upgrade(engine, revision="0006")
        tenant_id = gen_tenant(engine, "acme").tenant_id
        with write_transaction(engine) as conn:
            # the agents table as 0006 had it (today's code reads later columns too)
            agents_0006 = sa.Table("agents", sa.MetaData(), autoload_with=conn)
            conn.execute(agents_0006.insert().values(
                tenant_id=tenant_id, agent_id="edge-1", name="", enrolled_at=NOW))  # fmt: skip
            table = sa.Table("calls", sa.MetaData(), autoload_with=conn)
            for each, document in ((rec, rec.to_dict()), (old, _without_extra(old))):
                values = call_values(tenant_id, each, "f.ccb", NOW)[:-2]  # no extra, icdr_version
                row = dict(zip(CALL_COLUMNS[:-2], values, strict=True))
                conn.execute(table.insert().values(**row, icdr=document))
        upgrade(engine)
        with engine.connect() as conn:
            scope = TenantScope(conn, tenant_id)
            stored = [scope.get_call(each.record_id) for each in (rec, old)]
            columns = {c["name"] for c in sa.inspect(conn).get_columns("calls")}
        assert [each.to_icdr() if each else None for each in stored] == [rec, old]
        assert "icdr" not in columns and {"extra", "icdr_version"} <= columns
        with pytest.raises(NotImplementedError, match="restore the store's backup"):
            downgrade(engine, revision="0006")
    finally:
        engine.dispose()


def _without_extra(rec: ICDR) -> dict[str, object]:
    document = rec.to_dict()
    del document["extra"]
    return document


def test_revision_0012_goes_down_to_0011_and_up_again(store_url: str) -> None:
    """The accounts revision rebuilds ``users`` (SQLite batch mode) both ways without loss.

    From 0012 itself: 0018 (partitioned calls) has no way down but the backup.
    """
    engine = open_store(store_url)
    try:
        upgrade(engine, revision="0012")
        tenant = gen_tenant(engine, "acme")
        with write_transaction(engine) as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO users (email, password_hash, role, tenant_id, display_name, "
                    "created_at, disabled, failed_logins) VALUES ('a@acme.example', 'x', "
                    "'tenant', :t, '', CURRENT_TIMESTAMP, false, 0)"
                ),
                {"t": tenant.tenant_id},
            )
        downgrade(engine, revision="0011")
        assert current_revision(engine) == "0011"
        upgrade(engine)
        assert current_revision(engine) == head_revision()
        with engine.connect() as conn:
            assert conn.scalar(sa.text("SELECT email FROM users")) == "a@acme.example"
            assert schema_differences(conn) == []
    finally:
        engine.dispose()
