"""Heartbeat ingest against hostile entries in ``heartbeats/``: the landing rules of batches hold.

One pass over tenant ``acme``'s hostile entries (a symlink to a valid heartbeat outside the
landing area, a FIFO, a directory, an oversize file, a bad file whose ``.reason`` name is a
planted symlink to a victim) next to a good heartbeat of tenant ``bravo``: each is quarantined
unread with its reason, the victim is unchanged, the pass does not block, and ``bravo``'s
heartbeat is stored.
"""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from datacenter.health.heartbeats import MAX_HEARTBEAT_BYTES, HeartbeatReport, ingest_heartbeats
from datacenter.settings import Settings
from datacenter.store.tables.health import agent_heartbeats
from shared.heartbeat import HEARTBEAT_FOLDER, Heartbeat, heartbeat_file_name
from tests.faults.hostile import write_sparse
from tests.fixtures.store import gen_agent, gen_tenant

pytestmark = [pytest.mark.faults]

AGENT = "edge-1"
NOW = datetime.now(UTC).replace(microsecond=0)


def heartbeat(tenant: str, sent_at: datetime) -> Heartbeat:
    return Heartbeat(
        agent_id=AGENT, tenant=tenant, sent_at=sent_at, agent_version="0.1.0",
        started_at=sent_at - timedelta(hours=1), interval_seconds=60,
    )  # fmt: skip


def folder(settings: Settings, slug: str, *parts: str) -> Path:
    path = settings.landing.root / slug / Path(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def run_pass(store: sa.Engine, settings: Settings) -> HeartbeatReport:
    """One pass in a thread: a pass that blocks on an entry fails the test instead of hanging."""
    reports: list[HeartbeatReport] = []
    worker = threading.Thread(
        target=lambda: reports.append(ingest_heartbeats(store, settings)), daemon=True
    )
    worker.start()
    worker.join(timeout=120)
    if worker.is_alive():
        for entry in folder(settings, "acme", HEARTBEAT_FOLDER).iterdir():
            if entry.is_fifo():  # a writer lets a blocked open() return
                os.close(os.open(entry, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("the heartbeat pass blocked on a landing entry")
    return reports[0]


def test_ingest_hostile_heartbeat_entries_quarantined_unread(
    store: sa.Engine, dc_settings: Settings, tmp_path: Path
) -> None:
    for slug in ("acme", "bravo"):
        gen_tenant(store, slug)
        gen_agent(store, slug, AGENT)
    incoming = folder(dc_settings, "acme", HEARTBEAT_FOLDER)
    quarantine = folder(dc_settings, "acme", "quarantine", HEARTBEAT_FOLDER)
    outside = tmp_path / "outside"
    outside.mkdir()
    names = [heartbeat_file_name(AGENT, NOW - timedelta(minutes=m)) for m in range(1, 5)]
    linked, fifo, directory, oversize = names
    target = outside / linked
    target.write_bytes(heartbeat("acme", NOW - timedelta(minutes=1)).to_json())
    (incoming / linked).symlink_to(target)
    os.mkfifo(incoming / fifo)
    (incoming / directory).mkdir()
    write_sparse(incoming / oversize, 8 * MAX_HEARTBEAT_BYTES)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (incoming / "garbage.json").write_text("{")
    (quarantine / "garbage.json.reason").symlink_to(victim)
    good = heartbeat("bravo", NOW - timedelta(minutes=1))
    good_path = folder(dc_settings, "bravo", HEARTBEAT_FOLDER) / heartbeat_file_name(
        AGENT, good.sent_at
    )
    good_path.write_bytes(good.to_json())

    report = run_pass(store, dc_settings)

    reasons = {name.split("/", 1)[1]: reason for name, reason in report.rejected}
    print(f"\nhostile heartbeat entries: {report.summary()}; " + " | ".join(
        f"{name}: {reason[:60]}" for name, reason in sorted(reasons.items())))  # fmt: skip
    assert "symbolic link" in reasons[linked]
    assert "FIFO" in reasons[fifo]
    assert "a directory" in reasons[directory]
    assert "larger than" in reasons[oversize]
    assert "garbage.json" in reasons
    assert victim.read_text() == "precious\n"
    assert os.readlink(quarantine / "garbage.json.reason") == str(victim)
    assert (quarantine / "garbage.json.1.reason").read_text().strip() == reasons["garbage.json"]
    assert (quarantine / linked).is_symlink() and target.exists()
    assert (quarantine / fifo).is_fifo() and (quarantine / directory).is_dir()
    assert "FIFO" in (quarantine / f"{fifo}.reason").read_text()
    assert not any(incoming.iterdir())
    assert report.stored == 1 and not good_path.exists()
    with store.connect() as conn:
        stored = conn.execute(sa.select(agent_heartbeats.c.tenant_id)).scalars().all()
    assert len(stored) == 1  # bravo's; nothing from the symlinked acme document
