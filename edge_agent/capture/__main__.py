"""Run the capture loop in the foreground: ``python -m edge_agent.capture IFACE DIR PORTS``.

For diagnostics on an appliance and for the namespace tests and the benchmark, which start it
inside a network namespace with ``ip netns exec``. PORTS is ``10000-20000[,30000-30100]``;
``--sip 5060,5068`` sets the signalling ports, ``--pause-api 127.0.0.1:8765`` serves the
compliance pause API. SIGTERM or SIGINT stops it after writing every
open call as a recording.
"""

from __future__ import annotations

import argparse
import multiprocessing
import signal
from pathlib import Path

from edge_agent.capture.bpf import PortRange
from edge_agent.capture.process import CaptureSettings, run_capture
from edge_agent.capture.ring import DEFAULT_BLOCK_COUNT, DEFAULT_BLOCK_SIZE, RingGeometry


def port_ranges(text: str) -> tuple[PortRange, ...]:
    ranges = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        ranges.append((int(low), int(high or low)))
    return tuple(ranges)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m edge_agent.capture")
    parser.add_argument("interface")
    parser.add_argument("directory", type=Path)
    parser.add_argument("ports", type=port_ranges)
    parser.add_argument("--sip", default="5060")
    parser.add_argument("--idle-timeout", type=float, default=10.0)
    parser.add_argument("--ring-mb", type=int, default=DEFAULT_BLOCK_COUNT)
    parser.add_argument("--pause-api", default="", help="HOST:PORT of the pause API (loopback)")
    args = parser.parse_args()
    settings = CaptureSettings(
        interface=args.interface,
        directory=args.directory,
        rtp_ports=args.ports,
        sip_ports=tuple(int(p) for p in args.sip.split(",") if p),
        idle_timeout=args.idle_timeout,
        geometry=RingGeometry(DEFAULT_BLOCK_SIZE, args.ring_mb),
        api_host=args.pause_api.rpartition(":")[0] or "127.0.0.1",
        api_port=int(args.pause_api.rpartition(":")[2]) if args.pause_api else None,
    )
    stop = multiprocessing.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    run_capture(settings, stop)


if __name__ == "__main__":
    main()
