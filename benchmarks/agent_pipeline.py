"""Agent pipeline throughput: SMDR-sized units per second through journal → parser → spool.

    .venv/bin/python benchmarks/agent_pipeline.py [--quick] [--units N] [--chunk N]

Delivers N fictional call lines in deliveries of CHUNK units (as a TCP acquirer does when lines
arrive in bursts) through ``SourcePipeline.deliver``: journal append and fsync, parse (the test
driver's trivial parser, so the figure measures the pipeline, not a PBX format), and one spool
transaction per delivery with synchronous=FULL. Then seals everything into batches.

Baseline, measured in the same run: the same lines appended to a plain file with one ``fsync``
per delivery: the least any durable collector must do. The ratio says what the journal's framing,
the parse and the SQLite transaction cost on top. A PBX sends at most a few calls per second;
the agent must keep up with bursts of thousands (a PBX emptying its buffer after an outage).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge_agent.delivery.batches import Batcher
from edge_agent.journal import Journal
from edge_agent.pipeline import SourcePipeline
from edge_agent.sources.base import SourceContext
from edge_agent.spool import Spool
from tests.fixtures.fake_source import FakeParser, call_line

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def baseline(root: Path, lines: list[bytes], chunk: int) -> float:
    started = time.perf_counter()
    fd = os.open(root / "plain.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for i in range(0, len(lines), chunk):
            os.write(fd, b"".join(line + b"\n" for line in lines[i : i + chunk]))
            os.fsync(fd)
    finally:
        os.close(fd)
    return time.perf_counter() - started


def pipeline(root: Path, lines: list[bytes], chunk: int) -> tuple[float, float]:
    ctx = SourceContext(agent_id="bench", source_id="pbx-1", timezone=ZoneInfo("UTC"))
    with (
        Journal.open(root / "journal", source_id="pbx-1") as journal,
        Spool.open(root, quota_bytes=1 << 34) as spool,
    ):
        sink = SourcePipeline.open(source_id="pbx-1", parser=FakeParser(ctx), journal=journal,
                                   spool=spool, clock=lambda: T0)  # fmt: skip
        started = time.perf_counter()
        for i in range(0, len(lines), chunk):
            sink.deliver(lines[i : i + chunk], received_at=T0)
        delivered = time.perf_counter() - started
        batcher = Batcher(spool, state_dir=root, agent_id="bench", tenant="demo")
        started = time.perf_counter()
        batcher.seal_ready(T0 + timedelta(hours=1), force=True)
        sealed = time.perf_counter() - started
        assert spool.source_counts("pbx-1").spooled == len(lines)
    return delivered, sealed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small run of a few seconds")
    parser.add_argument("--units", type=int, default=50_000)
    parser.add_argument("--chunk", type=int, default=50)
    args = parser.parse_args()
    units = 5_000 if args.quick else args.units
    lines = [call_line(n) for n in range(1, units + 1)]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        base = baseline(root, lines, args.chunk)
        delivered, sealed = pipeline(root, lines, args.chunk)
    deliveries = -(-units // args.chunk)
    print(f"units: {units} in {deliveries} deliveries of {args.chunk}")
    print(f"baseline (plain append + fsync): {units / base:10.0f} units/s")
    print(f"pipeline (journal, parse, spool): {units / delivered:10.0f} units/s")
    print(f"sealing into batches:            {units / sealed:10.0f} records/s")
    print(f"ratio pipeline/baseline: {base / delivered:.2f}")


if __name__ == "__main__":
    main()
