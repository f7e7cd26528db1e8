"""The call list's totals: read from a report rollup equal the same totals over the raw calls.

A London tenant's calls (ingested and rated through the real path, around the UK's spring clock
change, in and out, answered or not, several extensions and destination classes) are totalled
through ``TenantScope.call_totals`` for filters a rollup can answer, and each must equal the
raw totals (``source="raw"``) and come from the rollup ``totals_source`` names. Filters a
rollup cannot carry (a cost range, a number, UTC days, a department scope, dimensions of two
rollups) must read the raw calls: after the rollups are deliberately falsified, their totals
still equal the raw ones, while a rollup-answered filter shows the falsified figure (so the
test sees which path ran). Both backends.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from datacenter.ingest.worker import ingest_once
from datacenter.rating.carriers import load_carrier_rules
from datacenter.rating.numbering import load_dial_plan
from datacenter.rating.store import import_tariff_plan, set_site
from datacenter.rating.tariffs import load_tariff
from datacenter.settings import Settings
from datacenter.store.call_scope import UserScope
from datacenter.store.engine import write_transaction
from datacenter.store.scoped import CallFilter, TenantScope
from datacenter.store.tables.directory import directory_entries
from datacenter.store.tables.rollups import rollup_extension_days, rollup_route_days
from shared.icdr import Completion, Direction
from tests.factories import gen_outgoing_call
from tests.fixtures.store import gen_agent, gen_batch, gen_tenant, land

DEMO = Path(__file__).resolve().parents[2] / "datacenter" / "rating" / "demo"
BASE = datetime(2025, 3, 28, 22, 30, tzinfo=UTC)  # UK clocks go forward on 30 March 2025
NUMBERS = ("902079460123", "901632960123", "907700900123", "90033612345678", "999")
EXTENSIONS = ("2001", "2002", "2101")

# Filters a rollup answers, and the rollup that answers each.
ROLLUP_FILTERS = [
    (CallFilter(), "rollup_extension_days"),
    (CallFilter(date_from=date(2025, 3, 29), date_to=date(2025, 3, 30)), "rollup_extension_days"),
    (CallFilter(direction=Direction.OUT, date_from=date(2025, 3, 30)), "rollup_extension_days"),
    (CallFilter(extension="2001", answered=True), "rollup_extension_days"),
    (CallFilter(answered=False, date_to=date(2025, 3, 29)), "rollup_extension_days"),
    (CallFilter(number_class="mobile"), "rollup_route_days"),
    (CallFilter(carrier="britline", direction=Direction.OUT), "rollup_route_days"),
    (CallFilter(number_class="national", answered=True, date_from=date(2025, 3, 29),
                date_to=date(2025, 3, 31)), "rollup_route_days"),
]  # fmt: skip

# Filters no rollup can answer exactly.
RAW_FILTERS = [
    CallFilter(cost_min=Decimal("0.05")),
    CallFilter(cost_max=Decimal("0.10"), direction=Direction.OUT),
    CallFilter(number="07700 900"),
    CallFilter(date_from=date(2025, 3, 29), date_to=date(2025, 3, 30), utc=True),
    CallFilter(extension="2001", carrier="britline"),  # no rollup has both
]


@pytest.fixture
def rated_tenant(store: sa.Engine, dc_settings: Settings) -> tuple[sa.Engine, int]:
    """72 calls over four London days, rated; extension 2001 is in Sales in the directory."""
    tenant = gen_tenant(store, "acme", timezone="Europe/London")
    gen_tenant(store, "globex")  # another tenant, no calls: nothing of it may count
    gen_agent(store, "acme", "edge-1")
    with write_transaction(store) as conn:
        import_tariff_plan(conn, tenant.tenant_id, load_tariff(DEMO / "britline.toml"), now=BASE)
        set_site(
            conn, tenant.tenant_id, "edge-1", dial_plan=load_dial_plan(DEMO / "london.toml"),
            carriers=load_carrier_rules(DEMO / "london-routes.toml"), now=BASE,
        )  # fmt: skip
    records = []
    for n in range(72):
        start = BASE + timedelta(minutes=83 * n)
        answered = n % 5 != 0
        talk = 20 + (n * 47) % 400 if answered else 0
        number = NUMBERS[n % len(NUMBERS)]
        records.append(
            gen_outgoing_call(
                n,
                start=start,
                talk_seconds=talk,
                answered=answered,
                answer=start + timedelta(seconds=5) if answered else None,
                end=start + timedelta(seconds=5 + talk),
                completion=Completion.ANSWERED if answered else Completion.NO_ANSWER,
                direction=Direction.IN if n % 4 == 3 else Direction.OUT,
                extension=EXTENSIONS[n % 3],
                dialled_digits=number,
                called=number,
                source_kind="lync-cdr",
            )
        )
    land(dc_settings, "acme", *gen_batch(records))
    assert ingest_once(store, dc_settings).inserted == 72
    with write_transaction(store) as conn:
        conn.execute(
            directory_entries.insert(),
            {
                "tenant_id": tenant.tenant_id, "entry_id": uuid.uuid4().hex, "extension": "2001",
                "person": "Ann", "department": "Sales", "cost_centre": "CC-1", "site": "London",
                "valid_from": BASE - timedelta(days=30), "valid_to": None, "source": "manual",
                "updated_at": BASE,
            },
        )  # fmt: skip
    return store, tenant.tenant_id


@pytest.mark.parametrize(("call_filter", "rollup"), ROLLUP_FILTERS)
def test_rollup_totals_equal_the_raw_totals(
    rated_tenant: tuple[sa.Engine, int], call_filter: CallFilter, rollup: str
) -> None:
    engine, tenant_id = rated_tenant
    with engine.connect() as conn:
        scope = TenantScope(conn, tenant_id)
        assert scope.totals_source(call_filter) == rollup
        from_rollup = scope.call_totals(call_filter)
        assert from_rollup == scope.call_totals(call_filter, source="raw")
        assert from_rollup.calls == scope.count_calls(call_filter)
        assert from_rollup.calls > 0


def test_the_unfiltered_totals_have_costs_and_unrated_calls(
    rated_tenant: tuple[sa.Engine, int],
) -> None:
    """The data set exercises every measure (so the equalities above compare real figures)."""
    engine, tenant_id = rated_tenant
    with engine.connect() as conn:
        totals = TenantScope(conn, tenant_id).call_totals(CallFilter())
    assert totals.calls == 72
    assert totals.talk_seconds > 0 and totals.billed_seconds > 0
    assert [(t.currency, t.decimals) for t in totals.costs] == [("GBP", 2)]
    assert totals.costs[0].cost_minor > 0
    assert 0 < totals.costs[0].calls < 72  # inbound calls are rated without a currency


def test_an_extension_scope_reads_the_extension_rollup(
    rated_tenant: tuple[sa.Engine, int],
) -> None:
    engine, tenant_id = rated_tenant
    viewer = UserScope(extensions=frozenset({"2001", "2101"}))
    with engine.connect() as conn:
        scope = TenantScope(conn, tenant_id, user_scope=viewer)
        for call_filter in (CallFilter(), CallFilter(direction=Direction.OUT),
                            CallFilter(extension="2002")):  # fmt: skip
            assert scope.totals_source(call_filter) == "rollup_extension_days"
            assert scope.call_totals(call_filter) == scope.call_totals(call_filter, source="raw")
            assert scope.call_totals(call_filter).calls == scope.count_calls(call_filter)
        assert scope.call_totals(CallFilter()).calls == 48
        assert scope.call_totals(CallFilter(extension="2002")).calls == 0  # outside the scope
        # The route rollup has no extension: a class filter with this scope reads raw calls.
        assert scope.totals_source(CallFilter(number_class="mobile")) == "calls"


def test_filters_a_rollup_cannot_carry_read_the_raw_calls(
    rated_tenant: tuple[sa.Engine, int],
) -> None:
    engine, tenant_id = rated_tenant
    sales = UserScope(departments=frozenset({"Sales"}))
    with engine.connect() as conn:
        scope, sales_scope = (
            TenantScope(conn, tenant_id),
            TenantScope(conn, tenant_id, user_scope=sales),
        )
        before = [scope.call_totals(f) for f in RAW_FILTERS]
        sales_before = sales_scope.call_totals(CallFilter())
        rollup_before = scope.call_totals(CallFilter())
    assert [scope.totals_source(f) for f in RAW_FILTERS] == ["calls"] * len(RAW_FILTERS)
    assert sales_scope.totals_source(CallFilter()) == "calls"
    assert sales_before.calls == 24
    assert all(totals.calls > 0 for totals in before)
    with write_transaction(engine) as conn:  # falsify every rollup row: one call more each
        for table in (rollup_extension_days, rollup_route_days):
            conn.execute(table.update().values(calls=table.c.calls + 1))
    with engine.connect() as conn:
        scope, sales_scope = (
            TenantScope(conn, tenant_id),
            TenantScope(conn, tenant_id, user_scope=sales),
        )
        assert [scope.call_totals(f) for f in RAW_FILTERS] == before
        assert [scope.call_totals(f, source="raw") for f in RAW_FILTERS] == before
        assert sales_scope.call_totals(CallFilter()) == sales_before
        assert scope.call_totals(CallFilter()).calls > rollup_before.calls  # the rollup path
