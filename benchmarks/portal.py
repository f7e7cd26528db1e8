"""The portal's call list, first page, filtered, with totals: the app against its bare query.

    .venv/bin/python benchmarks/portal.py [--quick] [--sqlite-only | --postgresql-only]
        [--tenant-calls N] [--total-calls N] [--requests N]

Issue 12's benchmark. A store holds ``--total-calls`` calls (5,000,000; ``--quick``: 100,000)
of five tenants, ``--tenant-calls`` (1,000,000; ``--quick``: 20,000) of them the measured
tenant's, spread over 2025, each rated (a ``call_costs`` row; one call in a hundred on the
unrated queue instead). Rows are bulk loaded (PostgreSQL ``COPY``, SQLite ``executemany``),
not ingested: this measures reading. They are loaded into a store at revision 0016, which is
then migrated to head, timed: revision 0017 fills ``call_costs.start_utc`` from the calls.

Each request is ``GET /calls`` with the filters below, through the real WSGI app (the Flask
test client, signed in as a tenant user: the session check, the scope, the list query, the
totals query, the page's Jinja template). The baseline is the bare SQL of the same request: the
list and totals statements the app sent (captured from the engine in a warm-up request),
replayed through the DBAPI cursor with the same parameters, no SQLAlchemy, no Flask. Printed
per store and filter: p50 / p95 of ``--requests`` (200) requests, the bare query's p50 / p95,
the ratio app / bare and where the totals came from (a report rollup, the raw ``calls``, or
``call_costs`` joined to the matching calls for a cost range). The loaded calls bypass ingest, so
the measured tenant's rollups are rebuilt from them after loading (``datacenter rollups
rebuild``'s code), as ingest would have kept them.

The page's fixed cost is measured first: the same request for a month with no calls (its list
and totals statements return nothing in well under a millisecond), so its time is the session,
user, scope, tenant, tariff and dial-plan reads and the template. Each filter's line then shows
app - bare beside that fixed cost: app = bare + fixed is the model docs/web.md argues for (the
issue's "app within 1.5x of its bare query" cannot hold where the bare query takes a few ms and
the fixed work about ten). Target: p95 <= 150 ms on PostgreSQL. Filters without dates (a whole
year) run ``--year-requests`` requests. The load average is printed with each line: the machine
is shared, and every figure is taken under that load.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datacenter.accounts.agents import enroll_agent
from datacenter.accounts.tenants import create_tenant
from datacenter.accounts.users import create_user
from datacenter.rating.carriers import load_carrier_rules
from datacenter.rating.numbering import load_dial_plan
from datacenter.rating.store import import_tariff_plan, set_site
from datacenter.rating.tariffs import load_tariff
from datacenter.settings import Settings, StoreSettings, settings_for_data_dir
from datacenter.store import partitions
from datacenter.store.engine import open_store, upgrade, write_transaction
from datacenter.store.rollups import rebuild
from datacenter.store.tables.core import calls
from datacenter.store.tables.rating import call_costs, unrated_calls
from datacenter.web import create_app
from datacenter.web.database import web_engine
from tests.fixtures.postgres import server_memory, throwaway_cluster
from tests.fixtures.web import csrf_token

DEMO = Path(__file__).resolve().parents[1] / "datacenter" / "rating" / "demo"
TENANTS = 5
EMAIL = "bench@tenant0.example"
PASSWORD = "benchmark password 1"
YEAR_START = datetime(2025, 1, 1, tzinfo=UTC)
YEAR = timedelta(days=365)
CHUNK = 50_000
LOAD_TIME = datetime(2026, 1, 1, tzinfo=UTC)
TARGET_P95_MS = 150.0
YEAR_REQUESTS = 20
LOADED_AT = "0016"  # the store is loaded at this revision, then migrated to head (timed)
EMPTY_PAGE = {"from": "2030-06-01", "to": "2030-06-30"}  # no calls: the page's fixed cost
FILTERS: dict[str, dict[str, str]] = {
    "June, outgoing": {"from": "2025-06-01", "to": "2025-06-30", "direction": "out"},
    "June, mobile, >= 0.10": {"from": "2025-06-01", "to": "2025-06-30", "class": "mobile",
                              "cost_min": "0.10"},
    "June, cost <= 0.05": {"from": "2025-06-01", "to": "2025-06-30", "cost_max": "0.05"},
    "a week, carrier": {"from": "2025-06-02", "to": "2025-06-08", "carrier": "britline"},
    "a year, cost >= 1.50": {"cost_min": "1.50"},
    "no filter (whole year)": {},
}  # fmt: skip
CLASSES = (
    ("mobile", "UK mobile", "07700900{:03d}", "447700900{:03d}"),
    ("local", "London", "02079460{:03d}", "442079460{:03d}"),
    ("national", "UK geographic", "01632960{:03d}", "441632960{:03d}"),
    ("international", "France", "0033142{:06d}", "33142{:06d}"),
    ("premium", "UK premium (09)", "09098790{:03d}", "449098790{:03d}"),
)


@dataclass(frozen=True)
class Timing:
    p50: float
    p95: float

    @classmethod
    def of(cls, seconds: list[float]) -> Timing:
        ordered = sorted(seconds)
        return cls(
            statistics.median(ordered) * 1000, ordered[int(0.95 * (len(ordered) - 1))] * 1000
        )


# --- loading ------------------------------------------------------------------------------------


def calls_of(tenant_id: int, count: int, *, sqlite: bool) -> Iterator[tuple[tuple[Any, ...], ...]]:
    """(call row, cost or queue row, is_rated) tuples for ``count`` calls spread over 2025."""
    step = YEAR / count
    agent = f"agent-{tenant_id}"
    for i in range(count):
        start = YEAR_START + step * i
        direction = ("out", "out", "out", "out", "out", "out", "in", "in", "in", "internal")[i % 10]
        answered = i % 7 != 0
        talk = (i * 37) % 900 if answered else 0
        number_class, destination, dialled, e164 = CLASSES[i % len(CLASSES)]
        dialled, e164 = dialled.format(i % 1000), e164.format(i % 1000)
        end = start + timedelta(seconds=5 + talk)
        record_id = f"{tenant_id:02d}{i:030d}"
        when = _time(start, sqlite)
        outgoing = direction == "out"
        values = {
            "tenant_id": tenant_id, "record_id": record_id, "agent_id": agent,
            "source_id": "mivb-1", "source_kind": "mivb-smdr", "start_utc": when,
            "end_utc": _time(end, sqlite),
            "answer_utc": _time(start + timedelta(seconds=5), sqlite) if answered else None,
            "utc_offset_minutes": 60, "ring_seconds": 5, "talk_seconds": talk,
            "hold_seconds": 0, "direction": direction,
            "calling": "2201" if outgoing else dialled, "called": "T025" if outgoing else "2201",
            "dialled_digits": dialled if outgoing else "", "extension": "2201", "trunk": "T025",
            "route": "", "third_party": "", "account_code": "", "ani": "", "dnis": "",
            "answered": answered, "completion": "answered" if answered else "no_answer",
            "completion_source": "A", "transferred": False, "conference": False, "call_id": "",
            "parent_call_id": "", "flags": "[]", "raw": f"raw line {i}",
            "parser_version": "bench/1", "landed_file": "bench.ccb",
            "ingested_at": _time(LOAD_TIME, sqlite), "extra": "{}", "icdr_version": 1,
        }  # fmt: skip
        call = tuple(values[column.name] for column in calls.c)  # the table's column order
        if i % 100 == 99:
            queue = (tenant_id, record_id, "NO_PREFIX_MATCH", "no destination", "{}",
                     _time(LOAD_TIME, sqlite), _time(LOAD_TIME, sqlite), 1)  # fmt: skip
            yield call, queue, (False,)
            continue
        billed = 60 + max(0, talk - 60) if talk else 0
        cost = (billed * (7 + i % 5)) // 60 if direction == "out" else 0
        carrier = "northtel" if i % 5 == 0 else "britline"
        row = (
            tenant_id,
            record_id,
            cost,
            "GBP",
            2,
            number_class if direction == "out" else "unknown",
            e164,
            carrier,
            destination,
            e164[:3],
            "britline-2025-01",
            billed,
            '["day"]',
            None if direction == "out" else "inbound_not_tariffed",
            "{}",
            "1",
            _time(LOAD_TIME, sqlite),
        )  # fmt: skip  (no start_utc: loaded at revision 0016, filled by 0017)
        yield call, row, (True,)


def _time(value: datetime, sqlite: bool) -> Any:
    # SQLite holds naive UTC text (the store's UTCDateTime); PostgreSQL takes the aware value.
    return (
        value.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds") if sqlite else value
    )


def set_up(engine: sa.Engine, settings: Settings) -> list[int]:
    upgrade(engine, revision=LOADED_AT)
    with write_transaction(engine) as conn:
        ids = []
        for n in range(TENANTS):
            tenant = create_tenant(conn, f"tenant{n}", f"Tenant {n}", "Europe/London")
            enroll_agent(conn, f"tenant{n}", f"agent-{tenant.tenant_id}")
            ids.append(tenant.tenant_id)
        create_user(conn, EMAIL, PASSWORD, "tenant", ids[0])
        import_tariff_plan(conn, ids[0], load_tariff(DEMO / "britline.toml"), now=LOAD_TIME)
        set_site(
            conn, ids[0], "*", dial_plan=load_dial_plan(DEMO / "london.toml"),
            carriers=load_carrier_rules(DEMO / "london-routes.toml"), now=LOAD_TIME,
        )  # fmt: skip
    return ids


def load(engine: sa.Engine, tenant_ids: list[int], tenant_calls: int, total_calls: int) -> float:
    """Bulk load every tenant's calls; returns the seconds it took (with ANALYZE)."""
    began = time.perf_counter()
    others = (total_calls - tenant_calls) // (len(tenant_ids) - 1)
    counts = [tenant_calls] + [others] * (len(tenant_ids) - 1)
    sqlite = engine.dialect.name == "sqlite"
    raw = engine.raw_connection()
    try:
        if not sqlite:  # the rows reference their calls by construction: skip the FK triggers
            raw.cursor().execute("SET session_replication_role = replica")
        for tenant_id, count in zip(tenant_ids, counts, strict=True):
            rows = calls_of(tenant_id, count, sqlite=sqlite)
            while chunk := [next(rows, None) for _ in range(CHUNK)]:
                chunk_rows = [row for row in chunk if row is not None]
                if not chunk_rows:
                    break
                (_sqlite_chunk if sqlite else _copy_chunk)(raw, chunk_rows)
        raw.commit()
        if not sqlite:  # VACUUM cannot run in a transaction: a steady store has been vacuumed
            raw.driver_connection.autocommit = True  # type: ignore[union-attr]
        raw.cursor().execute("ANALYZE" if sqlite else "VACUUM ANALYZE")
        raw.commit()
    finally:
        raw.close()
    return time.perf_counter() - began


def build_rollups(engine: sa.Engine, tenant_id: int) -> float:
    """Fill the measured tenant's report rollups from its loaded calls (ingest keeps them so;
    bulk loading bypasses ingest); returns the seconds it took (with ANALYZE)."""
    began = time.perf_counter()
    store = open_store(engine.url.render_as_string(hide_password=False))  # the command's engine
    try:
        with write_transaction(store) as conn:
            rebuild(conn, tenant_id, ZoneInfo("Europe/London"))
        with store.connect() as conn:
            conn.execute(sa.text("ANALYZE"))
            conn.commit()
    finally:
        store.dispose()
    return time.perf_counter() - began


def _by_table(rows: list[tuple[tuple[Any, ...], ...]]) -> list[tuple[sa.Table, list[Any]]]:
    return [
        (calls, [r[0] for r in rows]),
        (call_costs, [r[1] for r in rows if r[2][0]]),
        (unrated_calls, [r[1] for r in rows if not r[2][0]]),
    ]


def _loaded(table: sa.Table) -> list[str]:
    """The columns a table has at ``LOADED_AT`` (0017 adds ``call_costs.start_utc``, 0018 the
    same to ``unrated_calls``)."""
    return [c.name for c in table.c if not (table is not calls and c.name == "start_utc")]


def migrate(engine: sa.Engine) -> tuple[float, int]:
    """Upgrade the loaded store to head (0017 fills ``call_costs.start_utc``; on PostgreSQL
    0018 partitions the calls by month, all in the DEFAULT partition until ``datacenter store
    partitions --convert`` moves them): (seconds, rows)."""
    with engine.connect() as conn:
        rows = int(conn.execute(sa.select(sa.func.count()).select_from(call_costs)).scalar_one())
    began = time.perf_counter()
    upgrade(engine)
    return time.perf_counter() - began, rows


def _sqlite_chunk(raw: Any, rows: list[tuple[tuple[Any, ...], ...]]) -> None:
    cursor = raw.cursor()
    # The store's SQLite connections leave transactions to SQLAlchemy (the driver's own
    # implicit ones are off), so a bare executemany would commit every row: one per chunk.
    cursor.execute("BEGIN")
    for table, values in _by_table(rows):
        marks = ", ".join("?" for _ in _loaded(table))
        names = ", ".join(_loaded(table))  # the migrated order may differ
        cursor.executemany(f"INSERT INTO {table.name} ({names}) VALUES ({marks})", values)
    cursor.execute("COMMIT")


def _copy_chunk(raw: Any, rows: list[tuple[tuple[Any, ...], ...]]) -> None:
    cursor = raw.cursor()
    for table, values in _by_table(rows):
        columns = ", ".join(_loaded(table))
        with cursor.copy(f"COPY {table.name} ({columns}) FROM STDIN") as copy:
            for value in values:
                copy.write_row(value)


# --- measuring ----------------------------------------------------------------------------------


def measure(
    engine: sa.Engine,
    settings: Settings,
    filters: dict[str, str],
    requests: int,
    *,
    explain: bool = False,
) -> tuple[Timing, Timing, int, str]:
    """(app timing, bare-query timing, calls matched, table the totals read) for one filter."""
    app = create_app(settings, test_config={"TESTING": True})
    try:
        client = app.test_client()
        client.post("/login", data={"email": EMAIL, "password": PASSWORD,
                                    "csrf_token": csrf_token(client)})  # fmt: skip
        captured = _capture(app.extensions["callcollect.store"])
        first = client.get("/calls", query_string=filters)
        assert first.status_code == 200, first.status_code
        statements = _data_statements(captured)
        app_times = [
            _timed(lambda: client.get("/calls", query_string=filters)) for _ in range(requests)
        ]
    finally:
        app.extensions["callcollect.store"].dispose()
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()

        def bare() -> None:
            for sql, params in statements:
                cursor.execute(sql, params)
                if cursor.description is not None:
                    cursor.fetchall()

        bare()
        bare_times = [_timed(bare) for _ in range(requests)]
        if explain and engine.dialect.name == "postgresql":
            for sql, params in statements:
                if sql.startswith("SELECT"):
                    cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
                    print("\n".join(row[0] for row in cursor.fetchall()), flush=True)
                else:  # the totals' planner settings (datacenter.store.probe_plan)
                    cursor.execute(sql, params)
        cursor.execute(*_totals_statement(statements))
        position = [column[0] for column in cursor.description].index("calls")
        matched = sum(int(row[position]) for row in cursor.fetchall())
    finally:
        raw.close()
    found = _DATA_STATEMENT.search(_totals_statement(statements)[0])
    source = found.group(1) if found else "?"
    return Timing.of(app_times), Timing.of(bare_times), matched, source


# The list's and the totals' statements: over the calls (for a cost range, over call_costs
# joined to them), or the totals over a rollup.
_DATA_STATEMENT = re.compile(r"FROM (calls|call_costs|rollup_\w+)\b")


def _data_statements(captured: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """From the list's statement to the totals' statement, with what the store sent between
    and right after them (for a cost range without dates, the planner's estimates and the join
    settings of datacenter.store.probe_plan): the bare query replays all of it."""
    data = [i for i, (sql, _params) in enumerate(captured) if _reads_data(sql)]
    assert len(data) == 2, [sql[:80] for sql, _params in captured]
    last = data[1]
    while last + 1 < len(captured) and captured[last + 1][0].startswith("SET LOCAL"):
        last += 1
    return captured[data[0] : last + 1]


def _totals_statement(statements: list[tuple[str, Any]]) -> tuple[str, Any]:
    return [each for each in statements if _reads_data(each[0])][-1]


def _reads_data(sql: str) -> bool:
    """The list's or the totals' statement (not an ``EXPLAIN`` of the planner's estimates)."""
    return sql.startswith("SELECT") and _DATA_STATEMENT.search(sql) is not None


def _capture(engine: sa.Engine) -> list[tuple[str, Any]]:
    """Every statement ``engine`` sends from now on, with its parameters."""
    seen: list[tuple[str, Any]] = []

    def remember(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        seen.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", remember)
    return seen


def _timed(work: Callable[[], object]) -> float:
    began = time.perf_counter()
    work()
    return time.perf_counter() - began


def run_store(name: str, url: str, data_dir: Path, args: argparse.Namespace) -> list[str]:
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = replace(settings_for_data_dir(data_dir), store=StoreSettings(url=url))
    engine = web_engine(url)  # the app's own connection settings, for the bare query too
    try:
        ids = set_up(engine, settings)
        seconds = load(engine, ids, args.tenant_calls, args.total_calls)
        print(f"{name}: loaded {args.total_calls:,} calls ({args.tenant_calls:,} the tenant's) "
              f"in {seconds:.0f} s", flush=True)  # fmt: skip
        seconds, rows = migrate(engine)
        print(f"{name}: migrated {LOADED_AT} -> head (0017 fills call_costs.start_utc of "
              f"{rows:,} rows) in {seconds:.0f} s", flush=True)  # fmt: skip
        if engine.dialect.name == "postgresql":  # the months out of DEFAULT, as an operator does
            converted = partitions.convert(engine)
            print(f"{name}: partitions --convert moved {converted.rows:,} rows in "
                  f"{converted.seconds:.0f} s", flush=True)  # fmt: skip
        seconds = build_rollups(engine, ids[0])
        print(f"{name}: the measured tenant's rollups rebuilt in {seconds:.0f} s", flush=True)
        measure(engine, settings, EMPTY_PAGE, min(args.requests, 20))  # warm up: not reported
        fixed, fixed_bare, _matched, _source = measure(engine, settings, EMPTY_PAGE, args.requests)
        line = (
            f"{name:10} {'empty page (fixed cost)':24} {0:>9,} calls x{args.requests:<3} | app p50 "
            f"{fixed.p50:7.1f} ms p95 {fixed.p95:7.1f} ms | bare query p50 {fixed_bare.p50:7.1f} "
            f"ms p95 {fixed_bare.p95:7.1f} ms | load {_load()}"
        )
        print(line, flush=True)
        lines = [line]
        for label, filters in FILTERS.items():
            # A filter without dates reads the tenant's whole year: fewer requests show its cost.
            dated = "from" in filters or "to" in filters
            requests = args.requests if dated else min(args.requests, args.year_requests)
            app, bare, matched, source = measure(
                engine, settings, filters, requests, explain=args.explain
            )
            missed = name == "PostgreSQL" and app.p95 > TARGET_P95_MS
            line = (
                f"{name:10} {label:24} {matched:>9,} calls x{requests:<3} | app p50 {app.p50:7.1f} ms "
                f"p95 {app.p95:7.1f} ms | bare query p50 {bare.p50:7.1f} ms p95 {bare.p95:7.1f} ms"
                f" | ratio p50 {app.p50 / bare.p50:5.2f} | app - bare p50 {app.p50 - bare.p50:6.1f}"
                f" ms (fixed {fixed.p50:.1f}) | totals from {source} | load {_load()}"
                f"{'  (target missed)' if missed else ''}"
            )
            print(line, flush=True)
            lines.append(line)
        again, _bare, _matched, _source = measure(engine, settings, EMPTY_PAGE, args.requests)
        line = (
            f"{name:10} {'empty page, again':24} {0:>9,} calls x{args.requests:<3} | app p50 "
            f"{again.p50:7.1f} ms p95 {again.p95:7.1f} ms | load {_load()}"
        )
        print(line, flush=True)
        lines.append(line)
        return lines
    finally:
        engine.dispose()


def _load() -> str:
    return " ".join(f"{value:.1f}" for value in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 of 100,000 calls")
    parser.add_argument("--tenant-calls", type=int)
    parser.add_argument("--total-calls", type=int)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument(
        "--year-requests", type=int, default=YEAR_REQUESTS, help="for filters without dates"
    )
    parser.add_argument("--sqlite-only", action="store_true")
    parser.add_argument("--postgresql-only", action="store_true")
    parser.add_argument(
        "--explain",
        action="store_true",
        help="print EXPLAIN ANALYZE of each statement (PostgreSQL)",
    )
    args = parser.parse_args()
    args.tenant_calls = args.tenant_calls or (20_000 if args.quick else 1_000_000)
    args.total_calls = args.total_calls or (100_000 if args.quick else 5_000_000)
    print(f"GET /calls, first page of 50 with totals, {args.requests} requests per filter; "
          f"target on PostgreSQL: p95 <= {TARGET_P95_MS:.0f} ms; app = bare query + the page's "
          f"fixed cost; load average {_load()} (a shared machine)", flush=True)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="cc-portal-bench-") as tmp:
        root = Path(tmp)
        if not args.postgresql_only:
            run_store("SQLite", f"sqlite:///{root / 'portal.db'}", root / "sqlite", args)
        if not args.sqlite_only:
            with throwaway_cluster(server_memory()) as cluster:
                url = cluster.url(cluster.create_database("portal"))
                run_store("PostgreSQL", url, root / "postgresql", args)


if __name__ == "__main__":
    main()
