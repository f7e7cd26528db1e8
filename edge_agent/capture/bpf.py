"""A classic BPF program for "udp and (port ranges)" plus SIP ports, generated in Python.

The kernel runs it on every frame of the mirror interface before the frame is copied to the
packet ring, so only voice and signalling reach the capture process. It accepts:

- IPv4 or IPv6 (optionally behind one 802.1Q/802.1ad tag) carrying UDP whose source or
  destination port is in one of the media ranges or is a SIP port;
- TCP whose source or destination port is a SIP port (SIP over TCP).

IPv4 fragments after the first carry no ports: UDP ones are accepted (the capture reassembles
them, for SIP INVITEs larger than one packet), TCP ones refused. Programs are built by a small assembler with symbolic forward jumps; ``attach`` installs
one on a socket with SO_ATTACH_FILTER.
"""

from __future__ import annotations

import ctypes
import socket
import struct
from dataclasses import dataclass

from shared.errors import ConfigError

# opcodes (linux/filter.h)
LD_H_ABS = 0x28
LD_B_ABS = 0x30
LD_H_IND = 0x48
LDX_B_MSH = 0xB1
JEQ = 0x15
JGT = 0x25
JGE = 0x35
JSET = 0x45
RET = 0x06
JA = 0x05
SO_ATTACH_FILTER = 26
SNAPLEN = 0x40000
MAX_RANGES = 16
ETH_L3 = 14
VLAN_L3 = 18
ETHERTYPE_VLAN = (0x8100, 0x88A8)
ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD

PortRange = tuple[int, int]
Target = str | int


@dataclass(frozen=True)
class Instruction:
    code: int
    jt: Target
    jf: Target
    k: Target  # a label only for JA, whose 32-bit offset reaches past 255 instructions


class Assembler:
    """Instructions with symbolic forward jump targets, resolved to relative offsets."""

    def __init__(self) -> None:
        self.lines: list[Instruction | str] = []

    def op(self, code: int, k: Target = 0, jt: Target = 0, jf: Target = 0) -> None:
        self.lines.append(Instruction(code, jt, jf, k))

    def label(self, name: str) -> None:
        self.lines.append(name)

    def assemble(self) -> list[tuple[int, int, int, int]]:
        positions: dict[str, int] = {}
        program: list[Instruction] = []
        for line in self.lines:
            if isinstance(line, str):
                positions[line] = len(program)
            else:
                program.append(line)
        out = []
        for index, ins in enumerate(program):
            jumps = [
                t if isinstance(t, int) else positions[t] - index - 1 for t in (ins.jt, ins.jf)
            ]
            if not all(0 <= j <= 255 for j in jumps):
                raise ValueError("BPF jump out of range: too many port ranges")
            k = ins.k if isinstance(ins.k, int) else positions[ins.k] - index - 1
            out.append((ins.code, jumps[0], jumps[1], k))
        return out


def _port_tests(asm: Assembler, ranges: list[PortRange], miss: str, hit: str, tag: str) -> None:
    """A holds a port: jump to ``hit`` if it is in a range, else to ``miss``."""
    for n, (low, high) in enumerate(ranges):
        following = f"{tag}-{n + 1}" if n + 1 < len(ranges) else miss
        asm.op(JGE, low, 0, following)
        asm.op(JGT, high, following, hit)
        if n + 1 < len(ranges):
            asm.label(following)


def _transport(
    asm: Assembler, ranges: list[PortRange], port_at: int, tag: str, *, ind: bool
) -> None:
    """Test source then destination port; ports at ``port_at`` (+X when ``ind``). Each
    transport ends in its own accept and drop, so no conditional jump crosses a whole block."""
    load = LD_H_IND if ind else LD_H_ABS
    accept, drop = f"{tag}-accept", f"{tag}-drop"
    asm.op(load, port_at)
    _port_tests(asm, ranges, f"{tag}-dst", accept, f"{tag}-s")
    asm.label(f"{tag}-dst")
    asm.op(load, port_at + 2)
    _port_tests(asm, ranges, drop, accept, f"{tag}-d")
    asm.label(accept)
    asm.op(RET, SNAPLEN)
    asm.label(drop)
    asm.op(RET, 0)


def _ipv4(asm: Assembler, l3: int, udp: list[PortRange], tcp: list[PortRange], tag: str) -> None:
    asm.op(LD_B_ABS, l3 + 9)
    asm.op(JEQ, socket.IPPROTO_UDP, f"{tag}-udp", 0)
    asm.op(JEQ, socket.IPPROTO_TCP, f"{tag}-tcp", 0)
    asm.op(RET, 0)
    for proto, ranges in (("udp", udp), ("tcp", tcp)):
        asm.label(f"{tag}-{proto}")
        asm.op(LD_H_ABS, l3 + 6)
        # a later fragment has no ports: UDP ones pass (the capture reassembles a large SIP
        # INVITE from them); TCP ones are refused
        later = f"{tag}-udp-accept" if proto == "udp" else f"{tag}-tcp-drop"
        asm.op(JSET, 0x1FFF, later, 0)
        asm.op(LDX_B_MSH, l3)
        _transport(asm, ranges, l3, f"{tag}-{proto}", ind=True)


def _ipv6(asm: Assembler, l3: int, udp: list[PortRange], tcp: list[PortRange], tag: str) -> None:
    asm.op(LD_B_ABS, l3 + 6)
    asm.op(JEQ, socket.IPPROTO_UDP, f"{tag}-udp", 0)
    asm.op(JEQ, socket.IPPROTO_TCP, f"{tag}-tcp", 0)
    asm.op(RET, 0)
    for proto, ranges in (("udp", udp), ("tcp", tcp)):
        asm.label(f"{tag}-{proto}")
        _transport(asm, ranges, l3 + 40, f"{tag}-{proto}", ind=False)


def build_filter(
    media_ranges: list[PortRange], sip_ports: list[int]
) -> list[tuple[int, int, int, int]]:
    """The program for UDP in ``media_ranges`` or SIP ports, and TCP on SIP ports."""
    if not media_ranges and not sip_ports:
        raise ConfigError(
            "capture.rtp_ports", "no ports to capture", "set a range like 10000-20000"
        )
    if len(media_ranges) > MAX_RANGES:
        raise ConfigError("capture.rtp_ports", f"more than {MAX_RANGES} ranges", "merge ranges")
    udp = sorted(media_ranges) + [(p, p) for p in sip_ports]
    tcp = [(p, p) for p in sip_ports] or [(1, 0)]  # an empty range: no TCP port matches
    asm = Assembler()
    # dispatch on the ethertype; JA trampolines reach the blocks, however long they are
    asm.op(LD_H_ABS, 12)
    for vlan in ETHERTYPE_VLAN:
        asm.op(JEQ, vlan, "vlan", 0)
    asm.op(JEQ, ETHERTYPE_IPV4, "to-v4", 0)
    asm.op(JEQ, ETHERTYPE_IPV6, "to-v6", 0)
    asm.op(RET, 0)
    asm.label("vlan")
    asm.op(LD_H_ABS, 16)
    asm.op(JEQ, ETHERTYPE_IPV4, "to-qv4", 0)
    asm.op(JEQ, ETHERTYPE_IPV6, "to-qv6", 0)
    asm.op(RET, 0)
    blocks = (("v4", ETH_L3, _ipv4), ("v6", ETH_L3, _ipv6),
              ("qv4", VLAN_L3, _ipv4), ("qv6", VLAN_L3, _ipv6))  # fmt: skip
    for tag, _l3, _block in blocks:
        asm.label(f"to-{tag}")
        asm.op(JA, tag)
    for tag, l3, block in blocks:
        asm.label(tag)
        block(asm, l3, udp, tcp, tag)
    return asm.assemble()


def attach(sock: socket.socket, program: list[tuple[int, int, int, int]]) -> None:
    """Install ``program`` on ``sock`` (the kernel copies it; the buffer may go afterwards)."""
    code = b"".join(struct.pack("HBBI", *ins) for ins in program)
    buffer = ctypes.create_string_buffer(code, len(code))
    fprog = struct.pack("HL", len(program), ctypes.addressof(buffer))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
