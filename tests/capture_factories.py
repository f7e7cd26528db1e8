"""Crafted packets for the capture tests: RTP, SIP with SDP, G.711 tones, Ethernet frames."""

from __future__ import annotations

import bisect
import math
import struct

from edge_agent.capture.g711 import ALAW_LINEAR, ULAW_LINEAR

RATE = 8000
FRAME = 160  # samples per 20 ms


def _encoder(table: tuple[int, ...]) -> list[tuple[int, int]]:
    return sorted((value, code) for code, value in enumerate(table))


_ULAW_SORTED = _encoder(ULAW_LINEAR)
_ALAW_SORTED = _encoder(ALAW_LINEAR)


def encode(sample: int, law: str = "ulaw") -> int:
    """The G.711 code whose decoded value is nearest ``sample`` (a test-only encoder)."""
    table = _ULAW_SORTED if law == "ulaw" else _ALAW_SORTED
    keys = [value for value, _ in table]
    i = bisect.bisect_left(keys, sample)
    near = [j for j in (i - 1, i) if 0 <= j < len(table)]
    return min((abs(table[j][0] - sample), table[j][1]) for j in near)[1]


def tone(frequency: float, seconds: float, *, law: str = "ulaw", amplitude: int = 8000) -> bytes:
    """A sine tone as G.711 bytes."""
    count = round(seconds * RATE)
    return bytes(
        encode(round(amplitude * math.sin(2 * math.pi * frequency * n / RATE)), law)
        for n in range(count)
    )


def rtp(
    *,
    seq: int,
    ts: int,
    ssrc: int = 0x1234,
    pt: int = 0,
    payload: bytes = b"\xff" * FRAME,
    marker: bool = False,
    csrc: int = 0,
    extension_words: int = -1,
    padding: int = 0,
) -> bytes:
    """One RTP packet; ``extension_words`` >= 0 adds a header extension, ``padding`` > 0 pads."""
    first = 0x80 | csrc | (0x10 if extension_words >= 0 else 0) | (0x20 if padding else 0)
    out = struct.pack("!BBHII", first, (0x80 if marker else 0) | pt, seq % 65536, ts % 2**32, ssrc)
    out += b"\0\0\0\1" * csrc
    if extension_words >= 0:
        out += struct.pack("!HH", 0xBEDE, extension_words) + b"\xaa" * 4 * extension_words
    out += payload
    if padding:
        out += b"\0" * (padding - 1) + bytes([padding])
    return out


def sdp(
    address: str, port: int, *, profile: str = "RTP/AVP", crypto: bool = False, padding: int = 0
) -> bytes:
    """An audio SDP; ``padding`` adds that many 60-byte attribute lines (a large INVITE)."""
    lines = [
        "v=0",
        f"o=- 1 1 IN IP4 {address}",
        "s=-",
        f"c=IN IP4 {address}",
        "t=0 0",
        f"m=audio {port} {profile} 0 8 101",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:101 telephone-event/8000",
        "a=sendrecv",
    ]
    if crypto:
        lines.append("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + "A" * 40)
    lines += [f"a=x-padding:{n:04d}-" + "p" * 45 for n in range(padding)]
    return ("\r\n".join(lines) + "\r\n").encode()


def sip_request(
    method: str,
    *,
    call_id: str,
    caller: str = "2001",
    called: str = "015551234",
    body: bytes = b"",
    to_tag: str = "",
    cseq: int = 1,
) -> bytes:
    to = f"<sip:{called}@gw.example>" + (f";tag={to_tag}" if to_tag else "")
    head = [
        f"{method} sip:{called}@gw.example SIP/2.0",
        "Via: SIP/2.0/UDP 198.18.0.1:5060;branch=z9hG4bK1",
        f'From: "Desk" <sip:{caller}@pbx.example>;tag=a1',
        f"To: {to}",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} {method}",
    ]
    if body:
        head.append("Content-Type: application/sdp")
    head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def sip_response(
    status: int, *, call_id: str, method: str = "INVITE", body: bytes = b"", cseq: int = 1
) -> bytes:
    head = [
        f"SIP/2.0 {status} Whatever",
        "Via: SIP/2.0/UDP 198.18.0.1:5060;branch=z9hG4bK1",
        "From: <sip:2001@pbx.example>;tag=a1",
        "To: <sip:015551234@gw.example>;tag=b2",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} {method}",
    ]
    if body:
        head.append("Content-Type: application/sdp")
    head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def dominant_frequency(samples: list[int] | bytes) -> float:
    """The strongest frequency (Hz) of 16-bit LE mono PCM bytes or a list of samples."""
    import numpy as np

    data = np.frombuffer(samples, dtype="<i2") if isinstance(samples, bytes) else np.array(samples)
    spectrum = np.abs(np.fft.rfft(data.astype(float)))
    spectrum[0] = 0
    return float(np.fft.rfftfreq(len(data), 1 / RATE)[int(np.argmax(spectrum))])
