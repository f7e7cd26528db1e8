"""``datacenter.store.probe_plan``: a cost range without dates probes each match's month.

On PostgreSQL, for a tenant of a few thousand calls over four months of which a few cost much:
the planner's estimates make a rare cost range probe and a common one hash; the probed totals
are sent with hash and merge joins off and the start in the join, equal a plain reference, and
leave the connection's settings as they were; a dated filter asks no estimate. On SQLite
nothing changes. And a dated filter on the cost row (a carrier) joins costs without the start,
which both sides' periods make redundant (``costs.joined_costs``). That probing and hashing give the same results over thresholds, periods and
scopes is ``test_call_cost_start.py``'s hypothesis test (it forces either); what probing saves,
``benchmarks/portal.py`` measures ("a year, cost >= 1.50").
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from datacenter.store import costs, probe_plan
from datacenter.store.engine import open_store, upgrade, write_transaction
from datacenter.store.scoped import CallFilter, TenantScope
from datacenter.store.tables.core import calls
from datacenter.store.tables.rating import call_costs
from shared.icdr import ICDR
from tests.factories import gen_outgoing_call
from tests.fixtures.store import cost_row, gen_tenant, insert_calls

BASE = datetime(2025, 3, 1, tzinfo=UTC)
CALLS = 3000
DEAR_EVERY = 250  # one call in 250 costs 5.00, the others 0.05
RARE = CallFilter(cost_min=Decimal("1.00"))
COMMON = CallFilter(cost_min=Decimal("0.01"))


def _records() -> list[ICDR]:
    step = timedelta(days=120) / CALLS  # four months: four partitions
    return [
        gen_outgoing_call(n, start=BASE + step * n, talk_seconds=30 + n % 300) for n in range(CALLS)
    ]


def _write(engine: sa.Engine, tenant_id: int) -> list[ICDR]:
    records = _records()
    with write_transaction(engine) as conn:
        insert_calls(conn, tenant_id, records, received_at=BASE)
        conn.execute(call_costs.insert(), [
            cost_row(tenant_id, rec, (500 if n % DEAR_EVERY == 0 else 5, "GBP", 2, "national"),
                     rated_at=BASE) | {"start_utc": rec.start}
            for n, rec in enumerate(records)
        ])  # fmt: skip
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("ANALYZE calls")  # the estimates the decision reads
            conn.exec_driver_sql("ANALYZE call_costs")
    return records


ON_POSTGRES = pytest.mark.parametrize(
    "backend", [pytest.param("postgres", marks=pytest.mark.postgres)]
)


@pytest.fixture
def written(store: sa.Engine) -> tuple[int, list[ICDR]]:
    """A tenant's calls and costs in ``store``: (tenant id, the calls)."""
    tenant = gen_tenant(store, "acme")
    return tenant.tenant_id, _write(store, tenant.tenant_id)


def _statements(conn: sa.Connection) -> list[str]:
    seen: list[str] = []

    def remember(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    sa.event.listen(conn, "before_cursor_execute", remember)
    return seen


@ON_POSTGRES
def test_a_rare_cost_range_probes_and_a_common_one_hashes(
    store: sa.Engine, written: tuple[int, list[ICDR]]
) -> None:
    tenant_id, _records = written
    with store.connect() as conn:
        conditions = {f: costs.cost_conditions(f.cost_filter) for f in (RARE, COMMON)}
        assert probe_plan.worth_probing(conn, tenant_id, conditions[RARE])
        assert not probe_plan.worth_probing(conn, tenant_id, conditions[COMMON])


@ON_POSTGRES
def test_probed_totals_equal_the_reference_and_put_the_settings_back(
    store: sa.Engine, written: tuple[int, list[ICDR]]
) -> None:
    tenant_id, records = written
    dear = [rec for n, rec in enumerate(records) if n % DEAR_EVERY == 0]
    with store.connect() as conn:
        sent = _statements(conn)
        totals = TenantScope(conn, tenant_id).call_totals(RARE)
        assert conn.exec_driver_sql("SHOW enable_hashjoin").scalar_one() == "on"
        assert conn.exec_driver_sql("SHOW enable_mergejoin").scalar_one() == "on"
    assert totals.calls == len(dear) == CALLS // DEAR_EVERY
    assert totals.talk_seconds == sum(rec.talk_seconds for rec in dear)
    assert [(c.currency, c.cost_minor) for c in totals.costs] == [("GBP", 500 * len(dear))]
    settings = [i for i, sql in enumerate(sent) if sql.startswith("SET LOCAL")]
    totals_at = next(i for i, sql in enumerate(sent) if "sum(calls.talk_seconds)" in sql)
    assert [sent[i] for i in settings] == [
        "SET LOCAL enable_hashjoin = off", "SET LOCAL enable_mergejoin = off",
        "SET LOCAL enable_hashjoin TO DEFAULT", "SET LOCAL enable_mergejoin TO DEFAULT",
    ]  # fmt: skip
    assert settings[1] < totals_at < settings[2]
    assert "call_costs.start_utc = calls.start_utc" in sent[totals_at]


@ON_POSTGRES
def test_the_probed_plan_joins_by_nested_loop_only(
    store: sa.Engine, written: tuple[int, list[ICDR]]
) -> None:
    tenant_id, _records = written
    with store.connect() as conn:
        query = costs.totals_query(
            [calls.c.tenant_id == tenant_id, call_costs.c.tenant_id == tenant_id,
             *costs.cost_conditions(RARE.cost_filter)],
            source=costs.source(RARE.cost_filter, probing=True),
        )  # fmt: skip
        compiled = query.compile(dialect=conn.dialect)
        with probe_plan.probing_joins(conn, True):
            plan = "\n".join(
                row[0]
                for row in conn.exec_driver_sql(f"EXPLAIN (COSTS OFF) {compiled}", compiled.params)
            )
    assert "Nested Loop" in plan, plan
    assert "Hash Join" not in plan and "Merge Join" not in plan, plan


@ON_POSTGRES
def test_a_dated_cost_range_asks_no_estimate(
    store: sa.Engine, written: tuple[int, list[ICDR]]
) -> None:
    tenant_id, _records = written
    dated = CallFilter(cost_min=Decimal("1.00"), date_from=date(2025, 3, 1),
                       date_to=date(2025, 3, 31))  # fmt: skip
    with store.connect() as conn:
        sent = _statements(conn)
        totals = TenantScope(conn, tenant_id).call_totals(dated)
    assert totals.calls > 0
    assert not [sql for sql in sent if sql.startswith(("EXPLAIN", "SET"))], sent


def test_sqlite_never_probes(tmp_path: Path) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 'callcollect.db'}")
    try:
        upgrade(engine)
        tenant = gen_tenant(engine, "acme")
        _write(engine, tenant.tenant_id)
        with engine.connect() as conn:
            sent = _statements(conn)
            assert not probe_plan.worth_probing(
                conn, tenant.tenant_id, costs.cost_conditions(RARE.cost_filter)
            )
            totals = TenantScope(conn, tenant.tenant_id).call_totals(RARE)
        assert totals.calls == CALLS // DEAR_EVERY
        assert not [sql for sql in sent if sql.startswith(("EXPLAIN", "SET"))], sent
    finally:
        engine.dispose()


def test_a_dated_filter_on_the_cost_row_joins_without_the_start(tmp_path: Path) -> None:
    """Both sides carry the period, so the join leaves the start out (``costs.joined_costs``):
    with it PostgreSQL expected two rows and sorted a week's 15,000 for a page of 50."""
    engine = open_store(f"sqlite:///{tmp_path / 'callcollect.db'}")
    try:
        upgrade(engine)
        tenant = gen_tenant(engine, "acme")
        _write(engine, tenant.tenant_id)
        first, last = date(2025, 3, 3), date(2025, 3, 9)
        with engine.connect() as conn:
            sent = _statements(conn)
            view = TenantScope(conn, tenant.tenant_id)
            carrier = view.list_calls(CallFilter(carrier="britline", date_from=first, date_to=last))
            everything = view.list_calls(CallFilter(date_from=first, date_to=last))
        ids = [call.record_id for call in carrier.calls]  # every call here is britline's
        assert ids == [call.record_id for call in everything.calls] and len(ids) == 50
    finally:
        engine.dispose()
    lists = [sql for sql in sent if sql.startswith("SELECT calls.record_id")]
    assert len(lists) == 2, lists
    with_carrier, without = lists
    assert "call_costs.carrier" in with_carrier
    assert "call_costs.start_utc = calls.start_utc" not in with_carrier
    assert "call_costs.start_utc = calls.start_utc" in without  # no period on the cost rows
