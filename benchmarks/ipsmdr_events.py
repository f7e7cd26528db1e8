"""MCS IP SMDR call building: events per second through the per-CallID state machine.

    .venv/bin/python benchmarks/ipsmdr_events.py [--quick] [--calls N]

Generates N fictional calls with the simulator (every scenario: transfers, diversions, holds,
queues), interleaves their event lines as MCS sends them (calls overlap), and measures:

- baseline: framing the byte stream into lines (``LineFramer``) and decoding every line
  (``read_line``: fixed offsets, padding), i.e. what any reader of the feed must do;
- call building: the same framing, then ``IpSmdrParser.feed`` for every line (decoding plus
  the state machine, duplicate protection, and the ICDRs of finished calls).

The ratio (call building / baseline time) is what building calls costs on top of reading the
events. The figures run in one process on one core.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge_agent.simulators.mcs_ipsmdr import generate_calls, interleave
from edge_agent.sources.base import RawUnit, SourceContext
from edge_agent.sources.mcs_ipsmdr.calls import IpSmdrParser
from edge_agent.sources.mcs_ipsmdr.line import IpSmdrEvent, read_line
from edge_agent.sources.streams.lines import LineFramer
from shared.icdr import ICDR

RECEIVED = datetime(2026, 5, 14, 8, 0, tzinfo=UTC)
CHUNK = 4096  # bytes per simulated recv()


def stream_of(calls: int) -> tuple[bytes, int, int]:
    sims = generate_calls(count=calls, seed=11, pad="0")
    lines = interleave(sims)
    data = b"".join(line.encode("latin-1") + b"\r\n" for line in lines)
    segments = sum(len(call.segments) for call in sims)
    return data, len(lines), segments


def frame(data: bytes) -> list[bytes]:
    framer = LineFramer()
    units: list[bytes] = []
    for offset in range(0, len(data), CHUNK):
        units += framer.feed(data[offset : offset + CHUNK])
    return units


def baseline(data: bytes) -> tuple[float, int]:
    started = time.perf_counter()
    decoded = sum(
        isinstance(read_line(u.decode("latin-1"), pad="0"), IpSmdrEvent) for u in frame(data)
    )
    return time.perf_counter() - started, decoded


def build_calls(data: bytes) -> tuple[float, int]:
    ctx = SourceContext(agent_id="bench", source_id="mcs", timezone=ZoneInfo("Europe/London"))
    parser = IpSmdrParser(ctx, pad="0")
    started = time.perf_counter()
    records = 0
    for seq, unit in enumerate(frame(data), start=1):
        received = RECEIVED + timedelta(milliseconds=seq)
        records += sum(
            isinstance(r, ICDR) for r in parser.feed(RawUnit("mcs", seq, received, unit))
        )
    return time.perf_counter() - started, records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 calls (a few seconds)")
    parser.add_argument("--calls", type=int, default=50_000, help="calls to generate")
    args = parser.parse_args()
    calls = 2_000 if args.quick else args.calls
    data, events, segments = stream_of(calls)
    base_seconds, decoded = baseline(data)
    build_seconds, records = build_calls(data)
    assert decoded == events, "every generated line must decode"
    assert records == segments, f"expected {segments} ICDRs, built {records}"
    print(f"IP SMDR: {calls} calls, {events} events, {records} ICDRs (segments)")
    print(
        f"  baseline (frame + decode): {events / base_seconds:12,.0f} events/s  ({base_seconds:.2f} s)"
    )
    print(
        f"  call building:             {events / build_seconds:12,.0f} events/s  ({build_seconds:.2f} s)"
    )
    print(f"  ratio call building / baseline time: {build_seconds / base_seconds:.2f}x")


if __name__ == "__main__":
    main()
