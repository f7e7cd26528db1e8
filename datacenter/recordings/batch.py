"""Reading a recordings batch's tar as a stream: the manifest first, then each file, capped.

The tar (``edge_agent/delivery/recordings.py``) is read member by member in stream mode, never
extracted and never held twice: ``manifest.json`` must come first (so the recordings are known
before any audio), then per recording ``<id>.json`` (equal to its manifest entry), ``<id>.wav``
and ``<id>.sip`` as the metadata names them. Every member is a regular file with a plain name
of a listed recording and within its cap (``MAX_*``; audio within ``ingest.max_batch_bytes``),
checked before a byte of it is read; a WAV must start as one. A member missing at the end, one
not listed, or one twice is a defect. Each audio or SIP member is handed to ``Sink.companion``
as a file object to read once (the caller encrypts it to disk chunk by chunk), so memory is one
chunk whatever the recording's length. Every defect raises ``EnvelopeError``.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

from datacenter.recordings.manifest import RecordingMeta, RecordingsManifest, parse_manifest
from datacenter.recordings.vault import Readable
from shared.errors import EnvelopeError

MANIFEST = "manifest.json"
MAX_MANIFEST_BYTES = 32 * 1024 * 1024
MAX_METADATA_BYTES = 1024 * 1024
MAX_SIP_BYTES = 4 * 1024 * 1024
WAV_HEAD = 12  # b"RIFF" size b"WAVE"
KINDS = ("json", "wav", "sip")


@dataclass(frozen=True, slots=True)
class BatchLimits:
    max_recordings: int
    max_audio_bytes: int  # one WAV


@dataclass(slots=True)
class Sink:
    """What the reader calls: ``manifest`` once, then ``companion`` per WAV or SIP member."""

    manifest: Callable[[RecordingsManifest], None]
    companion: Callable[[RecordingMeta, str, Readable, int], None]  # meta, kind, file, size


def read_batch(content: bytes, limits: BatchLimits, sink: Sink) -> RecordingsManifest:
    """Read the whole tar through ``sink``; returns the manifest once every member was seen."""
    try:
        with tarfile.open(fileobj=io.BytesIO(content), mode="r|") as tar:
            return _read(tar, limits, sink)
    except (tarfile.TarError, EOFError) as exc:
        raise EnvelopeError(f"the recordings tar is damaged: {exc}") from exc


def _read(tar: tarfile.TarFile, limits: BatchLimits, sink: Sink) -> RecordingsManifest:
    first = tar.next()
    if first is None or first.name != MANIFEST:
        raise EnvelopeError("the recordings tar does not start with manifest.json")
    manifest = parse_manifest(
        _small(tar, first, MAX_MANIFEST_BYTES), max_recordings=limits.max_recordings
    )
    sink.manifest(manifest)
    by_id = {meta.recording_id: meta for meta in manifest.recordings}
    expected = {f"{m.recording_id}.json" for m in manifest.recordings}
    expected |= {name for m in manifest.recordings for name in (m.wav, m.sip) if name}
    seen: set[str] = set()
    while (member := tar.next()) is not None:  # iterating would start over at the manifest
        name = member.name
        if name not in expected or name in seen:
            raise EnvelopeError(f"the tar holds {name!r}, which the manifest does not list once")
        seen.add(name)
        recording_id, _, kind = name.rpartition(".")
        meta = by_id[recording_id]
        if kind == "json":
            if _json(_small(tar, member, MAX_METADATA_BYTES), name) != meta.raw:
                raise EnvelopeError(f"{name} differs from its entry in manifest.json")
            continue
        cap = limits.max_audio_bytes if kind == "wav" else MAX_SIP_BYTES
        source: Readable = _member(tar, member, cap)
        if kind == "wav":
            source = _wav_checked(source, name)
        sink.companion(meta, kind, source, member.size)
    missing = sorted(expected - seen)
    if missing:
        raise EnvelopeError(f"the tar ends without {', '.join(missing[:5])} (truncated?)")
    return manifest


def _member(tar: tarfile.TarFile, member: tarfile.TarInfo, cap: int) -> IO[bytes]:
    if not member.isfile():
        raise EnvelopeError(f"{member.name!r} in the recordings tar is not a regular file")
    if member.size > cap:
        raise EnvelopeError(f"{member.name} is {member.size} bytes, more than the {cap} allowed")
    source = tar.extractfile(member)
    if source is None:  # pragma: no cover - isfile() members always extract
        raise EnvelopeError(f"{member.name} cannot be read")
    return source


def _small(tar: tarfile.TarFile, member: tarfile.TarInfo, cap: int) -> bytes:
    return _member(tar, member, cap).read()


def _json(data: bytes, name: str) -> object:
    try:
        return json.loads(data)
    except ValueError as exc:  # UnicodeDecodeError is one too
        raise EnvelopeError(f"{name} is not JSON: {exc}") from exc


def _wav_checked(source: Readable, name: str) -> Readable:
    head = source.read(WAV_HEAD)
    if len(head) != WAV_HEAD or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise EnvelopeError(f"{name} is not a WAV file")
    return _Prefixed(head, source)


class _Prefixed:
    """``head`` then the rest of ``source``: the bytes read to check a WAV are not lost."""

    def __init__(self, head: bytes, source: Readable) -> None:
        self._head = head
        self._source = source

    def read(self, size: int = -1) -> bytes:
        if self._head:
            take = self._head if size < 0 else self._head[:size]
            self._head = self._head[len(take) :]
            rest = (
                b""
                if 0 <= size == len(take)
                else self._source.read(-1 if size < 0 else size - len(take))
            )
            return take + rest
        return self._source.read(size)
