"""Recording batches: call recordings linked to their ICDRs, sealed in their own numbered batch
files, and uploaded after the call records with their own bandwidth share.

Contract:

- ``link_pending(now)`` reads each complete recording (``<id>.json`` exists) in
  ``STATE/capture/recordings/`` that is not linked yet, looks for its ICDR among the records
  spooled around its time (capture.linking), and rewrites its metadata with ``record_id``.
  Trunk and account code are known from then on, so the recording rules are applied again: a
  recording they now exclude is deleted and never leaves the appliance.
- ``seal_ready(now, force)`` packs recordings that are linked, or waited ``link_wait`` without a
  match (the data centre links those from the numbers and times in the metadata), into batches
  of at most ``max_bytes``: an uncompressed tar of ``manifest.json`` then, per recording,
  ``<id>.json``, ``<id>.wav`` (if any) and ``<id>.sip`` (if any); protected by the same
  ``protect`` as record batches (CMS sign + encrypt) when configured. Written atomically as
  ``STATE/recordings-outbox/AGENT-rec-0000000001.ccr``; the sources are deleted after the file
  is durable. Sequence numbers start at 1 and have no gaps. A crash between the two leaves a
  recording in two batches: the data centre keys on ``recording_id``.
- ``upload(session)`` sends outbox files oldest first into ``capture.remote_dir``, throttled to
  the recordings' share of ``uplink.max_kbps``, and moves each to ``STATE/recordings-sent/``.
  The uplink calls it after every record batch of the session is up, so call records are never
  queued behind audio.
- ``collect_receipts(remote)`` (at the start of ``upload`` when ``receipts_certificate`` is set):
  a receipt in the landing ``receipts/`` for one of *this* agent's ``.ccr`` files, verified
  against the pinned data centre receipts certificate and naming the SHA-256 of the file in
  ``STATE/recordings-sent/``, deletes that file at once (audio is large, and the data centre
  keys on ``recording_id``, so nothing is lost), then the remote receipt. A receipt that fails
  verification or names other bytes deletes nothing and is left for a technician (logged).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import tarfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509

from edge_agent.capture.linking import RecordingKey, match_record
from edge_agent.capture.rules import CallFacts, RecordingRules
from edge_agent.delivery.receipts import RemoteReceipts
from edge_agent.delivery.uplink import UplinkSession, UploadOutcome
from shared.durable import atomic_write, durable_move, fsync_dir, remove_temporaries
from shared.envelope import parse_recordings_file_name
from shared.errors import TransportError
from shared.icdr import ICDR
from shared.receipts import ReceiptError, recordings_name_of, verify_receipt

log = logging.getLogger(__name__)

OUTBOX_DIR = "recordings-outbox"
SENT_DIR = "recordings-sent"
SEQUENCE_FILE = "sequence"
SUFFIX = ".ccr"
BATCH_KIND = "call_recordings"
BATCH_VERSION = 1
DEFAULT_LINK_WAIT = timedelta(minutes=5)
LOOKBACK = timedelta(hours=2)
COMPANIONS = (".wav", ".sip")

Protect = Callable[[bytes], bytes]
RecentRecords = Callable[[datetime], Iterable[ICDR]]  # records spooled since a time


def batch_name(agent_id: str, sequence: int) -> str:
    return f"{agent_id}-rec-{sequence:010d}{SUFFIX}"


@dataclass
class OutboxSettings:
    state_dir: Path
    agent_id: str
    tenant: str
    rules: RecordingRules = field(default_factory=RecordingRules)
    link_window: timedelta = timedelta(seconds=5)
    link_wait: timedelta = DEFAULT_LINK_WAIT
    max_bytes: int = 64 * 1024 * 1024
    remote_dir: str = "recordings"
    kbps: int = 0  # 0: unthrottled
    protect: Protect | None = None
    receipts_certificate: x509.Certificate | None = None  # None: sent batches are kept

    @property
    def recordings(self) -> Path:
        return self.state_dir / "capture" / "recordings"


class RecordingOutbox:
    """See the module docstring."""

    def __init__(self, settings: OutboxSettings, *, recent: RecentRecords) -> None:
        self.settings = settings
        self.recent = recent
        self.outbox = settings.state_dir / OUTBOX_DIR
        self.sent = settings.state_dir / SENT_DIR
        self.recorded: set[str] = set()  # receipts the landing would not let us delete
        for folder in (self.outbox, self.sent, settings.recordings):
            folder.mkdir(parents=True, exist_ok=True)
            remove_temporaries(folder)

    # linking

    def _metadata(self) -> list[tuple[Path, dict[str, Any]]]:
        out = []
        for path in sorted(self.settings.recordings.glob("*.json")):
            try:
                out.append((path, json.loads(path.read_text())))
            except (OSError, ValueError):
                log.warning("recordings: unreadable metadata %s, left in place", path)
        return out

    def link_pending(self, now: datetime) -> int:
        """Link what can be linked; returns how many were linked."""
        pending = [(p, m) for p, m in self._metadata() if not m.get("record_id")]
        if not pending:
            return 0
        records = list(self.recent(now - LOOKBACK))
        linked = 0
        for path, meta in pending:
            record = match_record(
                RecordingKey.from_metadata(meta), records, window=self.settings.link_window
            )
            if record is None:
                continue
            linked += 1
            if not self.settings.rules.decide(_facts(meta, record)):
                log.info("recordings: %s excluded by the rules once linked", path.stem)
                self._delete(path)
                continue
            meta |= {"record_id": record.record_id, "linked_by": "agent",
                     "trunk": record.trunk, "account_code": record.account_code}  # fmt: skip
            atomic_write(path, json.dumps(meta, indent=1, sort_keys=True).encode())
        return linked

    # sealing

    def _ready(self, meta: dict[str, Any], now: datetime) -> bool:
        if meta.get("record_id"):
            return True
        ended = meta.get("end_time") or meta.get("first_seen")
        return not ended or now - datetime.fromisoformat(ended) >= self.settings.link_wait

    def seal_ready(self, now: datetime, *, force: bool = False) -> list[Path]:
        ready = [(p, m) for p, m in self._metadata() if force or self._ready(m, now)]
        sealed: list[Path] = []
        group: list[tuple[Path, dict[str, Any]]] = []
        size = 0
        for path, meta in ready:
            files_size = sum(f.stat().st_size for f in _files(path))
            if group and size + files_size > self.settings.max_bytes:
                sealed.append(self._seal(group, now))
                group, size = [], 0
            group.append((path, meta))
            size += files_size
        if group:
            sealed.append(self._seal(group, now))
        return sealed

    def _next_sequence(self) -> int:
        marker = self.outbox / SEQUENCE_FILE
        last = int(marker.read_text()) if marker.exists() else 0
        for folder in (self.outbox, self.sent):
            for name in folder.glob(f"*{SUFFIX}"):
                last = max(last, int(name.stem.rpartition("-")[2]))
        return last + 1

    def _seal(self, group: list[tuple[Path, dict[str, Any]]], now: datetime) -> Path:
        s = self.settings
        sequence = self._next_sequence()
        manifest = {
            "kind": BATCH_KIND, "version": BATCH_VERSION, "agent_id": s.agent_id,
            "tenant": s.tenant, "sequence": sequence, "created_at": now.astimezone(UTC).isoformat(),
            "recordings": [meta for _path, meta in group],
        }  # fmt: skip
        content = _tar(manifest, [path for path, _meta in group])
        data = s.protect(content) if s.protect is not None else content
        target = self.outbox / batch_name(s.agent_id, sequence)
        atomic_write(target, data)
        atomic_write(self.outbox / SEQUENCE_FILE, str(sequence).encode())
        for path, _meta in group:
            self._delete(path)
        log.info("recordings: sealed %s (%d recordings)", target.name, len(group))
        return target

    def _delete(self, metadata: Path) -> None:
        for companion in _files(metadata)[1:]:
            companion.unlink(missing_ok=True)
        metadata.unlink(missing_ok=True)  # last: its presence marks a complete recording

    # upload

    def upload(self, session: UplinkSession) -> list[UploadOutcome]:
        if self.settings.receipts_certificate is not None:
            self.collect_receipts(session)
        outcomes: list[UploadOutcome] = []
        files = sorted(self.outbox.glob(f"*{SUFFIX}"))
        if files:
            _ensure_remote_dir(session, self.settings.remote_dir)
        for path in files:
            outcome = session.put_file(
                path, path.name, remote_dir=self.settings.remote_dir, kbps=self.settings.kbps
            )
            durable_move(path, self.sent / path.name)
            outcomes.append(outcome)
        return outcomes

    # receipts

    def collect_receipts(self, remote: RemoteReceipts) -> list[str]:
        """Delete the sent batches the data centre receipted; returns their names."""
        certificate = self.settings.receipts_certificate
        names = remote.list_receipts() if certificate is not None else None
        pruned: list[str] = []
        for name in names or []:
            batch = recordings_name_of(name)
            parsed = parse_recordings_file_name(batch) if batch else None
            if batch is None or parsed is None or parsed[0] != self.settings.agent_id:
                continue
            if name in self.recorded:
                continue
            assert certificate is not None
            if self._acknowledge(remote, name, batch, certificate):
                pruned.append(batch)
        if pruned:
            fsync_dir(self.sent)
            log.info("recordings: %d sent batch(es) receipted and deleted", len(pruned))
        return pruned

    def _acknowledge(
        self, remote: RemoteReceipts, name: str, batch: str, certificate: x509.Certificate
    ) -> bool:
        try:
            receipt = verify_receipt(remote.read_receipt(name), certificate=certificate)
        except ReceiptError as exc:
            log.error("recordings receipt %s: %s; left for a technician", name, exc)
            return False
        local = self.sent / batch
        if receipt.batch != batch:
            log.error("recordings receipt %s names %s; left for a technician", name, receipt.batch)
            return False
        if local.exists():
            if hashlib.sha256(local.read_bytes()).hexdigest() != receipt.sha256:
                log.error("recordings receipt %s is for other bytes than the %s sent; kept both "
                          "for a technician", name, batch)  # fmt: skip
                return False
            local.unlink()
        if not remote.remove_receipt(name):
            self.recorded.add(name)
        return True


def _ensure_remote_dir(session: UplinkSession, folder: str) -> None:
    try:
        session.sftp.stat(folder)
    except OSError:
        try:
            session.sftp.mkdir(folder)
        except OSError as exc:
            raise TransportError(
                f"cannot create {folder} in the landing area for recordings: {exc}; ask the "
                "data centre to create it or set capture.remote_dir to a folder that exists"
            ) from exc


def _files(metadata: Path) -> list[Path]:
    """The metadata file first, then whichever companions exist."""
    companions = [metadata.with_suffix(sfx) for sfx in COMPANIONS]
    return [metadata, *(c for c in companions if c.exists())]


def _tar(manifest: dict[str, Any], metadata_paths: list[Path]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        _add(tar, "manifest.json", json.dumps(manifest, indent=1, sort_keys=True).encode())
        for path in metadata_paths:
            for member in _files(path):
                _add(tar, member.name, member.read_bytes())
    return buffer.getvalue()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o640
    tar.addfile(info, io.BytesIO(data))


def _facts(meta: dict[str, Any], record: ICDR) -> CallFacts:
    extensions = set(meta.get("extensions", [])) | ({record.extension} - {""})
    return CallFacts(
        extensions=frozenset(extensions),
        external_numbers=frozenset(meta.get("external_numbers", [])),
        trunk=record.trunk,
        account_code=record.account_code,
    )
