"""Stereo WAV assembly: channels aligned on capture time, the shorter side padded."""

from __future__ import annotations

import array
import io
import wave

from edge_agent.capture.wav import Side, stereo_frames, wav_bytes


def pcm(values: list[int]) -> bytes:
    return array.array("h", values).tobytes()


def test_the_later_side_is_padded_by_its_start_time() -> None:
    caller = Side(pcm([1] * 8000), start_time=100.0)
    called = Side(pcm([2] * 4000), start_time=100.25)  # starts 2000 samples later
    frames, origin = stereo_frames(caller, called)
    values = array.array("h", frames)
    left, right = values[0::2], values[1::2]
    assert origin == 100.0 and len(left) == len(right) == 8000
    assert set(right[:2000]) == {0} and set(right[2000:6000]) == {2} and set(right[6000:]) == {0}
    assert set(left) == {1}


def test_a_silent_side_and_no_sides() -> None:
    frames, origin = stereo_frames(Side(b"", None), Side(pcm([5, 6]), 3.0))
    assert origin == 3.0 and list(array.array("h", frames)) == [0, 5, 0, 6]
    assert stereo_frames(Side(b"", None), Side(b"", None)) == (b"", None)


def test_wav_header() -> None:
    data = wav_bytes(pcm([1, 2] * 8000))
    with wave.open(io.BytesIO(data)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate(), wav.getnframes()) == (
            2,
            2,
            8000,
            8000,
        )
    assert data[20:22] == b"\x01\x00"  # format tag 1: PCM
