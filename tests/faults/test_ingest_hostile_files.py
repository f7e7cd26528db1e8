"""Ingest against hostile landed files: bounded, never blocked, never writing through a link.

Whoever holds a landing key can put anything under a batch name. Each test lands one hostile
entry in tenant ``acme``'s ``incoming/`` next to a good batch of tenant ``bravo`` and checks, from
what was recorded (the pass's report, ``landed_files``, the landing area, the peak RSS the worker
reported), that the entry is quarantined unread with its reason and that ``bravo``'s batch
is stored in the same pass. The memory tests run ``datacenter ingest --once`` as its own process
under an address-space limit, with a baseline pass of the same worker measured first.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from datacenter.ingest.worker import IngestReport, ingest_once
from datacenter.settings import Settings
from datacenter.store.engine import write_transaction
from datacenter.store.tables.core import calls, landed_files
from tests.factories import gen_outgoing_call
from tests.faults.hostile import (
    MIB,
    IngestRun,
    run_ingest_process,
    write_gzip_bomb_batch,
    write_sparse,
    write_worker_config,
)
from tests.fixtures.store import gen_agent, gen_batch, gen_tenant, land

pytestmark = [pytest.mark.faults]

AGENT = "edge-1"
HOSTILE = "edge-1-0000000002.ccb"  # a batch name in acme's incoming/
BOUND_ABOVE_BASELINE = 160 * MIB  # a bounded worker's growth; the hostile files need GiBs
BOMB_EXPANDS_TO = 4096 * MIB
SPARSE_FILE_BYTES = 1024 * MIB


@dataclass(frozen=True, slots=True)
class Landing:
    engine: sa.Engine
    settings: Settings
    tmp: Path

    def incoming(self, slug: str = "acme") -> Path:
        folder = self.settings.landing.tenant_dir(slug, "incoming")
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def quarantine(self, slug: str = "acme") -> Path:
        return self.settings.landing.tenant_dir(slug, "quarantine")

    def land_good(self, sequence: int, slug: str = "bravo") -> str:
        records = [gen_outgoing_call(sequence * 100 + n) for n in range(3)]
        name, data = gen_batch(records, tenant=slug, agent_id=AGENT, sequence=sequence)
        land(self.settings, slug, name, data)
        return name

    def rows(self) -> dict[str, sa.Row[tuple[object, ...]]]:
        with self.engine.connect() as conn:
            return {r.file_name: r for r in conn.execute(sa.select(landed_files))}

    def stored_calls(self) -> int:
        with self.engine.connect() as conn:
            query = sa.select(sa.func.count()).select_from(calls)
            return int(conn.execute(query).scalar_one())

    def worker_config(self, **ingest: object) -> Path:
        url = self.engine.url.render_as_string(hide_password=False)
        return write_worker_config(
            self.tmp / "worker.toml", data_dir=self.settings.data_dir, store_url=url, **ingest
        )


@pytest.fixture
def landing(store: sa.Engine, dc_settings: Settings, tmp_path: Path) -> Landing:
    for slug in ("acme", "bravo"):
        gen_tenant(store, slug)
        gen_agent(store, slug, AGENT)
    return Landing(store, dc_settings, tmp_path)


def reason_beside(moved: Path) -> str:
    return moved.with_name(moved.name + ".reason").read_text(encoding="utf-8")


def only_quarantined(report: IngestReport) -> tuple[str, Path]:
    [outcome] = [o for o in report.outcomes if o.status == "quarantined"]
    assert outcome.moved_to is not None
    return outcome.reason, outcome.moved_to


def assert_bravo_stored(report: IngestReport, name: str) -> None:
    statuses = {(o.tenant, o.file_name): o.status for o in report.outcomes}
    assert statuses[("bravo", name)] == "stored", report.summary()


def measured_passes(
    landing: Landing, plant: object, **ingest: object
) -> tuple[IngestRun, IngestRun]:
    """A baseline pass (one good batch), then a pass over the hostile entry and another."""
    config = landing.worker_config(**ingest)
    landing.land_good(1)
    baseline = run_ingest_process(config)
    assert baseline.returncode == 0 and "1 stored" in baseline.output, baseline.output
    assert baseline.peak_rss_bytes > 16 * MIB, baseline  # the worker's own figure was read
    assert callable(plant)
    plant()
    landing.land_good(3)
    return baseline, run_ingest_process(config)


def test_ingest_oversize_file_quarantined_unread_in_bounded_memory(landing: Landing) -> None:
    hostile = landing.incoming() / HOSTILE
    baseline, run = measured_passes(
        landing, lambda: write_sparse(hostile, SPARSE_FILE_BYTES), max_file_bytes=64 * MIB
    )
    growth = run.peak_rss_bytes - baseline.peak_rss_bytes
    print(f"\noversize file: {SPARSE_FILE_BYTES // MIB} MiB (limit 64 MiB) quarantined unread; "
          f"worker peak RSS {run.peak_rss_bytes / MIB:.0f} MiB, baseline "
          f"{baseline.peak_rss_bytes / MIB:.0f} MiB, growth {growth / MIB:.1f} MiB")  # fmt: skip
    assert run.returncode == 0 and run.peak_rss_bytes > 0, run.output
    assert growth < BOUND_ABOVE_BASELINE, f"the worker grew by {growth / MIB:.0f} MiB"
    moved = landing.quarantine() / HOSTILE
    assert moved.stat().st_size == SPARSE_FILE_BYTES and not hostile.exists()
    assert "ingest.max_file_bytes" in reason_beside(moved)
    assert HOSTILE not in landing.rows()  # nothing read, so nothing to record but the reason
    assert landing.stored_calls() == 6  # bravo's two batches, in their two passes


def test_ingest_gzip_bomb_quarantined_in_bounded_memory(landing: Landing) -> None:
    hostile = landing.incoming() / HOSTILE
    sizes: list[int] = []

    def plant() -> None:
        sizes.append(write_gzip_bomb_batch(
            hostile, expands_to=BOMB_EXPANDS_TO, agent_id=AGENT, tenant="acme", sequence=2
        ))  # fmt: skip

    baseline, run = measured_passes(landing, plant, max_batch_bytes=32 * MIB)
    growth = run.peak_rss_bytes - baseline.peak_rss_bytes
    print(f"\ngzip bomb: {sizes[0] / 1e6:.1f} MB expanding to {BOMB_EXPANDS_TO // MIB} MiB "
          f"(limit 32 MiB) quarantined; worker peak RSS {run.peak_rss_bytes / MIB:.0f} MiB, "
          f"baseline {baseline.peak_rss_bytes / MIB:.0f} MiB, growth {growth / MIB:.1f} MiB")  # fmt: skip
    assert run.returncode == 0 and run.peak_rss_bytes > 0, run.output[-2000:]
    assert growth < BOUND_ABOVE_BASELINE, f"the worker grew by {growth / MIB:.0f} MiB"
    row = landing.rows()[HOSTILE]
    assert row.status == "quarantined" and "expands beyond" in str(row.reason), row
    assert reason_beside(landing.quarantine() / HOSTILE).strip() == str(row.reason).strip()
    assert landing.stored_calls() == 6  # bravo's two batches, in their two passes


def test_ingest_symlinked_batch_quarantined_and_target_untouched(landing: Landing) -> None:
    outside = landing.tmp / "outside"
    outside.mkdir()
    name, data = gen_batch([gen_outgoing_call(7)], tenant="acme", agent_id=AGENT, sequence=2)
    target = outside / name
    target.write_bytes(data)  # a valid batch, but not in the landing area
    (landing.incoming() / name).symlink_to(target)
    good = landing.land_good(1)

    report = ingest_once(landing.engine, landing.settings)

    reason, moved = only_quarantined(report)
    assert "symbolic link" in reason and moved.is_symlink(), (reason, moved)
    assert "symbolic link" in reason_beside(moved)
    assert target.read_bytes() == data  # neither read into the store nor moved
    assert landing.stored_calls() == 3
    assert_bravo_stored(report, good)


def test_ingest_planted_reason_symlink_is_not_written_through(landing: Landing) -> None:
    victim = landing.tmp / "victim.txt"
    victim.write_text("precious\n")
    quarantine = landing.quarantine()
    quarantine.mkdir(parents=True, exist_ok=True)
    planted = quarantine / f"{HOSTILE}.reason"
    planted.symlink_to(victim)
    (landing.incoming() / HOSTILE).write_bytes(b"not a batch at all")
    good = landing.land_good(1)

    report = ingest_once(landing.engine, landing.settings)

    reason, moved = only_quarantined(report)
    assert victim.read_text() == "precious\n"
    assert planted.is_symlink() and os.readlink(planted) == str(victim)
    assert moved == quarantine / f"{HOSTILE}.1"  # the next name whose .reason is free
    assert reason_beside(moved).strip() == reason.strip() and "bad magic" in reason
    assert_bravo_stored(report, good)


def _ingest_in_thread(landing: Landing) -> IngestReport:
    """One pass; a pass that blocks (e.g. opening a FIFO) fails the test instead of hanging it."""
    reports: list[IngestReport] = []
    thread = threading.Thread(
        target=lambda: reports.append(ingest_once(landing.engine, landing.settings)), daemon=True
    )
    thread.start()
    thread.join(timeout=120)
    if thread.is_alive():
        # Unblock it: a writer on every FIFO lets a blocked open() return.
        for entry in landing.incoming().iterdir():
            if entry.is_fifo():
                os.close(os.open(entry, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("the ingest pass blocked on a landing entry")
    return reports[0]


def test_ingest_directory_and_fifo_named_like_batches_quarantined(landing: Landing) -> None:
    folder, fifo = "edge-1-0000000004.ccb", "edge-1-0000000005.ccb"
    (landing.incoming() / folder).mkdir()
    (landing.incoming() / folder / "inside").write_text("kept as it is")
    os.mkfifo(landing.incoming() / fifo)
    good = landing.land_good(1)

    report = _ingest_in_thread(landing)

    reasons = {o.file_name: o.reason for o in report.outcomes if o.status == "quarantined"}
    assert "a directory" in reasons.get(folder, ""), report.outcomes
    assert "FIFO" in reasons.get(fifo, ""), report.outcomes
    assert (landing.quarantine() / folder / "inside").read_text() == "kept as it is"
    assert (landing.quarantine() / fifo).is_fifo()
    assert "FIFO" in reason_beside(landing.quarantine() / fifo)
    assert not any(landing.incoming().iterdir())
    assert_bravo_stored(report, good)


CRASHING_WORKER = """
import os, signal, sys
from pathlib import Path
from datacenter.ingest import intake, worker
from datacenter.settings import load_settings
from datacenter.store.engine import open_store

real_open_protected = intake.open_protected

def crash_on_poison(data, **kwargs):
    if data.startswith(b"POISON"):  # a bug that kills the worker while it reads this file
        os.kill(os.getpid(), signal.SIGKILL)
    return real_open_protected(data, **kwargs)

intake.open_protected = crash_on_poison
settings = load_settings(Path(sys.argv[1]))
print(worker.ingest_once(open_store(settings.store.url), settings).summary())
"""


def _expire_claims(landing: Landing) -> None:
    """Move every open claim an hour back: the clock moved, rather than waiting for it."""
    with write_transaction(landing.engine) as conn:
        conn.execute(
            landed_files.update()
            .where(landed_files.c.status == "claimed")
            .values(claimed_at=datetime.now(UTC) - timedelta(hours=1))
        )


def test_ingest_file_that_crashes_its_reader_is_quarantined_not_retried_forever(
    landing: Landing,
) -> None:
    config = landing.worker_config(claim_timeout_seconds=60)
    (landing.incoming() / HOSTILE).write_bytes(b"POISON" + os.urandom(64))
    good = landing.land_good(1)
    exits: list[int] = []
    for _ in range(3):
        _expire_claims(landing)
        child = subprocess.run(
            [sys.executable, "-c", CRASHING_WORKER, str(config)],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        exits.append(child.returncode)
        if child.returncode == 0:
            break
    print(f"\nfile that kills its reader: worker exits {exits}; then: {child.stdout.strip()}")
    # Two crashes, each leaving its claim; the third worker quarantines the file unread.
    assert exits == [-9, -9, 0], (exits, child.stdout, child.stderr[-2000:])
    row = landing.rows()[HOSTILE]
    assert (row.status, row.attempts) == ("quarantined", 2), row
    assert "crashed the worker 2 time(s)" in str(row.reason)
    assert reason_beside(landing.quarantine() / HOSTILE).strip() == str(row.reason).strip()
    assert landing.rows()[good].status == "stored"
    assert landing.stored_calls() == 3  # bravo's batch, once


def test_ingest_skips_a_tenant_whose_quarantine_folder_is_a_symlink(landing: Landing) -> None:
    elsewhere = landing.tmp / "elsewhere"
    elsewhere.mkdir()
    landing.quarantine().parent.mkdir(parents=True, exist_ok=True)
    landing.quarantine().symlink_to(elsewhere, target_is_directory=True)
    (landing.incoming() / HOSTILE).write_bytes(b"not a batch at all")
    good = landing.land_good(1)

    report = ingest_once(landing.engine, landing.settings)

    assert not any(elsewhere.iterdir())  # nothing moved or written through the link
    assert (landing.incoming() / HOSTILE).exists()  # acme waits for a technician
    assert any("quarantine is a symbolic link" in f for f in report.refused_folders), report
    assert "refused linked folder" in report.summary()
    assert_bravo_stored(report, good)


def test_ingest_unreadable_file_quarantined_and_the_pass_goes_on(landing: Landing) -> None:
    hostile = landing.incoming() / HOSTILE
    hostile.write_bytes(b"an upload the worker may not read")
    hostile.chmod(0)
    landing.land_good(1)

    run = run_ingest_process(landing.worker_config(), modes_apply=True)

    assert run.returncode == 0, run.output[-2000:]
    assert "cannot be opened (Permission denied)" in reason_beside(landing.quarantine() / HOSTILE)
    assert landing.stored_calls() == 3  # bravo's batch, after acme's unreadable file
