"""Several ingest worker processes over one landing area, killed while they hold a claim.

A worker is killed by a crash point (``shared.crashpoints``), never by the clock: started with
``CALLCOLLECT_CRASH_AT=ingest.claimed:1`` (claim committed, file unread) or
``ingest.before_commit:1`` (the file's calls, rating, rollups and completion written, COMMIT not
sent), it sends itself SIGKILL at its first claim, whichever file that is. The seeded generator
picks the point of each armed start; workers are armed while kills remain (a supervisor restarts
the dead). So exactly ``KILLS`` workers die holding a claim on any machine, fast or slow, and
the test checks it twice: the processes that died of SIGKILL, and the store's own record of
claims taken over from the dead (``landed_files.attempts``, and the crash reasons of files
quarantined after two deaths and moved back, as an operator would: ``claim.MAX_READ_ATTEMPTS``).

Then the store is judged: every call exactly once, rated or queued once, counted once in every
rollup, every file stored. Last, the same workers take store jobs (a rollup rebuild by day) when
no file waits: one, alone and armed with ``jobs.claimed:1``, dies holding a job's claim, the
others take the job over, and the rollups are exact.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from datacenter.accounts.tenants import list_tenants
from datacenter.cli import main
from datacenter.settings import Settings
from datacenter.store.jobs import JobKey, list_jobs, queue_jobs
from datacenter.store.rollups import rollup_days
from tests.fixtures.ingest_workers import (
    WorkerPool,
    assert_each_call_once,
    landing_with_calls,
    taken_over_claims,
    wait_until_ingested,
)

WORKERS = 3
KILLS = 5
POINTS = ("ingest.claimed", "ingest.before_commit")
TENANTS, FILES, PER_FILE = 3, 8, 300


def write_config(tmp_path: Path, settings: Settings) -> Path:
    path = tmp_path / "datacenter.toml"
    path.write_text(
        f'data_dir = "{settings.data_dir}"\n[store]\nurl = "{settings.store.url}"\n'
        "[ingest]\naccept_unprotected = true\npoll_seconds = 0.2\nclaim_timeout_seconds = 60\n"
        "job_claim_timeout_seconds = 1\n"
    )
    result = CliRunner().invoke(main, ["init", "--config", str(path)])  # the receipt keys
    assert result.exit_code == 0, result.output
    return path


class Supervisor:
    """Restarts dead workers; arms (crash point at the first claim) while kills remain."""

    def __init__(self, pool: WorkerPool, seed: int, kills: int) -> None:
        self.pool, self.chance, self.kills = pool, random.Random(seed), kills
        self.armed: set[int] = set()
        self.deaths = 0
        self.points: list[str] = []

    def start(self, index: int) -> None:
        if self.deaths + len(self.armed) < self.kills:
            point = self.chance.choice(POINTS)
            self.points.append(point)
            self.armed.add(index)
            self.pool.start(index, crash_at=f"{point}:1")
        else:
            self.pool.start(index)

    def start_all(self) -> None:
        for index in range(self.pool.count):
            self.start(index)

    def watch(self) -> None:
        for index in self.pool.reap():
            assert index in self.armed, f"worker {index} died unarmed:\n{self.pool.log_text()}"
            self.armed.discard(index)
            self.deaths += 1
            self.start(index)


@pytest.mark.timeout(900)  # a killed file claim waits out claim_timeout_seconds (60 s)
@pytest.mark.parametrize("seed", [18])
def test_workers_killed_holding_claims_lose_and_duplicate_nothing(
    store: sa.Engine, dc_settings: Settings, tmp_path: Path, seed: int
) -> None:
    config = write_config(tmp_path, dc_settings)
    total = landing_with_calls(store, dc_settings, tenants=TENANTS, files=FILES,
                               per_file=PER_FILE)  # fmt: skip
    logs = tmp_path / "logs"
    logs.mkdir()
    pool = WorkerPool(config, WORKERS, logs)
    supervisor = Supervisor(pool, seed, KILLS)
    supervisor.start_all()
    try:
        crashed = wait_until_ingested(store, dc_settings, expected_files=TENANTS * FILES,
                                      deadline_seconds=600, meanwhile=supervisor.watch)  # fmt: skip
        supervisor.watch()
    except AssertionError:
        pytest.fail(f"ingest did not finish:\n{pool.log_text()}")
    finally:
        pool.stop_all()
    assert supervisor.deaths == KILLS and len(supervisor.points) == KILLS
    # Every death left a claim that the store records as taken over (or crashed twice).
    assert taken_over_claims(store) + crashed == KILLS, (supervisor.points, crashed)
    assert_each_call_once(store, total)

    # Store jobs: the same ingest workers take them when no file waits.
    keys: list[JobKey] = []
    with store.connect() as conn:
        for tenant in list_tenants(conn):
            days = rollup_days(conn, tenant.tenant_id, tenant.zone)
            keys += queue_jobs(store, tenant.tenant_id, "rollups", days, now=datetime.now(UTC))
    pool.processes = [None] * WORKERS
    pool.start(0, crash_at="jobs.claimed:1")  # alone: its first claim is a job, and it dies
    try:
        lone = pool.processes[0]
        assert lone is not None
        lone.wait(timeout=300)
        assert pool.reap() == [0], pool.log_text()
        pool.start_all()
        wait_for_jobs(store, keys, pool)
    finally:
        pool.stop_all()
    rows = list_jobs(store, keys=keys)
    assert {row.status for row in rows} == {"done"}
    assert sorted(row.attempts for row in rows) == [1] * (len(rows) - 1) + [2]  # one taken over
    assert_each_call_once(store, total)


def wait_for_jobs(store: sa.Engine, keys: list[JobKey], pool: WorkerPool) -> None:
    """Until every one of the jobs is done (bounded)."""
    give_up = time.monotonic() + 300
    while time.monotonic() < give_up:
        if all(row.status == "done" for row in list_jobs(store, keys=keys)):
            return
        time.sleep(0.2)
    pytest.fail(f"jobs not done:\n{pool.log_text()}")
