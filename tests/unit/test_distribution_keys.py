"""The schema stays distributable by tenant_id (Citus): every key of tenant data leads with it.

Reads the SQLAlchemy metadata (every table, as the migrations build it: a test elsewhere holds
the two equal), so a new table fails here until its keys lead with ``tenant_id`` or it is
listed in ``datacenter.store.distribution`` as a reference or coordinator table with a reason.
"""

from __future__ import annotations

import sqlalchemy as sa

from datacenter.store.distribution import COORDINATOR_TABLES, REFERENCE_TABLES, placement
from datacenter.store.tables import metadata
from datacenter.store.tables.partitioning import postgres_metadata

# with call_keys, PostgreSQL's identity table of the partitioned calls (tables/partitioning.py)
TABLES = sorted(
    [*metadata.tables.values(), *postgres_metadata.tables.values()], key=lambda table: table.name
)


def unique_keys(table: sa.Table) -> list[tuple[str, list[str]]]:
    """Every primary key, unique constraint and unique index, by name and columns."""
    found = [
        (str(each.name), [column.name for column in each.columns])
        for each in table.constraints
        if isinstance(each, sa.PrimaryKeyConstraint | sa.UniqueConstraint)
    ]
    found += [(str(i.name), [c.name for c in i.columns]) for i in table.indexes if i.unique]
    found += [(f"{c.name} unique", [c.name]) for c in table.columns if c.unique]
    return found


def test_listed_tables_exist() -> None:
    assert set(REFERENCE_TABLES) | set(COORDINATOR_TABLES) <= set(metadata.tables)
    assert not set(REFERENCE_TABLES) & set(COORDINATOR_TABLES)
    assert all(
        reason.strip() for reason in (*REFERENCE_TABLES.values(), *COORDINATOR_TABLES.values())
    )


def test_distributed_tables_lead_every_key_with_tenant_id() -> None:
    wrong = {
        table.name: [name for name, columns in unique_keys(table) if columns[0] != "tenant_id"]
        for table in TABLES
        if placement(table) == "distributed"
    }
    assert {name: keys for name, keys in wrong.items() if keys} == {}
    for table in TABLES:
        if placement(table) == "distributed":
            assert not table.c.tenant_id.nullable or table.c.tenant_id.primary_key, table.name


def test_foreign_keys_stay_on_one_node_or_point_at_reference_tables() -> None:
    wrong = []
    for table in TABLES:
        for key in table.foreign_key_constraints:
            target = key.referred_table
            here, there = placement(table), placement(target)
            columns = [column.name for column in key.columns]
            referred = [element.column.name for element in key.elements]
            if there == "reference":
                continue  # every node holds a copy
            co_located = columns[0] == referred[0] == "tenant_id"
            if here == there == "distributed" and co_located:
                continue  # the same tenant's rows are on the same node
            if here == "coordinator" and there == "coordinator":
                continue
            wrong.append(f"{table.name}({', '.join(columns)}) -> {target.name} [{here} -> {there}]")
    assert wrong == []


def test_reference_tables_refer_only_to_reference_tables() -> None:
    for name in REFERENCE_TABLES:
        for key in metadata.tables[name].foreign_key_constraints:
            assert placement(key.referred_table) == "reference", (name, key.referred_table.name)
