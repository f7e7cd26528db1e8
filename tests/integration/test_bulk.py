"""Bulk writes (COPY on PostgreSQL, executemany on SQLite) read back as the tables' types give them."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from datacenter.ingest.rows import call_values
from datacenter.store.bulk import append_rows, encoded_rows, insert_new_rows, time_encoder
from datacenter.store.engine import write_transaction
from datacenter.store.scoped import TenantScope
from datacenter.store.tables.core import calls
from datacenter.store.tables.rating import unrated_calls
from shared.icdr import ICDR, Direction
from tests.factories import gen_outgoing_call
from tests.fixtures.store import gen_agent, gen_tenant

NOW = datetime(2026, 7, 1, 9, 30, 15, 250000, tzinfo=UTC)


def _call_row(
    conn: sa.Connection, tenant_id: int, rec: ICDR, landed_file: str
) -> tuple[object, ...]:
    encode = time_encoder(conn)
    return call_values(
        tenant_id, rec, landed_file, encode(NOW), encode_time=encode,
        encode_json=json.dumps,
    )  # fmt: skip


@pytest.fixture
def tenant_id(store: sa.Engine) -> int:
    tenant = gen_tenant(store, "acme", timezone="Europe/London")
    gen_agent(store, "acme", "edge-1")
    return tenant.tenant_id


def test_calls_written_in_bulk_read_back_through_the_table_types(
    store: sa.Engine, tenant_id: int
) -> None:
    records = [
        gen_outgoing_call(1, flags=("unsupervised",), extra={"layout": "L2"}, account_code="4711"),
        gen_outgoing_call(2, direction=Direction.IN, answered=False, answer=None, talk_seconds=0),
    ]
    with write_transaction(store) as conn:
        rows = [_call_row(conn, tenant_id, rec, "edge-1-0000000001.ccb") for rec in records]
        added = insert_new_rows(conn, calls, rows, key="record_id", scope=("tenant_id", tenant_id))
    assert added == {rec.record_id for rec in records}
    with store.connect() as conn:
        scope = TenantScope(conn, tenant_id)
        stored = [scope.get_call(rec.record_id) for rec in records]
        ingested = conn.execute(sa.select(calls.c.ingested_at)).scalars().all()
    assert [s.to_icdr() if s else None for s in stored] == records
    assert stored[0] is not None and stored[0].call.start_utc == records[0].start
    assert stored[1] is not None and stored[1].call.answer_utc is None
    assert (stored[0].flags, stored[0].call.answered, stored[1].call.answered) == (
        ("unsupervised",), True, False,
    )  # fmt: skip
    assert ingested == [NOW, NOW]


def test_only_new_keys_are_added_and_a_repeated_key_once(store: sa.Engine, tenant_id: int) -> None:
    a, b, c = gen_outgoing_call(1), gen_outgoing_call(2), gen_outgoing_call(3)
    with write_transaction(store) as conn:
        rows = [_call_row(conn, tenant_id, rec, name) for rec, name in
                ((a, "first.ccb"), (b, "first.ccb"), (a, "again.ccb"))]  # fmt: skip
        first = insert_new_rows(conn, calls, rows, key="record_id", scope=("tenant_id", tenant_id))
    with write_transaction(store) as conn:
        rows = [_call_row(conn, tenant_id, rec, "second.ccb") for rec in (b, c)]
        second = insert_new_rows(conn, calls, rows, key="record_id", scope=("tenant_id", tenant_id))
    assert (first, second) == ({a.record_id, b.record_id}, {c.record_id})
    with store.connect() as conn:
        files = dict(conn.execute(sa.select(calls.c.record_id, calls.c.landed_file)).all())
    assert files == {a.record_id: "first.ccb", b.record_id: "first.ccb", c.record_id: "second.ccb"}


def test_a_key_taken_in_another_tenant_does_not_count(store: sa.Engine, tenant_id: int) -> None:
    other = gen_tenant(store, "globex").tenant_id
    gen_agent(store, "globex", "edge-1")
    rec = gen_outgoing_call(1)
    for tenant in (tenant_id, other):
        with write_transaction(store) as conn:
            added = insert_new_rows(conn, calls, [_call_row(conn, tenant, rec, "f.ccb")],
                                    key="record_id", scope=("tenant_id", tenant))  # fmt: skip
        assert added == {rec.record_id}


def test_appended_rows_keep_json_times_and_nulls(store: sa.Engine, tenant_id: int) -> None:
    rec = gen_outgoing_call(1)
    explanation = {"steps": ["no dial plan"], "direction": "out", "cost": None}
    with write_transaction(store) as conn:
        insert_new_rows(conn, calls, [_call_row(conn, tenant_id, rec, "f.ccb")],
                        key="record_id", scope=("tenant_id", tenant_id))  # fmt: skip
        row = {
            "tenant_id": tenant_id, "record_id": rec.record_id, "reason": "no_dial_plan",
            "detail": "agent 'edge-1' has no dial plan", "explanation": explanation,
            "first_attempt_at": NOW, "last_attempt_at": NOW, "attempts": 1,
            "start_utc": rec.start,
        }  # fmt: skip
        append_rows(conn, unrated_calls, encoded_rows(conn, unrated_calls, [row]))
    with store.connect() as conn:
        stored = conn.execute(sa.select(unrated_calls)).one()._asdict()
    assert stored == row


def test_appending_an_existing_key_raises_and_rolls_back(store: sa.Engine, tenant_id: int) -> None:
    rec = gen_outgoing_call(1)
    with write_transaction(store) as conn:
        append_rows(conn, calls, [_call_row(conn, tenant_id, rec, "first.ccb")])
    with pytest.raises(sa.exc.IntegrityError), write_transaction(store) as conn:
        append_rows(conn, calls, [_call_row(conn, tenant_id, gen_outgoing_call(2), "second.ccb"),
                                  _call_row(conn, tenant_id, rec, "second.ccb")])  # fmt: skip
    with store.connect() as conn:
        assert conn.execute(sa.select(calls.c.landed_file)).scalars().all() == ["first.ccb"]


def test_the_postgresql_staging_table_is_empty_after_each_commit(
    store: sa.Engine, tenant_id: int
) -> None:
    """A batch with a taken key goes through the staging table, which each commit empties."""
    if store.dialect.name != "postgresql":
        pytest.skip("SQLite needs no staging table")
    with write_transaction(store) as conn:
        append_rows(conn, calls, [_call_row(conn, tenant_id, gen_outgoing_call(0), "f.ccb")])
    with store.connect() as conn:
        for n in (1, 2):
            with conn.begin():
                rows = [_call_row(conn, tenant_id, gen_outgoing_call(k), "f.ccb") for k in (n, 0)]
                added = insert_new_rows(conn, calls, rows, key="record_id",
                                        scope=("tenant_id", tenant_id))  # fmt: skip
                assert added == {rows[0][1]}  # the taken key is not added again
                staged = conn.exec_driver_sql("SELECT count(*) FROM calls_staging").scalar_one()
                assert staged == 2  # this transaction's rows only
            assert conn.exec_driver_sql("SELECT count(*) FROM calls_staging").scalar_one() == 0
            conn.rollback()


def test_an_all_new_batch_is_copied_straight_in(store: sa.Engine, tenant_id: int) -> None:
    """The usual case: every key new, so no staging table is made (PostgreSQL)."""
    with write_transaction(store) as conn:
        rows = [_call_row(conn, tenant_id, gen_outgoing_call(k), "f.ccb") for k in range(3)]
        added = insert_new_rows(conn, calls, rows, key="record_id", scope=("tenant_id", tenant_id))
        staging = conn.exec_driver_sql(
            "SELECT count(*) FROM pg_class WHERE relname = 'calls_staging'"
            if conn.dialect.name == "postgresql"
            else "SELECT 0"
        ).scalar_one()
    assert added == {row[1] for row in rows} and staging == 0
    with store.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(calls)).scalar_one() == 3
