"""Revision 0020: the ``(tenant_id, decimals, cost_minor)`` index a cost range without dates reads.

On SQLite and PostgreSQL: the revision indexes a populated store, goes down and up again and,
on PostgreSQL (``call_costs`` partitioned by month), builds one index per partition and attaches
it, going on where an interrupted run stopped. That a cost range's results equal a plain
reference is ``test_call_cost_start.py``'s hypothesis test; what the index saves,
``benchmarks/portal.py`` measures ("a year, cost >= 1.50"). And revision 0013, which runs
today's rollup rebuild on a store whose cost rows have no start yet: its join must not name it.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command

from datacenter.store import partitions
from datacenter.store.engine import alembic_config, open_store, upgrade, write_transaction
from datacenter.store.rollups import raw_totals, stored_totals
from tests.fixtures.store import gen_tenant
from tests.integration.test_call_cost_start import CALLS, ZONE, _write
from tests.integration.test_store_engine import schema_differences

INDEX = "ix_call_costs_tenant_id_decimals_cost_minor"

# Each partition of call_costs and the name of its index attached to INDEX (None: none yet).
_ATTACHED = """
SELECT c.relname, (
    SELECT i.relname FROM pg_inherits ii JOIN pg_class i ON i.oid = ii.inhrelid
    JOIN pg_index x ON x.indexrelid = i.oid
    WHERE ii.inhparent = to_regclass(%(index)s) AND x.indrelid = c.oid AND x.indisvalid
)
FROM pg_inherits p JOIN pg_class c ON c.oid = p.inhrelid
WHERE p.inhparent = to_regclass('call_costs') ORDER BY c.relname
"""


def _indexed(engine: sa.Engine) -> bool:
    with engine.connect() as conn:
        return INDEX in {i["name"] for i in sa.inspect(conn).get_indexes("call_costs")}


def _partitions(engine: sa.Engine) -> dict[str, str | None]:
    with engine.connect() as conn:
        return dict(conn.exec_driver_sql(_ATTACHED, {"index": INDEX}).all())


def _parent_valid(engine: sa.Engine) -> bool:
    with engine.connect() as conn:
        return bool(
            conn.exec_driver_sql(
                "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%(index)s)",
                {"index": INDEX},
            ).scalar_one()
        )


def test_revision_0020_indexes_a_populated_store_and_goes_down_and_up(store_url: str) -> None:
    engine = open_store(store_url)
    try:
        upgrade(engine, revision="0019")
        _write(engine, gen_tenant(engine, "acme"))
        if engine.dialect.name == "postgresql":
            partitions.convert(engine)  # the calls' months out of DEFAULT: partitions to index
        assert not _indexed(engine)
        upgrade(engine)
        assert _indexed(engine)
        with engine.connect() as conn:
            assert schema_differences(conn) == []
        if engine.dialect.name == "postgresql":
            indexed = _partitions(engine)
            assert len(indexed) > 2  # months and DEFAULT
            assert None not in indexed.values(), indexed
            assert _parent_valid(engine)
        with write_transaction(engine) as conn:
            command.downgrade(alembic_config(conn), "0019")
        assert not _indexed(engine)
        upgrade(engine)
        assert _indexed(engine)
    finally:
        engine.dispose()


def test_revision_0020_goes_on_where_an_interrupted_run_stopped(pg_url: str) -> None:
    """The parent's index made, one month's index built and attached, another month's left
    behind unattached by a failed concurrent build: the next run finishes the job."""
    engine = open_store(pg_url)
    try:
        upgrade(engine, revision="0019")
        _write(engine, gen_tenant(engine, "acme"))
        partitions.convert(engine)
        columns = "(tenant_id, decimals, cost_minor)"
        with write_transaction(engine) as conn:
            conn.exec_driver_sql(f"CREATE INDEX {INDEX} ON ONLY call_costs {columns}")
            first, second = sorted(_partitions_of(conn))[:2]
            conn.exec_driver_sql(f"CREATE INDEX done_idx ON {first} {columns}")
            conn.exec_driver_sql(f"ALTER INDEX {INDEX} ATTACH PARTITION done_idx")
            # the name the migration gives the month's index, on a wrong column: not attachable
            left = f"{second}_tenant_id_decimals_cost_minor_idx"[:63]
            conn.exec_driver_sql(f'CREATE INDEX "{left}" ON {second} (tenant_id)')
        assert not _parent_valid(engine)
        upgrade(engine)
        indexed = _partitions(engine)
        assert indexed[first] == "done_idx"  # kept, not built again
        assert indexed[second] == left  # dropped and built again, attached
        assert None not in indexed.values(), indexed
        assert _parent_valid(engine)
        with engine.connect() as conn:
            assert schema_differences(conn) == []
    finally:
        engine.dispose()


def _partitions_of(conn: sa.Connection) -> list[str]:
    return list(
        conn.exec_driver_sql(
            "SELECT c.relname FROM pg_inherits p JOIN pg_class c ON c.oid = p.inhrelid "
            "WHERE p.inhparent = to_regclass('call_costs')"
        ).scalars()
    )


def test_revision_0013_fills_the_rollups_of_a_store_without_cost_starts(store_url: str) -> None:
    """Migration 0013 runs today's rollup rebuild on a store from before 0017, whose cost rows
    have no ``start_utc``: the rebuild's join must not name it there (``costs_by_start``)."""
    engine = open_store(store_url)
    try:
        upgrade(engine, revision="0012")
        tenant = gen_tenant(engine, "acme")
        _write(engine, tenant, at_head=False)
        upgrade(engine, revision="0013")  # ran today's rebuild: it did not name start_utc
        with engine.connect() as conn:
            rolled = stored_totals(conn, tenant.tenant_id)["rollup_extension_days"]
            assert sum(measures[0] for measures in rolled.values()) == CALLS  # every call
            with pytest.raises(sa.exc.DBAPIError, match="start_utc"):  # what the flag avoids
                raw_totals(conn, tenant.tenant_id, ZONE)
    finally:
        engine.dispose()
