"""What a user's scope costs the call list: one department, one extension, vs the whole tenant.

    .venv/bin/python benchmarks/user_scope.py [--quick] [--calls N] [--repeat N]

A fresh SQLite store with one tenant of N calls (200,000; 20,000 with --quick) spread over 500
extensions, and a directory putting each extension in one of 20 departments, half of them with
a second validity period (the extension moved department half-way). For each scope, the first
page of the call list (50 newest) plus its total count through ``TenantScope``, ``--repeat``
times; p50 and p95 are printed with their ratio to the baseline, the whole tenant's same page
(no scope condition) measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datacenter.accounts.tenants import create_tenant
from datacenter.ingest.rows import CALL_COLUMNS, call_values
from datacenter.store.bulk import append_rows, encoded_rows
from datacenter.store.call_scope import WHOLE, UserScope, scope_from
from datacenter.store.engine import open_store, upgrade, write_transaction
from datacenter.store.scoped import CallFilter, TenantScope
from datacenter.store.tables.core import calls
from datacenter.store.tables.directory import directory_entries
from tests.factories import gen_outgoing_call

EXTENSIONS = 500
DEPARTMENTS = 20
START = datetime(2025, 1, 1, tzinfo=UTC)
SPAN = timedelta(days=365)


@dataclass(frozen=True)
class Figures:
    p50_ms: float
    p95_ms: float


def seed(engine: sa.Engine, n_calls: int) -> int:
    with write_transaction(engine) as conn:
        tenant_id = create_tenant(conn, "acme", "Acme", "UTC").tenant_id
        template = dict(zip(CALL_COLUMNS, call_values(tenant_id, gen_outgoing_call(0), "f", START),
                            strict=True))  # fmt: skip
        step = SPAN / n_calls
        for first in range(0, n_calls, 10_000):
            rows = []
            for i in range(first, min(n_calls, first + 10_000)):
                start = START + i * step
                rows.append(template | {
                    "record_id": f"bench-{i}", "start_utc": start,
                    "end_utc": start + timedelta(minutes=2), "answer_utc": start,
                    "extension": str(2000 + i % EXTENSIONS), "called": f"0163296{i:07d}",
                })  # fmt: skip
            append_rows(conn, calls, encoded_rows(conn, calls, rows))  # with call_keys
        conn.execute(directory_entries.insert(), list(_directory(tenant_id)))
    return tenant_id


def _directory(tenant_id: int) -> list[dict[str, object]]:
    middle = START + SPAN / 2
    rows = []
    for e in range(EXTENSIONS):
        periods = [(START - SPAN, middle), (middle, None)] if e % 2 else [(START - SPAN, None)]
        for k, (valid_from, valid_to) in enumerate(periods):
            department = f"Dept {(e + k) % DEPARTMENTS:02d}"
            rows.append({
                "tenant_id": tenant_id, "entry_id": uuid.uuid4().hex, "extension": str(2000 + e),
                "person": f"Person {e}", "department": department, "cost_centre": "",
                "site": f"Site {e % 4}", "valid_from": valid_from, "valid_to": valid_to,
                "source": "manual", "updated_at": START,
            })  # fmt: skip
    return rows


def measure(engine: sa.Engine, tenant_id: int, scope: UserScope, repeat: int) -> Figures:
    times = []
    with engine.connect() as conn:
        tenant = TenantScope(conn, tenant_id, user_scope=scope)
        tenant.list_calls(CallFilter())  # warm the cache
        for _ in range(repeat):
            began = time.perf_counter()
            page = tenant.list_calls(CallFilter())
            times.append((time.perf_counter() - began) * 1000)
            assert page.calls
    times.sort()
    return Figures(statistics.median(times), times[int(len(times) * 0.95) - 1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 calls, 20 repeats")
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=100)
    args = parser.parse_args()
    n_calls, repeat = (20_000, 20) if args.quick else (args.calls, args.repeat)
    with tempfile.TemporaryDirectory() as folder:
        engine = open_store(f"sqlite:///{folder}/bench.db")
        upgrade(engine)
        began = time.perf_counter()
        tenant_id = seed(engine, n_calls)
        print(f"seeded {n_calls:,} calls in {time.perf_counter() - began:.1f} s")
        scopes = {
            "whole tenant (baseline)": WHOLE,
            "one department": scope_from({"department": ["Dept 03"]}),
            "one site": scope_from({"site": ["Site 1"]}),
            "one extension": scope_from({"extension": ["2042"]}),
        }
        baseline: Figures | None = None
        for name, scope in scopes.items():
            figures = measure(engine, tenant_id, scope, repeat)
            baseline = baseline or figures
            print(f"{name:26} page 1 + count: p50 {figures.p50_ms:8.1f} ms  "
                  f"p95 {figures.p95_ms:8.1f} ms  x{figures.p50_ms / baseline.p50_ms:5.1f} "
                  "baseline p50")  # fmt: skip
        engine.dispose()


if __name__ == "__main__":
    main()
