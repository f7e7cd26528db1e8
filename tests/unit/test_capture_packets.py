"""Ethernet frames to datagrams: VLAN tags, IPv4, IPv6, TCP, fragments, garbage."""

from __future__ import annotations

import struct

from hypothesis import given
from hypothesis import strategies as st

from edge_agent.capture.packets import TCP, UDP, decode_frame

MACS = b"\x02" * 6 + b"\x04" * 6


def ipv4(proto: int, body: bytes, *, fragment: int = 0) -> bytes:
    header = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(body), 1, fragment, 64, proto, 0,
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
