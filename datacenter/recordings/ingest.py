"""Recordings batches (``AGENT-rec-NNNNNNNNNN.ccr``) from the landing area into the store.

Contract (the call batches' rules, through the same code: ``datacenter.ingest.intake``):

- Found in ``recordings/`` of each agent's landing account (or of a tenant's older shared
  folder), finished names only (``shared.envelope.parse_recordings_file_name``); claimed in
  ``landed_files`` like call batches, so any number of workers may run; refused unread above
  ``ingest.max_file_bytes``; decrypted and verified against the agent's pinned certificate
  (``intake.open_file``); any defect quarantines the file with its reason
  (``quarantine/NAME`` + ``NAME.reason``) and stores nothing of it.
- The tar is read as a stream (``datacenter.recordings.batch``): the manifest must name the
  folder's tenant and the file's agent and sequence, every recording the same agent. Audio and
  SIP of a recording not yet stored are encrypted to ``recordings.root`` chunk by chunk
  (``vault``); a recording already stored (same ``(tenant_id, recording_id)``) is skipped
  unread, so a re-sent batch or one recording in two batches is stored once.
- The rows (``recordings``), their links to calls (the agent's ``record_id``, else
  ``linking.match_call``) and the claim's completion are ONE transaction; the receipt
  (``receipts/NAME.receipt``, same format as for call batches: ``records`` counts recordings) is
  written after the commit, then the file is archived. A crash before the commit leaves at most
  audio files no row names, which the next attempt overwrites with the same recording.
- Memory: the landed file and its decrypted content (both at most ``ingest.max_file_bytes``)
  plus one 64 kB chunk; the audio is never held whole a second time.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from datacenter.ingest.claim import LostClaim, our_claim
from datacenter.ingest.files import FileOutcome, Landed, archive, finished_batches
from datacenter.ingest.intake import check_attribution, open_file, quarantine, take_file
from datacenter.ingest.receipts import write_batch_receipt
from datacenter.recordings.batch import BatchLimits, Sink, read_batch
from datacenter.recordings.linking import Span, match_call
from datacenter.recordings.manifest import RecordingMeta, RecordingsManifest
from datacenter.recordings.vault import Readable, VaultError, VaultKey, write_encrypted
from datacenter.settings import Settings
from datacenter.store.dialect import dialect_insert
from datacenter.store.engine import write_transaction
from datacenter.store.tables.core import landed_files
from datacenter.store.tables.recordings import recordings
from shared.envelope import parse_recordings_file_name
from shared.errors import EnvelopeError
from shared.keys import DatacentreKeys

log = logging.getLogger(__name__)

FOLDER = "recordings"


def landed_recordings(
    landed_folder: Path, tenant: Any, *, account_agent: str | None
) -> Iterator[Landed]:
    """The finished ``.ccr`` files in ``<landed_folder>/recordings/``."""
    return finished_batches(
        tenant, landed_folder / FOLDER, account_agent=account_agent,
        parse=parse_recordings_file_name,
    )  # fmt: skip


def ingest_recordings_file(
    engine: sa.Engine,
    settings: Settings,
    landed: Landed,
    *,
    worker: str,
    keys: DatacentreKeys | None,
    vault: VaultKey,
) -> FileOutcome | None:
    """Claim, read, verify, store, receipt and archive one ``.ccr``; None if another worker has it."""
    return take_file(
        engine, settings, landed, worker=worker, keys=keys,
        store=lambda file: _store_file(engine, settings, file, worker=worker, keys=keys,
                                       vault=vault),
    )  # fmt: skip


@dataclass
class _Writer:
    """The ``Sink`` that encrypts new recordings' files while the tar streams past."""

    engine: sa.Engine
    settings: Settings
    landed: Landed
    vault: VaultKey
    existing: set[str] = field(default_factory=set)
    files: dict[str, dict[str, tuple[str, int]]] = field(default_factory=dict)  # id → kind → …

    def manifest(self, manifest: RecordingsManifest) -> None:
        _check_attribution(self.landed, manifest)
        ids = [meta.recording_id for meta in manifest.recordings]
        with self.engine.connect() as conn:
            self.existing = set(
                conn.scalars(
                    sa.select(recordings.c.recording_id).where(
                        recordings.c.tenant_id == self.landed.tenant.tenant_id,
                        recordings.c.recording_id.in_(ids),
                    )
                )
            )

    def companion(self, meta: RecordingMeta, kind: str, source: Readable, size: int) -> None:
        if meta.recording_id in self.existing:
            return  # stored already: the tar reader skips the bytes unread
        tenant_id = self.landed.tenant.tenant_id
        day = meta.start or datetime.now(UTC)
        relative = f"{tenant_id}/{day:%Y/%m}/{meta.recording_id}.{kind}"
        try:
            write_encrypted(
                self.settings.recordings_root / relative, source, size, key=self.vault,
                tenant_id=tenant_id, recording_id=meta.recording_id, kind=kind,
            )  # fmt: skip
        except VaultError as exc:  # the member ended before its declared size
            raise EnvelopeError(f"{meta.recording_id}.{kind}: {exc}") from exc
        self.files.setdefault(meta.recording_id, {})[kind] = (relative, size)

    def remove_written(self) -> None:
        """Remove what this batch wrote, except files a row names (another worker stored the
        same recording from another batch meanwhile: the path is the same)."""
        with self.engine.connect() as conn:
            stored = set(
                conn.scalars(
                    sa.select(recordings.c.recording_id).where(
                        recordings.c.tenant_id == self.landed.tenant.tenant_id,
                        recordings.c.recording_id.in_(list(self.files)),
                    )
                )
            )
        for recording_id, kinds in self.files.items():
            if recording_id in stored:
                continue
            for relative, _size in kinds.values():
                (self.settings.recordings_root / relative).unlink(missing_ok=True)


def _store_file(
    engine: sa.Engine,
    settings: Settings,
    landed: Landed,
    *,
    worker: str,
    keys: DatacentreKeys | None,
    vault: VaultKey,
) -> FileOutcome | None:
    writer = _Writer(engine, settings, landed, vault)
    try:
        opened = open_file(engine, settings, landed, keys)
        landed.data = b""  # the decrypted content is what is read from here on
        if len(opened.content) > settings.ingest.max_batch_bytes:
            raise EnvelopeError(
                f"the recordings tar is {len(opened.content)} bytes, more than "
                f"ingest.max_batch_bytes ({settings.ingest.max_batch_bytes})"
            )
        limits = BatchLimits(settings.ingest.max_batch_records, settings.ingest.max_batch_bytes)
        manifest = read_batch(opened.content, limits, Sink(writer.manifest, writer.companion))
    except EnvelopeError as exc:
        writer.remove_written()
        return quarantine(engine, settings, landed, str(exc), worker=worker)
    try:
        inserted = _commit(engine, landed, manifest, writer, worker=worker)
    except LostClaim:
        return None
    records = len(manifest.recordings)
    status = "stored" if inserted else "duplicate"
    receipted = write_batch_receipt(
        settings, keys, landed, records=records, inserted=inserted,
        duplicates=records - inserted, stored_at=datetime.now(UTC),
    )  # fmt: skip
    archived = archive(settings, landed, status=status) if receipted else None
    return FileOutcome(
        tenant=landed.tenant.slug, file_name=landed.name, status=status, records=records,
        inserted=inserted, duplicates=records - inserted,
        moved_to=archived.moved_to if archived else None,
    )  # fmt: skip


def _check_attribution(landed: Landed, manifest: RecordingsManifest) -> None:
    check_attribution(
        landed, tenant=manifest.tenant, agent_id=manifest.agent_id, sequence=manifest.sequence,
        senders=(m.agent_id for m in manifest.recordings), items="recordings",
    )  # fmt: skip


def _commit(
    engine: sa.Engine,
    landed: Landed,
    manifest: RecordingsManifest,
    writer: _Writer,
    *,
    worker: str,
) -> int:
    """Insert the new recordings with their links and complete the claim, in one transaction."""
    tenant_id, now = landed.tenant.tenant_id, datetime.now(UTC)
    inserted = 0
    with write_transaction(engine) as conn:
        for meta in manifest.recordings:
            if meta.recording_id in writer.existing:
                continue
            row = _row(conn, tenant_id, meta, writer.files.get(meta.recording_id, {}), landed, now)
            added = conn.execute(
                dialect_insert(conn, recordings).values(**row).on_conflict_do_nothing()
                .returning(recordings.c.recording_id)
            ).first()  # fmt: skip
            inserted += added is not None
        done = conn.execute(
            landed_files.update()
            .where(*our_claim(landed, worker))
            .values(
                status="stored" if inserted else "duplicate",
                records=len(manifest.recordings),
                inserted=inserted,
                duplicates=len(manifest.recordings) - inserted,
                finished_at=now,
            )
        )
        if done.rowcount != 1:
            raise LostClaim(landed.name)  # rolls the whole transaction back
    return inserted


def _row(
    conn: sa.Connection,
    tenant_id: int,
    meta: RecordingMeta,
    files: dict[str, tuple[str, int]],
    landed: Landed,
    now: datetime,
) -> dict[str, Any]:
    record_id, linked_by = meta.record_id, "agent" if meta.record_id else None
    if record_id is None and meta.start is not None and meta.end is not None:
        record_id = match_call(conn, tenant_id, Span(meta.numbers, meta.start, meta.end))
        linked_by = "datacentre" if record_id else None
    audio = files.get("wav")
    return {
        "tenant_id": tenant_id, "recording_id": meta.recording_id, "agent_id": meta.agent_id,
        "record_id": record_id, "linked_by": linked_by, "start_time": meta.start,
        "end_time": meta.end, "duration_seconds": meta.duration_seconds,
        "status": "stored" if audio else "no_audio", "reason": meta.why_no_audio[:256],
        "audio_path": audio[0] if audio else None, "audio_bytes": audio[1] if audio else 0,
        "sip_path": files["sip"][0] if "sip" in files else None, "batch_file": landed.name,
        "stored_at": now, "deleted_at": None, "metadata": meta.raw,
    }  # fmt: skip
