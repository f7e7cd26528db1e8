"""PostgreSQL restarted (``pg_ctl restart -m fast``) under a running ``datacenter ingest --watch``.

Every client connection is cut while the worker is storing a backlog. The worker must resume by
itself (same process, no operator), store every call once, and take back its own claim on the
file it was in the middle of at once rather than after ``ingest.claim_timeout_seconds``. Judged
from the store and the worker's log afterwards: nothing depends on when the cut landed.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from datacenter.settings import settings_for_data_dir
from datacenter.store.engine import open_store, upgrade
from datacenter.store.tables.core import calls, landed_files
from tests.factories import gen_outgoing_call
from tests.faults.hostile import BIN, write_worker_config
from tests.fixtures.postgres import pg_available, throwaway_cluster
from tests.fixtures.store import gen_agent, gen_batch, gen_tenant, land

pytestmark = [
    pytest.mark.faults,
    pytest.mark.postgres,
    pytest.mark.skipif(not pg_available(), reason="needs PostgreSQL 15 and root"),
]

AGENT = "edge-1"
BEFORE, AFTER, RECORDS = 40, 10, 200  # batches landed before and after the restart
CLAIM_TIMEOUT = 600  # the default: a claim left by the cut must not wait this out


def wait_until(check: Callable[[], bool], *, timeout: float, what: str, log: Path) -> float:
    """Seconds it took; fails with the worker's log tail at the deadline."""
    began = time.monotonic()
    while not check():
        if time.monotonic() - began > timeout:
            pytest.fail(f"timed out waiting for {what}; worker log:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)
    return time.monotonic() - began


def test_ingest_resumes_by_itself_after_postgres_restart(tmp_path: Path) -> None:
    settings = settings_for_data_dir(tmp_path / "data")
    with throwaway_cluster() as cluster:
        url = cluster.url(cluster.create_database("restart"))
        engine = open_store(url)
        upgrade(engine)
        gen_tenant(engine, "acme")
        gen_agent(engine, "acme", AGENT)
        expected: set[str] = set()

        def land_batches(first: int, count: int) -> None:
            for sequence in range(first, first + count):
                records = [gen_outgoing_call(sequence * 1000 + n) for n in range(RECORDS)]
                expected.update(r.record_id for r in records)
                land(settings, "acme", *gen_batch(records, sequence=sequence))

        def stored_files() -> int:
            with engine.connect() as conn:
                query = sa.select(sa.func.count()).where(landed_files.c.status == "stored")
                return int(conn.execute(query).scalar_one())

        land_batches(1, BEFORE)
        config = write_worker_config(
            tmp_path / "worker.toml", data_dir=settings.data_dir, store_url=url,
            poll_seconds=0.2, claim_timeout_seconds=CLAIM_TIMEOUT,
        )  # fmt: skip
        log = tmp_path / "worker.log"
        with log.open("w") as out:
            worker = subprocess.Popen(
                [str(BIN / "datacenter"), "ingest", "--watch", "--config", str(config)],
                stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            wait_until(lambda: stored_files() >= 5, timeout=60, what="5 files stored", log=log)
            at_restart = stored_files()
            cluster.restart()
            land_batches(BEFORE + 1, AFTER)
            took = wait_until(lambda: stored_files() == BEFORE + AFTER, timeout=120,
                              what="every file stored after the restart", log=log)  # fmt: skip
            still_running = worker.poll() is None
        finally:
            worker.terminate()
            worker.wait(timeout=30)
        with engine.connect() as conn:
            stored = set(conn.execute(sa.select(calls.c.record_id)).scalars())
            rows = conn.execute(sa.select(landed_files)).all()
        engine.dispose()

    outages = log.read_text().count("store unavailable")
    print(f"\npostgres restart: {at_restart} of {BEFORE} files stored at the restart, then "
          f"{AFTER} more landed; all {BEFORE + AFTER} stored {took:.1f} s after it by the same "
          f"worker; {outages} pass(es) failed on the store; {len(stored)} calls, "
          f"{len(expected - stored)} lost, {sum(r.inserted for r in rows) - len(stored)} "
          "duplicated")  # fmt: skip
    assert still_running, "the worker died instead of retrying"
    assert stored == expected
    assert sum(r.inserted for r in rows) == len(expected)  # no call counted twice
    assert {r.claimed_by.split(":")[1] for r in rows} == {str(worker.pid)}
    assert took < CLAIM_TIMEOUT / 5  # resumed at once, not after a claim timeout
