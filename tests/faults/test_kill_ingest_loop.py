"""kill -9 of the ingest worker 20 times over a 100-file backlog, on SQLite and on PostgreSQL.

The agent uploads 100 batches while no worker runs. Then ``datacenter ingest --watch`` is
started and killed 20 times: every other time the moment it holds a claim (it has read a file
and is checking or inserting it, uncommitted), otherwise at a seeded random moment 0.2-2 s after
its start (starting up, listing, claiming, inserting, committing, writing a receipt). A last
worker then runs to the end: it takes over each dead worker's claim after
``ingest.claim_timeout_seconds`` (60 s, the smallest allowed: the test waits it out once).

Judged from the store only: at each kill at a claim, none of that file's calls is stored; at the
end the store holds exactly the calls the PBX sent, each once, every file has one
``landed_files`` row, stored, and every batch is acknowledged by the agent.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import pytest
import sqlalchemy as sa

from datacenter.store.tables.core import calls
from tests.faults.site import Site, assert_exactly_once
from tests.faults.test_kill_ingest import CLAIM_POLL_SECONDS, CLAIM_TIMEOUT_SECONDS

pytestmark = [pytest.mark.faults, pytest.mark.sshd]

KILLS = 20
SEED = 20261206
CALLS = 6000
BATCH = 60  # 100 files when the agent reads all lines in one go
RANDOM_MIN_SECONDS = 0.2
RANDOM_MAX_SECONDS = 2.0
CLAIM_WAIT_SECONDS = 30.0


def stored_of(site: Site, name: str) -> int:
    query = sa.select(sa.func.count()).select_from(calls).where(calls.c.landed_file == name)
    with site.engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def claims(site: Site, *, attempts: int = 1) -> dict[str, str]:
    """File name -> worker of every claim in the store taken at least ``attempts`` times."""
    return {str(r.file_name): str(r.claimed_by) for r in site.landed_file_rows()
            if r.status == "claimed" and r.attempts >= attempts}  # fmt: skip


def kill_at_random(site: Site, dead: set[str], seconds: float) -> None:
    """Start a worker and kill it ``seconds`` later, but never while it holds a taken-over claim.

    The kill loop outlasts the 60 s claim timeout on a slow machine, so a live worker may be
    storing a file a killed one left. A second crash on that file would make ingest quarantine
    it as a file that kills its readers (``test_ingest_hostile_files``), which is right for such
    a file and not what this test is about: the kill waits until that claim is gone.
    """
    site.ingest_process.start()
    time.sleep(seconds)
    deadline = time.monotonic() + CLAIM_WAIT_SECONDS
    while any(w not in dead for w in claims(site, attempts=2).values()):
        assert time.monotonic() < deadline, site.diagnosis("a taken-over claim held for 30 s")
        time.sleep(CLAIM_POLL_SECONDS)
    site.ingest_process.kill9()


def unclaimed(site: Site) -> set[str]:
    """Landed files no worker has stored or claimed yet."""
    taken = {str(row.file_name) for row in site.landed_file_rows()}
    return {path.name for path in site.landed("incoming")} - taken


def kill_at_a_claim(site: Site, dead: set[str]) -> str | None:
    """Start a worker and kill it the moment it holds a claim; the file it held.

    On a fast machine the workers before may have stored the whole backlog: with no file left
    to claim the worker is killed all the same (None: the kill is counted, not the claim).
    """
    site.ingest_process.start()
    deadline = time.monotonic() + CLAIM_WAIT_SECONDS
    while not (fresh := [n for n, w in claims(site).items() if w not in dead
                         and n not in claims(site, attempts=2)]):  # fmt: skip
        if not unclaimed(site):
            site.ingest_process.kill9()
            return None
        assert time.monotonic() < deadline, site.diagnosis("no fresh claim within 30 s")
        time.sleep(CLAIM_POLL_SECONDS)
    site.ingest_process.kill9()
    return fresh[0]


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_kill_9_ingest_20_times(make_site: Callable[..., Site], backend: str) -> None:
    site = make_site(backend=backend, calls=CALLS, rate_per_second=0.0, batch_max_records=BATCH)
    site.agent.start()
    files = site.wait_all_uploaded(timeout=300)  # 100, or more if a partial batch aged out
    rng = random.Random(SEED)
    at_claims: list[str] = []
    dead: set[str] = set()  # workers killed while holding a claim
    began = time.monotonic()
    for kill in range(KILLS):
        if kill % 2 == 0:
            name = kill_at_a_claim(site, dead)
            # the worker may have committed the file between the look and the kill: then it
            # was not killed mid-file, and its calls are rightly stored
            if name is not None and name in claims(site):
                assert stored_of(site, name) == 0, f"calls of {name} stored before its commit"
                at_claims.append(name)
        else:
            kill_at_random(site, dead, rng.uniform(RANDOM_MIN_SECONDS, RANDOM_MAX_SECONDS))
        dead |= set(claims(site).values())  # no worker runs now: every claim is a dead one's
    left_claimed = claims(site)
    site.ingest_process.start()
    site.wait_delivered(timeout=CLAIM_TIMEOUT_SECONDS + 120)
    elapsed = time.monotonic() - began

    result = assert_exactly_once(site.engine, site.expected())
    rows = site.landed_file_rows()
    assert sorted(row.file_name for row in rows) == sorted({row.file_name for row in rows}), (
        "a file has two landed_files rows"
    )
    assert len(rows) == files and all(row.status == "stored" for row in rows), (
        f"not every file stored once: {[(r.file_name, r.status) for r in rows if r.status != 'stored']}"
    )
    ingest_log = site.ingest_log.read_text(errors="replace")
    took_over = ingest_log.count("took over claim from")
    assert took_over >= len(left_claimed), (
        f"{took_over} claims taken over, {len(left_claimed)} left"
    )
    print(
        f"\nkill -9 ingest x{KILLS} on {backend}: {result.calls} calls in {files} files, 0 lost, "
        f"0 duplicated; {len(at_claims)} of {KILLS // 2} kills aimed at a claim landed while it "
        f"was held (0 calls of the file stored), "
        f"{len(left_claimed)} claims left by dead workers, {took_over} taken over; {elapsed:.1f} s"
    )
