"""What a cost alarm pass costs: one batch of new calls against every rule, on a big tenant.

    .venv/bin/python benchmarks/cost_alarms.py [--quick] [--calls N] [--batch N] [--repeat N]
                                               [--backend sqlite|postgres|both]

A fresh store (SQLite in a temp dir, or a throwaway PostgreSQL cluster) with one
tenant (Europe/London) holding N rated calls (200,000; 20,000 with --quick) over the previous
eight weeks on 500 extensions, its rollups rebuilt; then a batch of --batch (1,000) new calls
in the current hour, with a rules document holding all seven kinds. Each repeat puts the marks
back before the batch and runs the evaluation (``CostAlarmRunner.evaluate``: load the changed
calls, every rule, record the findings, move the marks); the first repeat raises the alarms,
the others find them again (the idempotent path the overlap takes every pass). The baseline,
measured in the same run, is the bare SQL that reads the batch (calls joined to their costs
after the mark). Prints p50 and p95 of each and the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datacenter.accounts.tenants import create_tenant
from datacenter.cost_alarms.runner import CostAlarmRunner, CostRunReport
from datacenter.cost_alarms.store import Marks, list_alarms, save_marks, save_rules
from datacenter.health.notify import Mailer
from datacenter.ingest.rows import CALL_COLUMNS, call_values
from datacenter.settings import SmtpSettings
from datacenter.store.bulk import append_rows, encoded_rows
from datacenter.store.engine import open_store, upgrade, write_transaction
from datacenter.store.rollups import rebuild
from datacenter.store.tables.core import calls
from datacenter.store.tables.rating import call_costs
from tests.factories import gen_outgoing_call

EXTENSIONS = 500
ZONE = ZoneInfo("Europe/London")
NOW = datetime(2026, 3, 4, 10, 30, tzinfo=UTC)  # a Wednesday
HISTORY = timedelta(weeks=8)
RULES = """
[[rules]]
kind = "call_cost"
over = "5.00"
[[rules]]
kind = "extension_day_cost"
over = "20"
[[rules]]
kind = "tenant_day_cost"
over = "100"
[[rules]]
kind = "off_hours"
[[rules]]
kind = "long_call"
minutes = 60
[[rules]]
kind = "volume"
min_calls = 50
[[rules]]
kind = "short_calls"
"""
NO_MAIL = SmtpSettings(host="", port=25, tls="none", ca_file=None, username="",
                       password_file=None, sender="bench@localhost")  # fmt: skip


def _rows(tenant_id: int, first: int, count: int, start: datetime, step: timedelta,
          ingested_at: datetime) -> tuple[list[dict[str, object]], list[dict[str, object]]]:  # fmt: skip
    template = dict(zip(CALL_COLUMNS, call_values(tenant_id, gen_outgoing_call(0), "f",
                                                  ingested_at), strict=True))  # fmt: skip
    call_rows, cost_rows = [], []
    for i in range(first, first + count):
        begins = start + (i - first) * step
        talk = 3 if i % 50 == 0 else 30 + i % 4000
        record_id = f"bench-{i}"
        call_rows.append(template | {
            "record_id": record_id, "start_utc": begins, "answer_utc": begins,
            "end_utc": begins + timedelta(seconds=talk), "talk_seconds": talk,
            "extension": str(2000 + i % EXTENSIONS), "dialled_digits": f"0163296{i % 5000:04d}",
            "ingested_at": ingested_at,
        })  # fmt: skip
        premium = i % 97 == 0
        cost_rows.append({
            "tenant_id": tenant_id, "record_id": record_id, "cost_minor": 700 if premium else 5,
            "currency": "GBP", "decimals": 2, "number_class": "premium" if premium else "national",
            "e164": f"44163296{i % 5000:04d}", "carrier": "britline", "destination": "UK",
            "prefix": "441", "tariff_version": "v1", "billed_seconds": talk, "bands": [],
            "zero_reason": None, "explanation": {}, "engine_version": "bench",
            "rated_at": ingested_at, "start_utc": begins,
        })  # fmt: skip
    return call_rows, cost_rows


def seed(engine: sa.Engine, n_calls: int, batch: int) -> tuple[int, datetime]:
    """The tenant, its history and rollups, its rules; the new batch; the mark before it."""
    with write_transaction(engine) as conn:
        tenant_id = create_tenant(conn, "acme", "Acme", "Europe/London").tenant_id
        step = HISTORY / n_calls
        for first in range(0, n_calls, 10_000):
            count = min(10_000, n_calls - first)
            start = NOW - HISTORY + first * step
            call_rows, cost_rows = _rows(tenant_id, first, count, start, step, NOW - HISTORY)
            append_rows(conn, calls, encoded_rows(conn, calls, call_rows))  # with call_keys
            conn.execute(call_costs.insert(), cost_rows)
        rebuild(conn, tenant_id, ZONE)
        mark = NOW - timedelta(hours=1)
        save_rules(conn, tenant_id, RULES, actor="bench", now=mark)
        call_rows, cost_rows = _rows(tenant_id, n_calls, batch, NOW - timedelta(minutes=25),
                                     timedelta(minutes=20) / batch, NOW)  # fmt: skip
        append_rows(conn, calls, encoded_rows(conn, calls, call_rows))
        conn.execute(call_costs.insert(), cost_rows)
        rebuild(conn, tenant_id, ZONE)
    return tenant_id, mark


def _percentiles(times: list[float]) -> tuple[float, float]:
    times = sorted(times)
    return statistics.median(times), times[max(0, int(len(times) * 0.95) - 1)]


def bench(engine: sa.Engine, n_calls: int, batch: int, repeat: int) -> None:
    upgrade(engine)
    began = time.perf_counter()
    tenant_id, mark = seed(engine, n_calls, batch)
    print(f"{engine.dialect.name}: seeded {n_calls:,} calls + a batch of {batch:,} in "
          f"{time.perf_counter() - began:.1f} s")  # fmt: skip
    runner = CostAlarmRunner(engine, mailer=Mailer(NO_MAIL))
    bare = (
        sa.select(calls.c.record_id, calls.c.start_utc, call_costs.c.cost_minor)
        .select_from(calls.outerjoin(call_costs, sa.and_(
            call_costs.c.tenant_id == calls.c.tenant_id,
            call_costs.c.record_id == calls.c.record_id)))
        .where(calls.c.tenant_id == tenant_id, calls.c.ingested_at > mark)
    )  # fmt: skip
    baseline, passes = [], []
    report = CostRunReport()
    for _ in range(repeat):
        with write_transaction(engine) as conn:
            save_marks(conn, tenant_id, Marks(mark, mark), now=mark)
        began = time.perf_counter()
        with engine.connect() as conn:
            assert len(conn.execute(bare).all()) == batch
        baseline.append((time.perf_counter() - began) * 1000)
        began = time.perf_counter()
        runner.evaluate(tenant_id, now=NOW, report=report)
        passes.append((time.perf_counter() - began) * 1000)
    with engine.connect() as conn:
        alarms = list_alarms(conn, tenant_id, limit=10_000)
    kinds = sorted({a.kind for a in alarms})
    print(f"{len(alarms)} alarms ({', '.join(kinds)}), {report.calls:,} calls evaluated in "
          f"{repeat} passes")  # fmt: skip
    b50, b95 = _percentiles(baseline)
    p50, p95 = _percentiles(passes)
    print(f"bare SQL reading the batch (baseline): p50 {b50:8.1f} ms  p95 {b95:8.1f} ms")
    print(f"evaluation pass, every rule:           p50 {p50:8.1f} ms  p95 {p95:8.1f} ms  "
          f"x{p50 / b50:.1f} baseline p50")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 calls, 5 repeats")
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="sqlite")
    args = parser.parse_args()
    n_calls, repeat = (20_000, 5) if args.quick else (args.calls, args.repeat)
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as folder:
            engine = open_store(f"sqlite:///{folder}/bench.db")
            bench(engine, n_calls, args.batch, repeat)
            engine.dispose()
    if args.backend in ("postgres", "both"):
        from tests.fixtures.postgres import (  # only when benchmarking PostgreSQL
            server_memory,
            throwaway_cluster,
        )

        with throwaway_cluster(server_memory()) as cluster:
            engine = open_store(cluster.url(cluster.create_database("bench")))
            bench(engine, n_calls, args.batch, repeat)
            engine.dispose()


if __name__ == "__main__":
    main()
