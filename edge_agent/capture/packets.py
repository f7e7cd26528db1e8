"""Ethernet frames to UDP/TCP payloads: the layer between the packet ring and RTP/SIP.

``decode_frame(frame)`` strips 802.1Q/QinQ tags, reads IPv4 or IPv6 and returns the transport
payload with its addresses, or ``None`` for anything else (ARP, ICMP, IPv4 fragments after the
first, truncated frames). It never raises. IPv4 fragment reassembly is not done: a fragmented
SIP INVITE over UDP is lost to signalling (the media is still grouped by address pair).
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

ETH_HEADER = 14
ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
VLAN_TAGS = (0x8100, 0x88A8, 0x9100)
PROTO_TCP = 6
PROTO_UDP = 17
UDP = "udp"
TCP = "tcp"


@dataclass(frozen=True, slots=True)
class Datagram:
    """A transport payload and where it went."""

    transport: str
    src: str
    sport: int
    dst: str
    dport: int
    payload: bytes


def _ipv4(data: bytes, at: int) -> tuple[int, str, str, int] | None:
    if len(data) < at + 20 or data[at] >> 4 != 4:
        return None
    header_len = 4 * (data[at] & 0x0F)
    (fragment,) = struct.unpack_from("!H", data, at + 6)
    if fragment & 0x1FFF or header_len < 20:
        return None  # a later fragment: no transport header in it
    proto = data[at + 9]
    src = socket.inet_ntoa(data[at + 12 : at + 16])  # ipaddress objects cost 3x as much
    dst = socket.inet_ntoa(data[at + 16 : at + 20])
    (total,) = struct.unpack_from("!H", data, at + 2)
    return proto, src, dst, min(at + total, len(data)) if total else len(data)


def _ipv6(data: bytes, at: int) -> tuple[int, str, str, int] | None:
    if len(data) < at + 40 or data[at] >> 4 != 6:
        return None
    (length,) = struct.unpack_from("!H", data, at + 4)
    src = socket.inet_ntop(socket.AF_INET6, data[at + 8 : at + 24])
    dst = socket.inet_ntop(socket.AF_INET6, data[at + 24 : at + 40])
    return data[at + 6], src, dst, min(at + 40 + length, len(data))


def decode_frame(frame: bytes) -> Datagram | None:
    """The UDP or TCP payload of an Ethernet frame, or None (never raises)."""
    if len(frame) < ETH_HEADER:
        return None
    at = 12
    (ethertype,) = struct.unpack_from("!H", frame, at)
    while ethertype in VLAN_TAGS and len(frame) >= at + 6:
        at += 4
        (ethertype,) = struct.unpack_from("!H", frame, at)
    at += 2
    if ethertype == ETHERTYPE_IPV4:
        ip = _ipv4(frame, at)
        transport_at = at + 4 * (frame[at] & 0x0F) if ip else 0
    elif ethertype == ETHERTYPE_IPV6:
        ip = _ipv6(frame, at)
        transport_at = at + 40
    else:
        return None
    if ip is None:
        return None
    proto, src, dst, end = ip
    return _transport(frame, proto, src, dst, transport_at, end)


def _transport(frame: bytes, proto: int, src: str, dst: str, at: int, end: int) -> Datagram | None:
    if proto == PROTO_UDP and end >= at + 8:
        sport, dport = struct.unpack_from("!HH", frame, at)
        return Datagram(UDP, src, sport, dst, dport, bytes(frame[at + 8 : end]))
    if proto == PROTO_TCP and end >= at + 20:
        sport, dport = struct.unpack_from("!HH", frame, at)
        offset = 4 * (frame[at + 12] >> 4)
        if offset < 20 or at + offset > end:
            return None
        return Datagram(TCP, src, sport, dst, dport, bytes(frame[at + offset : end]))
    return None
