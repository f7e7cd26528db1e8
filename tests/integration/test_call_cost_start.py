"""``call_costs.start_utc`` (revision 0017) and the cost-range queries that read by it.

On SQLite and PostgreSQL: the revision fills a populated store (and in small batches), goes down
and up again; and a cost range's list, count, cursor pages and totals equal a plain reference
computed in Python from the rows the test wrote, over thresholds, periods, filters and scopes
drawn by hypothesis. The writers (ingest, re-rate, retry, completion) are checked where they are
tested: ``test_rating_store.py`` and ``test_ingest_incomplete.py`` (``cost_start_mismatches``).
"""

from __future__ import annotations

import importlib.util
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from types import ModuleType
from typing import Any
from unittest import mock
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datacenter.accounts.tenants import Tenant
from datacenter.store import probe_plan
from datacenter.store.call_scope import WHOLE, UserScope
from datacenter.store.engine import (
    MIGRATIONS_DIR,
    alembic_config,
    open_store,
    upgrade,
    write_transaction,
)
from datacenter.store.scoped import CallFilter, TenantScope
from datacenter.store.tables.directory import directory_entries
from datacenter.store.tables.rating import call_costs, unrated_calls
from shared.icdr import ICDR, Direction
from tests.factories import gen_outgoing_call
from tests.fixtures.store import cost_row, cost_start_mismatches, gen_tenant, insert_calls
from tests.integration.test_store_engine import schema_differences

BASE = datetime(2025, 3, 28, 21, 0, tzinfo=UTC)  # the clocks go forward in London on the 30th
ZONE = ZoneInfo("Europe/London")
CALLS = 48
INDEX = "ix_call_costs_tenant_id_start_utc_cost_minor"
# (currency, decimals) of the cost rows, in turn; "" is a zero cost without a tariff.
MONEY = (("GBP", 2), ("GBP", 3), ("EUR", 2), ("JPY", 0), ("USD", 6), ("", 0))
CLASSES = ("mobile", "national", "international")
EXTENSIONS = ("2201", "2202", "2203")
SALES_FROM = BASE + timedelta(days=2)  # 2202 joins Sales two days in


@dataclass(frozen=True)
class Stored:
    """What the test wrote of one call, for the reference."""

    record_id: str
    tenant_id: int
    start: datetime
    extension: str
    direction: str
    talk_seconds: int
    cost: tuple[int, str, int, str] | None  # (minor, currency, decimals, class); None: unrated

    @property
    def amount(self) -> Decimal | None:
        return None if self.cost is None else Decimal(self.cost[0]).scaleb(-self.cost[2])


def _records() -> list[ICDR]:
    return [
        gen_outgoing_call(
            n,
            start=BASE + timedelta(minutes=173 * n),
            talk_seconds=(n * 37) % 400,
            extension=EXTENSIONS[n % 3],
            direction=Direction.IN if n % 4 == 1 else Direction.OUT,
        )
        for n in range(CALLS)
    ]


def _cost(n: int) -> tuple[int, str, int, str] | None:
    """Every seventh call unrated; the rest across currencies, decimals and sizes."""
    if n % 7 == 3:
        return None
    currency, decimals = MONEY[n % len(MONEY)]
    minor = 0 if not currency else (n * 7919) % (3 * 10**decimals + 1)
    return minor, currency, decimals, CLASSES[n % 3]


def _write(engine: sa.Engine, tenant: Tenant, *, at_head: bool = True) -> list[Stored]:
    """The calls, cost rows and queue rows of one tenant, into a store at head or at 0016
    (no ``start_utc`` on the results yet, no ``call_keys``)."""
    out = []
    with write_transaction(engine) as conn:
        records = _records()
        insert_calls(conn, tenant.tenant_id, records, received_at=BASE, with_keys=at_head)
        costs, queued = [], []
        for n, rec in enumerate(records):
            cost = _cost(n)
            if cost is not None:
                row = cost_row(tenant.tenant_id, rec, cost, rated_at=BASE)
                costs.append(row | {"start_utc": rec.start} if at_head else row)
            elif n % 2:  # half the unrated calls are on the queue, half have no row yet
                queue_row = {
                    "tenant_id": tenant.tenant_id, "record_id": rec.record_id,
                    "reason": "NO_PREFIX_MATCH", "detail": "", "explanation": {},
                    "first_attempt_at": BASE, "last_attempt_at": BASE, "attempts": 1,
                }  # fmt: skip
                queued.append(queue_row | {"start_utc": rec.start} if at_head else queue_row)
            out.append(Stored(rec.record_id, tenant.tenant_id, rec.start, rec.extension,
                              rec.direction.value, rec.talk_seconds, cost))  # fmt: skip
        conn.execute(call_costs.insert(), costs)
        if queued:
            conn.execute(unrated_calls.insert(), queued)
    return out


def _migration() -> ModuleType:
    path = MIGRATIONS_DIR / "versions" / "v0017_call_cost_start.py"
    spec = importlib.util.spec_from_file_location("v0017_call_cost_start", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _schema_matches(engine: sa.Engine) -> None:
    """At head: the store is what the tables declare (partitioned on PostgreSQL)."""
    with engine.connect() as conn:
        assert schema_differences(conn) == []
    _start_column_and_index(engine)


def _start_column_and_index(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        inspector = sa.inspect(conn)
        column = {c["name"]: c for c in inspector.get_columns("call_costs")}["start_utc"]
        indexes = {i["name"]: i["column_names"] for i in inspector.get_indexes("call_costs")}
    assert column["nullable"] is False
    assert indexes[INDEX] == ["tenant_id", "start_utc", "cost_minor"]


def test_revision_0017_fills_a_populated_store_and_goes_down_and_up(store_url: str) -> None:
    engine = open_store(store_url)
    try:
        upgrade(engine, revision="0016")
        for slug in ("acme", "other"):
            _write(engine, gen_tenant(engine, slug), at_head=False)
        upgrade(engine, revision="0017")
        rated = 2 * sum(1 for n in range(CALLS) if _cost(n) is not None)
        assert cost_start_mismatches(engine) == (rated, [])
        _start_column_and_index(engine)
        # 0017 goes down and up again (0018, the partitioning, cannot go down: a backup can)
        with write_transaction(engine) as conn:
            command.downgrade(alembic_config(conn), "0016")
        with engine.connect() as conn:
            names = {c["name"] for c in sa.inspect(conn).get_columns("call_costs")}
        assert "start_utc" not in names
        upgrade(engine)
        assert cost_start_mismatches(engine) == (rated, [])
        _schema_matches(engine)
    finally:
        engine.dispose()


def test_the_fill_walks_the_cost_rows_in_batches(store_url: str) -> None:
    """What the PostgreSQL upgrade runs, with batches of 5 rows: every row filled, once."""
    engine = open_store(store_url)
    try:
        upgrade(engine, revision="0016")
        tenants = [gen_tenant(engine, slug) for slug in ("acme", "other")]
        for tenant in tenants:
            _write(engine, tenant, at_head=False)
        kind = "timestamptz" if engine.dialect.name == "postgresql" else "DATETIME"
        with write_transaction(engine) as conn:
            conn.exec_driver_sql(f"ALTER TABLE call_costs ADD COLUMN start_utc {kind}")
            batches = _migration().fill_in_batches(conn, batch_rows=5)
        rated = 2 * sum(1 for n in range(CALLS) if _cost(n) is not None)
        assert batches == 2 * (rated // 2 // 5 + 1)  # per tenant: full batches, then the rest
        assert cost_start_mismatches(engine) == (rated, [])
        with engine.connect() as conn:
            empty = conn.execute(
                sa.select(sa.func.count()).where(call_costs.c.start_utc.is_(None))
            ).scalar_one()
        assert empty == 0
    finally:
        engine.dispose()


# --- a cost range against the reference ---------------------------------------------------------


def _in_scope(call: Stored, scope: UserScope) -> bool:
    if scope.whole:
        return True
    if call.extension in scope.extensions:
        return True
    # The directory the test wrote: 2202 is in Sales from SALES_FROM on.
    return "Sales" in scope.departments and call.extension == "2202" and call.start >= SALES_FROM


def _reference(stored: list[Stored], tenant_id: int, f: CallFilter, scope: UserScope) -> list[str]:
    """The record ids ``f`` should list, newest first: a plain loop over what was written."""

    def local_midnight(day: date) -> datetime:
        return datetime.combine(day, time(), tzinfo=ZONE)

    out = []
    for call in stored:
        amount = call.amount
        if call.tenant_id != tenant_id or not _in_scope(call, scope):
            continue
        if f.date_from is not None and call.start < local_midnight(f.date_from):
            continue
        if f.date_to is not None and call.start >= local_midnight(f.date_to + timedelta(days=1)):
            continue
        if f.direction is not None and call.direction != Direction(f.direction).value:
            continue
        if f.cost_min is not None and (amount is None or amount < f.cost_min):
            continue
        if f.cost_max is not None and (amount is None or amount > f.cost_max):
            continue
        if f.number_class and (call.cost is None or call.cost[3] != f.number_class):
            continue
        out.append(call)
    out.sort(key=lambda c: (c.start, c.record_id), reverse=True)
    return [c.record_id for c in out]


AMOUNTS = st.one_of(
    st.none(),
    st.integers(0, 3_500_000).map(lambda micro: Decimal(micro).scaleb(-6)),
    st.integers(0, 350).map(lambda cents: Decimal(cents).scaleb(-2)),
)
DAYS = st.one_of(st.none(), st.integers(0, 6).map(lambda d: date(2025, 3, 28) + timedelta(d)))
SCOPES = st.sampled_from([
    WHOLE, UserScope(extensions=frozenset({"2201"})), UserScope(departments=frozenset({"Sales"})),
    UserScope(extensions=frozenset({"2203"}), departments=frozenset({"Sales"})),
])  # fmt: skip


def test_cost_ranges_equal_the_reference(store: sa.Engine) -> None:
    tenant = gen_tenant(store, "acme", timezone="Europe/London")
    other = gen_tenant(store, "other", timezone="Europe/London")
    stored = _write(store, tenant) + _write(store, other)
    with write_transaction(store) as conn:
        conn.execute(directory_entries.insert(), [{
            "tenant_id": tenant.tenant_id, "entry_id": "e1", "extension": "2202",
            "person": "Ann", "department": "Sales", "valid_from": SALES_FROM, "valid_to": None,
            "source": "manual", "updated_at": BASE,
        }])  # fmt: skip

    @settings(
        max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(
        low=AMOUNTS, high=AMOUNTS, first=DAYS, last=DAYS, scope=SCOPES,
        direction=st.sampled_from([None, Direction.OUT, Direction.IN]),
        number_class=st.sampled_from([None, "mobile", "national"]), probe=st.booleans(),
    )  # fmt: skip
    def check(
        low: Decimal | None,
        high: Decimal | None,
        first: date | None,
        last: date | None,
        scope: UserScope,
        direction: Direction | None,
        number_class: str | None,
        probe: bool,
    ) -> None:
        f = CallFilter(date_from=first, date_to=last, direction=direction,
                       number_class=number_class, cost_min=low, cost_max=high)  # fmt: skip
        expected = _reference(stored, tenant.tenant_id, f, scope)
        # the totals of a cost range without dates, probed or hashed (datacenter.store.probe_plan)
        with (
            store.connect() as conn,
            mock.patch.object(probe_plan, "worth_probing", return_value=probe),
        ):
            view = TenantScope(conn, tenant.tenant_id, user_scope=scope)
            page = view.list_calls(f, per_page=500)
            assert [c.record_id for c in page.calls] == expected
            assert view.count_calls(f) == len(expected)
            if low is not None or high is not None:  # else the rollups answer: none written here
                assert view.totals_source(f) == "calls"
                assert page.totals.calls == len(expected)
            assert _paged(view, f) == expected
            _check_totals(view.call_totals(f, source="raw"), stored, expected)

    check()


def _paged(view: TenantScope, f: CallFilter) -> list[str]:
    """Every call by the API's cursor, 7 at a time."""
    seen: list[str] = []
    after = None
    while page := view.list_calls_after(f, after=after, limit=7):
        seen += [c.record_id for c in page]
        after = (page[-1].start_utc, page[-1].record_id)
    return seen


def _check_totals(totals: Any, stored: list[Stored], expected: list[str]) -> None:
    by_id = {c.record_id: c for c in stored if c.tenant_id == stored[0].tenant_id}
    matched = [by_id[rid] for rid in expected]
    amounts: dict[str, Decimal] = defaultdict(Decimal)
    for call in matched:
        if call.cost is not None and call.cost[1]:
            amounts[call.cost[1]] += Decimal(call.cost[0]).scaleb(-call.cost[2])
    assert totals.calls == len(matched)
    assert totals.talk_seconds == sum(c.talk_seconds for c in matched)
    assert {t.currency: t.amount for t in totals.costs} == dict(amounts)
