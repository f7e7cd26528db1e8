"""The recordings batch's manifest and tar: every defect is an ``EnvelopeError`` with a reason.

Hypothesis throws arbitrary JSON and arbitrary bytes at the parsers (never anything but
``EnvelopeError``), mutates valid metadata field by field, and checks that valid documents made
the agent's way come through with their facts.
"""

from __future__ import annotations

import io
import json
import tarfile
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datacenter.recordings.batch import BatchLimits, Sink, read_batch
from datacenter.recordings.manifest import (
    RecordingMeta,
    RecordingsManifest,
    parse_manifest,
    parse_metadata,
)
from datacenter.recordings.vault import Readable
from shared.errors import EnvelopeError
from tests.fixtures.recordings import Recording, make_wav, metadata

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LIMITS = BatchLimits(max_recordings=100, max_audio_bytes=10_000_000)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                max_size=6),
    max_leaves=20,
)  # fmt: skip


def manifest_doc(*recs: Recording, agent: str = "edge-1", tenant: str = "demo") -> dict[str, Any]:
    return {
        "kind": "call_recordings", "version": 1, "agent_id": agent, "tenant": tenant,
        "sequence": 1, "created_at": T0.isoformat(),
        "recordings": [metadata(rec, agent_id=agent) for rec in recs],
    }  # fmt: skip


def tar_of(members: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def batch_members(*recs: Recording) -> list[tuple[str, bytes]]:
    doc = manifest_doc(*recs)
    members = [("manifest.json", json.dumps(doc).encode())]
    for rec, meta in zip(recs, doc["recordings"], strict=True):
        members.append((f"{rec.recording_id}.json", json.dumps(meta).encode()))
        audio = rec.audio()
        if audio is not None:
            members.append((f"{rec.recording_id}.wav", audio))
        members.append((f"{rec.recording_id}.sip", b"INVITE"))
    return members


class Collect:
    def __init__(self) -> None:
        self.manifests: list[RecordingsManifest] = []
        self.files: dict[str, bytes] = {}

    def sink(self) -> Sink:
        return Sink(self.manifests.append, self.companion)

    def companion(self, meta: RecordingMeta, kind: str, source: Readable, size: int) -> None:
        self.files[f"{meta.recording_id}.{kind}"] = source.read(size)


def test_a_batch_made_the_agents_way_reads_back_whole() -> None:
    linked = Recording(start=T0, record_id="call-1", wav=make_wav(0.5))
    srtp = Recording(start=T0, srtp=True)
    collect = Collect()
    manifest = read_batch(tar_of(batch_members(linked, srtp)), LIMITS, collect.sink())
    assert collect.manifests == [manifest]
    first, second = manifest.recordings
    assert (first.record_id, first.wav, first.start, first.duration_seconds) == (
        "call-1", f"{linked.recording_id}.wav", T0, 3.0)  # fmt: skip
    assert first.end == T0 + timedelta(seconds=3) and "01632960123" in first.numbers
    assert collect.files[f"{linked.recording_id}.wav"] == linked.wav  # the checked head kept
    assert second.wav is None and "SRTP" in second.why_no_audio
    assert set(collect.files) == {f"{linked.recording_id}.wav", f"{linked.recording_id}.sip",
                                  f"{srtp.recording_id}.sip"}  # fmt: skip


DEFECTS = [
    ("the manifest not first", lambda m: m[1:2] + m[:1] + m[2:], "does not start with manifest"),
    ("a file not listed", lambda m: [*m, ("other.wav", b"RIFF")], "does not list once"),
    ("a file twice", lambda m: [*m, m[2]], "does not list once"),
    ("a missing WAV", lambda m: [x for x in m if not x[0].endswith(".wav")], "ends without"),
    (
        "a WAV that is not one",
        lambda m: [(n, b"not audio at all" if n.endswith(".wav") else d) for n, d in m],
        "is not a WAV",
    ),
    (
        "metadata unlike the manifest",
        lambda m: [
            (n, b'{"kind": 1}' if n.endswith(".json") and n != "manifest.json" else d) for n, d in m
        ],
        "differs from its entry",
    ),
    ("a path outside", lambda m: [*m, ("../etc/passwd", b"x")], "does not list once"),
    (
        "metadata that is not JSON",
        lambda m: [
            (n, b"\xff{" if n.endswith(".json") and n != "manifest.json" else d) for n, d in m
        ],
        "is not JSON",
    ),
]


@pytest.mark.parametrize(("change", "expected"), [(d[1], d[2]) for d in DEFECTS],
                         ids=[d[0] for d in DEFECTS])  # fmt: skip
def test_every_defect_of_the_tar_is_named(change: Any, expected: str) -> None:
    members = change(batch_members(Recording(start=T0)))
    with pytest.raises(EnvelopeError, match=expected):
        read_batch(tar_of(members), LIMITS, Collect().sink())


def test_a_truncated_tar_and_caps_are_refused() -> None:
    data = tar_of(batch_members(Recording(start=T0)))
    with pytest.raises(EnvelopeError):
        read_batch(data[: len(data) // 2], LIMITS, Collect().sink())
    small = BatchLimits(max_recordings=100, max_audio_bytes=1000)
    with pytest.raises(EnvelopeError, match="more than the 1000 allowed"):
        read_batch(data, small, Collect().sink())
    two = tar_of(batch_members(Recording(start=T0), Recording(start=T0)))
    with pytest.raises(EnvelopeError, match=r"ingest\.max_batch_records"):
        read_batch(two, BatchLimits(1, 10_000_000), Collect().sink())


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_arbitrary_json_never_passes_as_a_manifest_or_raises_anything_else(doc: Any) -> None:
    with pytest.raises(EnvelopeError):
        parse_manifest(json.dumps(doc).encode(), max_recordings=10)
    with pytest.raises(EnvelopeError):
        parse_metadata(doc)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_are_refused_as_a_tar_with_a_reason(data: bytes) -> None:
    with pytest.raises(EnvelopeError):
        read_batch(data, LIMITS, Collect().sink())


FIELDS = ["recording_id", "agent_id", "record_id", "caller", "extensions", "answer_time",
          "end_time", "duration_seconds", "wav", "sip", "kind", "version"]  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(FIELDS), json_values)
def test_a_metadata_field_replaced_by_anything_is_accepted_or_named(field: str, value: Any) -> None:
    rec = Recording(start=T0, recording_id=str(uuid.UUID(int=7)))
    doc = metadata(rec, agent_id="edge-1") | {field: value}
    try:
        meta = parse_metadata(doc)
    except EnvelopeError as exc:
        assert field in str(exc) or "recording_id" in str(exc) or "kind" in str(exc)
    else:  # what was accepted is what the data centre relies on
        assert meta.recording_id == doc["recording_id"]
        assert meta.wav in (None, f"{meta.recording_id}.wav")
        assert 0 <= meta.duration_seconds <= 48 * 3600
        assert meta.start is None or meta.start.tzinfo is not None
