"""Report queries from the rollups against the same reports as bare SQL over the raw calls.

    .venv/bin/python benchmarks/reports.py [--quick] [--backend sqlite|postgres|both] [--runs N]
                                           [--raw-runs N] [--url STORE_URL]

Loads one big tenant (5,000,000 calls over a year; --quick: 300,000 over six months) and three
other tenants with a quarter of its calls each, straight into ``calls`` and ``call_costs`` (COPY
on PostgreSQL, executemany on SQLite: ingest's bulk writer), builds the rollups with
``datacenter.store.rollups.rebuild`` (what `datacenter rollups rebuild` runs), ANALYZEs, then
times, for the big tenant's busiest month:

- the monthly summary by extension and the destination-class summary, from the rollups
  (``reports.summaries``, ``source="auto"``) and as the bare aggregate over the raw calls
  (``source="raw"``: ``calls`` LEFT JOIN ``call_costs`` grouped in SQL), same rows checked;
- the month's summary by site (through the directory: ``DIRECTORY_CHANGES`` extensions change
  site on 15 March, so that day of theirs is read raw), against the same summary over the raw
  calls with the directory join;
- the call-detail first page of that month (raw calls; no rollup involved), for reference;
- the tenant dashboard (``reports.dashboard``) for 20 March: today and yesterday, 1-20 March and
  1-20 February, each as calls, talk, cost, unanswered inbound, cost by class and by site, from
  the rollups (site through the directory: ``DIRECTORY_CHANGES`` extensions change hands on
  15 March at midday, so their calls of that day are read raw) against the same figures as
  bare SQL over the raw calls (``source="raw"``), same figures checked. Target: p95 <= 100 ms
  on PostgreSQL.

Prints load and rebuild times, p50/p95 per query and the raw/rollup ratio. Target (issue #13):
p95 <= 300 ms on PostgreSQL for every report. Needs PostgreSQL 15 (scripts/install.sh) for the
postgres backend; it runs a throwaway cluster (tests/fixtures/postgres.py). ``--url`` uses a
store of your own instead: the first run loads it, later runs reuse what it holds.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datacenter.accounts.agents import enroll_agent
from datacenter.accounts.tenants import Tenant, create_tenant, get_tenant
from datacenter.ingest.rows import CALL_COLUMNS, call_values
from datacenter.reports.dashboard import dashboard
from datacenter.reports.detail import DetailRequest, detail_query
from datacenter.reports.summaries import SummaryRequest, summary, summary_query
from datacenter.store.bulk import append_rows, json_text, time_encoder
from datacenter.store.engine import open_store, upgrade, write_transaction
from datacenter.store.rollups import rebuild
from datacenter.store.tables.core import calls
from datacenter.store.tables.directory import directory_entries
from datacenter.store.tables.rating import call_costs
from shared.icdr import ICDR, Completion, Direction, make_record_id

ZONE = "Europe/London"
EXTENSIONS = 500  # extensions 2000-2499, each held by one person at one of SITES
SITES = ("London", "Leeds", "Bristol", "Glasgow", "Cardiff")
DIRECTORY_CHANGES = 10  # extensions that change hands in the dashboard's month
CHANGED_AT = datetime(2025, 3, 15, 12, 0, tzinfo=UTC)
DASHBOARD_DAY = date(2025, 3, 20)
START = datetime(2025, 1, 1, tzinfo=UTC)
CHUNK = 50_000
CLASSES = ("local", "national", "mobile", "international", "toll-free", "premium")
DIRECTIONS = (
    Direction.OUT.value,
    Direction.OUT.value,
    Direction.IN.value,
    Direction.INTERNAL.value,
)


def _template(conn: sa.Connection, tenant_id: int) -> list[Any]:
    start = START
    rec = ICDR(
        record_id="x", agent_id="edge-1", source_id="pbx", source_kind="mitel_smdr", start=start,
        answer=start + timedelta(seconds=4), end=start + timedelta(seconds=64), ring_seconds=4,
        talk_seconds=60, direction=Direction.OUT, calling="2000", called="01632960000",
        dialled_digits="901632960000", extension="2000", trunk="T1", answered=True,
        completion=Completion.ANSWERED, raw="bench", parser_version="bench-1",
    )  # fmt: skip
    encode = time_encoder(conn)
    return list(
        call_values(
            tenant_id, rec, "bench.ccb", encode(start), encode_time=encode, encode_json=json_text
        )
    )


def _rows(
    conn: sa.Connection, tenant_id: int, count: int, days: int
) -> Iterator[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]]:
    """(calls rows, call_costs rows) in chunks; about 70% of calls carry a cost."""
    encode = time_encoder(conn)
    template = _template(conn, tenant_id)
    at = {name: CALL_COLUMNS.index(name) for name in CALL_COLUMNS}
    cost_names = [c.name for c in call_costs.columns]
    step = days * 86_400 / count
    rated_at = encode(START)
    call_chunk: list[tuple[Any, ...]] = []
    cost_chunk: list[tuple[Any, ...]] = []
    for n in range(count):
        start = START + timedelta(seconds=int(n * step))
        talk = (n * 7919) % 600
        answered = n % 5 != 0
        direction = DIRECTIONS[n % 4]
        row = template.copy()
        rid = make_record_id("bench", str(tenant_id), str(n))
        row[at["record_id"]] = rid
        row[at["start_utc"]] = encode(start)
        row[at["answer_utc"]] = encode(start + timedelta(seconds=4)) if answered else None
        row[at["end_utc"]] = encode(start + timedelta(seconds=4 + talk))
        row[at["talk_seconds"]] = talk if answered else 0
        row[at["answered"]] = answered
        row[at["direction"]] = direction
        row[at["extension"]] = str(2000 + (n * 31) % 500)
        row[at["trunk"]] = f"T{n % 8 + 1}"
        call_chunk.append(tuple(row))
        if direction == "out" and answered:
            values = {
                "tenant_id": tenant_id, "record_id": rid, "cost_minor": talk * 3 // 60 + 2,
                "currency": "GBP", "decimals": 2, "number_class": CLASSES[n % 6],
                "e164": f"+4416329{n % 100000:05d}", "carrier": ("britline", "northtel")[n % 2],
                "destination": "UK", "prefix": "441", "tariff_version": "v1",
                "billed_seconds": (talk + 59) // 60 * 60, "bands": json_text(["day"]),
                "zero_reason": None, "explanation": json_text({}), "engine_version": "bench",
                "rated_at": rated_at, "start_utc": encode(start),
            }  # fmt: skip
            cost_chunk.append(tuple(values[name] for name in cost_names))
        if len(call_chunk) >= CHUNK:
            yield call_chunk, cost_chunk
            call_chunk, cost_chunk = [], []
    if call_chunk:
        yield call_chunk, cost_chunk


def load(engine: sa.Engine, sizes: list[int], days: int) -> list[Tenant]:
    tenants = []
    for position, count in enumerate(sizes):
        with write_transaction(engine) as conn:
            tenant = create_tenant(conn, f"t{position}", f"T{position}", ZONE)
            enroll_agent(conn, tenant.slug, "edge-1")
        with write_transaction(engine) as conn:
            for chunk, (call_rows, cost_rows) in enumerate(
                _rows(conn, tenant.tenant_id, count, days)
            ):
                append_rows(conn, calls, call_rows)
                if chunk == 0 and conn.dialect.name == "postgresql":
                    # Statistics first, or each call_costs foreign-key check may scan the
                    # call keys (see ingest's _analyze_keys_if_unsized).
                    conn.exec_driver_sql("ANALYZE call_keys")
                append_rows(conn, call_costs, cost_rows)
        tenants.append(tenant)
    return tenants


def add_directory(engine: sa.Engine, tenant_id: int) -> None:
    """Every extension held from the start; the first ``DIRECTORY_CHANGES`` change hands (and
    site) at ``CHANGED_AT``."""
    rows = []
    for n in range(EXTENSIONS):
        changes = n < DIRECTORY_CHANGES
        row = {
            "tenant_id": tenant_id, "extension": str(2000 + n), "person": f"Person {n}",
            "department": f"Dept {n % 12}", "cost_centre": f"CC{n % 7}",
            "site": SITES[n % len(SITES)], "valid_from": START,
            "valid_to": CHANGED_AT if changes else None, "source": "manual", "updated_at": START,
        }  # fmt: skip
        rows.append({**row, "entry_id": uuid.uuid4().hex})
        if changes:
            later = {**row, "person": f"New {n}", "site": SITES[(n + 1) % len(SITES)],
                     "valid_from": CHANGED_AT, "valid_to": None}  # fmt: skip
            rows.append({**later, "entry_id": uuid.uuid4().hex})
    with write_transaction(engine) as conn:
        conn.execute(directory_entries.insert(), rows)


def timed_calls(
    engine: sa.Engine, work: Callable[[sa.Connection], Any], runs: int
) -> tuple[list[float], Any]:
    times, result = [], None
    with engine.connect() as conn:
        for _ in range(runs):
            began = time.perf_counter()
            result = work(conn)
            times.append(time.perf_counter() - began)
    return times, result


def timed(engine: sa.Engine, query: sa.Select[Any], runs: int) -> tuple[list[float], list[Any]]:
    times, rows = [], []
    with engine.connect() as conn:
        for _ in range(runs):
            began = time.perf_counter()
            rows = list(conn.execute(query))
            times.append(time.perf_counter() - began)
    return times, rows


def p(times: list[float], q: float) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def build(engine: sa.Engine, backend: str, quick: bool) -> list[Tenant]:
    """Load the tenants and their calls, the directory, then rebuild the rollups and ANALYZE."""
    big = 300_000 if quick else 5_000_000
    days = 182 if quick else 365
    print(f"[{backend}] loading {big:,} calls for one tenant + 3 x {big // 4:,} for others ...")
    began = time.perf_counter()
    tenants = load(engine, [big, big // 4, big // 4, big // 4], days)
    add_directory(engine, tenants[0].tenant_id)
    loaded = time.perf_counter() - began
    print(f"[{backend}] loaded {big * 7 // 4:,} calls in {loaded:.1f} s "
          f"({big * 7 / 4 / loaded:,.0f} calls/s)")  # fmt: skip
    began = time.perf_counter()
    for tenant in tenants:
        with write_transaction(engine) as conn:
            rebuild(conn, tenant.tenant_id, ZoneInfo(ZONE))
    rebuilt = time.perf_counter() - began
    print(f"[{backend}] rollups rebuilt in {rebuilt:.1f} s ({big * 7 / 4 / rebuilt:,.0f} calls/s)")
    with engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
    return tenants


def loaded_tenants(engine: sa.Engine) -> list[Tenant]:
    """The tenants an earlier ``--url`` run loaded (t0 first), or none."""
    with engine.connect() as conn:
        found = [get_tenant(conn, f"t{n}") for n in range(4)]
    return [t for t in found if t is not None]


def bench(engine: sa.Engine, backend: str, quick: bool, runs: int, raw_runs: int) -> None:
    tenants = loaded_tenants(engine)
    if tenants:
        print(f"[{backend}] reusing the {len(tenants)} tenants already loaded")
    else:
        tenants = build(engine, backend, quick)
    tenant = tenants[0]
    month = (date(2025, 3, 1), date(2025, 3, 31))
    for by in ("extension", "destination_class"):
        request = SummaryRequest(tenant.tenant_id, ZoneInfo(ZONE), by, *month)
        fast, fast_rows = timed(engine, summary_query(request), runs)
        slow, slow_rows = timed(engine, summary_query(request, source="raw"), raw_runs)
        assert [tuple(r) for r in fast_rows] == [tuple(r) for r in slow_rows], by
        print(f"[{backend}] month by {by:<17} rollups p50 {p(fast, .5):7.1f} ms "
              f"p95 {p(fast, .95):7.1f} ms | raw SQL p50 {p(slow, .5):7.1f} ms "
              f"p95 {p(slow, .95):7.1f} ms | raw/rollups x{p(slow, .5) / p(fast, .5):.1f} "
              f"({len(fast_rows)} rows)")  # fmt: skip
    site = SummaryRequest(tenant.tenant_id, ZoneInfo(ZONE), "site", *month)
    fast, fast_rows = timed_calls(engine, lambda conn: summary(conn, site), runs)
    slow, slow_rows = timed_calls(engine, lambda conn: summary(conn, site, source="raw"), raw_runs)
    assert fast_rows == slow_rows, "the summary by site differs from the raw calls'"
    print(f"[{backend}] month by site (directory)   rollups p50 {p(fast, .5):7.1f} ms "
          f"p95 {p(fast, .95):7.1f} ms | raw SQL p50 {p(slow, .5):7.1f} ms "
          f"p95 {p(slow, .95):7.1f} ms | raw/rollups x{p(slow, .5) / p(fast, .5):.1f} "
          f"({len(fast_rows)} rows)")  # fmt: skip
    detail = detail_query(DetailRequest(tenant.tenant_id, ZoneInfo(ZONE), *month))
    page, _ = timed(engine, detail, runs)
    print(f"[{backend}] month call detail first page p50 {p(page, .5):.1f} ms "
          f"p95 {p(page, .95):.1f} ms (raw calls)")  # fmt: skip
    zone = ZoneInfo(ZONE)

    def board(source: Any) -> Callable[[sa.Connection], Any]:
        return lambda conn: dashboard(
            conn, tenant.tenant_id, zone, DASHBOARD_DAY, None, source=source
        )

    fast, fast_board = timed_calls(engine, board("auto"), runs)
    slow, slow_board = timed_calls(engine, board("raw"), raw_runs)
    assert fast_board == slow_board, "the dashboard's figures differ from the raw calls'"
    print(f"[{backend}] dashboard {DASHBOARD_DAY} rollups p50 {p(fast, .5):7.1f} ms "
          f"p95 {p(fast, .95):7.1f} ms | raw SQL p50 {p(slow, .5):7.1f} ms "
          f"p95 {p(slow, .95):7.1f} ms | raw/rollups x{p(slow, .5) / p(fast, .5):.1f} "
          f"({fast_board.month.current.calls:,} calls this month)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="300,000 calls instead of 5,000,000")
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--runs", type=int, default=0, help="timed runs per query (20 / 50)")
    parser.add_argument(
        "--raw-runs",
        type=int,
        default=0,
        help="timed runs of each bare-SQL baseline (default: --runs; 25 s each at full size)",
    )
    parser.add_argument(
        "--url",
        help="a store URL to use instead of a throwaway one; loaded on the first run, reused by "
        "the next (to measure a change without loading millions of calls again)",
    )
    args = parser.parse_args()
    runs = args.runs or (20 if args.quick else 50)
    raw_runs = args.raw_runs or runs
    if args.url:
        engine = open_store(args.url)
        upgrade(engine)
        bench(engine, engine.dialect.name, args.quick, runs, raw_runs)
        engine.dispose()
        return
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as folder:
            engine = open_store(f"sqlite:///{folder}/store.db")
            upgrade(engine)
            bench(engine, "sqlite", args.quick, runs, raw_runs)
            engine.dispose()
    if args.backend in ("postgres", "both"):
        with _cluster() as url:
            engine = open_store(url)
            upgrade(engine)
            bench(engine, "postgres", args.quick, runs, raw_runs)
            engine.dispose()


@contextmanager
def _cluster() -> Iterator[str]:
    from tests.fixtures.postgres import (  # only when benchmarking PostgreSQL
        server_memory,
        throwaway_cluster,
    )

    with throwaway_cluster(server_memory()) as cluster:
        yield cluster.url(cluster.create_database("bench"))


if __name__ == "__main__":
    main()
