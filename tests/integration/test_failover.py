"""Failover without loss: the PostgreSQL primary dies during ingest, Patroni promotes the replica.

Two ``datacenter ingest --watch`` processes ingest from one landing area into a store whose URL
lists both Patroni nodes with ``target_session_attrs=read-write``. Once the store shows that
ingest is under way, the primary's Patroni and PostgreSQL are SIGKILLed. Nothing restarts the
workers: they must find the new primary by themselves. The test waits (bounded) until every file
is stored and then judges from the store alone: every call exactly once, rated once, counted
once in the rollups. Replication is synchronous, so what a worker saw committed (and receipted,
and archived) is on the replica that takes over.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from datacenter.cli import main
from datacenter.settings import StoreSettings, settings_for_data_dir
from datacenter.store.engine import open_store, upgrade
from datacenter.store.tables.core import landed_files
from datacenter.web import create_app
from datacenter.web.database import store
from tests.fixtures.ingest_workers import (
    WorkerPool,
    assert_each_call_once,
    landing_with_calls,
    wait_until_ingested,
)
from tests.fixtures.patroni import PatroniCluster, patroni_available, patroni_cluster

pytestmark = [
    pytest.mark.postgres,
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
