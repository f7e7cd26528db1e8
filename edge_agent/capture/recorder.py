"""Finished calls to recordings on disk: a stereo WAV and a metadata JSON per call.

Layout of the capture folder (``<state_dir>/capture/``)::

    <recording_id>.wav     caller left, called right; absent when nothing was recordable
    <recording_id>.sip     the call's SIP messages, for disputes (absent without signalling)
    <recording_id>.json    metadata, written last: its presence means the recording is complete

Each file is written atomically (shared.durable), so a crash leaves whole files or none. A side
that is encrypted, uses a codec with no decoder, or was never seen becomes a silent channel and
its metadata says why; an encrypted stream is never decoded into noise.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edge_agent.capture.calls import CALLED, CALLER, Call, Leg
from edge_agent.capture.rules import CallFacts, RecordingRules
from edge_agent.capture.srtp import ENCRYPTED
from edge_agent.capture.wav import (
    CHANNELS,
    SAMPLE_RATE,
    SAMPLE_WIDTH,
    Side,
    stereo_frames,
    wav_bytes,
)
from shared.durable import atomic_write

METADATA_KIND = "call_recording"
METADATA_VERSION = 1
DEFAULT_EXTENSION_DIGITS = 5
RECORDED = "recorded"
NOT_SEEN = "not_seen"
UNDECODABLE = "undecodable"
EMPTY = "empty"


def iso(at: float | None) -> str | None:
    return None if at is None else datetime.fromtimestamp(at, UTC).isoformat()


@dataclass
class SideReport:
    """One direction's audio and what happened to it."""

    status: str
    side: Side
    detail: dict[str, Any] = field(default_factory=dict)


def _merge(leg: Leg) -> Side:
    """A leg's sub-streams (one per SSRC) placed at their capture start times."""
    parts = [(s.start_time, s.finish()) for s in leg.streams.values()]
    placed = sorted((start, pcm) for start, pcm in parts if start is not None and pcm)
    if not placed:
        return Side(b"", None)
    origin = placed[0][0]
    out = bytearray()
    for start, pcm in placed:
        at = SAMPLE_WIDTH * round((start - origin) * SAMPLE_RATE)
        out.extend(bytes(max(at - len(out), 0)))
        out[at : at + len(pcm)] = pcm
    return Side(bytes(out), origin)


def _leg_detail(leg: Leg) -> dict[str, Any]:
    stats = [s.stats for s in leg.streams.values()]
    return {
        "ssrcs": [f"{ssrc:08x}" for ssrc in leg.streams],
        "packets": sum(s.received for s in stats),
        "lost": sum(s.lost for s in stats),
        "late": sum(s.late for s in stats),
        "duplicates": sum(s.duplicates for s in stats),
        "comfort_noise": sum(s.comfort_noise for s in stats),
        "reanchored": sum(s.reanchored for s in stats),
        "drift_corrections": sum(s.drift_corrections for s in stats),
        "paused_packets": leg.paused_packets,
        "payload_types": sorted({pt for s in stats for pt in s.payload_types}),
        "dtmf": [
            {"digit": e.digit, "offset_seconds": e.offset_seconds, "duration_ms": e.duration_ms}
            for s in leg.streams.values()
            for e in s.dtmf
        ],
    }


def side_report(call: Call, side: str) -> SideReport:
    leg = call.legs.get(side)
    if leg is None:
        return SideReport(NOT_SEEN, Side(b"", None), {"reason": "no media seen for this side"})
    detail = _leg_detail(leg)
    if call.sdp_encrypted or leg.srtp.encrypted:
        detail["reason"] = "SRTP (SDP)" if call.sdp_encrypted else "SRTP (payload analysis)"
        return SideReport(ENCRYPTED, Side(b"", None), detail)
    unrecordable = [s.unrecordable for s in leg.streams.values() if s.unrecordable]
    audio = _merge(leg)
    if audio.start_time is None and unrecordable:
        detail["reason"] = unrecordable[0]
        return SideReport(UNDECODABLE, audio, detail)
    return SideReport(RECORDED if audio.pcm else EMPTY, audio, detail)


@dataclass(frozen=True)
class RecorderSettings:
    directory: Path
    agent_id: str = ""
    rules: RecordingRules = field(default_factory=RecordingRules)
    devices: dict[str, str] = field(default_factory=dict)  # IP address -> extension
    extension_digits: int = DEFAULT_EXTENSION_DIGITS


def call_facts(call: Call, settings: RecorderSettings) -> CallFacts:
    """Extensions and external numbers of a call, from SIP numbers and the device map."""
    extensions: set[str] = set()
    external: set[str] = set()
    for number in (call.caller, call.called):
        if number:
            short = number.isdigit() and len(number) <= settings.extension_digits
            (extensions if short else external).add(number)
    for address, _port in call.endpoints.values():
        if address in settings.devices:
            extensions.add(settings.devices[address])
    return CallFacts(frozenset(extensions), frozenset(external))


def write_recording(call: Call, settings: RecorderSettings) -> Path | None:
    """Write the call's files; returns the metadata path, or None when rules exclude the call.

    The call's audio buffers are released either way.
    """
    try:
        return _write(call, settings)
    finally:
        call.close()


def _write(call: Call, settings: RecorderSettings) -> Path | None:
    facts = call_facts(call, settings)
    if not settings.rules.decide(facts):
        return None
    recording_id = str(uuid.uuid4())
    caller, called = side_report(call, CALLER), side_report(call, CALLED)
    frames, media_start = stereo_frames(caller.side, called.side)
    directory = settings.directory
    directory.mkdir(parents=True, exist_ok=True)
    wav_name = sip_name = None
    if frames:
        wav_name = f"{recording_id}.wav"
        atomic_write(directory / wav_name, wav_bytes(frames))
    if call.sip_messages:
        sip_name = f"{recording_id}.sip"
        atomic_write(directory / sip_name, b"\n--\n".join(call.sip_messages))
    metadata = {
        "kind": METADATA_KIND,
        "version": METADATA_VERSION,
        "recording_id": recording_id,
        "agent_id": settings.agent_id,
        "sip_call_id": call.key if call.signalled else None,
        "signalled": call.signalled,
        "caller": call.caller,
        "called": call.called,
        "extensions": sorted(facts.extensions),
        "external_numbers": sorted(facts.external_numbers),
        "invite_time": iso(call.invite_time),
        "answer_time": iso(call.answer_time),
        "end_time": iso(call.end_time),
        "end_reason": call.end_reason,
        "first_seen": iso(call.first_seen),
        "media_start": iso(media_start),
        "duration_seconds": round(len(frames) / (SAMPLE_WIDTH * CHANNELS * SAMPLE_RATE), 3),
        "channels": {"left": CALLER, "right": CALLED},
        "sides": {
            CALLER: {"status": caller.status, **caller.detail},
            CALLED: {"status": called.status, **called.detail},
        },
        "endpoints": {side: f"{a}:{p}" for side, (a, p) in call.endpoints.items()},
        "wav": wav_name,
        "sip": sip_name,
        "record_id": None,
    }
    path = directory / f"{recording_id}.json"
    atomic_write(path, json.dumps(metadata, indent=1, sort_keys=True).encode())
    return path
