"""Report rollups equal the raw aggregates after ingest, completion, re-rate and a crashed re-rate.

Random batches (calls around the UK and Canadian DST changes, answered or not, in and out, some
first sent ``end_pending`` and completed by a later batch, some re-sent) go through the real
ingest; then the britline tariff changes (other rates, four decimals instead of two) and a
re-rate is made to fail inside its transaction after the rollups moved, then run in full. After
each step ``differences`` (what `datacenter rollups rebuild --check` runs) must be empty and
every summary read from the rollups must equal the same summary over the raw calls. Each
hypothesis example uses a tenant of its own in the test's store; both backends.
"""

from __future__ import annotations

import contextlib
import itertools
import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from alembic import command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datacenter.accounts.tenants import Tenant
from datacenter.ingest.rows import CALL_COLUMNS, call_values
from datacenter.ingest.worker import ingest_once
from datacenter.rating import rerate as rerate_module
from datacenter.rating.carriers import load_carrier_rules
from datacenter.rating.numbering import load_dial_plan
from datacenter.rating.store import import_tariff_plan, set_site
from datacenter.rating.tariffs import TariffPlan, load_tariff
from datacenter.reports.summaries import ROLLUP_DIMENSIONS, SummaryRequest, summary
from datacenter.settings import Settings
from datacenter.store.engine import alembic_config, open_store, upgrade, write_transaction
from datacenter.store.rollups import differences, rebuild, stored_totals
from datacenter.store.tables.core import calls
from datacenter.store.tables.rating import call_costs
from datacenter.store.tables.rollups import rollup_extension_days
from shared.icdr import ICDR, Completion, Direction
from tests.factories import gen_outgoing_call
from tests.fixtures.store import gen_agent, gen_batch, gen_tenant, land

DEMO = Path(__file__).resolve().parents[2] / "datacenter" / "rating" / "demo"
BASE = datetime(2025, 3, 28, 0, 0, tzinfo=UTC)  # UK clocks go forward on 30 March 2025
SPAN_MINUTES = 5 * 24 * 60
ZONES = ("Europe/London", "America/Toronto", "Asia/Kolkata")
NUMBERS = ("902079460123", "901632960123", "907700900123", "90033612345678", "999", "9123")
_tenants = itertools.count()


@dataclass(frozen=True)
class CallPlan:
    minute: int
    talk: int
    answered: bool
    direction: Direction
    extension: str
    trunk: str
    number: str
    batch: int
    pending: bool  # sent first without its end, completed by the next batch
    resent: bool  # sent again in the last batch (a duplicate ingest drops)


call_plans = st.builds(
    CallPlan,
    minute=st.integers(0, SPAN_MINUTES),
    talk=st.integers(0, 400),
    answered=st.booleans(),
    direction=st.sampled_from([Direction.OUT, Direction.OUT, Direction.IN, Direction.INTERNAL]),
    extension=st.sampled_from(["2001", "2002", "2101"]),
    trunk=st.sampled_from(["T1", "T2", "X5"]),
    number=st.sampled_from(NUMBERS),
    batch=st.integers(0, 1),
    pending=st.booleans(),
    resent=st.booleans(),
)


def _icdr(n: int, plan: CallPlan) -> ICDR:
    start = BASE + timedelta(minutes=plan.minute)
    talk = plan.talk if plan.answered else 0
    return gen_outgoing_call(
        n, start=start, talk_seconds=talk, answered=plan.answered,
        answer=start + timedelta(seconds=5) if plan.answered else None,
        end=start + timedelta(seconds=5 + talk),
        completion=Completion.ANSWERED if plan.answered else Completion.NO_ANSWER,
        direction=plan.direction, extension=plan.extension, trunk=plan.trunk,
        dialled_digits=plan.number, called=plan.number, source_kind="lync-cdr",
    )  # fmt: skip


def batches_of(plans: list[CallPlan]) -> list[list[ICDR]]:
    """Three batches: each call in its batch (incomplete first when pending), re-sends last."""
    out: list[list[ICDR]] = [[], [], []]
    for n, plan in enumerate(plans):
        complete = _icdr(n, plan)
        if plan.pending and complete.answer is not None:
            waiting = replace(complete, end=complete.answer, talk_seconds=0, flags=("end_pending",))
            out[plan.batch].append(waiting)
            out[plan.batch + 1].append(complete)
        else:
            out[plan.batch].append(complete)
        if plan.resent:
            out[2].append(complete)
    return [batch for batch in out if batch]


@pytest.fixture
def changed_britline(tmp_path: Path) -> TariffPlan:
    """britline with every 2025-01 rate changed and four decimals: a re-rate changes costs."""
    folder = tmp_path / "changed"
    shutil.copytree(DEMO, folder)
    deck = folder / "britline-2025-01.csv"
    deck.write_text(deck.read_text().replace("0.0300", "0.0437").replace("0.0200", "0.0251"))
    plan = folder / "britline.toml"
    plan.write_text(
        plan.read_text().replace('currency = "GBP"\n', 'currency = "GBP"\ndecimals = 4\n')
    )
    return load_tariff(plan)


def _new_tenant(engine: sa.Engine, zone: str) -> Tenant:
    slug = f"t{next(_tenants)}"
    tenant = gen_tenant(engine, slug, timezone=zone)
    gen_agent(engine, slug, "edge-1")
    with write_transaction(engine) as conn:
        import_tariff_plan(conn, tenant.tenant_id, load_tariff(DEMO / "britline.toml"), now=BASE)
        set_site(
            conn, tenant.tenant_id, "edge-1", dial_plan=load_dial_plan(DEMO / "london.toml"),
            carriers=load_carrier_rules(DEMO / "london-routes.toml"), now=BASE,
        )  # fmt: skip
    return tenant


def _ingest(
    engine: sa.Engine, settings_: Settings, tenant: Tenant, batches: list[list[ICDR]]
) -> None:
    for sequence, batch in enumerate(batches, start=1):
        name, data = gen_batch(batch, tenant=tenant.slug, sequence=sequence)
        land(settings_, tenant.slug, name, data)
        report = ingest_once(engine, settings_, worker_id="w1")
        assert "quarantined" not in [o.status for o in report.outcomes], report.summary()


def assert_exact(engine: sa.Engine, tenant: Tenant, expected_calls: int) -> None:
    """The rollups equal the raw aggregate, in the tables and through every summary."""
    with engine.connect() as conn:
        assert [d.describe() for d in differences(conn, tenant.tenant_id, tenant.zone)] == []
        held = stored_totals(conn, tenant.tenant_id)
        counted = conn.execute(
            sa.select(sa.func.count())
            .select_from(calls)
            .where(calls.c.tenant_id == tenant.tenant_id)
        ).scalar_one()
        assert counted == expected_calls
        for table, totals in held.items():
            assert sum(values[0] for values in totals.values()) == expected_calls, table
        for by in ROLLUP_DIMENSIONS:
            request = SummaryRequest(
                tenant.tenant_id, tenant.zone, by, date(2025, 3, 26), date(2025, 4, 3)
            )
            from_rollups = summary(conn, request, source="rollups")
            assert from_rollups == summary(conn, request, source="raw"), by
            assert sum(row.calls for row in from_rollups) == expected_calls


class Injected(Exception):
    """The crash injected into a re-rate transaction."""


def _crashing_after(calls_before_crash: int) -> Callable[..., None]:
    original = rerate_module._move_rollups
    seen = itertools.count(1)

    def move(*args: Any) -> None:
        original(*args)  # the rollups have moved: now the transaction fails
        if next(seen) == calls_before_crash:
            raise Injected

    return move


@settings(
    max_examples=10, deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)  # fmt: skip
@given(
    plans=st.lists(call_plans, min_size=1, max_size=10),
    zone=st.sampled_from(ZONES),
    crash_at=st.integers(1, 3),
)
def test_rollups_equal_raw_aggregates_after_ingest_rerate_and_a_crash(
    store: sa.Engine,
    dc_settings: Settings,
    changed_britline: TariffPlan,
    plans: list[CallPlan],
    zone: str,
    crash_at: int,
) -> None:
    tenant = _new_tenant(store, zone)
    _ingest(store, dc_settings, tenant, batches_of(plans))
    assert_exact(store, tenant, len(plans))
    with write_transaction(store) as conn:
        import_tariff_plan(conn, tenant.tenant_id, changed_britline, now=BASE)
    window = {
        "since": BASE - timedelta(days=1),
        "until": BASE + timedelta(days=6),
        "zone": tenant.zone,
    }
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(rerate_module, "_move_rollups", _crashing_after(crash_at))
        with contextlib.suppress(Injected):  # that day rolled back, earlier days committed
            rerate_module.rerate(store, tenant.tenant_id, **window)  # type: ignore[arg-type]
    assert_exact(store, tenant, len(plans))
    rerate_module.rerate(store, tenant.tenant_id, **window)  # type: ignore[arg-type]
    assert_exact(store, tenant, len(plans))


def test_rerate_moves_costs_into_four_decimals_and_rebuild_agrees(
    store: sa.Engine, dc_settings: Settings, changed_britline: TariffPlan
) -> None:
    """A fixed case, so the property above is known to exercise a real change of cost."""
    tenant = _new_tenant(store, "Europe/London")
    plan = CallPlan(600, 125, True, Direction.OUT, "2001", "T1", "901632960123", 0, False, False)
    _ingest(store, dc_settings, tenant, batches_of([plan]))

    def cost_micro() -> int:
        with store.connect() as conn:
            return int(
                conn.execute(
                    sa.select(sa.func.sum(rollup_extension_days.c.cost_micro))
                ).scalar_one()
            )

    # 125 s to UK geographic on a Friday at 10:00 (day band): 3 x 0.0300 + 0.0150 = 0.1050 ->
    # half_up to pence 0.11 GBP = 110,000 micro-units.
    assert cost_micro() == 110_000
    with write_transaction(store) as conn:
        import_tariff_plan(conn, tenant.tenant_id, changed_britline, now=BASE)
    rerate_module.rerate(
        store,
        tenant.tenant_id,
        since=BASE,
        until=BASE + timedelta(days=1),
        zone=ZoneInfo("Europe/London"),
    )
    # Now 3 x 0.0437 + 0.0150 = 0.1461 GBP, kept to four decimals: 146,100 micro-units.
    assert cost_micro() == 146_100
    assert_exact(store, tenant, 1)
    with write_transaction(store) as conn:
        conn.execute(rollup_extension_days.update().values(cost_micro=1))
    with store.connect() as conn:
        assert len(differences(conn, tenant.tenant_id, tenant.zone)) == 1  # the check sees it
    with write_transaction(store) as conn:
        assert rebuild(conn, tenant.tenant_id, tenant.zone) == 3  # two rollups and call_days
    assert_exact(store, tenant, 1)


def test_revision_0013_fills_the_rollups_from_the_calls_already_stored(store_url: str) -> None:
    engine = open_store(store_url)
    records = [gen_outgoing_call(n, start=BASE + timedelta(hours=7 * n)) for n in range(5)]
    try:
        upgrade(engine, revision="0012")
        tenant = gen_tenant(engine, "acme", timezone="America/Toronto")
        gen_agent(engine, "acme", "edge-1")
        with write_transaction(engine) as conn:
            conn.execute(calls.insert(), [
                dict(zip(CALL_COLUMNS, call_values(tenant.tenant_id, rec, "f.ccb", BASE), strict=True))
                for rec in records
            ])  # fmt: skip
            conn.execute(call_costs.insert(), [{
                "tenant_id": tenant.tenant_id, "record_id": records[0].record_id,
                "cost_minor": 1234, "currency": "CAD", "decimals": 3, "number_class": "national",
                "e164": "+14165550100", "carrier": "northtel", "destination": "Ontario",
                "prefix": "1416", "tariff_version": "v1", "billed_seconds": 120, "bands": [],
                "explanation": {}, "engine_version": "test", "rated_at": BASE,
            }])  # fmt: skip
        upgrade(engine, revision="0013")
        with engine.connect() as conn:
            held = stored_totals(conn, tenant.tenant_id)["rollup_route_days"]
        assert sum(v[0] for v in held.values()) == 5
        assert sum(v[3] for v in held.values()) == 1_234_000  # 1.234 CAD in micro-units
        # Toronto's days: 28 Mar 00:00 UTC is the 27th there, 28 Mar 07:00 UTC the 28th.
        assert {key[0] for key in held} == {date(2025, 3, 27), date(2025, 3, 28), date(2025, 3, 29)}
        with write_transaction(engine) as conn:
            command.downgrade(alembic_config(conn), "0008")
        with engine.connect() as conn:
            assert "rollup_route_days" not in sa.inspect(conn).get_table_names()
        upgrade(engine)  # up again, through 0018 (which fills call_costs.start_utc)
        with engine.connect() as conn:
            assert differences(conn, tenant.tenant_id, tenant.zone) == []
            assert stored_totals(conn, tenant.tenant_id)["rollup_route_days"] == held
    finally:
        engine.dispose()
