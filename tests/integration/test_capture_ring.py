"""The packet ring and its BPF filter on the real kernel, over loopback (needs root)."""

from __future__ import annotations

import os
import socket
import time

import pytest

from edge_agent.capture.bpf import build_filter
from edge_agent.capture.packets import TCP, decode_frame
from edge_agent.capture.ring import PacketRing, RingGeometry

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="AF_PACKET needs root")

MEDIA = (47100, 47109)
SIP = 47160


def free_tcp_listener() -> socket.socket:
    listener = socket.socket()
    listener.bind(("127.0.0.1", SIP))
    listener.listen()
    return listener


def collect(
    ring: PacketRing, marker: bytes, want: int, *, budget: float = 10.0
) -> set[tuple[str, int, bytes]]:
    """Distinct frames carrying ``marker`` until ``want`` have come (or the budget is spent).

    On loopback every packet is seen twice (outgoing and incoming), hence a set.
    """
    seen: set[tuple[str, int, bytes]] = set()
    deadline = time.monotonic() + budget
    while len(seen) < want and time.monotonic() < deadline:
        for frame, _at in ring.frames(timeout=0.2):
            got = decode_frame(bytes(frame))
            if got is not None and marker in got.payload:
                seen.add((got.transport, got.dport, got.payload))
    return seen


def test_filter_passes_media_ranges_and_sip_only() -> None:
    program = build_filter([MEDIA], [SIP])
    ring = PacketRing.open("lo", program=program, geometry=RingGeometry(1 << 16, 8))
    marker = os.urandom(8).hex().encode()
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener = free_tcp_listener()
    try:
        for port in (MEDIA[0] - 1, MEDIA[0], 47105, MEDIA[1], MEDIA[1] + 1, SIP, 47200):
            sender.sendto(marker + b"-%d" % port, ("127.0.0.1", port))
        client = socket.create_connection(("127.0.0.1", SIP), timeout=5)
        client.sendall(marker + b"-tcp")
        client.close()
        seen = collect(ring, marker, want=5)
        udp_ports = sorted(port for transport, port, _ in seen if transport != TCP)
        assert udp_ports == [MEDIA[0], 47105, MEDIA[1], SIP]
        assert any(transport == TCP and payload.endswith(b"-tcp") for transport, _, payload in seen)
        stats = ring.statistics()
        assert stats.packets >= len(seen) and stats.drops == 0
    finally:
        sender.close()
        listener.close()
        ring.close()


def test_a_small_ring_that_overflows_reports_drops() -> None:
    ring = PacketRing.open("lo", program=build_filter([MEDIA], []), geometry=RingGeometry(4096, 2))
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for _ in range(400):  # nobody reads: two 4 kB blocks fill after a few frames
            sender.sendto(b"x" * 200, ("127.0.0.1", MEDIA[0]))
        stats = ring.statistics()
        assert stats.drops > 0
        assert stats.packets >= 400  # tp_packets counts every frame the filter passed
    finally:
        sender.close()
        ring.close()


def test_the_kernel_accepts_the_largest_program() -> None:
    program = build_filter([(n * 10, n * 10 + 5) for n in range(1000, 1016)], [5060, 5068])
    ring = PacketRing.open("lo", program=program, geometry=RingGeometry(4096, 2))
    ring.close()
    assert len(program) > 255  # only reachable through the JA trampolines
