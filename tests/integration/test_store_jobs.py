"""Store jobs on both backends: claimed once by parallel processes, expired claims taken over,
failures recorded and retried up to the limit, and the two kinds (re-rate, rollup rebuild) exact
against the single-process code they split by day."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from datacenter.accounts.tenants import Tenant
from datacenter.jobs.run import run_job, run_next_job
from datacenter.jobs.workers import run_workers
from datacenter.rating.rerate import rerate
from datacenter.rating.rerate_jobs import rerate_with_workers
from datacenter.rating.store import import_tariff_plan, rate_calls_for_ingest
from datacenter.rating.tariffs import TariffPlan, load_tariff, parse_rates_csv
from datacenter.store.engine import open_store, write_transaction
from datacenter.store.jobs import (
    DIED_REASON,
    MAX_ATTEMPTS,
    JobKey,
    claim_job,
    list_jobs,
    queue_jobs,
)
from datacenter.store.rollups import differences, rebuild, rollup_days, stored_totals
from datacenter.store.tables.core import call_days, calls
from datacenter.store.tables.rating import call_cost_history, call_costs
from datacenter.store.tables.rollups import rollup_extension_days, rollup_route_days
from shared.icdr import ICDR, Direction, make_record_id
from tests.fixtures.store import gen_tenant
from tests.integration.test_rating_store import AGENT, DEMO, NOW, configure, store_calls

JULY = [date(2025, 7, 1) + timedelta(days=n) for n in range(31)]
DIALLED = ("9 00 33 6 12 34 56 78", "9 07700 900123", "9 020 7946 0123", "9 0055 11 2345 6789")


def url_of(engine: sa.Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def july_calls(count: int) -> list[ICDR]:
    """``count`` calls spread over July 2025 at all hours (some cross local midnight)."""
    out = []
    for n in range(count):
        start = datetime(2025, 7, 1, tzinfo=UTC) + timedelta(minutes=n * 31 * 24 * 60 // count)
        seconds = 20 + n * 37 % 900
        out.append(ICDR(
            record_id=make_record_id("jobs", str(n)), agent_id=AGENT, source_id="lcs-london",
            source_kind="lcscdr", start=start, answer=start + timedelta(seconds=5),
            end=start + timedelta(seconds=5 + seconds), talk_seconds=seconds, answered=True,
            direction=Direction.OUT, dialled_digits=DIALLED[n % len(DIALLED)],
            extension=str(200 + n % 7), route="gw-lon-1",
        ))  # fmt: skip
    return out


def rated_tenant(store: sa.Engine, slug: str, *, timezone: str = "Europe/London") -> Tenant:
    """A tenant with July's calls stored, rated and rolled up exactly."""
    tenant = gen_tenant(store, slug, timezone=timezone)
    records = july_calls(240)
    store_calls(store, tenant.tenant_id, records)
    configure(store, tenant.tenant_id)
    with write_transaction(store) as conn:
        rate_calls_for_ingest(conn, tenant.tenant_id, records)
        rebuild(conn, tenant.tenant_id, tenant.zone)
    return tenant


def raise_mobile_rate(store: sa.Engine, tenant_id: int) -> None:
    """Fix version 2025-07 in place: UK mobile 0.0700 -> 0.1200, so July's mobile calls change."""
    plan = load_tariff(DEMO / "britline.toml")
    deck = (DEMO / "britline-2025-07.csv").read_text()
    deck = deck.replace("447,mobile,UK mobile,day,0.0700", "447,mobile,UK mobile,day,0.1200")
    v2 = plan.versions[1]
    rates = parse_rates_csv(deck, file="fix.csv", currency="GBP", bands=v2.calendar.bands)
    patched = TariffPlan("britline", (plan.versions[0], type(v2)(
        carrier=v2.carrier, version=v2.version, valid_from=v2.valid_from, valid_to=v2.valid_to,
        currency=v2.currency, decimals=v2.decimals, rounding=v2.rounding, destinations=rates,
        calendar=v2.calendar, band_rule=v2.band_rule,
    )))  # fmt: skip
    with write_transaction(store) as conn:
        import_tariff_plan(conn, tenant_id, patched, now=NOW)


def tenant_state(store: sa.Engine, tenant: Tenant) -> dict[str, Any]:
    """Costs, history and rollups of one tenant, comparable across tenants."""
    with store.connect() as conn:
        cost_rows = conn.execute(
            sa.select(call_costs.c.record_id, call_costs.c.cost_minor, call_costs.c.tariff_version)
            .where(call_costs.c.tenant_id == tenant.tenant_id)
        ).all()  # fmt: skip
        history = conn.execute(
            sa.select(call_cost_history.c.record_id, call_cost_history.c.old_cost_minor,
                      call_cost_history.c.new_cost_minor, call_cost_history.c.changed_at)
            .where(call_cost_history.c.tenant_id == tenant.tenant_id)
        ).all()  # fmt: skip
        totals = stored_totals(conn, tenant.tenant_id)
        off = differences(conn, tenant.tenant_id, tenant.zone)
    assert not off, off
    return {"costs": sorted(map(tuple, cost_rows)), "history": sorted(map(tuple, history)),
            "rollups": totals}  # fmt: skip


def test_rerate_through_jobs_equals_the_single_process_rerate(store: sa.Engine) -> None:
    one, many = rated_tenant(store, "one"), rated_tenant(store, "many")
    assert tenant_state(store, one) == tenant_state(store, many)
    for tenant in (one, many):
        raise_mobile_rate(store, tenant.tenant_id)
    since = datetime(2025, 7, 1, tzinfo=one.zone).astimezone(UTC)
    until = datetime(2025, 8, 1, tzinfo=one.zone).astimezone(UTC)
    single = rerate(store, one.tenant_id, since=since, until=until, zone=one.zone, now=NOW)
    outcome = rerate_with_workers(url_of(store), many.tenant_id, first_day=JULY[0],
                                  last_day=JULY[-1], workers=2, timeout=60, now=NOW)  # fmt: skip
    assert outcome.failed == []
    assert single.changed > 0 and outcome.report.to_json() == single.to_json()
    assert tenant_state(store, many) == tenant_state(store, one)
    rows = list_jobs(store, tenant_id=many.tenant_id)
    assert [(r.day, r.status, r.attempts) for r in rows] == [(d, "done", 1) for d in JULY]


def spoil_rollups(store: sa.Engine, tenant: Tenant) -> None:
    """Rows lost, a row changed, and a row on a day without any call (e.g. an old time zone)."""
    with write_transaction(store) as conn:
        conn.execute(rollup_route_days.delete().where(rollup_route_days.c.day == JULY[3]))
        conn.execute(
            rollup_extension_days.update()
            .where(rollup_extension_days.c.day == JULY[9])
            .values(calls=rollup_extension_days.c.calls + 5)
        )
        conn.execute(call_days.insert().values(tenant_id=tenant.tenant_id, day=date(2024, 1, 1),
                                               direction="in", calls=1, answered=1,
                                               talk_seconds=9))  # fmt: skip


def test_rollup_rebuild_by_day_equals_the_whole_tenant_rebuild(store: sa.Engine) -> None:
    tenant = rated_tenant(store, "acme", timezone="America/Los_Angeles")  # days cut mid-UTC-day
    spoil_rollups(store, tenant)
    with write_transaction(store) as conn:
        rebuild(conn, tenant.tenant_id, tenant.zone)
    whole = tenant_state(store, tenant)
    spoil_rollups(store, tenant)
    with store.connect() as conn:
        days = rollup_days(conn, tenant.tenant_id, tenant.zone)
    assert date(2024, 1, 1) in days and JULY[0] - timedelta(days=1) in days  # 1 July 00:00 UTC
    keys = queue_jobs(store, tenant.tenant_id, "rollups", days, now=NOW)
    run_workers(url_of(store), keys, workers=2, timeout=60)
    assert tenant_state(store, tenant) == whole
    assert {row.status for row in list_jobs(store, keys=keys)} == {"done"}


def _claim_and_run_all(url: str, worker: str) -> list[JobKey]:
    """A worker process: run jobs until none is left; the keys it finished."""
    engine = open_store(url)
    ran: list[JobKey] = []
    try:
        while (outcome := run_next_job(engine, worker=worker, timeout=600)) is not None:
            assert outcome.status == "done", outcome
            ran.append(outcome.job.key)
    finally:
        engine.dispose()
    return ran


def test_parallel_worker_processes_claim_each_job_once(store: sa.Engine) -> None:
    keys: list[JobKey] = []
    for slug in ("a", "b", "c"):
        tenant = gen_tenant(store, slug)
        keys += queue_jobs(store, tenant.tenant_id, "rollups", JULY[:20], now=NOW)
    context = multiprocessing.get_context("spawn")
    with context.Pool(4) as pool:
        ran = pool.starmap(_claim_and_run_all, [(url_of(store), f"w{n}") for n in range(4)])
    done = [key for keys_of_one in ran for key in keys_of_one]
    assert sorted(done) == sorted(keys)  # every job run, none twice
    rows = list_jobs(store)
    assert {(r.status, r.attempts) for r in rows} == {("done", 1)}
    by_worker = {(r.tenant_id, r.kind, r.day): r.claimed_by for r in rows}
    assert all(by_worker[key] == f"w{n}" for n, mine in enumerate(ran) for key in mine)


def test_an_expired_claim_is_taken_over_and_the_old_worker_changes_nothing(
    store: sa.Engine,
) -> None:
    tenant = rated_tenant(store, "acme")
    queue_jobs(store, tenant.tenant_id, "rollups", [JULY[4]], now=NOW)
    t0 = datetime.now(UTC)
    first = claim_job(store, worker="a", timeout=60, now=t0)
    assert first is not None and first.attempts == 1
    assert claim_job(store, worker="b", timeout=60, now=t0 + timedelta(seconds=59)) is None
    second = claim_job(store, worker="b", timeout=60, now=t0 + timedelta(seconds=61))
    assert second is not None and (second.key, second.attempts) == (first.key, 2)
    assert run_job(store, first).status == "lost"  # a's claim is gone: it writes nothing
    assert run_job(store, second).status == "done"
    (row,) = list_jobs(store)
    assert (row.status, row.claimed_by, row.attempts) == ("done", "b", 2)
    assert row.result is not None and row.result["rows"] > 0  # b rebuilt the day's rows


def test_a_job_whose_workers_keep_dying_is_failed_not_taken_again(store: sa.Engine) -> None:
    tenant = gen_tenant(store, "acme")
    queue_jobs(store, tenant.tenant_id, "rollups", [JULY[0]], now=NOW)
    moment = datetime.now(UTC)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        job = claim_job(store, worker=f"dies-{attempt}", timeout=60, now=moment)
        assert job is not None and job.attempts == attempt
        moment += timedelta(seconds=61)  # the worker died: its claim expires
    assert claim_job(store, worker="next", timeout=60, now=moment) is None
    (row,) = list_jobs(store)
    expected = DIED_REASON.format(attempts=MAX_ATTEMPTS, worker=f"dies-{MAX_ATTEMPTS}")
    assert (row.status, row.error) == ("failed", expected)


def test_a_failing_job_is_recorded_with_its_error_and_retried_up_to_the_limit(
    store: sa.Engine,
) -> None:
    tenant = rated_tenant(store, "acme")
    victim = make_record_id("jobs", "0")  # 1 July, 00:00 UTC: local day 1 July in London
    with write_transaction(store) as conn:  # a row no code writes: the day's re-rate fails on it
        conn.execute(calls.update().where(calls.c.record_id == victim).values(direction="sideways"))
    queue_jobs(store, tenant.tenant_id, "rerate", [JULY[0]], now=NOW)
    statuses = []
    for _ in range(MAX_ATTEMPTS):
        outcome = run_next_job(store, worker="w", timeout=60)
        assert outcome is not None and outcome.error is not None and "sideways" in outcome.error
        statuses.append(outcome.status)
    assert statuses == ["queued"] * (MAX_ATTEMPTS - 1) + ["failed"]
    assert run_next_job(store, worker="w", timeout=60) is None  # failed: not taken again
    (row,) = list_jobs(store)
    assert (row.status, row.attempts) == ("failed", MAX_ATTEMPTS) and "sideways" in str(row.error)
    with write_transaction(store) as conn:  # fixed: asking again runs it
        conn.execute(calls.update().where(calls.c.record_id == victim).values(direction="out"))
    queue_jobs(store, tenant.tenant_id, "rerate", [JULY[0]], now=NOW)
    outcome = run_next_job(store, worker="w", timeout=60)
    assert outcome is not None and outcome.status == "done"
    (row,) = list_jobs(store)
    assert (row.status, row.attempts, row.error) == ("done", 1, None)


def test_asking_again_while_a_job_runs_runs_it_once_more(store: sa.Engine) -> None:
    tenant = rated_tenant(store, "acme")
    queue_jobs(store, tenant.tenant_id, "rollups", [JULY[2]], now=NOW)
    job = claim_job(store, worker="w", timeout=60)
    assert job is not None
    queue_jobs(store, tenant.tenant_id, "rollups", [JULY[2]], now=NOW + timedelta(hours=1))
    assert run_job(store, job).status == "queued"  # its result may predate the new request
    again = run_next_job(store, worker="w", timeout=60)
    assert again is not None and again.status == "done"


@pytest.mark.parametrize("kind", ["rerate", "bogus"])
def test_only_known_kinds_are_stored(store: sa.Engine, kind: str) -> None:
    tenant = gen_tenant(store, "acme")
    if kind == "bogus":
        with pytest.raises(sa.exc.IntegrityError):
            queue_jobs(store, tenant.tenant_id, kind, [JULY[0]], now=NOW)
    else:
        assert queue_jobs(store, tenant.tenant_id, kind, [JULY[0]], now=NOW) == [
            (tenant.tenant_id, kind, JULY[0])
        ]
