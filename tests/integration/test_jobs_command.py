"""`datacenter rerate`, `jobs run` and `jobs list` through the real CLI, with a job worker killed
(``SIGKILL`` at the ``jobs.claimed`` crash point) while it holds a job's claim."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from click.testing import CliRunner

from datacenter.cli import main
from datacenter.rating.rerate import rerate
from datacenter.store.jobs import list_jobs
from datacenter.store.tables.jobs import store_jobs
from shared.crashpoints import CRASH_ENV
from tests.integration.test_store_jobs import (
    JULY,
    raise_mobile_rate,
    rated_tenant,
    tenant_state,
    url_of,
)

DATACENTER = Path(sys.executable).parent / "datacenter"


def write_config(tmp_path: Path, store: sa.Engine) -> Path:
    path = tmp_path / "datacenter.toml"
    path.write_text(
        f'data_dir = "{tmp_path / "data"}"\n[store]\nurl = "{url_of(store)}"\n'
        "[ingest]\njob_claim_timeout_seconds = 1\n"
    )
    return path


def test_a_rerate_killed_holding_a_job_is_finished_exactly_by_jobs_run(
    store: sa.Engine, tmp_path: Path
) -> None:
    config = write_config(tmp_path, store)
    one, killed = rated_tenant(store, "one"), rated_tenant(store, "killed")
    for tenant in (one, killed):
        raise_mobile_rate(store, tenant.tenant_id)
    command = [str(DATACENTER), "rerate", "--tenant", "killed", "--since", "2025-07-01",
               "--until", "2025-07-31", "--config", str(config)]  # fmt: skip
    env = os.environ | {CRASH_ENV: "jobs.claimed:3"}  # dies holding its third day's claim
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output, _ = process.communicate(timeout=300)
    assert process.returncode == -signal.SIGKILL, output.decode(errors="replace")

    listed = CliRunner().invoke(main, ["jobs", "list", "--json", "--config", str(config)])
    assert listed.exit_code == 0, listed.output
    jobs = json.loads(listed.output)["jobs"]
    assert [(j["day"], j["status"]) for j in jobs if j["status"] != "queued"] == [
        ("2025-07-01", "done"), ("2025-07-02", "done"), ("2025-07-03", "claimed"),
    ]  # fmt: skip
    assert jobs[2]["claimed_by"].split(":")[1] == str(process.pid)  # the dead one holds it

    ran = CliRunner().invoke(main, ["jobs", "run", "--config", str(config)])
    assert ran.exit_code == 0, ran.output
    assert "29 job(s) run: 29 done, 0 failed" in ran.output  # the claimed one and the 28 queued

    rows = list_jobs(store, tenant_id=killed.tenant_id)
    assert [(r.day, r.status) for r in rows] == [(day, "done") for day in JULY]
    # The kill is recorded: the third day was claimed twice (taken over), every other once.
    assert [r.attempts for r in rows] == [1, 1, 2] + [1] * 28
    since = datetime(2025, 7, 1, tzinfo=one.zone).astimezone(UTC)
    until = datetime(2025, 8, 1, tzinfo=one.zone).astimezone(UTC)
    rerate(store, one.tenant_id, since=since, until=until, zone=one.zone,
           now=request_stamp(store, killed.tenant_id))  # fmt: skip
    assert tenant_state(store, killed) == tenant_state(store, one)

    summary = CliRunner().invoke(main, ["jobs", "list", "--config", str(config)])
    assert "rerate done: 31" in summary.output


def request_stamp(store: sa.Engine, tenant_id: int) -> datetime:
    """The time stamp the killed command's request wrote on its jobs (its history's changed_at)."""
    with store.connect() as conn:
        stamps = conn.execute(
            sa.select(store_jobs.c.requested_at).where(store_jobs.c.tenant_id == tenant_id)
        ).scalars()
        (stamp,) = set(stamps)
    return stamp  # type: ignore[no-any-return]
