"""The agent's recordings batch, read: ``manifest.json`` and each recording's metadata, checked.

The agent writes them (``edge_agent/delivery/recordings.py``, ``edge_agent/capture/recorder.py``;
docs/capture.md lists every field). Only what the data centre relies on is checked; the rest of
the metadata is kept as the agent wrote it. Every defect raises ``EnvelopeError`` naming the
field, so the batch is quarantined with that reason.

- ``parse_manifest(data, max_recordings=...)``: ``kind`` ``call_recordings``, ``version`` 1,
  ``agent_id``, ``tenant``, ``sequence``, ``created_at``, and ``recordings``: at least one, at
  most ``max_recordings``, each a metadata document (``parse_metadata``), no id twice.
- ``parse_metadata(raw)``: ``kind`` ``call_recording``, ``version`` 1, ``recording_id`` (1-64
  of ``[A-Za-z0-9_.-]``, not starting with a dot: it names files), ``agent_id``; numbers are
  strings (or null); times ISO 8601 with an offset (or null); ``duration_seconds`` a number from 0
  to ``MAX_DURATION_SECONDS``; ``wav`` and ``sip`` null or exactly ``<recording_id>.wav`` /
  ``.sip``; ``record_id`` null or a string of at most 128 characters.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.errors import EnvelopeError

BATCH_KIND = "call_recordings"
RECORDING_KIND = "call_recording"
VERSION = 1
MAX_DURATION_SECONDS = 48 * 3600
MAX_RECORD_ID = 128
MAX_NUMBER = 128
_ID_RE = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}$")
TIME_FIELDS = ("invite_time", "answer_time", "end_time", "first_seen", "media_start")
NOT_RECORDABLE = {
    "encrypted_not_recordable": "encrypted media (SRTP): not recordable",
    "undecodable": "a codec the recorder cannot decode",
    "not_seen": "no media was seen",
    "empty": "no audio in the media",
}


@dataclass(frozen=True, slots=True)
class RecordingMeta:
    """One recording's metadata, as the data centre uses it (``raw`` keeps all of it)."""

    recording_id: str
    agent_id: str
    record_id: str | None
    numbers: tuple[str, ...]  # caller, called, extensions, external numbers (non-empty ones)
    extensions: tuple[str, ...]
    start: datetime | None  # media start, else answer, invite or first seen
    end: datetime | None  # end, else start + duration
    duration_seconds: float
    wav: str | None
    sip: str | None
    raw: dict[str, Any]

    @property
    def why_no_audio(self) -> str:
        """Why there is no WAV, in words, from each side's status (empty when there is one)."""
        if self.wav is not None:
            return ""
        sides = self.raw.get("sides")
        reasons = []
        if isinstance(sides, dict):
            for side in ("caller", "called"):
                detail = sides.get(side)
                status = detail.get("status") if isinstance(detail, dict) else None
                if isinstance(status, str) and status in NOT_RECORDABLE:
                    reasons.append(f"{side}: {NOT_RECORDABLE[status]}")
        return "; ".join(reasons) or "the agent recorded no audio for this call"


@dataclass(frozen=True, slots=True)
class RecordingsManifest:
    agent_id: str
    tenant: str
    sequence: int
    created_at: datetime
    recordings: tuple[RecordingMeta, ...]


def parse_manifest(data: bytes, *, max_recordings: int) -> RecordingsManifest:
    try:
        raw = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise EnvelopeError(f"manifest.json is not JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise EnvelopeError("manifest.json is not a JSON object")
    if raw.get("kind") != BATCH_KIND or raw.get("version") != VERSION:
        raise EnvelopeError(
            f"manifest.json is kind {raw.get('kind')!r} version {raw.get('version')!r}, expected "
            f"{BATCH_KIND!r} version {VERSION}"
        )
    agent_id, tenant = _text(raw, "agent_id", 64), _text(raw, "tenant", 64)
    sequence = raw.get("sequence")
    if not isinstance(sequence, int) or isinstance(sequence, bool) or sequence < 1:
        raise EnvelopeError("manifest field 'sequence' is not a positive whole number")
    created_at = _time(raw, "created_at")
    if created_at is None:
        raise EnvelopeError("manifest field 'created_at' is missing")
    items = raw.get("recordings")
    if not isinstance(items, list) or not items:
        raise EnvelopeError("manifest field 'recordings' is not a non-empty list")
    if len(items) > max_recordings:
        raise EnvelopeError(
            f"the batch holds {len(items)} recordings, more than the {max_recordings} a batch "
            "may hold here (ingest.max_batch_records)"
        )
    recordings = tuple(parse_metadata(item) for item in items)
    ids = [r.recording_id for r in recordings]
    if len(set(ids)) != len(ids):
        raise EnvelopeError("manifest lists a recording_id twice")
    return RecordingsManifest(agent_id, tenant, sequence, created_at, recordings)


def parse_metadata(raw: Any) -> RecordingMeta:
    if not isinstance(raw, dict):
        raise EnvelopeError("a recording's metadata is not a JSON object")
    if raw.get("kind") != RECORDING_KIND or raw.get("version") != VERSION:
        raise EnvelopeError(
            f"recording metadata is kind {raw.get('kind')!r} version {raw.get('version')!r}, "
            f"expected {RECORDING_KIND!r} version {VERSION}"
        )
    recording_id = raw.get("recording_id")
    if not isinstance(recording_id, str) or not _ID_RE.match(recording_id):
        raise EnvelopeError(f"recording_id {recording_id!r} is not 1-64 letters, digits, _ . -")
    where = f"recording {recording_id}"
    agent_id = _text(raw, "agent_id", 64, where=where)
    record_id = _optional_text(raw, "record_id", MAX_RECORD_ID, where) or None
    numbers = [_optional_text(raw, key, MAX_NUMBER, where) for key in ("caller", "called")]
    extensions = _texts(raw, "extensions", where)
    numbers += [*extensions, *_texts(raw, "external_numbers", where)]
    times = {key: _time(raw, key, where=where) for key in TIME_FIELDS}
    duration = raw.get("duration_seconds")
    if (not isinstance(duration, int | float) or isinstance(duration, bool)
            or not math.isfinite(duration) or not 0 <= duration <= MAX_DURATION_SECONDS):  # fmt: skip
        raise EnvelopeError(f"{where}: duration_seconds is not a number of seconds")
    start = (times["media_start"] or times["answer_time"] or times["invite_time"]
             or times["first_seen"])  # fmt: skip
    end = times["end_time"] or (start + timedelta(seconds=duration) if start else None)
    return RecordingMeta(
        recording_id=recording_id, agent_id=agent_id, record_id=record_id,
        numbers=tuple(dict.fromkeys(n for n in numbers if n)), extensions=tuple(extensions),
        start=start, end=end, duration_seconds=float(duration),
        wav=_companion(raw, "wav", recording_id), sip=_companion(raw, "sip", recording_id),
        raw=raw,
    )  # fmt: skip


def _text(raw: dict[str, Any], key: str, limit: int, *, where: str = "manifest") -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not 0 < len(value) <= limit:
        raise EnvelopeError(f"{where}: field {key!r} is not a text of 1-{limit} characters")
    return value


def _optional_text(raw: dict[str, Any], key: str, limit: int, where: str) -> str:
    value = raw.get(key)
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > limit:
        raise EnvelopeError(f"{where}: field {key!r} is not null or a text of at most {limit}")
    return value


def _texts(raw: dict[str, Any], key: str, where: str) -> list[str]:
    value = raw.get(key, [])
    if not isinstance(value, list) or not all(
        isinstance(v, str) and len(v) <= MAX_NUMBER for v in value
    ):
        raise EnvelopeError(f"{where}: field {key!r} is not a list of numbers as text")
    return list(value)


def _time(raw: dict[str, Any], key: str, *, where: str = "manifest") -> datetime | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise EnvelopeError(f"{where}: field {key!r} is not an ISO 8601 time")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise EnvelopeError(f"{where}: field {key!r} is not an ISO 8601 time: {exc}") from exc
    if parsed.tzinfo is None:
        raise EnvelopeError(f"{where}: field {key!r} has no UTC offset")
    try:
        return parsed.astimezone(UTC)
    except (OverflowError, ValueError) as exc:
        raise EnvelopeError(f"{where}: field {key!r} is out of range") from exc


def _companion(raw: dict[str, Any], key: str, recording_id: str) -> str | None:
    value = raw.get(key)
    if value is None:
        return None
    if value != f"{recording_id}.{key}":
        raise EnvelopeError(
            f"recording {recording_id}: field {key!r} is {value!r}, expected "
            f"{recording_id}.{key} or null"
        )
    return f"{recording_id}.{key}"
