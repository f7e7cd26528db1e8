"""Recordings batches from the agent's own code through ingest to encrypted files, on both stores.

The batches are sealed by ``edge_agent.delivery.recordings.RecordingOutbox`` with
``shared.cms.protect`` (the agent's identity, the data centre's envelope certificate) from
generated WAVs; the data centre is ``ingest_once`` with its keys on disk, as the worker runs.
"""

from __future__ import annotations

import functools
import io
import os
import shutil
import tarfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from datacenter.accounts.audit import events
from datacenter.ingest.keys import ensure_keys
from datacenter.ingest.worker import ingest_once
from datacenter.recordings.access import RecordingPolicy, set_policy
from datacenter.recordings.orphans import GRACE, sweep_orphans
from datacenter.recordings.retention import purge_expired
from datacenter.recordings.vault import load_recordings_key, open_decrypted
from datacenter.settings import Settings
from datacenter.store.engine import write_transaction
from datacenter.store.tables.core import landed_files
from datacenter.store.tables.recordings import recordings
from edge_agent.delivery.recordings import OutboxSettings, RecordingOutbox
from shared import cms
from shared.icdr import ICDR
from shared.receipts import verify_receipt
from tests.factories import gen_outgoing_call
from tests.fixtures.recordings import Recording, make_wav, seal_recordings
from tests.integration.test_ingest_delivery import (  # noqa: F401  (the settings fixture)
    AGENT,
    DC,
    SIGNER,
    TENANT,
    land,
    protected,
    settings,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
protect = functools.partial(cms.protect, signer=SIGNER, recipient=DC.certificates.envelope)


@pytest.fixture
def dc(settings: Settings) -> Settings:  # noqa: F811
    ensure_keys(settings.keys)  # adds the recordings key beside the envelope and receipts keys
    return settings


def land_recordings(dc: Settings, sealed: Path, name: str | None = None) -> Path:
    folder = dc.landing.tenant_dir(TENANT, "recordings")
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / (name or sealed.name)
    shutil.copyfile(sealed, target)
    return target


def rows(engine: sa.Engine) -> dict[str, sa.Row[tuple[object, ...]]]:
    with engine.connect() as conn:
        return {r.recording_id: r for r in conn.execute(sa.select(recordings))}


def land_calls(dc: Settings, *calls: ICDR, sequence: int = 1) -> None:
    name, data = protected(list(calls), sequence=sequence)
    land(dc, name, data)


def call_at(n: int, start: datetime, **changes: object) -> ICDR:
    values = {"start": start - timedelta(seconds=20), "answer": start,
              "end": start + timedelta(seconds=3), "talk_seconds": 3,
              "calling": "2001", "called": "01632960123", "extension": "2001"}  # fmt: skip
    return gen_outgoing_call(n, **(values | changes))


def test_an_agent_batch_is_stored_encrypted_receipted_and_archived(
    dc: Settings, store: sa.Engine, tmp_path: Path
) -> None:
    call = call_at(1, T0)
    land_calls(dc, call)
    wav = make_wav(3.0)
    rec = Recording(start=T0, record_id=call.record_id, wav=wav)
    sealed = seal_recordings(tmp_path / "agent", [rec], agent_id=AGENT, tenant=TENANT,
                             protect=protect)  # fmt: skip
    assert sealed.name == f"{AGENT}-rec-0000000001.ccr"
    land_recordings(dc, sealed)

    report = ingest_once(store, dc)
    assert [(o.file_name, o.status, o.inserted) for o in report.outcomes] == [
        (f"{AGENT}-0000000001.ccb", "stored", 1), (sealed.name, "stored", 1)]  # fmt: skip
    row = rows(store)[rec.recording_id]
    assert (row.status, row.record_id, row.linked_by) == ("stored", call.record_id, "agent")
    stored = dc.recordings_root / row.audio_path
    on_disk = stored.read_bytes()
    assert on_disk != wav and b"RIFF" not in on_disk and b"WAVE" not in on_disk
    assert wav[44:4000] not in on_disk  # no stretch of the audio is there in the clear
    key = load_recordings_key(dc.keys.recordings_key)
    with open_decrypted(stored, key=key, tenant_id=row.tenant_id, recording_id=rec.recording_id,
                        kind="wav") as reader:  # fmt: skip
        assert reader.read() == wav
    receipt_path = dc.landing.tenant_dir(TENANT, "receipts") / f"{sealed.name}.receipt"
    receipt = verify_receipt(receipt_path.read_bytes(), certificate=DC.certificates.receipts)
    assert (receipt.batch, receipt.records, receipt.inserted) == (sealed.name, 1, 1)
    assert not (dc.landing.tenant_dir(TENANT, "recordings") / sealed.name).exists()
    assert list(dc.landing.tenant_dir(TENANT, "archive").rglob(sealed.name))

    # the agent reads the receipt and deletes its sent copy (the call batch's is not its business)
    sent = tmp_path / "agent" / "recordings-sent" / sealed.name
    sealed.rename(sent)  # where upload() leaves it
    outbox = RecordingOutbox(
        OutboxSettings(state_dir=tmp_path / "agent", agent_id=AGENT, tenant=TENANT,
                       receipts_certificate=DC.certificates.receipts),
        recent=lambda since: [],
    )  # fmt: skip
    folder = LandingReceipts(dc.landing.tenant_dir(TENANT, "receipts"))
    assert outbox.collect_receipts(folder) == [sealed.name]
    assert not sent.exists() and not receipt_path.exists()
    assert folder.list_receipts() == [f"{AGENT}-0000000001.ccb.receipt"]


class LandingReceipts:
    """``receipts/`` as the uplink session offers it (``RemoteReceipts``), on the landing folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def list_receipts(self) -> list[str] | None:
        return sorted(p.name for p in self.folder.iterdir()) if self.folder.is_dir() else None

    def read_receipt(self, name: str) -> bytes:
        return (self.folder / name).read_bytes()

    def remove_receipt(self, name: str) -> bool:
        (self.folder / name).unlink()
        return True


def test_a_resent_batch_and_a_recording_in_two_batches_are_stored_once(
    dc: Settings, store: sa.Engine, tmp_path: Path
) -> None:
    rec = Recording(start=T0)
    first = seal_recordings(tmp_path / "a", [rec], agent_id=AGENT, tenant=TENANT, protect=protect)
    land_recordings(dc, first)
    assert ingest_once(store, dc).outcomes[0].status == "stored"
    files_before = sorted(p for p in dc.recordings_root.rglob("*") if p.is_file())

    land_recordings(dc, first)  # the same file again: receipted again, nothing stored
    # the same recording sealed again after a crash on the agent, under the next number
    again = seal_recordings(tmp_path / "a", [rec], agent_id=AGENT, tenant=TENANT, protect=protect)
    assert again.name == f"{AGENT}-rec-0000000002.ccr"
    land_recordings(dc, again)
    report = ingest_once(store, dc)
    assert sorted((o.file_name, o.status, o.inserted, o.duplicates) for o in report.outcomes) == [
        (first.name, "resent", 0, 0), (f"{AGENT}-rec-0000000002.ccr", "duplicate", 0, 1)]  # fmt: skip
    assert list(rows(store)) == [rec.recording_id]
    assert sorted(p for p in dc.recordings_root.rglob("*") if p.is_file()) == files_before
    receipts = dc.landing.tenant_dir(TENANT, "receipts")
    assert (receipts / f"{first.name}.receipt").exists()
    assert (receipts / f"{AGENT}-rec-0000000002.ccr.receipt").exists()


def test_a_damaged_batch_is_quarantined_with_its_reason_and_stores_nothing(
    dc: Settings, store: sa.Engine, tmp_path: Path
) -> None:
    sealed = seal_recordings(tmp_path / "a", [Recording(start=T0)], agent_id=AGENT,
                             tenant=TENANT, protect=protect)  # fmt: skip
    data = bytearray(sealed.read_bytes())
    data[len(data) // 2] ^= 0x40
    target = land_recordings(dc, sealed)
    target.write_bytes(bytes(data))
    (outcome,) = ingest_once(store, dc).outcomes
    assert outcome.status == "quarantined"
    assert "does not decrypt" in outcome.reason or "altered" in outcome.reason
    quarantined = dc.landing.tenant_dir(TENANT, "quarantine") / sealed.name
    assert quarantined.exists()
    assert quarantined.with_name(sealed.name + ".reason").read_text().strip() == outcome.reason
    assert rows(store) == {}
    assert not dc.recordings_root.exists() or not any(dc.recordings_root.rglob("*.wav"))
    with store.connect() as conn:
        status = conn.scalar(sa.select(landed_files.c.status).where(
            landed_files.c.file_name == sealed.name))  # fmt: skip
    assert status == "quarantined"
    assert not (dc.landing.tenant_dir(TENANT, "receipts") / f"{sealed.name}.receipt").exists()


def test_an_unlinked_recording_is_linked_by_time_and_numbers_whichever_arrives_first(
    dc: Settings, store: sa.Engine, tmp_path: Path
) -> None:
    early_call = call_at(1, T0)
    other = call_at(2, T0, calling="2002", extension="2002")  # same time, another extension
    land_calls(dc, early_call, other)
    before = Recording(start=T0 + timedelta(seconds=4))  # agent and PBX clocks 4 s apart
    after = Recording(start=T0 + timedelta(hours=1), caller="2003", extensions=("2003",))
    sealed = seal_recordings(tmp_path / "a", [before, after], agent_id=AGENT, tenant=TENANT,
                             protect=protect)  # fmt: skip
    land_recordings(dc, sealed)
    ingest_once(store, dc)
    stored = rows(store)
    assert (stored[before.recording_id].record_id, stored[before.recording_id].linked_by) == (
        early_call.record_id, "datacentre")  # fmt: skip
    assert stored[after.recording_id].record_id is None  # its call has not arrived yet

    late_call = call_at(3, T0 + timedelta(hours=1), calling="2003", extension="2003")
    land_calls(dc, late_call, sequence=2)
    ingest_once(store, dc)
    relinked = rows(store)[after.recording_id]
    assert (relinked.record_id, relinked.linked_by) == (late_call.record_id, "datacentre")


def test_srtp_calls_are_stored_without_audio_and_say_why(
    dc: Settings, store: sa.Engine, tmp_path: Path
) -> None:
    rec = Recording(start=T0, srtp=True)
    land_recordings(dc, seal_recordings(tmp_path / "a", [rec], agent_id=AGENT, tenant=TENANT,
                                        protect=protect))  # fmt: skip
    ingest_once(store, dc)
    row = rows(store)[rec.recording_id]
    assert (row.status, row.audio_path) == ("no_audio", None)
    assert "SRTP" in row.reason and "not recordable" in row.reason


def test_retention_deletes_expired_audio_and_says_so_in_the_audit_log(
    dc: Settings, store: sa.Engine, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    old, recent = (
        Recording(start=now - timedelta(days=40)),
        Recording(start=now - timedelta(days=5)),
    )
    land_recordings(dc, seal_recordings(tmp_path / "a", [old, recent], agent_id=AGENT,
                                        tenant=TENANT, protect=protect))  # fmt: skip
    ingest_once(store, dc)
    old_file = dc.recordings_root / rows(store)[old.recording_id].audio_path
    assert old_file.exists()
    assert purge_expired(store, dc, now=now) == []  # no policy: kept for ever
    with write_transaction(store) as conn:
        tenant_id = rows(store)[old.recording_id].tenant_id
        set_policy(conn, tenant_id, RecordingPolicy(retention_days=30))

    (purged,) = purge_expired(store, dc, now=now)
    assert (purged.tenant_slug, purged.recordings, purged.retention_days) == (TENANT, 1, 30)
    after = rows(store)
    assert (after[old.recording_id].status, after[old.recording_id].audio_path) == ("deleted", None)
    assert after[old.recording_id].deleted_at is not None
    assert not old_file.exists()
    assert after[recent.recording_id].status == "stored"
    assert (dc.recordings_root / after[recent.recording_id].audio_path).exists()
    with store.connect() as conn:
        (event,) = [e for e in events(conn, tenant_id) if e.event == "recordings_deleted"]
    assert event.actor == "retention" and event.details["recordings"] == 1
    assert purge_expired(store, dc, now=now) == []  # nothing twice


def test_a_defect_found_after_audio_was_written_leaves_no_file_behind(
    dc: Settings, store: sa.Engine, tmp_path: Path
) -> None:
    plain = seal_recordings(tmp_path / "a", [Recording(start=T0)], agent_id=AGENT, tenant=TENANT,
                            protect=None)  # fmt: skip
    content = io.BytesIO(plain.read_bytes())
    with tarfile.open(fileobj=content, mode="a") as tar:  # a stranger after the audio
        info = tarfile.TarInfo("stranger.wav")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"RIFF"))
    plain.write_bytes(protect(content.getvalue()))
    land_recordings(dc, plain)
    (outcome,) = ingest_once(store, dc).outcomes
    assert outcome.status == "quarantined" and "stranger.wav" in outcome.reason
    assert rows(store) == {}
    assert [p for p in dc.recordings_root.rglob("*") if p.is_file()] == []


def test_files_no_recording_names_are_swept_once_a_day_old(
    dc: Settings, store: sa.Engine, tmp_path: Path
) -> None:
    """What an ingest killed between writing audio and committing leaves (an encrypted file, a
    writer's temp file) goes once it is older than the grace period; stored audio, young files
    (an ingest may still commit them) and what is not a regular file stay."""
    kept = Recording(start=T0)
    land_recordings(dc, seal_recordings(tmp_path / "a", [kept], agent_id=AGENT, tenant=TENANT,
                                        protect=protect))  # fmt: skip
    ingest_once(store, dc)
    row = rows(store)[kept.recording_id]
    month = (dc.recordings_root / row.audio_path).parent
    orphan, temp, young = (month / "rec-orphan.wav", month / ".rec-x.wav.0f0f.tmp",
                           month / "rec-young.wav")  # fmt: skip
    for path in (orphan, temp, young):
        path.write_bytes(b"encrypted bytes of a call never committed")
    (month / "linked.wav").symlink_to(dc.recordings_root / row.audio_path)
    now = datetime.now(UTC)
    old = (now - GRACE - timedelta(minutes=1)).timestamp()
    for path in (orphan, temp, dc.recordings_root / row.audio_path):
        os.utime(path, (old, old))

    swept = sweep_orphans(store, dc, now=now)
    assert sorted(swept.removed) == sorted(
        p.relative_to(dc.recordings_root).as_posix() for p in (orphan, temp)
    )
    assert swept.skipped == [(month / "linked.wav").relative_to(dc.recordings_root).as_posix()]
    assert not orphan.exists() and not temp.exists() and young.exists()
    assert (dc.recordings_root / row.audio_path).exists()
    assert sweep_orphans(store, dc, now=now).removed == []  # nothing twice
    # a day later the young file is old too, and retention's pass sweeps it
    purge_expired(store, dc, now=now + GRACE + timedelta(minutes=1))
    assert not young.exists() and (dc.recordings_root / row.audio_path).exists()
