"""G.711 µ-law (PCMU) and A-law (PCMA) decoding, table-driven.

The two 256-entry tables are computed at import from the ITU-T G.711 formulas (formats.md §6.6),
never copied. Decoding is two ``bytes.translate`` calls (low and high byte of each 16-bit sample)
and one interleave, so a 160-byte payload decodes without a Python-level loop per sample.
Output is signed 16-bit little-endian PCM, the layout ``wave`` writes.
"""

from __future__ import annotations

ULAW_BIAS = 0x84
ULAW_SILENCE = 0xFF
ALAW_SILENCE = 0xD5


def ulaw_to_linear(code: int) -> int:
    """One µ-law byte to its 16-bit linear value."""
    inverted = ~code & 0xFF
    exponent = (inverted >> 4) & 0x07
    mantissa = inverted & 0x0F
    magnitude = (((mantissa << 3) + ULAW_BIAS) << exponent) - ULAW_BIAS
    return -magnitude if inverted & 0x80 else magnitude


def alaw_to_linear(code: int) -> int:
    """One A-law byte to its 16-bit linear value (top bit after XOR 0x55: 1 = positive)."""
    toggled = code ^ 0x55
    exponent = (toggled >> 4) & 0x07
    mantissa = toggled & 0x0F
    magnitude = (
        (mantissa << 4) + 8 if exponent == 0 else ((mantissa << 4) + 0x108) << (exponent - 1)
    )
    return magnitude if toggled & 0x80 else -magnitude


def _translate_tables(linear: list[int]) -> tuple[bytes, bytes]:
    """Split each value's little-endian 16-bit form into a low-byte and a high-byte table."""
    raw = [value & 0xFFFF for value in linear]
    return bytes(v & 0xFF for v in raw), bytes(v >> 8 for v in raw)


ULAW_LINEAR = tuple(ulaw_to_linear(code) for code in range(256))
ALAW_LINEAR = tuple(alaw_to_linear(code) for code in range(256))
_ULAW_LOW, _ULAW_HIGH = _translate_tables(list(ULAW_LINEAR))
_ALAW_LOW, _ALAW_HIGH = _translate_tables(list(ALAW_LINEAR))


def _decode(payload: bytes, low: bytes, high: bytes) -> bytes:
    out = bytearray(2 * len(payload))
    out[0::2] = payload.translate(low)
    out[1::2] = payload.translate(high)
    return bytes(out)


def decode_ulaw(payload: bytes) -> bytes:
    """µ-law bytes to 16-bit little-endian PCM (two bytes per input byte)."""
    return _decode(payload, _ULAW_LOW, _ULAW_HIGH)


def decode_alaw(payload: bytes) -> bytes:
    """A-law bytes to 16-bit little-endian PCM (two bytes per input byte)."""
    return _decode(payload, _ALAW_LOW, _ALAW_HIGH)
