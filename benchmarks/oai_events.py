"""System OAI call building: events per second through the per-Call_ID state machine.

    .venv/bin/python benchmarks/oai_events.py [--quick] [--calls N]

Generates N fictional calls with the OAI simulator (inbound, outbound, held, unanswered, busy,
transferred) plus one non-call frame in ten (unknown codes, system events), encodes them as the
PBX sends them (4-byte length prefix), and measures:

- baseline: cutting the byte stream into frames (``FrameDecoder``) and decoding every frame
  (``decode_event``: pipe-aware field splitting, sequence detection, layout table);
- call building: the same framing, then ``OaiParser.feed`` for every frame (decoding plus the
  state machine, resync de-duplication and the ICDRs of cleared calls).

The ratio (call building / baseline time) is what building calls costs on top of decoding.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge_agent.simulators.mivo250_oai import generate_calls, interleave
from edge_agent.sources.base import RawUnit, SourceContext
from edge_agent.sources.mivo250_oai.calls import OaiParser
from edge_agent.sources.mivo250_oai.wire import OaiEvent, decode_event
from edge_agent.sources.mivo250_socket.framing import (
    MAX_OAI_FRAME,
    MIN_OAI_FRAME,
    FrameDecoder,
    encode_frame,
)
from shared.icdr import ICDR

BASE = datetime(2026, 5, 14, 8, 0, tzinfo=UTC)
CHUNK = 4096


def stream_of(calls: int) -> tuple[bytes, list[float], int]:
    sims = generate_calls(count=calls, seed=11)
    timed = interleave(sims, noise_every=10)
    data = b"".join(encode_frame(payload) for _, payload in timed)
    return data, [offset for offset, _ in timed], len(sims)


def frame(data: bytes) -> list[bytes]:
    decoder = FrameDecoder(min_frame=MIN_OAI_FRAME, max_frame=MAX_OAI_FRAME, service="OAI")
    frames: list[bytes] = []
    for offset in range(0, len(data), CHUNK):
        frames += decoder.feed(data[offset : offset + CHUNK])
    return frames


def baseline(data: bytes) -> tuple[float, int]:
    started = time.perf_counter()
    decoded = sum(isinstance(decode_event(f), OaiEvent) for f in frame(data))
    return time.perf_counter() - started, decoded


def build_calls(data: bytes, offsets: list[float]) -> tuple[float, int]:
    ctx = SourceContext(agent_id="bench", source_id="oai", timezone=ZoneInfo("America/Chicago"))
    parser = OaiParser(ctx)
    started = time.perf_counter()
    records = 0
    for seq, (payload, offset) in enumerate(zip(frame(data), offsets, strict=True), start=1):
        unit = RawUnit("oai", seq, BASE + timedelta(seconds=offset), payload)
        records += sum(isinstance(r, ICDR) for r in parser.feed(unit))
    return time.perf_counter() - started, records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 calls (a few seconds)")
    parser.add_argument("--calls", type=int, default=50_000, help="calls to generate")
    args = parser.parse_args()
    calls = 2_000 if args.quick else args.calls
    data, offsets, expected = stream_of(calls)
    events = len(offsets)
    base_seconds, decoded = baseline(data)
    build_seconds, records = build_calls(data, offsets)
    assert decoded == events, "every generated frame must decode"
    assert records == expected, f"expected {expected} ICDRs, built {records}"
    print(f"OAI: {expected} calls, {events} frames, {records} ICDRs")
    print(
        f"  baseline (frame + decode): {events / base_seconds:12,.0f} events/s  ({base_seconds:.2f} s)"
    )
    print(
        f"  call building:             {events / build_seconds:12,.0f} events/s  ({build_seconds:.2f} s)"
    )
    print(f"  ratio call building / baseline time: {build_seconds / base_seconds:.2f}x")


if __name__ == "__main__":
    main()
