"""The packet source: an AF_PACKET socket reading through a TPACKET_V3 memory-mapped ring.

The kernel fills fixed-size blocks of the ring with many frames each and hands a block over by
setting its status to TP_STATUS_USER; we walk every frame of the block, then give the block
back (TP_STATUS_KERNEL). One ``poll`` per block, not one ``recv`` per packet. The BPF filter
(bpf.py) is attached before the socket is bound, so no unfiltered frame is ever queued.

``PacketRing.statistics()`` reads PACKET_STATISTICS (the kernel resets it on each read; we keep
running totals): ``drops`` > 0 means frames the ring had no room for, i.e. gaps in recordings.

    ring = PacketRing.open("eth1", program=build_filter(...))
    for frame, at in ring.frames(timeout=0.5): ...
"""

from __future__ import annotations

import mmap
import select
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from edge_agent.capture import bpf
from shared.errors import SourceError

SOL_PACKET = 263
PACKET_RX_RING = 5
PACKET_STATISTICS = 6
PACKET_VERSION = 10
TPACKET_V3 = 2
ETH_P_ALL = 0x0003
TP_STATUS_KERNEL = 0
TP_STATUS_USER = 1
DEFAULT_BLOCK_SIZE = 1 << 20
DEFAULT_BLOCK_COUNT = 64  # 64 MB: ~3 s of 20,000 packets/s if the process is starved of CPU
FRAME_SIZE = 2048
BLOCK_TIMEOUT_MS = 50
REQ3 = struct.Struct("7I")
BLOCK_HEADER = struct.Struct("4I")  # version, offset_to_priv, block_status, num_pkts
FIRST_PACKET_AT = 16
PACKET_HEADER = struct.Struct("6IH")  # next_offset, sec, nsec, snaplen, len, status, mac
STATS_V3 = struct.Struct("3I")


@dataclass
class RingStatistics:
    """Running totals since the ring was opened."""

    packets: int = 0
    drops: int = 0
    freezes: int = 0


@dataclass(frozen=True)
class RingGeometry:
    block_size: int = DEFAULT_BLOCK_SIZE
    block_count: int = DEFAULT_BLOCK_COUNT

    @property
    def size(self) -> int:
        return self.block_size * self.block_count


class PacketRing:
    """A bound AF_PACKET socket and its mapped TPACKET_V3 ring (see module docstring)."""

    def __init__(self, sock: socket.socket, ring: mmap.mmap, geometry: RingGeometry) -> None:
        self.sock = sock
        self.ring = ring
        self.geometry = geometry
        self.totals = RingStatistics()
        self._block = 0
        self._poll = select.poll()
        self._poll.register(sock.fileno(), select.POLLIN | select.POLLERR)

    @classmethod
    def open(
        cls,
        interface: str,
        *,
        program: list[tuple[int, int, int, int]] | None = None,
        geometry: RingGeometry | None = None,
    ) -> PacketRing:
        geometry = geometry or RingGeometry()
        try:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        except PermissionError as exc:
            raise SourceError(
                "capture needs CAP_NET_RAW to open a raw packet socket: run the agent with "
                "AmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN (the packaged unit does)"
            ) from exc
        try:
            if program is not None:
                bpf.attach(sock, program)
            sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V3)
            request = REQ3.pack(
                geometry.block_size,
                geometry.block_count,
                FRAME_SIZE,
                geometry.size // FRAME_SIZE,
                BLOCK_TIMEOUT_MS,
                0,
                0,
            )
            sock.setsockopt(SOL_PACKET, PACKET_RX_RING, request)
            ring = mmap.mmap(
                sock.fileno(), geometry.size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE
            )
            sock.bind((interface, ETH_P_ALL))
        except OSError as exc:
            sock.close()
            raise SourceError(
                f"cannot capture on interface '{interface}': {exc.strerror or exc}"
            ) from exc
        return cls(sock, ring, geometry)

    def close(self) -> None:
        self.ring.close()
        self.sock.close()

    def statistics(self) -> RingStatistics:
        raw = self.sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, STATS_V3.size)
        packets, drops, freezes = STATS_V3.unpack(raw)
        self.totals.packets += packets
        self.totals.drops += drops
        self.totals.freezes += freezes
        return self.totals

    def frames(self, *, timeout: float) -> Iterator[tuple[bytes, float]]:
        """Every frame of the ready blocks, waiting up to ``timeout`` s for the first one."""
        base = self._block * self.geometry.block_size
        if not self._ready(base):
            self._poll.poll(int(timeout * 1000))
        while self._ready(base):
            yield from self._walk(base)
            struct.pack_into("I", self.ring, base + 8, TP_STATUS_KERNEL)
            self._block = (self._block + 1) % self.geometry.block_count
            base = self._block * self.geometry.block_size

    def _ready(self, base: int) -> bool:
        (status,) = struct.unpack_from("I", self.ring, base + 8)
        return bool(status & TP_STATUS_USER)

    def _walk(self, base: int) -> Iterator[tuple[bytes, float]]:
        ring = self.ring
        count = struct.unpack_from("I", ring, base + 12)[0]
        at = base + struct.unpack_from("I", ring, base + FIRST_PACKET_AT)[0]
        for _ in range(count):
            next_offset, sec, nsec, snaplen, _length, _status, mac = PACKET_HEADER.unpack_from(
                ring, at
            )
            yield ring[at + mac : at + mac + snaplen], sec + nsec * 1e-9
            at += next_offset
