"""kill -9 of the ingest worker (``datacenter ingest --watch``) in the middle of a file.

The agent uploads its batches while no worker runs. Then a worker starts and is killed the
moment it holds a claim on a file (``landed_files.status = 'claimed'``): it has read the file
and is decrypting, checking or inserting it, but has not committed. Nothing of that file may be
stored; the file stays in ``incoming/``. A new worker skips the dead worker's claim until
``ingest.claim_timeout_seconds`` (at least 60 s) has passed, takes it over (logged: "took over
claim from WORKER"), stores the calls once, writes the receipt, and the agent's batches are all
acknowledged.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import sqlalchemy as sa

from datacenter.store.tables.core import calls, landed_files
from tests.faults.site import Site, assert_exactly_once, stored_count

pytestmark = [pytest.mark.faults, pytest.mark.sshd]

CLAIM_POLL_SECONDS = 0.005
CLAIM_TIMEOUT_SECONDS = 60  # the smallest ingest.claim_timeout_seconds allowed


def claimed_file(site: Site) -> tuple[str, str] | None:
    """(file name, worker) of a claim in progress, if any."""
    query = sa.select(landed_files.c.file_name, landed_files.c.claimed_by).where(
        landed_files.c.status == "claimed"
    )
    with site.engine.connect() as conn:
        row = conn.execute(query).first()
    return None if row is None else (row.file_name, row.claimed_by)


def stored_at_kill(site: Site, name: str) -> tuple[int, int]:
    """(calls stored from ``name``, calls the files finished before the kill say they stored)."""
    of_file = sa.select(sa.func.count()).select_from(calls).where(calls.c.landed_file == name)
    finished = sa.select(sa.func.coalesce(sa.func.sum(landed_files.c.inserted), 0)).where(
        landed_files.c.status == "stored"
    )
    with site.engine.connect() as conn:
        return int(conn.execute(of_file).scalar_one()), int(conn.execute(finished).scalar_one())


def test_kill_9_ingest_worker_mid_file(make_site: Callable[..., Site]) -> None:
    site = make_site(calls=3000, rate_per_second=0.0, batch_max_records=1000)
    site.agent.start()

    site.wait_all_uploaded(timeout=120)  # three batches, or more if a partial one aged out

    site.ingest_process.start()
    claim: list[tuple[str, str]] = []

    def caught() -> bool:
        found = claimed_file(site)
        if found is not None:
            site.ingest_process.kill9()
            claim.append(found)
        return found is not None

    deadline = time.monotonic() + 30
    while not caught():
        assert time.monotonic() < deadline, site.diagnosis("no claim seen within 30 s")
        time.sleep(CLAIM_POLL_SECONDS)
    killed_at = time.monotonic()
    name, dead_worker = claim[0]
    assert (site.landing / "incoming" / name).exists(), f"{name} left incoming/ unfinished"
    assert claimed_file(site) == (name, dead_worker), "the dead worker's claim changed"
    stored_after_kill = stored_count(site.engine)
    of_the_file, of_finished_files = stored_at_kill(site, name)
    assert of_the_file == 0, f"{of_the_file} calls of {name} were stored before its commit"
    assert stored_after_kill == of_finished_files, (
        f"{stored_after_kill} calls stored, but the files finished before the kill hold "
        f"{of_finished_files}"
    )

    site.ingest_process.start()
    took_over = site.wait_log(f"{name}: took over claim from {dead_worker}",
                              timeout=CLAIM_TIMEOUT_SECONDS + 30, log=site.ingest_log)  # fmt: skip
    site.wait_delivered(timeout=60)
    result = assert_exactly_once(site.engine, site.expected())
    waited = time.monotonic() - killed_at
    rows = {row.file_name: row for row in site.landed_file_rows()}
    assert rows[name].status == "stored" and rows[name].claimed_by != dead_worker, rows[name]
    print(
        f"\nkill -9 ingest mid-file: {result.calls} calls, 0 lost, 0 duplicated; {name} claimed by "
        f"the dead worker with {of_the_file} of its calls stored at the kill ({stored_after_kill} "
        f"from files finished before it); taken over after "
        f"{took_over:.1f} s (claim timeout {CLAIM_TIMEOUT_SECONDS} s); all acknowledged "
        f"{waited:.1f} s after the kill"
    )
