"""The generated BPF program, run by a small classic-BPF interpreter over crafted frames.

The kernel test (tests/integration/test_capture_ring.py) runs it for real on loopback; this one
reaches what loopback cannot send: VLAN tags, IPv6, fragments, ARP.
"""

from __future__ import annotations

import struct

import pytest

from edge_agent.capture import bpf
from shared.errors import ConfigError
from tests.unit.test_capture_packets import MACS, ipv4, udp

PROGRAM = bpf.build_filter([(10000, 10999), (30000, 30000)], [5060])


def run(program: list[tuple[int, int, int, int]], packet: bytes) -> int:
    """Classic BPF semantics for the opcodes bpf.py emits; an out-of-bounds load returns 0."""
    a = x = pc = 0
    while True:
        code, jt, jf, k = program[pc]
        pc += 1
        if code == bpf.JA:
            pc += k
        elif code in (bpf.LD_H_ABS, bpf.LD_B_ABS, bpf.LD_H_IND):
            at = k + (x if code == bpf.LD_H_IND else 0)
            size = 1 if code == bpf.LD_B_ABS else 2
            if at + size > len(packet):
                return 0
            a = int.from_bytes(packet[at : at + size], "big")
        elif code == bpf.LDX_B_MSH:
            if k >= len(packet):
                return 0
            x = 4 * (packet[k] & 0x0F)
        elif code == bpf.RET:
            return k
        else:
            taken = {bpf.JEQ: a == k, bpf.JGT: a > k, bpf.JGE: a >= k, bpf.JSET: bool(a & k)}[code]
            pc += jt if taken else jf


def tcp(sport: int, dport: int) -> bytes:
    return struct.pack("!HHIIBBHHH", sport, dport, 0, 0, 0x50, 0, 0, 0, 0)


def ipv6(next_header: int, body: bytes) -> bytes:
    return struct.pack("!IHBB", 0x60000000, len(body), next_header, 64) + b"\x20" * 32 + body


def eth(ethertype: int, payload: bytes, *, vlan: int | None = None) -> bytes:
    tag = struct.pack("!HH", vlan, 100) if vlan else b""
    return MACS + tag + struct.pack("!H", ethertype) + payload


@pytest.mark.parametrize(
    ("frame", "accepted"),
    [
        (eth(0x0800, ipv4(17, udp(40000, 10000, b"rtp"))), True),
        (eth(0x0800, ipv4(17, udp(10999, 40000, b"rtp"))), True),  # source port in range
        (eth(0x0800, ipv4(17, udp(40000, 11000, b"rtp"))), False),
        (eth(0x0800, ipv4(17, udp(40000, 9999, b"rtp"))), False),
        (eth(0x0800, ipv4(17, udp(40000, 30000, b"rtp"))), True),
        (eth(0x0800, ipv4(17, udp(40000, 5060, b"SIP"))), True),
        (eth(0x0800, ipv4(6, tcp(40000, 5060))), True),
        (eth(0x0800, ipv4(6, tcp(40000, 10000))), False),  # TCP only for SIP
        (eth(0x0800, ipv4(17, b"later fragment", fragment=0x0010)), True),  # reassembled
        (eth(0x0800, ipv4(6, b"later fragment" * 2, fragment=0x0010)), False),
        (eth(0x0800, ipv4(1, b"\0" * 8)), False),
        (eth(0x0806, b"\0" * 28), False),
        (eth(0x86DD, ipv6(17, udp(40000, 10500, b"rtp"))), True),
        (eth(0x86DD, ipv6(17, udp(40000, 12000, b"rtp"))), False),
        (eth(0x86DD, ipv6(6, tcp(5060, 40000))), True),
        (eth(0x0800, ipv4(17, udp(40000, 10000, b"rtp")), vlan=0x8100), True),
        (eth(0x0800, ipv4(17, udp(40000, 20000, b"rtp")), vlan=0x8100), False),
        (eth(0x86DD, ipv6(17, udp(40000, 10001, b"rtp")), vlan=0x88A8), True),
        (MACS + b"\x08", False),  # truncated
    ],
)
def test_filter(frame: bytes, accepted: bool) -> None:
    assert bool(run(PROGRAM, frame)) is accepted


def test_ip_options_move_the_ports() -> None:
    packet = bytearray(ipv4(17, b"\0" * 4 + udp(40000, 10000, b"x")))
    packet[0] = 0x46  # IHL 6: four bytes of options before UDP
    assert run(PROGRAM, eth(0x0800, bytes(packet)))


def test_without_sip_ports_no_tcp_passes() -> None:
    program = bpf.build_filter([(10000, 10999)], [])
    assert not run(program, eth(0x0800, ipv4(6, tcp(10000, 10000))))
    assert run(program, eth(0x0800, ipv4(17, udp(1, 10000, b""))))


def test_limits() -> None:
    with pytest.raises(ConfigError, match=r"capture\.rtp_ports"):
        bpf.build_filter([], [])
    with pytest.raises(ConfigError, match=r"capture\.rtp_ports"):
        bpf.build_filter([(n, n) for n in range(1000, 1017)], [])
    assert len(bpf.build_filter([(n, n) for n in range(1000, 1016)], [5060, 5068])) < 4096
