"""Recordings batches in each agent's own landing account: the folder is made by approve, the
folder decides the agent, and the receipt goes to the account's ``receipts/``."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from datacenter.ingest.keys import ensure_keys
from datacenter.ingest.worker import ingest_once
from datacenter.settings import Settings
from datacenter.store.tables.recordings import recordings
from tests.fixtures.recordings import Recording, seal_recordings
from tests.integration.test_landing_ingest import accounts  # noqa: F401  (fixture)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_an_agents_account_takes_its_own_recordings_only(
    store: sa.Engine,
    dc_settings: Settings,
    accounts: dict[str, str],  # noqa: F811
    tmp_path: Path,
) -> None:
    ensure_keys(dc_settings.keys)  # receipts are signed; the seeded files are plain tars
    root = dc_settings.landing.root
    folder = root / accounts["edge-1"] / "recordings"
    assert folder.is_dir() and oct(folder.stat().st_mode & 0o777) == "0o770"
    own = seal_recordings(tmp_path / "edge-1", [Recording(start=T0)], agent_id="edge-1",
                          tenant="acme", protect=None)  # fmt: skip
    other = seal_recordings(tmp_path / "edge-2", [Recording(start=T0)], agent_id="edge-2",
                            tenant="acme", protect=None)  # fmt: skip
    shutil.copyfile(own, folder / own.name)
    shutil.copyfile(other, folder / other.name)  # planted in edge-1's account

    report = ingest_once(store, dc_settings)
    by_name = {o.file_name: o for o in report.outcomes}
    assert by_name[own.name].status == "stored"
    assert by_name[other.name].status == "quarantined"
    assert "landed in agent edge-1's landing account" in by_name[other.name].reason
    assert (root / "acme" / "quarantine" / f"{accounts['edge-1']}~{other.name}").exists()
    assert (root / accounts["edge-1"] / "receipts" / f"{own.name}.receipt").exists()
    with store.connect() as conn:
        assert conn.scalars(sa.select(recordings.c.agent_id)).all() == ["edge-1"]
