"""G.722 decoding through the maintained ``g722`` package (sippy/libg722, bit-exact ITU G.722).

The decoder runs in its 8 kHz output mode, so a G.722 side lands in the same 8 kHz, 16-bit WAV
as a G.711 side without resampling (wideband detail above 4 kHz is given up; the recording is
for listening back, not for re-encoding). RFC 3551's quirk makes this line up: G.722's RTP clock
is 8000 Hz, so one timestamp unit is one output sample here.

G.722 is ADPCM: the decoder keeps state from packet to packet, so each stream gets its own
(``make_decoder``), fed in sequence order by the jitter buffer. Without the package installed,
G.722 streams are reported undecodable instead.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

try:
    import G722
except ImportError:  # pragma: no cover - the package is a pinned dependency
    G722 = None

OUTPUT_RATE = 8000
BIT_RATE = 64000


def available() -> bool:
    return G722 is not None


def make_decoder() -> Callable[[bytes], bytes]:
    """A decoder for one stream: G.722 bytes in, 16-bit native-endian PCM at 8 kHz out."""
    decoder = G722.G722(OUTPUT_RATE, BIT_RATE)

    def decode(payload: bytes) -> bytes:
        samples = decoder.decode(payload)
        if sys.byteorder != "little":
            samples.byteswap()
        return bytes(samples.tobytes())

    return decode
