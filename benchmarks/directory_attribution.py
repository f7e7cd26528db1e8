"""What attributing calls to the directory costs: the call list's first page with the directory
join against the same query without it, on SQLite.

    .venv/bin/python benchmarks/directory_attribution.py          # 300,000 calls
    .venv/bin/python benchmarks/directory_attribution.py --quick  # 30,000 calls

Set-up (not timed): a migrated SQLite store in a temp dir; one tenant with calls over a year on
2,000 extensions and a directory of three periods per extension (6,000 entries), written with
the ingest path's row encoder. Timed: 100 runs each of the first page (50 calls, newest first)
unfiltered, and filtered on one extension, through ``TenantScope.list_calls_after`` (with the
join) as SQL alone against the same select without ``attribute_calls`` (the baseline), p50 and
p95 in milliseconds and the ratio of the p50s; and ``TenantScope.list_calls_after`` itself
(the join plus building ``Call`` objects).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datacenter.accounts.agents import enroll_agent
from datacenter.accounts.tenants import create_tenant
from datacenter.directory.entries import EntryInput, apply_entries
from datacenter.ingest.rows import call_rows
from datacenter.store.attribution import attribute_calls
from datacenter.store.bulk import append_rows
from datacenter.store.engine import open_store, upgrade, write_transaction
from datacenter.store.scoped import _SUMMARY_COLUMNS, CallFilter, TenantScope
from datacenter.store.tables.core import calls
from tests.factories import gen_outgoing_call

EXTENSIONS = 2000
RUNS = 100
YEAR_START = datetime(2025, 1, 1, tzinfo=UTC)


def seed(engine: sa.Engine, n_calls: int) -> int:
    rng = random.Random(20261206)
    with write_transaction(engine) as conn:
        tenant = create_tenant(conn, "bench", "Bench", "Europe/London")
        enroll_agent(conn, "bench", "edge-1")
        entries = [
            EntryInput(f"{1000 + e}", f"Person {e}-{p}", department=f"Dept {e % 40}",
                       valid_from=YEAR_START + timedelta(days=120 * p) - timedelta(days=1),
                       valid_to=None if p == 2 else YEAR_START + timedelta(days=120 * (p + 1)) - timedelta(days=1))
            for e in range(EXTENSIONS) for p in range(3)
        ]  # fmt: skip
        report = apply_entries(conn, tenant.tenant_id, entries, source="csv")
        assert not report.problems, report.problems[:3]
    step = 365 * 86400 / n_calls
    for first in range(0, n_calls, 10_000):
        records = [
            gen_outgoing_call(n, start=YEAR_START + timedelta(seconds=n * step),
                              extension=f"{1000 + rng.randrange(EXTENSIONS)}")
            for n in range(first, min(first + 10_000, n_calls))
        ]  # fmt: skip
        with write_transaction(engine) as conn:
            rows = call_rows(conn, tenant.tenant_id, records, "bench.ccb", datetime.now(UTC))
            append_rows(conn, calls, rows)
    return tenant.tenant_id


def run_sql(conn: sa.Connection, query: sa.Select[Any]) -> list[sa.Row[Any]]:
    return list(conn.execute(query).all())


def timed(run: Callable[[], object]) -> tuple[float, float]:
    run()  # warm the page cache and the statement cache
    samples = []
    for _ in range(RUNS):
        start = time.perf_counter()
        run()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    n_calls = 30_000 if parser.parse_args().quick else 300_000
    with tempfile.TemporaryDirectory() as tmp:
        engine = open_store(f"sqlite:///{tmp}/bench.db")
        upgrade(engine)
        started = time.perf_counter()
        tenant_id = seed(engine, n_calls)
        print(f"seeded {n_calls:,} calls, {EXTENSIONS * 3:,} directory entries "
              f"in {time.perf_counter() - started:.1f} s")  # fmt: skip
        with engine.connect() as conn:
            scope = TenantScope(conn, tenant_id)
            for label, call_filter in (("first page", CallFilter()),
                                       ("extension 1234", CallFilter(extension="1234"))):  # fmt: skip
                conditions = scope._conditions(call_filter)
                bare = (
                    sa.select(*(calls.c[name] for name in _SUMMARY_COLUMNS)).where(*conditions)
                    .order_by(calls.c.start_utc.desc(), calls.c.record_id.desc()).limit(50)
                )  # fmt: skip
                joined = attribute_calls(bare)
                listed = scope.list_calls_after(call_filter, limit=50)
                assert all(c.person for c in listed), "every call should be attributed"
                base50, base95 = timed(partial(run_sql, conn, bare))
                with50, with95 = timed(partial(run_sql, conn, joined))
                scope50, _ = timed(partial(scope.list_calls_after, call_filter, limit=50))
                print(f"{label:15s} bare SQL p50 {base50:5.2f} ms p95 {base95:5.2f} | "
                      f"joined SQL p50 {with50:5.2f} ms p95 {with95:5.2f} | ratio "
                      f"{with50 / base50:4.2f}x | TenantScope (rows to Call) p50 {scope50:5.2f} ms")  # fmt: skip
        engine.dispose()


if __name__ == "__main__":
    main()
