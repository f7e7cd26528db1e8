"""Stereo WAV output: caller on the left channel, called party on the right (formats.md §6.5).

RIFF/WAVE PCM, 2 channels, 16-bit little-endian, 8000 Hz, written with the standard library's
``wave``. Each side is placed at its start time relative to the call's first media so the two
directions line up on capture time; the shorter side is padded with silence.
"""

from __future__ import annotations

import io
import wave
from dataclasses import dataclass

SAMPLE_RATE = 8000
SAMPLE_WIDTH = 2
CHANNELS = 2


@dataclass(frozen=True)
class Side:
    """One direction's audio: 16-bit LE PCM and its capture start time (None = no audio)."""

    pcm: bytes
    start_time: float | None


def _aligned(side: Side, origin: float) -> bytes:
    if side.start_time is None:
        return b""
    lead = round((side.start_time - origin) * SAMPLE_RATE)
    return bytes(SAMPLE_WIDTH * max(lead, 0)) + side.pcm


def interleave(left: bytes, right: bytes) -> bytes:
    """Two mono 16-bit PCM buffers to one interleaved stereo buffer, the shorter padded."""
    frames = max(len(left), len(right)) // SAMPLE_WIDTH
    left = left.ljust(frames * SAMPLE_WIDTH, b"\0")
    right = right.ljust(frames * SAMPLE_WIDTH, b"\0")
    out = bytearray(frames * SAMPLE_WIDTH * CHANNELS)
    lview, rview = memoryview(left).cast("H"), memoryview(right).cast("H")
    oview = memoryview(out).cast("H")
    oview[0::2] = lview
    oview[1::2] = rview
    return bytes(out)


def stereo_frames(caller: Side, called: Side) -> tuple[bytes, float | None]:
    """The interleaved frames and the capture time of the first one (None if both are silent)."""
    starts = [s.start_time for s in (caller, called) if s.start_time is not None]
    if not starts:
        return b"", None
    origin = min(starts)
    return interleave(_aligned(caller, origin), _aligned(called, origin)), origin


def wav_bytes(frames: bytes) -> bytes:
    """Interleaved frames as a whole WAV file (the recorder writes it atomically)."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(CHANNELS)
        out.setsampwidth(SAMPLE_WIDTH)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(frames)
    return buffer.getvalue()
