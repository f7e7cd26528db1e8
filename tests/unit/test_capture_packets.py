"""Ethernet frames to datagrams: VLAN tags, IPv4, IPv6, TCP, fragments, garbage."""

from __future__ import annotations

import struct

from hypothesis import given
from hypothesis import strategies as st

from edge_agent.capture.packets import FRAGMENT_TIMEOUT, TCP, UDP, FrameDecoder, decode_frame

MACS = b"\x02" * 6 + b"\x04" * 6


def ipv4(proto: int, body: bytes, *, fragment: int = 0, ident: int = 1) -> bytes:
    header = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(body), ident, fragment, 64, proto, 0,
        bytes([198, 18, 0, 1]), bytes([198, 18, 0, 2]),
    )  # fmt: skip
    return header + body


def udp(sport: int, dport: int, payload: bytes) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def test_udp_over_ipv4_with_qinq_tags() -> None:
    frame = MACS + b"\x88\xa8\x00\x0a\x81\x00\x00\x14\x08\x00" + ipv4(17, udp(4000, 5060, b"hi"))
    got = decode_frame(frame + b"\0" * 6)  # Ethernet padding past the IP total length
    assert got is not None
    assert (got.transport, got.src, got.sport, got.dst, got.dport, got.payload) == (
        UDP, "198.18.0.1", 4000, "198.18.0.2", 5060, b"hi",
    )  # fmt: skip


def test_tcp_and_ipv6() -> None:
    tcp = struct.pack("!HHIIBBHHH", 5060, 1234, 0, 0, 0x50, 0, 0, 0, 0) + b"SIP"
    got = decode_frame(MACS + b"\x08\x00" + ipv4(6, tcp))
    assert got is not None and (got.transport, got.payload) == (TCP, b"SIP")
    body = udp(1, 2, b"v6")
    v6 = struct.pack("!IHBB", 0x60000000, len(body), 17, 64) + b"\x20" * 16 + b"\x30" * 16 + body
    got = decode_frame(MACS + b"\x86\xdd" + v6)
    assert got is not None and got.payload == b"v6" and got.dst.startswith("3030:")


def test_later_fragments_and_other_protocols_are_skipped() -> None:
    assert decode_frame(MACS + b"\x08\x00" + ipv4(17, b"x" * 20, fragment=0x0010)) is None
    assert decode_frame(MACS + b"\x08\x06" + b"\0" * 28) is None  # ARP
    assert decode_frame(MACS + b"\x08\x00" + ipv4(1, b"\0" * 8)) is None  # ICMP


@given(st.binary(max_size=120))
def test_never_crashes(tail: bytes) -> None:
    for ethertype in (b"\x08\x00", b"\x86\xdd", b"\x81\x00"):
        decode_frame(MACS + ethertype + tail)


MORE = 0x2000


def fragments(datagram: bytes, size: int, *, ident: int = 9) -> list[bytes]:
    """``datagram`` (a UDP header and payload) cut into IPv4 fragments of ``size`` bytes."""
    pieces = [datagram[i : i + size] for i in range(0, len(datagram), size)]
    return [
        MACS + b"\x08\x00"
        + ipv4(17, piece, ident=ident, fragment=(i * size // 8) | (MORE if i < len(pieces) - 1 else 0))
        for i, piece in enumerate(pieces)
    ]  # fmt: skip


INVITE = b"INVITE sip:2001@pbx SIP/2.0\r\n" + b"a=rtpmap:0 PCMU/8000\r\n" * 150


def test_fragments_are_reassembled_in_any_order() -> None:
    frames = fragments(udp(5060, 5060, INVITE), 1480)
    assert len(frames) == 3
    decoder = FrameDecoder()
    assert decode_frame(frames[0]) is None  # the stateless decoder refuses a part
    results = [decoder.decode(frame, 1.0) for frame in (frames[2], frames[0], frames[0], frames[1])]
    assert results[:3] == [None, None, None]
    whole = results[3]
    assert whole is not None and whole.payload == INVITE and whole.dport == 5060
    assert decoder.reassembled == 1


def test_incomplete_datagrams_expire_and_overlaps_never_complete() -> None:
    decoder = FrameDecoder()
    frames = fragments(udp(5060, 5060, INVITE), 1480, ident=1)
    decoder.decode(frames[0], 0.0)
    decoder.decode(fragments(udp(5060, 5060, INVITE), 1480, ident=2)[0], FRAGMENT_TIMEOUT + 1)
    assert decoder.expired == 1
    assert decoder.decode(frames[1], FRAGMENT_TIMEOUT + 1) is None  # its first part is gone
    overlapping = fragments(udp(5060, 5060, INVITE), 1000, ident=3)
    decoder.decode(overlapping[0], 5.0)
    assert decoder.decode(fragments(udp(5060, 5060, INVITE), 1480, ident=3)[1], 5.0) is None


@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, 0x3FFF), st.binary(max_size=64)), max_size=20
    )
)
def test_reassembly_never_crashes(parts: list[tuple[int, int, bytes]]) -> None:
    decoder = FrameDecoder()
    for n, (ident, fragment, body) in enumerate(parts):
        decoder.decode(MACS + b"\x08\x00" + ipv4(17, body, ident=ident, fragment=fragment), n * 0.5)
