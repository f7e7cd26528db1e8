"""Ethernet frames to UDP/TCP payloads: the layer between the packet ring and RTP/SIP.

``decode_frame(frame)`` strips 802.1Q/QinQ tags, reads IPv4 or IPv6 and returns the transport
payload with its addresses, or ``None`` for anything else (ARP, ICMP, IPv4 fragments, truncated
frames). ``FrameDecoder`` does the same and also puts IPv4 fragments back together, so a SIP
INVITE too large for one UDP packet is still read. Neither ever raises. IPv6 fragments are not
reassembled.
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


@dataclass(frozen=True, slots=True)
class _Fragment:
    """Where an IPv4 packet sits in its datagram (offset 0 and no more-fragments: whole)."""

    ident: int
    offset: int
    more: bool

    @property
    def whole(self) -> bool:
        return self.offset == 0 and not self.more


def _ipv4(data: bytes, at: int) -> tuple[int, str, str, int, _Fragment] | None:
    if len(data) < at + 20 or data[at] >> 4 != 4 or 4 * (data[at] & 0x0F) < 20:
        return None
    total, ident, fragment = struct.unpack_from("!HHH", data, at + 2)
    proto = data[at + 9]
    src = socket.inet_ntoa(data[at + 12 : at + 16])  # ipaddress objects cost 3x as much
    dst = socket.inet_ntoa(data[at + 16 : at + 20])
    end = min(at + total, len(data)) if total else len(data)
    return proto, src, dst, end, _Fragment(ident, 8 * (fragment & 0x1FFF), bool(fragment & 0x2000))


def _ipv6(data: bytes, at: int) -> tuple[int, str, str, int] | None:
    if len(data) < at + 40 or data[at] >> 4 != 6:
        return None
    (length,) = struct.unpack_from("!H", data, at + 4)
    src = socket.inet_ntop(socket.AF_INET6, data[at + 8 : at + 24])
    dst = socket.inet_ntop(socket.AF_INET6, data[at + 24 : at + 40])
    return data[at + 6], src, dst, min(at + 40 + length, len(data))


@dataclass(frozen=True, slots=True)
class _Packet:
    """An IP packet's transport part (possibly one fragment of it)."""

    proto: int
    src: str
    dst: str
    body: bytes
    fragment: _Fragment | None  # None for IPv6 (its fragments are not reassembled)


def _ip_packet(frame: bytes) -> _Packet | None:
    if len(frame) < ETH_HEADER:
        return None
    at = 12
    (ethertype,) = struct.unpack_from("!H", frame, at)
    while ethertype in VLAN_TAGS and len(frame) >= at + 6:
        at += 4
        (ethertype,) = struct.unpack_from("!H", frame, at)
    at += 2
    if ethertype == ETHERTYPE_IPV4:
        v4 = _ipv4(frame, at)
        if v4 is None:
            return None
        proto, src, dst, end, fragment = v4
        return _Packet(proto, src, dst, frame[at + 4 * (frame[at] & 0x0F) : end], fragment)
    if ethertype == ETHERTYPE_IPV6:
        v6 = _ipv6(frame, at)
        if v6 is None:
            return None
        proto, src, dst, end = v6
        return _Packet(proto, src, dst, frame[at + 40 : end], None)
    return None


def decode_frame(frame: bytes) -> Datagram | None:
    """The UDP or TCP payload of an unfragmented Ethernet frame, or None (never raises)."""
    packet = _ip_packet(frame)
    if packet is None or (packet.fragment is not None and not packet.fragment.whole):
        return None
    return _transport(packet.body, packet.proto, packet.src, packet.dst)


FRAGMENT_TIMEOUT = 2.0
MAX_PENDING_DATAGRAMS = 256
MAX_DATAGRAM = 65535

FragmentKey = tuple[str, str, int, int]


@dataclass
class _Pending:
    first_seen: float
    pieces: dict[int, bytes]
    total: int | None = None  # known once the last fragment (MF clear) is in


class FrameDecoder:
    """``decode_frame`` plus IPv4 fragment reassembly (a large SIP INVITE over UDP).

    Fragments are kept per (src, dst, protocol, id) for FRAGMENT_TIMEOUT seconds of capture
    time, at most MAX_PENDING_DATAGRAMS datagrams at once (the oldest is dropped first).
    Overlapping or inconsistent fragments never raise: the datagram is simply not completed.
    """

    def __init__(self) -> None:
        self._pending: dict[FragmentKey, _Pending] = {}
        self.reassembled = 0
        self.expired = 0

    def decode(self, frame: bytes, at: float) -> Datagram | None:
        packet = _ip_packet(frame)
        if packet is None:
            return None
        if packet.fragment is None or packet.fragment.whole:
            return _transport(packet.body, packet.proto, packet.src, packet.dst)
        body = self._add(packet, packet.fragment, at)
        return None if body is None else _transport(body, packet.proto, packet.src, packet.dst)

    def _add(self, packet: _Packet, fragment: _Fragment, at: float) -> bytes | None:
        self._expire(at)
        key = (packet.src, packet.dst, packet.proto, fragment.ident)
        pending = self._pending.get(key)
        if pending is None:
            if len(self._pending) >= MAX_PENDING_DATAGRAMS:
                del self._pending[next(iter(self._pending))]
                self.expired += 1
            pending = self._pending[key] = _Pending(at, {})
        pending.pieces[fragment.offset] = bytes(packet.body)
        if not fragment.more:
            pending.total = fragment.offset + len(packet.body)
        body = _joined(pending)
        if body is not None:
            del self._pending[key]
            self.reassembled += 1
        return body

    def _expire(self, now: float) -> None:
        while self._pending:
            key, oldest = next(iter(self._pending.items()))
            if now - oldest.first_seen <= FRAGMENT_TIMEOUT:
                return
            del self._pending[key]
            self.expired += 1


def _joined(pending: _Pending) -> bytes | None:
    """The whole datagram if the pieces cover 0..total exactly once in order, else None."""
    if pending.total is None or pending.total > MAX_DATAGRAM:
        return None
    out = bytearray()
    for offset in sorted(pending.pieces):
        if offset != len(out):
            return None  # a hole (not here yet) or an overlap (never completes)
        out.extend(pending.pieces[offset])
    return bytes(out) if len(out) == pending.total else None


def _transport(body: bytes, proto: int, src: str, dst: str) -> Datagram | None:
    if proto == PROTO_UDP and len(body) >= 8:
        sport, dport, length = struct.unpack_from("!HHH", body)
        end = length if 8 <= length <= len(body) else len(body)
        return Datagram(UDP, src, sport, dst, dport, bytes(body[8:end]))
    if proto == PROTO_TCP and len(body) >= 20:
        sport, dport = struct.unpack_from("!HH", body)
        offset = 4 * (body[12] >> 4)
        if offset < 20 or offset > len(body):
            return None
        return Datagram(TCP, src, sport, dst, dport, bytes(body[offset:]))
    return None
