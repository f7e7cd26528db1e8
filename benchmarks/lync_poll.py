"""Rows/s of an LcsCDR poll through ODBC, against a bare SELECT of the same rows.

Starts a throwaway PostgreSQL cluster, loads N answered PSTN sessions (1,000,000; ``--quick``:
20,000) into a Skype for Business 2015 stand-in with the simulator, then measures in one run:

- baseline: the extraction query over the whole range through pyodbc + psqlODBC, rows fetched
  in pages and thrown away (the cost of the database and the driver alone);
- poll: ``LcsCdrPoller.poll`` over the same rows into a sink that only counts (hour slices,
  schema probe, typed JSON serialisation, change hashes, delivery pages, watermark updates);
- parse: the delivered units through ``LyncCdrParser`` (row JSON -> ICDR), for reference.

It prints rows/s for each and the poll/baseline ratio. Run:

    .venv/bin/python benchmarks/lync_poll.py [--quick] [--sessions N]
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pyodbc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge_agent.simulators.lcscdr import Generation, LcsCdrSimulator, Variant, create_schema
from edge_agent.sources.base import RawUnit, SourceContext
from edge_agent.sources.lync_cdr.driver import LcsCdrPoller, LyncOptions, query_params
from edge_agent.sources.lync_cdr.parser import LyncCdrParser
from edge_agent.sources.lync_cdr.schema import build_query, variant_from_columns

PG_BIN = Path("/usr/lib/postgresql/15/bin")
FULL, QUICK = 1_000_000, 20_000
START = datetime(2024, 1, 1)
SPACING_MS = 1000  # one session a second: an hour slice holds 3,600 rows
PARSE_SAMPLE = 200_000
CTX = SourceContext(agent_id="bench", source_id="lync", timezone=ZoneInfo("UTC"))


class CountingSink:
    """Keeps the first PARSE_SAMPLE units (for the parse figure) and counts the rest."""

    def __init__(self) -> None:
        self.units: list[bytes] = []
        self.state: dict[str, str] = {}
        self.delivered = 0

    def deliver(self, data: Sequence[bytes], *, received_at: datetime) -> None:
        self.delivered += len(data)
        self.units.extend(data[: max(0, PARSE_SAMPLE - len(self.units))])

    def report(self, *, ok: bool, message: str = "", records: int = 0) -> None:
        pass

    def get_state(self, key: str) -> str | None:
        return self.state.get(key)

    def set_state(self, key: str, value: str) -> None:
        self.state[key] = value

    def may_read(self) -> bool:
        return True


@contextlib.contextmanager
def cluster() -> Iterator[int]:
    base = Path(tempfile.mkdtemp(prefix="cc-bench-pg-"))
    shutil.chown(base, "postgres", "postgres")
    port = _free_port()

    def as_postgres(*args: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *args], check=True, capture_output=True)

    as_postgres(str(PG_BIN / "initdb"), "-D", str(base / "data"), "-A", "trust", "--no-sync",
                "-U", "postgres")  # fmt: skip
    as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(base / "data"), "-l", str(base / "log"), "-w",
                "-o", f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off", "start")  # fmt: skip
    try:
        yield port
    finally:
        as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(base / "data"), "-m", "immediate", "stop")
        shutil.rmtree(base, ignore_errors=True)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def baseline(odbc: str, end: datetime) -> tuple[int, float]:
    """The same query and rows through the same driver, fetched and discarded."""
    connection = pyodbc.connect(odbc, autocommit=True, timeout=10)
    try:
        cursor = connection.cursor()
        cursor.execute(
            "SELECT TABLE_NAME, COLUMN_NAME FROM INFORMATION_SCHEMA.COLUMNS "
            "WHERE TABLE_SCHEMA = 'dbo'"
        )
        query = build_query(variant_from_columns(cursor.fetchall()), include_internal=False)
        started = time.perf_counter()
        cursor.execute(query, *query_params(START - timedelta(hours=1), end))
        rows = 0
        while page := cursor.fetchmany(2000):
            rows += len(page)
        return rows, time.perf_counter() - started
    finally:
        connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK:,} sessions")
    parser.add_argument("--sessions", type=int, default=None)
    args = parser.parse_args()
    count = args.sessions or (QUICK if args.quick else FULL)
    with cluster() as port:
        subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-qc",
                        'CREATE DATABASE "LcsCDR"'], check=True)  # fmt: skip
        conninfo = f"postgresql://postgres@127.0.0.1:{port}/LcsCDR"
        variant = Variant(Generation.SFB_2015)
        create_schema(conninfo, variant)
        started = time.perf_counter()
        LcsCdrSimulator(conninfo, variant=variant).write_bulk(
            count, start=START, spacing_ms=SPACING_MS
        )
        load = time.perf_counter() - started
        subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d",
                        "LcsCDR", "-qc", "VACUUM ANALYZE"], check=True)  # fmt: skip
        # UseDeclareFetch: psqlODBC streams through a cursor instead of buffering the result.
        odbc = (
            "DRIVER={PostgreSQL Unicode};SERVER=127.0.0.1;"
            f"PORT={port};DATABASE=LcsCDR;UID=postgres;BoolsAsChar=0;CommLog=0;"
            "UseDeclareFetch=1;Fetch=2000;"
        )
        last = START + timedelta(milliseconds=(count - 1) * SPACING_MS)
        now = (last + timedelta(minutes=5)).replace(tzinfo=UTC)
        hours = int((now.replace(tzinfo=None) - START).total_seconds() // 3600) + 2
        options = LyncOptions.from_mapping(
            CTX, {"connection_string": odbc, "initial_lookback_hours": hours}
        )
        base_rows, base_seconds = baseline(odbc, now.replace(tzinfo=None))
        sink = CountingSink()
        started = time.perf_counter()
        result = LcsCdrPoller(options, clock=lambda: now).poll(sink)
        poll_seconds = time.perf_counter() - started
        sample = sink.units
        lync = LyncCdrParser(CTX)
        received = datetime.now(UTC)
        started = time.perf_counter()
        for seq, unit in enumerate(sample, start=1):
            lync.feed(RawUnit("lync", seq, received, unit))
        parse_seconds = time.perf_counter() - started
    assert base_rows == result.rows == sink.delivered == count, (base_rows, result.rows, count)
    base_rate, poll_rate = base_rows / base_seconds, result.rows / poll_seconds
    print(f"sessions loaded:          {count:>12,} ({load:.1f} s with COPY)")
    print(f"bare SELECT (baseline):   {base_rate:>12,.0f} rows/s ({base_seconds:.2f} s)")
    print(f"LcsCDR poll:              {poll_rate:>12,.0f} rows/s ({poll_seconds:.2f} s, "
          f"{result.delivered:,} delivered)")  # fmt: skip
    print(f"parse (row -> ICDR):      {len(sample) / parse_seconds:>12,.0f} rows/s "
          f"({len(sample):,} rows)")  # fmt: skip
    print(f"ratio poll / bare SELECT: {poll_rate / base_rate:>12.2f}")


if __name__ == "__main__":
    main()
