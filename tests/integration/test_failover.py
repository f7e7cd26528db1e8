"""Failover without loss: the PostgreSQL primary dies during ingest, and during a re-rate.

Two ``datacenter ingest --watch`` processes ingest from one landing area into a store whose URL
lists both Patroni nodes with ``target_session_attrs=read-write``. Once the store shows that
ingest is under way, the primary's Patroni and PostgreSQL are SIGKILLed. Nothing restarts the
workers: they must find the new primary by themselves. The test waits (bounded) until every file
is stored and then judges from the store alone: every call exactly once, rated once, counted
once in the rollups. Replication is synchronous, so what a worker saw committed (and receipted,
and archived) is on the replica that takes over.

The re-rate test kills the primary (the old one, rejoined as the replica) while
``datacenter.rating.rerate`` works through a month day by day: the day in flight is rolled back
and tried again on the new primary, and in the end every changed call has exactly one history
row and its new cost.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from datacenter.cli import main
from datacenter.rating.rerate import RerateReport, rerate
from datacenter.rating.store import import_tariff_plan, rate_calls_for_ingest
from datacenter.rating.tariffs import TariffPlan, load_tariff, parse_rates_csv
from datacenter.settings import StoreSettings, settings_for_data_dir
from datacenter.store.engine import open_store, upgrade, write_transaction
from datacenter.store.rollups import differences, rebuild
from datacenter.store.tables.core import landed_files
from datacenter.store.tables.rating import call_cost_history, call_costs
from datacenter.web import create_app
from datacenter.web.database import store
from shared.icdr import ICDR, Direction, make_record_id
from tests.fixtures.ingest_workers import (
    WorkerPool,
    assert_each_call_once,
    landing_with_calls,
    wait_until_ingested,
)
from tests.fixtures.patroni import (
    PatroniCluster,
    patroni_available,
    patroni_cluster,
    rejoin_as_replica,
)
from tests.fixtures.store import gen_tenant
from tests.integration.test_rating_store import AGENT, DEMO, NOW, configure, store_calls

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.timeout(900),  # a failover, a re-clone and retries: minutes on a shared machine
    pytest.mark.xdist_group("patroni"),  # one cluster for the module, on one xdist worker
    pytest.mark.skipif(not patroni_available(), reason="patroni/etcd-server not installed"),
]

TENANTS, FILES, PER_FILE = 2, 12, 1000


@pytest.fixture(scope="module")
def cluster() -> Iterator[PatroniCluster]:
    with patroni_cluster() as running:
        yield running


def _stored_files(store: sa.Engine) -> int:
    try:
        with store.connect() as conn:
            query = sa.select(sa.func.count()).where(landed_files.c.status == "stored")
            return int(conn.execute(query).scalar_one())
    except sa.exc.OperationalError:
        return 0


def test_reports_read_from_the_replica(cluster: PatroniCluster, tmp_path: Path) -> None:
    """``store.read_url`` with prefer-standby: report reads go to the replica, the rest not."""
    cluster.psql('CREATE DATABASE "reads"')
    engine = open_store(cluster.url("reads"))
    upgrade(engine)
    engine.dispose()
    base = settings_for_data_dir(tmp_path / "data")
    store_settings = StoreSettings(cluster.url("reads"), cluster.url("reads", "prefer-standby"))
    app = create_app(replace(base, store=store_settings), test_config={"SECRET_KEY": "x" * 32})
    in_recovery = "SELECT pg_is_in_recovery()"
    with app.app_context():
        assert store.report_connection().exec_driver_sql(in_recovery).scalar_one() is True
        assert store.connection().exec_driver_sql(in_recovery).scalar_one() is False
    app.extensions["callcollect.store"].dispose()
    app.extensions["callcollect.store.reports"].dispose()


def test_primary_killed_during_ingest_loses_nothing(
    cluster: PatroniCluster, tmp_path: Path
) -> None:
    database = "failover"
    cluster.psql(f'CREATE DATABASE "{database}"')
    base = settings_for_data_dir(tmp_path / "data")
    settings = replace(
        base,
        store=StoreSettings(url=cluster.url(database)),
        ingest=replace(base.ingest, accept_unprotected=True),
    )
    config = tmp_path / "datacenter.toml"
    config.write_text(
        f'data_dir = "{settings.data_dir}"\n[store]\nurl = "{settings.store.url}"\n'
        "[ingest]\naccept_unprotected = true\npoll_seconds = 0.2\n"
    )
    result = CliRunner().invoke(main, ["init", "--config", str(config)])  # migrate, keys
    assert result.exit_code == 0, result.output
    store = open_store(settings.store.url)
    logs = tmp_path / "logs"
    logs.mkdir()
    pool = WorkerPool(config, 2, logs)
    try:
        total = landing_with_calls(store, settings, tenants=TENANTS, files=FILES,
                                   per_file=PER_FILE)  # fmt: skip
        old_primary = cluster.primary()
        killed: list[str] = []
        stored_before: list[int] = []

        def kill_primary_once_under_way() -> None:
            if not killed and (stored := _stored_files(store)) >= 2:
                killed.append(cluster.kill_primary().name)
                stored_before.append(stored)

        pool.start_all()
        try:
            wait_until_ingested(store, settings, expected_files=TENANTS * FILES,
                                deadline_seconds=420,
                                meanwhile=kill_primary_once_under_way)  # fmt: skip
        except AssertionError:
            pytest.fail(f"ingest did not finish:\n{pool.log_text()}\n{cluster.logs()}")
        assert killed == [old_primary.name]
        assert stored_before[0] < TENANTS * FILES  # killed with files still to ingest
        assert cluster.primary() is not old_primary  # the replica was promoted
        alive = [p is not None and p.poll() is None for p in pool.processes]
        assert alive == [True, True], pool.log_text()  # they reconnected by themselves
        assert_each_call_once(store, total)
    finally:
        pool.stop_all()
        store.dispose()


def _patched_britline() -> tuple[TariffPlan, datetime]:
    """The demo tariff with version 2025-07's UK mobile rate fixed from 0.0700 to 0.1200."""
    plan = load_tariff(DEMO / "britline.toml")
    v2 = plan.versions[1]
    deck = (DEMO / "britline-2025-07.csv").read_text()
    deck = deck.replace("447,mobile,UK mobile,day,0.0700", "447,mobile,UK mobile,day,0.1200")
    rates = parse_rates_csv(deck, file="fix.csv", currency="GBP", bands=v2.calendar.bands)
    fixed = replace(v2, destinations=rates)
    return TariffPlan("britline", (plan.versions[0], fixed)), v2.valid_from


def _mobile_calls(first_day: datetime, days: int, per_day: int) -> list[ICDR]:
    """``per_day`` calls to a UK mobile each weekday (the day band, the rate the fix changes)."""
    out = []
    for n in range(days * per_day):
        answer = first_day + timedelta(days=n // per_day, hours=9, seconds=7 * (n % per_day))
        if answer.weekday() >= 5:
            continue
        out.append(ICDR(
            record_id=make_record_id("rerate", str(n)), agent_id=AGENT, source_id="lcs-london",
            source_kind="lcscdr", start=answer - timedelta(seconds=5), answer=answer,
            end=answer + timedelta(seconds=61), talk_seconds=61, answered=True,
            direction=Direction.OUT, dialled_digits="9 07700 900123", route="gw-lon-1",
        ))  # fmt: skip
    return out


def _count(engine: sa.Engine, table: sa.Table) -> int:
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())
    except sa.exc.OperationalError:
        return -1


def test_primary_killed_during_a_rerate_loses_nothing(cluster: PatroniCluster) -> None:
    for node in cluster.nodes:  # the primary the ingest test killed rejoins as the replica
        if node.process is None:
            rejoin_as_replica(cluster, node)
    cluster.wait_for(primaries=1, replicas=1, timeout=240)
    cluster.psql('CREATE DATABASE "rerate"')
    engine = open_store(cluster.url("rerate"))
    try:
        upgrade(engine)
        cluster.wait_for(primaries=1, replicas=1)  # the synchronous standby has it all
        tenant = gen_tenant(engine, "acme", timezone="Europe/London")
        configure(engine, tenant.tenant_id)
        plan, valid_from = _patched_britline()
        days, per_day = 16, 400
        first_day = valid_from + timedelta(days=1)
        records = _mobile_calls(first_day, days, per_day)
        store_calls(engine, tenant.tenant_id, records)
        with write_transaction(engine) as conn:
            rate_calls_for_ingest(conn, tenant.tenant_id, records)
            rebuild(conn, tenant.tenant_id, tenant.zone)  # rollups of the stored calls
            import_tariff_plan(conn, tenant.tenant_id, plan, now=NOW)
        old_primary = cluster.primary()
        outcome: list[RerateReport | BaseException] = []

        def run() -> None:
            try:
                outcome.append(rerate(engine, tenant.tenant_id, since=first_day,
                                      until=first_day + timedelta(days=days),
                                      zone=tenant.zone, now=NOW))  # fmt: skip
            except BaseException as exc:
                outcome.append(exc)

        worker = threading.Thread(target=run)
        worker.start()
        watcher = open_store(cluster.url("rerate"))
        history_at_kill = 0
        give_up = time.monotonic() + 300
        while worker.is_alive() and time.monotonic() < give_up:
            so_far = _count(watcher, call_cost_history)
            if not history_at_kill and so_far >= per_day:  # at least one day committed
                history_at_kill = so_far
                cluster.kill_primary()
            time.sleep(0.2)
        worker.join(timeout=300)
        watcher.dispose()
        assert not worker.is_alive()
        (report,) = outcome
        assert isinstance(report, RerateReport), report
        assert 0 < history_at_kill < len(records)  # killed while days were still to do
        assert cluster.primary() is not old_primary
        with engine.connect() as conn:
            history = conn.execute(
                sa.select(call_cost_history.c.record_id, sa.func.count()).group_by(
                    call_cost_history.c.record_id
                )
            ).all()
            new_costs = conn.execute(
                sa.select(call_costs.c.cost_minor, sa.func.count()).group_by(
                    call_costs.c.cost_minor
                )
            ).all()
            off = differences(conn, tenant.tenant_id, tenant.zone)
        assert len(history) == len(records) and {count for _id, count in history} == {1}
        assert dict(new_costs) == {12: len(records)}  # 0.1200 x 61/60 = 0.122 -> 0.12
        assert report.changed + report.unchanged == len(records)
        assert not off, off
    finally:
        engine.dispose()
