"""Ingest: the complete version of a call stored incomplete (``end_pending``) replaces it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from datacenter.ingest.worker import ingest_once
from datacenter.rating.carriers import load_carrier_rules
from datacenter.rating.numbering import load_dial_plan
from datacenter.rating.store import import_tariff_plan, set_site
from datacenter.rating.tariffs import load_tariff
from datacenter.settings import Settings
from datacenter.store.engine import write_transaction
from datacenter.store.tables.core import call_days, calls
from datacenter.store.tables.rating import call_costs, unrated_calls
from shared.icdr import ICDR
from tests.factories import gen_outgoing_call
from tests.fixtures.store import cost_start_mismatches, gen_agent, gen_batch, gen_tenant, land

DEMO = Path(__file__).resolve().parents[2] / "datacenter" / "rating" / "demo"
# Monday 3 March 2025, 09:00 GMT: britline-2025-01's weekday "day" band.
START = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


@pytest.fixture
def setup(store: sa.Engine, dc_settings: Settings) -> tuple[sa.Engine, Settings]:
    tenant = gen_tenant(store, "acme", timezone="Europe/London")
    gen_agent(store, "acme", "edge-1")
    with write_transaction(store) as conn:
        import_tariff_plan(conn, tenant.tenant_id, load_tariff(DEMO / "britline.toml"), now=START)
        set_site(
            conn, tenant.tenant_id, "edge-1", dial_plan=load_dial_plan(DEMO / "london.toml"),
            carriers=load_carrier_rules(DEMO / "london-routes.toml"), now=START,
        )  # fmt: skip
    return store, dc_settings


def _ingest(settings: Settings, engine: sa.Engine, records: list[ICDR], sequence: int) -> None:
    name, data = gen_batch(records, sequence=sequence)
    land(settings, "acme", name, data)
    report = ingest_once(engine, settings, worker_id="w1")
    assert [o.status for o in report.outcomes] != ["quarantined"], report.summary()


def _state(engine: sa.Engine, record_id: str) -> tuple[object, ...]:
    """(talk, flags, cost, unrated reason, rollup (calls, answered, talk)) of the one call."""
    with engine.connect() as conn:
        call = conn.execute(sa.select(calls).where(calls.c.record_id == record_id)).one()
        cost = conn.execute(
            sa.select(call_costs.c.cost_minor).where(call_costs.c.record_id == record_id)
        ).scalar_one_or_none()
        reason = conn.execute(
            sa.select(unrated_calls.c.reason).where(unrated_calls.c.record_id == record_id)
        ).scalar_one_or_none()
        day = conn.execute(
            sa.select(call_days.c.calls, call_days.c.answered, call_days.c.talk_seconds).where(
                call_days.c.day == date(2025, 3, 3), call_days.c.direction == "out"
            )
        ).one()
    return call.talk_seconds, tuple(call.flags), cost, reason, tuple(day)


def _versions() -> tuple[ICDR, ICDR]:
    """A Lync call read while in progress, then read again once it ended 125 s after answer."""
    complete = gen_outgoing_call(
        1, start=START, talk_seconds=125, called="+441632960001", dialled_digits="+441632960001",
        source_kind="lync-cdr", extension="alice@example.com", trunk="gw-lon-01",
    )  # fmt: skip
    assert complete.answer is not None
    incomplete = replace(complete, end=complete.answer, talk_seconds=0, flags=("end_pending",),
                         raw="the row without SessionEndTime")  # fmt: skip
    return incomplete, complete


def test_complete_version_replaces_the_incomplete_call_and_is_rated(
    setup: tuple[sa.Engine, Settings],
) -> None:
    engine, settings = setup
    incomplete, complete = _versions()
    _ingest(settings, engine, [incomplete], 1)
    # In progress: not priced as a 0-second call, but queued until its end arrives.
    assert _state(engine, complete.record_id) == (0, ("end_pending",), None, "END_PENDING",
                                                  (1, 1, 0))  # fmt: skip
    _ingest(settings, engine, [complete], 2)
    # 125 s on britline 441 (UK geographic, day): billed 180 s in 60 s increments,
    # 3 x 0.0300 + 0.0150 connection fee = 0.1050 GBP -> half_up to pence = 0.11 = 11 minor.
    assert _state(engine, complete.record_id) == (125, (), 11, None, (1, 1, 125))
    with engine.connect() as conn:
        stored = conn.execute(sa.select(calls.c.raw, calls.c.end_utc)).one()
    assert (stored.raw, stored.end_utc) == (complete.raw, complete.end)


def test_the_completed_calls_cost_row_carries_its_new_start(
    setup: tuple[sa.Engine, Settings],
) -> None:
    """A complete version whose start moved (a source that corrects it) moves the cost row's
    ``start_utc`` with the call: a cost-range filter reads the cost row by that start."""
    engine, settings = setup
    incomplete, complete = _versions()
    assert complete.answer is not None
    moved = replace(complete, start=complete.start + timedelta(seconds=2),
                    answer=complete.answer + timedelta(seconds=2),
                    end=complete.end + timedelta(seconds=2))  # fmt: skip
    _ingest(settings, engine, [incomplete], 1)
    assert cost_start_mismatches(engine) == (0, [])  # queued: no cost row yet
    _ingest(settings, engine, [moved], 2)
    assert cost_start_mismatches(engine) == (1, [])
    with engine.connect() as conn:
        start = conn.execute(sa.select(call_costs.c.start_utc)).scalar_one()
    assert start == moved.start != incomplete.start


def test_nothing_else_is_ever_replaced(setup: tuple[sa.Engine, Settings]) -> None:
    engine, settings = setup
    incomplete, complete = _versions()
    _ingest(settings, engine, [complete], 1)
    settled = _state(engine, complete.record_id)
    assert settled == (125, (), 11, None, (1, 1, 125))
    _ingest(settings, engine, [incomplete], 2)  # a stale incomplete version arriving late
    longer = replace(complete, end=complete.end + timedelta(seconds=60), talk_seconds=185)
    _ingest(settings, engine, [longer], 3)  # a complete call is never replaced
    assert _state(engine, complete.record_id) == settled


def test_incomplete_version_again_keeps_waiting(setup: tuple[sa.Engine, Settings]) -> None:
    engine, settings = setup
    incomplete, complete = _versions()
    _ingest(settings, engine, [incomplete], 1)
    _ingest(settings, engine, [replace(incomplete, raw="read again, still open")], 2)
    assert _state(engine, complete.record_id)[1:4] == (("end_pending",), None, "END_PENDING")
    _ingest(
        settings, engine, [complete, gen_outgoing_call(2, start=START + timedelta(minutes=5))], 3
    )
    assert _state(engine, complete.record_id)[:4] == (125, (), 11, None)
