"""RTP parsing and stream reassembly over crafted packets: loss, reordering, duplicates, wrap."""

from __future__ import annotations

import array
import math
import struct
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.capture import g711
from edge_agent.capture.rtp import (
    PT_CN,
    PT_G722,
    SPILL_AFTER_BYTES,
    SequenceExtender,
    StreamAssembler,
    parse_rtp,
    parse_telephone_event,
)
from tests.capture_factories import FRAME, dominant_frequency, rtp, tone

VOICE = b"\x00" * FRAME  # µ-law 0x00 decodes to -32124: easy to tell from silence


def samples(pcm: bytes) -> list[int]:
    out = array.array("h")
    out.frombytes(pcm)
    return list(out)


def assemble(packets: list[tuple[bytes, float]], **kwargs: int) -> StreamAssembler:
    stream = StreamAssembler(**kwargs)  # type: ignore[arg-type]
    for data, at in packets:
        packet = parse_rtp(data)
        assert packet is not None
        stream.push(packet, at)
    return stream


def in_order(count: int, *, seq0: int = 100, ts0: int = 5000) -> list[tuple[bytes, float]]:
    return [(rtp(seq=seq0 + i, ts=ts0 + FRAME * i, payload=VOICE), i * 0.02) for i in range(count)]


def test_header_with_csrc_extension_and_padding() -> None:
    data = rtp(
        seq=7, ts=99, pt=8, csrc=2, extension_words=3, padding=4, payload=b"abc", marker=True
    )
    packet = parse_rtp(data)
    assert packet is not None
    assert (packet.sequence, packet.timestamp, packet.payload_type, packet.marker) == (
        7,
        99,
        8,
        True,
    )
    assert packet.payload == b"abc"


def test_rejects_what_is_not_rtp() -> None:
    assert parse_rtp(b"\x00\x01" + b"\0" * 20) is None  # STUN
    assert parse_rtp(rtp(seq=1, ts=1, pt=72)) is None  # RTCP multiplexed (PT 200)
    assert parse_rtp(b"\x80\x00\x00") is None  # truncated
    bad_padding = bytearray(rtp(seq=1, ts=1, payload=b"xy", padding=2))
    bad_padding[-1] = 40
    assert parse_rtp(bytes(bad_padding)) is None
    assert parse_rtp(rtp(seq=1, ts=1, extension_words=5)[:20]) is None


def test_sequence_extension_across_the_wrap() -> None:
    extender = SequenceExtender(65534)
    assert [extender.extend(s) for s in (65535, 0, 1, 65535, 2)] == [
        65535,
        65536,
        65537,
        65535,
        65538,
    ]


def test_in_order_stream_is_decoded_and_placed() -> None:
    stream = assemble(in_order(50))
    pcm = stream.finish()
    assert len(pcm) == 2 * 50 * FRAME
    assert set(samples(pcm)) == {-32124}
    assert stream.stats.placed == 50 and stream.stats.lost == 0


def test_loss_leaves_a_gap_of_the_right_length() -> None:
    packets = [p for i, p in enumerate(in_order(20)) if i not in (5, 6, 7)]
    stream = assemble(packets)
    values = samples(stream.finish())
    assert len(values) == 20 * FRAME
    assert values[5 * FRAME : 8 * FRAME] == [0] * 3 * FRAME
    assert values[8 * FRAME] == -32124
    assert stream.stats.lost == 3


def test_reordering_within_the_window_is_repaired() -> None:
    packets = in_order(10)
    packets[3], packets[4] = (packets[4][0], packets[3][1]), (packets[3][0], packets[4][1])
    stream = assemble(packets)
    assert stream.stats.late == 0 and stream.stats.lost == 0
    assert len(stream.finish()) == 2 * 10 * FRAME


def test_a_packet_later_than_the_window_is_counted_late() -> None:
    packets = in_order(30)
    late = packets.pop(2)
    packets.append((late[0], 1.0))  # arrives 0.96 s after its slot, window is 0.2 s
    stream = assemble(packets)
    stream.finish()
    assert stream.stats.late == 1
    assert stream.stats.placed == 29


def test_duplicates_are_dropped() -> None:
    packets = in_order(10)
    packets.insert(5, packets[4])
    stream = assemble(packets)
    assert len(stream.finish()) == 2 * 10 * FRAME
    assert stream.stats.duplicates == 1


def test_wrap_around_of_sequence_and_timestamp() -> None:
    packets = in_order(40, seq0=65520, ts0=2**32 - 10 * FRAME)
    stream = assemble(packets)
    assert len(stream.finish()) == 2 * 40 * FRAME
    assert stream.stats.lost == 0 and stream.stats.reanchored == 0


def test_comfort_noise_becomes_silence_until_voice_resumes() -> None:
    packets = in_order(5)
    packets.append((rtp(seq=105, ts=5000 + 5 * FRAME, pt=PT_CN, payload=b"\x40"), 0.1))
    packets.append((rtp(seq=106, ts=5000 + 50 * FRAME, payload=VOICE, marker=True), 1.0))
    stream = assemble(packets)
    values = samples(stream.finish())
    assert len(values) == 51 * FRAME
    assert values[5 * FRAME : 50 * FRAME] == [0] * 45 * FRAME
    assert stream.stats.comfort_noise == 1


def test_dtmf_events_are_noted_once_not_played() -> None:
    packets = in_order(5)
    event = struct.pack("!BBH", 5, 0x80 | 10, 800)
    for n in range(3):  # the end packet is sent three times
        packets.append((rtp(seq=105 + n, ts=5000 + 5 * FRAME, pt=101, payload=event), 0.1))
    stream = assemble(packets)
    assert len(stream.finish()) == 2 * 5 * FRAME
    assert [(e.digit, e.duration_ms) for e in stream.dtmf] == [("5", 100)]
    assert parse_telephone_event(b"\x01") is None


def test_unknown_codec_is_reported_not_written() -> None:
    packets = [(rtp(seq=i, ts=FRAME * i, pt=96, payload=b"\x12" * 30), i * 0.02) for i in range(5)]
    stream = assemble(packets)
    assert stream.finish() == b""
    assert stream.unrecordable == "no decoder for payload type 96"


def test_timestamp_jump_reanchors_on_capture_time() -> None:
    packets = in_order(10)
    packets += [
        (rtp(seq=110 + i, ts=9_000_000 + FRAME * i, payload=VOICE), 0.2 + i * 0.02)
        for i in range(10)
    ]
    stream = assemble(packets)
    assert len(stream.finish()) == 2 * 20 * FRAME
    assert stream.stats.reanchored == 1


def test_a_tone_survives_decode() -> None:
    payload = tone(1000, 1.0)
    packets = [
        (rtp(seq=i, ts=i * FRAME, payload=payload[i * FRAME : (i + 1) * FRAME]), i * 0.02)
        for i in range(50)
    ]
    assert abs(dominant_frequency(assemble(packets).finish()) - 1000) < 5
    assert g711.decode_ulaw(payload[:FRAME]) != bytes(2 * FRAME)


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_parse_never_crashes(data: bytes) -> None:
    packet = parse_rtp(data)
    if packet is not None:
        assert len(packet.payload) <= len(data) - 12


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 65535),
            st.integers(0, 2**32 - 1),
            st.sampled_from([0, 8, 13, 101, 96]),
            st.binary(max_size=200),
            st.floats(0, 100),
        ),
        max_size=40,
    )
)
def test_assembler_never_crashes(packets: list[tuple[int, int, int, bytes, float]]) -> None:
    stream = StreamAssembler()
    for seq, ts, pt, payload, at in sorted(packets, key=lambda p: p[4]):
        packet = parse_rtp(rtp(seq=seq, ts=ts, pt=pt, payload=payload))
        assert packet is not None
        stream.push(packet, at)
    pcm = stream.finish()
    assert len(pcm) % 2 == 0


def test_g722_is_decoded_per_stream_at_8_khz() -> None:
    import G722

    pcm = array.array(
        "h", [round(8000 * math.sin(2 * math.pi * 1000 * n / 8000)) for n in range(8000)]
    )
    encoded = G722.G722(8000, 64000).encode(pcm)  # 8 kHz input mode: one byte per sample
    packets = [
        (
            rtp(seq=i, ts=i * FRAME, pt=PT_G722, payload=encoded[i * FRAME : (i + 1) * FRAME]),
            i * 0.02,
        )
        for i in range(50)
    ]
    stream = assemble(packets)
    out = stream.finish()
    assert len(out) == 2 * 8000 and stream.unrecordable is None
    assert abs(dominant_frequency(out) - 1000) < 5


def test_long_streams_spill_to_an_unlinked_file(tmp_path: Path) -> None:
    seconds = 40  # beyond SPILL_AFTER_BYTES (32 s)
    stream = StreamAssembler(spill_dir=tmp_path)
    for i in range(seconds * 50):
        packet = parse_rtp(rtp(seq=i, ts=i * FRAME, payload=VOICE))
        assert packet is not None
        stream.push(packet, i * 0.02)
    assert stream._pcm._rolled  # type: ignore[attr-defined]  # on disk now, not in memory
    assert list(tmp_path.iterdir()) == []  # unlinked: a crash leaves nothing behind
    pcm = stream.finish()
    assert len(pcm) == 2 * seconds * 8000 > SPILL_AFTER_BYTES
    assert set(samples(pcm)) == {-32124}


def test_clock_drift_is_absorbed_at_the_next_silence_gap() -> None:
    # the sender's clock runs 1 % fast: 10 s of its timestamps take 10.1 s of capture time
    talk = [(rtp(seq=i, ts=i * FRAME, payload=VOICE), i * 0.0202) for i in range(500)]
    resume = 500 + 50  # one second of silence (DTX), then speech again
    after = [
        (
            rtp(seq=500 + i, ts=(resume + i) * FRAME, payload=VOICE, marker=i == 0),
            (resume + i) * 0.0202,
        )
        for i in range(50)
    ]
    stream = assemble(talk + after)
    values = samples(stream.finish())
    assert stream.stats.drift_corrections == 1 and stream.stats.reanchored == 0
    first_after_gap = next(n for n in range(500 * FRAME, len(values)) if values[n])
    by_capture_time = round(resume * 0.0202 * 8000)
    # within 20 ms of where our clock puts it (the estimate trails by the last half second)
    assert abs(first_after_gap - by_capture_time) < 160
    assert values[: 500 * FRAME].count(0) == 0  # the audio itself was not touched


def test_small_jitter_is_not_mistaken_for_drift() -> None:
    jittery = [
        (rtp(seq=i, ts=i * FRAME, payload=VOICE), i * 0.02 + (0.03 if i % 7 == 0 else 0))
        for i in range(300)
    ]
    gap = [(rtp(seq=300, ts=400 * FRAME, payload=VOICE, marker=True), 400 * 0.02)]
    stream = assemble(jittery + gap)
    assert len(stream.finish()) == 2 * 401 * FRAME
    assert stream.stats.drift_corrections == 0


def test_one_late_packet_after_a_loss_is_not_taken_for_drift() -> None:
    packets = in_order(100)
    del packets[50]  # lost...
    packets[50] = (packets[50][0], packets[50][1] + 0.15)  # ...and the next one 150 ms late
    stream = assemble(packets)
    values = samples(stream.finish())
    assert stream.stats.drift_corrections == 0
    assert len(values) == 100 * FRAME and values[50 * FRAME : 51 * FRAME] == [0] * FRAME
