"""Exports of the call-detail report through the real WSGI app: peak RSS and time to first byte.

    .venv/bin/python benchmarks/exports.py [--quick] [--rows N] [--sqlite-only | --postgresql-only]
                                           [--formats csv,xlsx]

Issue 13's export benchmark. A store holds ``--rows`` calls (1,000,000; ``--quick``: 50,000) of
the measured tenant over 2025 plus a quarter as many shared by four other tenants, bulk loaded by
``benchmarks/reports.py``'s loader (PostgreSQL ``COPY``, SQLite ``executemany``). Each export is
``GET /reports/detail/export.<csv|xlsx>?from=2025-01-01&to=2025-12-31`` through the Flask app
(the test client, signed in as a tenant user, body read chunk by chunk and dropped, as a WSGI
server sends it), in a fresh process of its own, so its peak RSS (``VmHWM``) is what a server
worker would reach: imports, app, session and the whole export. Printed per store and format:
time to first byte, time to the last, size, rows, peak RSS. The baseline in the same run, also
in a fresh process: the bare query of the export (the same call-detail SQL, streamed with the
same batch size through SQLAlchemy, no Flask, no file), its time to first row and to drain,
run once before to warm the caches.
Targets: peak RSS under 150 MB, first byte within a second.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from datacenter.accounts.users import create_user
from datacenter.reports.catalog import STREAM_BATCH_ROWS
from datacenter.reports.detail import MAX_LIMIT, DetailRequest, detail_query
from datacenter.settings import Settings, StoreSettings, settings_for_data_dir
from datacenter.store.engine import open_store, upgrade
from datacenter.web import create_app

FORMATS = ("csv", "xlsx")
EMAIL = "bench@t0.example"
PASSWORD = "benchmark password 1"
QUERY = {"from": "2025-01-01", "to": "2025-12-31"}
ZONE = "Europe/London"  # benchmarks/reports.py's tenants
TARGET_RSS_MB = 150.0
TARGET_FIRST_BYTE_S = 1.0
PROGRESS_SECONDS = 60.0
# The test fixtures are not imported by the measured process: they would add to its RSS.
_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def _status_mb(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {key} in /proc/self/status")


def peak_rss_mb() -> float:
    return _status_mb("VmHWM")


def reset_peak_rss() -> None:
    """Start the peak (VmHWM) again from the current RSS (Linux: /proc/PID/clear_refs)."""
    Path("/proc/self/clear_refs").write_text("5")


def _progress(line: str) -> None:
    """A line the parent prints as it comes: a run cut short (a million-row XLSX takes half an
    hour on a loaded machine) still tells its first byte and its peak RSS so far."""
    print(line, file=sys.stderr, flush=True)


def _settings(url: str, data_dir: Path) -> Settings:
    return replace(settings_for_data_dir(data_dir), store=StoreSettings(url=url))


def export_once(url: str, data_dir: Path, fmt: str, email: str, password: str) -> dict[str, Any]:
    """One export in this (fresh) process: timings, size and peak RSS during the export."""
    app = create_app(_settings(url, data_dir), test_config={"TESTING": True})
    client = app.test_client()
    token = _CSRF.search(client.get("/login").get_data(as_text=True))
    assert token is not None
    client.post("/login", data={"email": email, "password": password,
                                "csrf_token": token.group(1)})  # fmt: skip
    # Signing in hashes the password with argon2 (64 MiB, freed at once): the export's
    # peak is measured from here.
    ready_mb = _status_mb("VmRSS")
    reset_peak_rss()
    began = time.perf_counter()
    response = client.get(f"/reports/detail/export.{fmt}", query_string=QUERY, buffered=False)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    chunks = iter(response.response)
    head = next(chunks)
    first = time.perf_counter() - began
    _progress(f"first byte {first * 1000:.0f} ms, peak RSS so far {peak_rss_mb():.0f} MB")
    size, lines = len(head), head.count(b"\n") if fmt == "csv" else 0
    reported = began
    for chunk in chunks:
        size += len(chunk)
        lines += chunk.count(b"\n") if fmt == "csv" else 0
        if time.perf_counter() - reported > PROGRESS_SECONDS:
            reported = time.perf_counter()
            _progress(f"{reported - began:.0f} s: {size / 1e6:.1f} MB sent, peak RSS so far "
                      f"{peak_rss_mb():.0f} MB")  # fmt: skip
    response.close()
    drained = time.perf_counter() - began
    app.extensions["callcollect.store"].dispose()
    return {"first": first, "drained": drained, "bytes": size, "ready_mb": ready_mb,
            "peak_mb": peak_rss_mb(), "csv_lines": lines}  # fmt: skip


def bare_once(url: str, tenant_id: int) -> dict[str, Any]:
    """The export's query alone, streamed as the catalogue streams it."""
    engine = open_store(url)
    request = DetailRequest(
        tenant_id, ZoneInfo(ZONE), date(2025, 1, 1), date(2025, 12, 31),
        sort="start", limit=MAX_LIMIT,
    )  # fmt: skip
    query = detail_query(request).limit(None).offset(None)
    began = time.perf_counter()
    rows = 0
    with engine.connect() as conn:
        streamed = conn.execution_options(stream_results=True, yield_per=STREAM_BATCH_ROWS)
        with streamed.execute(query) as result:
            first = None
            for _ in result:
                if first is None:
                    first = time.perf_counter() - began
                rows += 1
    drained = time.perf_counter() - began
    engine.dispose()
    return {"first": first, "drained": drained, "rows": rows, "peak_mb": peak_rss_mb()}


def _child(*args: str, label: str = "") -> dict[str, Any]:
    """Run one measurement in a fresh process; its progress lines are printed as they come."""
    child = subprocess.Popen([sys.executable, __file__, "--child", *args], text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    assert child.stderr is not None and child.stdout is not None
    errors = []
    for line in child.stderr:
        errors.append(line)
        print(f"{label} ... {line.rstrip()}" if label else line.rstrip(), flush=True)
    out = child.stdout.read()
    if child.wait() != 0:
        raise SystemExit(f"{' '.join(args[:1])} failed:\n{''.join(errors)}")
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def _load(url: str, rows: int) -> tuple[int, float]:
    """The measured tenant (``rows`` calls over 2025) and four others sharing a quarter as many,
    with ``benchmarks/reports.py``'s loader; (its tenant id, seconds)."""
    import reports  # benchmarks/reports.py (parent process only)

    engine = open_store(url)
    try:
        upgrade(engine)
        began = time.perf_counter()
        tenants = reports.load(engine, [rows] + [rows // 16] * 4, 365)
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
            create_user(conn, EMAIL, PASSWORD, "tenant", tenants[0].tenant_id)
        return tenants[0].tenant_id, time.perf_counter() - began
    finally:
        engine.dispose()


def run_store(name: str, url: str, data_dir: Path, rows: int, formats: list[str]) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    tenant_id, loaded = _load(url, rows)
    print(f"[{name}] loaded {rows + rows // 4:,} calls ({rows:,} for the measured tenant) in "
          f"{loaded:.1f} s", flush=True)  # fmt: skip
    _child("bare", url, str(tenant_id))  # once to warm the store's caches, as the exports find them
    bare = _child("bare", url, str(tenant_id))
    print(f"[{name}] bare query: first row {bare['first'] * 1000:.0f} ms, drained "
          f"{bare['drained']:.1f} s, {bare['rows']:,} rows, peak RSS {bare['peak_mb']:.0f} MB",
          flush=True)  # fmt: skip
    for fmt in formats:
        got = _child("export", url, str(data_dir), fmt, EMAIL, PASSWORD,
                     label=f"[{name}] {fmt.upper()}")  # fmt: skip
        rate = bare["rows"] / got["drained"]
        rows_note = f", {got['csv_lines']:,} lines" if fmt == "csv" else ""
        verdict = ("ok" if got["peak_mb"] < TARGET_RSS_MB and got["first"] < TARGET_FIRST_BYTE_S
                   else "MISSED")  # fmt: skip
        print(f"[{name}] {fmt.upper():4} first byte {got['first'] * 1000:.0f} ms "
              f"(bare first row x{got['first'] / bare['first']:.1f}), last byte "
              f"{got['drained']:.1f} s (bare drain x{got['drained'] / bare['drained']:.1f}, "
              f"{rate:,.0f} rows/s), {got['bytes'] / 1e6:.1f} MB{rows_note}, peak RSS "
              f"{got['peak_mb']:.0f} MB (signed in, before it: {got['ready_mb']:.0f} MB) "
              f"[{verdict}]", flush=True)  # fmt: skip


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        kind, *rest = sys.argv[2:]
        if kind == "export":
            print(json.dumps(export_once(rest[0], Path(rest[1]), *rest[2:5])))
        else:
            print(json.dumps(bare_once(rest[0], int(rest[1]))))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50,000 rows")
    parser.add_argument("--rows", type=int, help="the measured tenant's calls (1,000,000)")
    parser.add_argument("--sqlite-only", action="store_true")
    parser.add_argument("--postgresql-only", action="store_true")
    parser.add_argument("--formats", default=",".join(FORMATS), help="csv,xlsx (both)")
    args = parser.parse_args()
    rows = args.rows or (50_000 if args.quick else 1_000_000)
    formats = [f for f in args.formats.split(",") if f]
    if not set(formats) <= set(FORMATS):
        parser.error(f"--formats: {args.formats!r}; choose from {', '.join(FORMATS)}")
    print(f"call-detail export of {rows:,} rows; targets: peak RSS < {TARGET_RSS_MB:.0f} MB, "
          f"first byte < {TARGET_FIRST_BYTE_S:.0f} s", flush=True)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="cc-export-bench-") as tmp:
        root = Path(tmp)
        if not args.postgresql_only:
            run_store("SQLite", f"sqlite:///{root / 'exports.db'}", root / "sqlite", rows, formats)
        if not args.sqlite_only:
            from tests.fixtures.postgres import server_memory, throwaway_cluster  # the parent only

            with throwaway_cluster(server_memory()) as cluster:
                url = cluster.url(cluster.create_database("exports"))
                run_store("PostgreSQL", url, root / "postgresql", rows, formats)


if __name__ == "__main__":
    main()
