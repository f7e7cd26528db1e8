"""G.711 tables against the spec's vectors and an independent implementation (audioop)."""

from __future__ import annotations

import array
import sys
import warnings

import pytest

from edge_agent.capture import g711


@pytest.mark.parametrize(
    ("table", "code", "value"),
    [
        (g711.ULAW_LINEAR, 0x00, -32124),
        (g711.ULAW_LINEAR, 0x80, 32124),
        (g711.ULAW_LINEAR, 0x7E, -8),
        (g711.ULAW_LINEAR, 0xFE, 8),
        (g711.ULAW_LINEAR, 0x7F, 0),
        (g711.ULAW_LINEAR, 0xFF, 0),
        (g711.ALAW_LINEAR, 0x55, -8),
        (g711.ALAW_LINEAR, 0xD5, 8),
        (g711.ALAW_LINEAR, 0x2A, -32256),
        (g711.ALAW_LINEAR, 0xAA, 32256),
        (g711.ALAW_LINEAR, 0x00, -5504),
        (g711.ALAW_LINEAR, 0x80, 5504),
    ],
)
def test_spec_vectors(table: tuple[int, ...], code: int, value: int) -> None:
    assert table[code] == value


@pytest.mark.skipif(sys.version_info >= (3, 13), reason="audioop was removed in Python 3.13")
@pytest.mark.parametrize("law", ["ulaw", "alaw"])
def test_all_codes_match_audioop(law: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop
    codes = bytes(range(256))
    expected = getattr(audioop, f"{law}2lin")(codes, 2)
    decoded = g711.decode_ulaw(codes) if law == "ulaw" else g711.decode_alaw(codes)
    assert decoded == expected


def test_decode_is_two_bytes_per_code_little_endian() -> None:
    pcm = array.array("h")
    pcm.frombytes(g711.decode_alaw(bytes([0xAA, 0x2A, 0xD5])))
    assert list(pcm) == [32256, -32256, 8]
    assert g711.decode_ulaw(b"") == b""
