"""RTP packets and streams: header parsing, payload types, and one SSRC's audio reassembled.

- ``parse_rtp(data)`` reads an RTP header (RFC 3550 §5.1) including CSRC list, header extension
  and padding, and returns ``None`` for anything that is not a valid RTP packet (STUN, DTLS,
  RTCP multiplexed on the port, truncated or garbage bytes). It never raises.
- ``StreamAssembler`` takes one stream's packets in arrival order with their capture times and
  produces 16-bit PCM placed by RTP timestamp: sequence numbers are extended across the 16-bit
  wrap, packets are held in a jitter window and released in sequence order, duplicates and late
  packets are dropped and counted, gaps (loss, comfort noise, DTX) become silence of the right
  length, and RFC 4733 telephone events are noted, not played. A timestamp jump that disagrees
  with the capture clock re-anchors placement on capture time (formats.md §6.4).
"""

from __future__ import annotations

import struct
import tempfile
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from edge_agent.capture import g711, g722

RTP_VERSION = 2
HEADER = struct.Struct("!BBHII")
SEQ_MOD = 1 << 16
TS_MOD = 1 << 32
DEFAULT_JITTER_WINDOW = 0.2
MAX_JITTER_WINDOW = 0.5
REANCHOR_THRESHOLD = 1.0
DRIFT_LIMIT = 0.08  # s of sender-vs-capture clock drift absorbed at the next silence gap
DRIFT_WINDOW = 25  # packets over which the drift is estimated (their least lag)
SAMPLE_RATE = 8000
SPILL_AFTER_BYTES = 512 * 1024  # 32 s of one direction
PT_PCMU = 0
PT_PCMA = 8
PT_G722 = 9
PT_CN = 13
PT_G729 = 18
DEFAULT_TELEPHONE_EVENT_PT = 101
RTCP_ALIASES = range(72, 77)
DTMF_DIGITS = "0123456789*#ABCD"


@dataclass(frozen=True, slots=True)
class RtpPacket:
    """One RTP packet's header fields and its payload (extensions and padding removed)."""

    marker: bool
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes


Decoder = Callable[[bytes], bytes]


@dataclass(frozen=True, slots=True)
class Codec:
    """How a payload type is handled: a decoder to 8 kHz PCM, or none (not decodable).

    ``decode`` is a stateless function (G.711); ``make_decoder`` makes one stateful decoder per
    stream (G.722's ADPCM carries state from packet to packet).
    """

    name: str
    decode: Decoder | None
    make_decoder: Callable[[], Decoder] | None = None

    @property
    def decodable(self) -> bool:
        return self.decode is not None or self.make_decoder is not None


STATIC_CODECS: dict[int, Codec] = {
    PT_PCMU: Codec("PCMU", g711.decode_ulaw),
    PT_PCMA: Codec("PCMA", g711.decode_alaw),
    PT_G722: Codec("G722", None, g722.make_decoder if g722.available() else None),
    PT_CN: Codec("CN", None),
    PT_G729: Codec("G729", None),
    3: Codec("GSM", None),
    4: Codec("G723", None),
}
CODECS_BY_NAME: dict[str, Codec] = {codec.name: codec for codec in STATIC_CODECS.values()}


def parse_rtp(data: bytes) -> RtpPacket | None:
    """The RTP packet in ``data``, or None if it is not one (never raises)."""
    if len(data) < HEADER.size:
        return None
    first, second, sequence, timestamp, ssrc = HEADER.unpack_from(data)
    if first >> 6 != RTP_VERSION or (second & 0x7F) in RTCP_ALIASES:
        return None
    start = HEADER.size + 4 * (first & 0x0F)
    if first & 0x10:
        if start + 4 > len(data):
            return None
        (words,) = struct.unpack_from("!H", data, start + 2)
        start += 4 + 4 * words
    end = len(data)
    if first & 0x20:
        if end <= start:
            return None
        padding = data[-1]
        if padding == 0 or padding > end - start:
            return None
        end -= padding
    if start > end:
        return None
    return RtpPacket(
        marker=bool(second & 0x80),
        payload_type=second & 0x7F,
        sequence=sequence,
        timestamp=timestamp,
        ssrc=ssrc,
        payload=bytes(data[start:end]),
    )


@dataclass(frozen=True, slots=True)
class DtmfEvent:
    """One RFC 4733 telephone event: the digit, when it started (s into the stream), how long."""

    digit: str
    offset_seconds: float
    duration_ms: int


def parse_telephone_event(payload: bytes) -> tuple[str, bool, int] | None:
    """(digit, end bit, duration in timestamp units) of an RFC 4733 payload, or None."""
    if len(payload) < 4:
        return None
    event, flags, duration = struct.unpack_from("!BBH", payload)
    digit = DTMF_DIGITS[event] if event < len(DTMF_DIGITS) else f"event-{event}"
    return digit, bool(flags & 0x80), duration


def signed32(value: int) -> int:
    """A 32-bit modular difference read as a signed number."""
    value %= TS_MOD
    return value - TS_MOD if value >= TS_MOD // 2 else value


@dataclass
class StreamStats:
    """What happened to one stream's packets: everything a recording's metadata reports."""

    received: int = 0
    placed: int = 0
    duplicates: int = 0
    late: int = 0
    lost: int = 0
    comfort_noise: int = 0
    undecodable: int = 0
    reanchored: int = 0
    drift_corrections: int = 0
    payload_types: set[int] = field(default_factory=set)


class SequenceExtender:
    """Extends 16-bit sequence numbers across wraps (formats.md §6.4)."""

    def __init__(self, first: int) -> None:
        self.highest = first
        self.cycles = 0

    def extend(self, sequence: int) -> int:
        delta = (sequence - self.highest) % SEQ_MOD
        if 0 < delta < SEQ_MOD // 2:
            if sequence < self.highest:
                self.cycles += 1
            self.highest = sequence
            return self.cycles * SEQ_MOD + sequence
        cycles = self.cycles
        if sequence > self.highest and cycles > 0:
            cycles -= 1  # an old packet from just before the wrap
        return cycles * SEQ_MOD + sequence


@dataclass(slots=True)
class _Held:
    packet: RtpPacket
    arrival: float


class StreamAssembler:
    """One SSRC's packets in, placed 16-bit PCM out.

    Contract: ``push`` accepts packets in arrival order; a packet is written once it has been
    held ``jitter_window`` seconds of capture time, in extended-sequence order. Audio beyond
    SPILL_AFTER_BYTES goes to an unlinked temporary file in ``spill_dir`` (nothing is left on
    disk after a crash). ``finish`` (once) flushes what is held and returns the stream's audio
    as PCM bytes starting at ``start_time``
    (capture time of the first placed sample). A stream whose payload type has no decoder keeps
    no audio and says why in ``unrecordable``.
    """

    def __init__(
        self,
        *,
        codecs: dict[int, Codec] | None = None,
        telephone_event_pt: int = DEFAULT_TELEPHONE_EVENT_PT,
        jitter_window: float = DEFAULT_JITTER_WINDOW,
        spill_dir: Path | None = None,
    ) -> None:
        self.codecs = STATIC_CODECS if codecs is None else codecs
        self.telephone_event_pt = telephone_event_pt
        self.jitter_window = min(jitter_window, MAX_JITTER_WINDOW)
        self.stats = StreamStats()
        self.dtmf: list[DtmfEvent] = []
        self.unrecordable: str | None = None
        self.start_time: float | None = None
        # audio stays in memory for the first seconds, then spills to an unlinked file, so
        # hundreds of long calls do not hold gigabytes (16 kB per second and direction)
        self._pcm = tempfile.SpooledTemporaryFile(  # noqa: SIM115 - lives as long as the stream
            max_size=SPILL_AFTER_BYTES, dir=str(spill_dir) if spill_dir else None
        )
        self._pcm_bytes = 0
        self._held: dict[int, _Held] = {}
        self._extender: SequenceExtender | None = None
        self._written_seq: int | None = None
        self._anchor_ts = 0
        self._anchor_sample = 0
        self._anchor_time = 0.0
        self._dtmf_seen: set[int] = set()
        self._decoders: dict[int, Decoder] = {}
        self._lags: deque[float] = deque(maxlen=DRIFT_WINDOW)  # capture-clock minus RTP position

    def push(self, packet: RtpPacket, arrival: float) -> None:
        self.stats.received += 1
        self.stats.payload_types.add(packet.payload_type)
        if self._extender is None:
            self._extender = SequenceExtender(packet.sequence)
        extended = self._extender.extend(packet.sequence)
        if extended in self._held:
            self.stats.duplicates += 1
        elif self._written_seq is not None and extended <= self._written_seq:
            self.stats.late += 1
        else:
            self._held[extended] = _Held(packet, arrival)
        self._release(arrival - self.jitter_window)

    def finish(self) -> bytes:
        """Flush the jitter window and return all audio; the spill file is closed."""
        self._release(float("inf"))
        if self._pcm.closed:
            return b""
        self._pcm.seek(0)
        data = self._pcm.read()
        self._pcm.close()
        return data

    def close(self) -> None:
        """Drop the audio (a stream that is not written: encrypted, excluded by the rules)."""
        self._pcm.close()

    @property
    def samples(self) -> int:
        return self._pcm_bytes // 2

    def _release(self, before: float) -> None:
        for extended in sorted(self._held):
            held = self._held[extended]
            if held.arrival > before:
                break
            del self._held[extended]
            if self._written_seq is not None and extended > self._written_seq + 1:
                self.stats.lost += extended - self._written_seq - 1
            self._written_seq = extended
            self._place(held.packet, held.arrival)

    def _place(self, packet: RtpPacket, arrival: float) -> None:
        if packet.payload_type == self.telephone_event_pt:
            self._note_dtmf(packet)
            return
        if packet.payload_type == PT_CN:
            self.stats.comfort_noise += 1
            return
        decode = self._decoder(packet.payload_type)
        if decode is None:
            return
        offset = self._offset(packet.timestamp, arrival)
        pcm = decode(packet.payload)
        byte_offset = 2 * offset
        if byte_offset < self._pcm_bytes:
            self.stats.late += 1  # its timestamp slot is already written
            return
        self._pcm.write(bytes(byte_offset - self._pcm_bytes) + pcm)
        self._pcm_bytes = byte_offset + len(pcm)
        self.stats.placed += 1

    def _decoder(self, payload_type: int) -> Decoder | None:
        decode = self._decoders.get(payload_type)
        if decode is not None:
            return decode
        codec = self.codecs.get(payload_type)
        if codec is None or not codec.decodable:
            self.stats.undecodable += 1
            name = codec.name if codec else f"payload type {payload_type}"
            self.unrecordable = self.unrecordable or f"no decoder for {name}"
            return None
        decode = codec.make_decoder() if codec.make_decoder else codec.decode
        assert decode is not None
        self._decoders[payload_type] = decode
        return decode

    def _offset(self, timestamp: int, arrival: float) -> int:
        """Sample offset of ``timestamp``; re-anchors on capture time when the two clocks disagree."""
        if self.start_time is None:
            self.start_time = arrival
            self._anchor_ts, self._anchor_time = timestamp, arrival
            return 0
        offset = self._anchor_sample + signed32(timestamp - self._anchor_ts)
        by_clock = self._anchor_sample + (arrival - self._anchor_time) * SAMPLE_RATE
        lag = by_clock - offset
        self._lags.append(lag)
        if offset < 0 or abs(lag) > REANCHOR_THRESHOLD * SAMPLE_RATE:
            self.stats.reanchored += 1
            offset = max(int((arrival - self.start_time) * SAMPLE_RATE), self.samples)
        elif offset > self.samples and abs(drift := min(self._lags)) > DRIFT_LIMIT * SAMPLE_RATE:
            # A silence gap, and the sender's clock has drifted from ours past the limit: absorb
            # the drift into this gap (never into audio). Network jitter only ever delays a
            # packet, so the least recent lag is the clock difference, not one late packet's.
            self.stats.drift_corrections += 1
            offset = max(offset + int(drift), self.samples)
        else:
            return offset
        self._anchor_ts, self._anchor_sample, self._anchor_time = timestamp, offset, arrival
        self._lags.clear()
        return offset

    def _note_dtmf(self, packet: RtpPacket) -> None:
        parsed = parse_telephone_event(packet.payload)
        if parsed is None or packet.timestamp in self._dtmf_seen:
            return
        digit, end, duration = parsed
        if not end:
            return
        self._dtmf_seen.add(packet.timestamp)
        at = 0.0
        if self.start_time is not None:
            at = (self._anchor_sample + signed32(packet.timestamp - self._anchor_ts)) / SAMPLE_RATE
        self.dtmf.append(DtmfEvent(digit, round(max(at, 0.0), 3), duration * 1000 // SAMPLE_RATE))
