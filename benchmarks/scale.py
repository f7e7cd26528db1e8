"""The data centre at scale on PostgreSQL: N calls across T tenants (issue 18's benchmark).

    .venv/bin/python benchmarks/scale.py [--calls N] [--tenants T] [--months M] [--per-batch B]

Default 200,000 calls across 20 tenants (the issue's size is ``--calls 10000000 --tenants 1000``).
One tenant ("large") holds ``LARGE_SHARE`` of the calls (at least twice a fair share), the others share the rest equally (the
last is the "small" one); every tenant is a rated London site, its calls spread over M months
from January 2026. Batches are sealed as production seals them (CMS: signed and encrypted) and
landed in each tenant's ``incoming/``. A throwaway PostgreSQL 15 cluster; every figure is taken
on this machine in this run, with its baseline:

1. **Ingest, 2 workers** (processes, started before the clock, claiming files through the
   store) against a **bare COPY** of the same ``calls`` and ``call_costs`` rows by one
   connection into a fresh store of the same schema (tenants and agents copied first, untimed).
2. **Size on disk per million calls**: ``pg_total_relation_size`` of the call tables (calls,
   costs, unrated queue), of the rollups (report rollups and ``call_days``), and the database.
3. **Report p95, rollups against raw**: the month summary by extension and by destination class
   for the large and the small tenant (``reports.summaries``, ``source="auto"`` against
   ``"raw"``), same rows checked.
4. **Re-rate of one tenant-month** (the large tenant's second month) with 2 workers through the
   store jobs (``datacenter.rating.rerate_jobs``), against the single-process ``rerate`` of the
   same month; both with the configuration unchanged (every call read, rated and compared,
   nothing written). Then once more with 2 workers after a tariff fix that changes every UK
   mobile daytime call, to show the cost of the writes. The jobs' figures include starting the
   2 worker processes (spawned: a few seconds on a loaded machine), which small runs feel most.
5. **Drop a month**: ``datacenter.store.partitions.drop_months_before(engine, month)`` when this
   build has it, against the bare ``DELETE`` of the same month's rows (in a transaction rolled
   back, so the drop still has them).

The machine has 2 cores shared with other work: wall-clock figures are taken under that load.
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # its sibling end_to_end.py

from end_to_end import AGENT, DEMO, Worker, gen_call

from datacenter.accounts.agents import enroll_agent
from datacenter.accounts.tenants import Tenant, create_tenant
from datacenter.ingest.keys import ensure_keys
from datacenter.rating.carriers import load_carrier_rules
from datacenter.rating.numbering import load_dial_plan
from datacenter.rating.rerate import rerate
from datacenter.rating.rerate_jobs import rerate_with_workers
from datacenter.rating.store import import_tariff_plan, set_site
from datacenter.rating.tariffs import TariffPlan, load_tariff, parse_rates_csv
from datacenter.reports.periods import local_midnight
from datacenter.reports.summaries import SummaryRequest, summary_query
from datacenter.settings import Settings, settings_for_data_dir
from datacenter.store.engine import open_store, upgrade, write_transaction
from shared import cms
from shared.envelope import batch_file_name, seal
from shared.icdr import ICDR, make_record_id
from shared.keys import AgentIdentity, new_agent_identity
from tests.fixtures.postgres import PgCluster, server_memory, throwaway_cluster

START = datetime(2026, 1, 1, tzinfo=UTC)
ZONE = "Europe/London"
LARGE_SHARE = 0.10  # of all calls, the large tenant's (at least 2 / tenants: larger than the rest)
WORKERS = 2
RUNS = 20  # timed runs per report query
CALL_TABLES = ("call_keys", "calls", "call_costs", "unrated_calls")
ROLLUP_TABLES = ("rollup_extension_days", "rollup_route_days", "call_days")


def sizes(calls: int, tenants: int) -> list[int]:
    """Calls per tenant: the large one first, the rest equal (remainder to the first of them)."""
    large = int(calls * max(LARGE_SHARE, 2 / tenants)) if tenants > 1 else calls
    rest = tenants - 1
    each, extra = divmod(calls - large, rest) if rest else (0, 0)
    return [large] + [each + (1 if n < extra else 0) for n in range(rest)]


def tenant_call(slug: str, n: int, step: float) -> ICDR:
    """``end_to_end.gen_call``'s London call, with the tenant's own id and a time in the span."""
    call = gen_call(n)
    start = START + timedelta(seconds=int(n * step))
    return replace(
        call, record_id=make_record_id(slug, "pbx1", str(n)), start=start,
        answer=start + timedelta(seconds=5), end=start + timedelta(seconds=5 + call.talk_seconds),
    )  # fmt: skip


def land(settings: Settings, slug: str, count: int, months: int, per_batch: int,
         protect: Callable[[bytes], bytes]) -> None:  # fmt: skip
    incoming = settings.landing.tenant_dir(slug, "incoming")
    incoming.mkdir(parents=True, exist_ok=True)
    step = months * 30 * 86_400 / max(count, 1)
    for sequence, first in enumerate(range(0, count, per_batch), start=1):
        records = [tenant_call(slug, n, step) for n in range(first, min(count, first + per_batch))]
        data = seal(records, agent_id=AGENT, tenant=slug, sequence=sequence, created_at=START)
        (incoming / batch_file_name(AGENT, sequence)).write_bytes(protect(data))


_sealing: tuple[Settings, int, int, Callable[[bytes], bytes]] | None = None  # forked workers'


def _land_one(job: tuple[str, int]) -> None:
    assert _sealing is not None
    settings, months, per_batch, protect = _sealing
    land(settings, job[0], job[1], months, per_batch, protect)


def land_all(settings: Settings, slugs: list[str], counts: list[int], months: int,
             per_batch: int, protect: Callable[[bytes], bytes]) -> None:  # fmt: skip
    """Seal every tenant's batches with one process per core (untimed set-up: at 10,000,000
    calls one process would take most of an hour). Forked, so the signing key is inherited
    rather than pickled."""
    global _sealing
    _sealing = (settings, months, per_batch, protect)
    jobs = sorted(zip(slugs, counts, strict=True), key=lambda job: -job[1])  # largest first
    with multiprocessing.get_context("fork").Pool(WORKERS) as pool:
        pool.map(_land_one, jobs, chunksize=1)
    _sealing = None


def make_tenants(url: str, count: int, certificate: object) -> list[Tenant]:
    """Tenants t0000..., each a rated London site with the demo tariff."""
    engine = open_store(url)
    upgrade(engine)
    plan = load_tariff(DEMO / "britline.toml")
    dial_plan = load_dial_plan(DEMO / "london.toml")
    carriers = load_carrier_rules(DEMO / "london-routes.toml")
    made = []
    for n in range(count):
        with write_transaction(engine) as conn:
            tenant = create_tenant(conn, f"t{n:04d}", f"Tenant {n}", ZONE)
            enroll_agent(conn, tenant.slug, AGENT, certificate=certificate)  # type: ignore[arg-type]
            import_tariff_plan(conn, tenant.tenant_id, plan, now=START)
            set_site(conn, tenant.tenant_id, AGENT, dial_plan=dial_plan, carriers=carriers,
                     now=START)  # fmt: skip
        made.append(tenant)
    engine.dispose()
    return made


_worker: Worker | None = None  # one per pool process


def _start(settings: Settings) -> None:
    global _worker
    _worker = Worker(settings)


def _one_pass(_index: int) -> int:
    assert _worker is not None
    return _worker.ingest()


def ingest(settings: Settings, calls: int) -> float:
    """2 ready workers, one pass each over every tenant's incoming/: seconds until all stored."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(WORKERS, initializer=_start, initargs=(settings,)) as pool:
        pool.map(_wait_ready, range(WORKERS))
        began = time.perf_counter()
        inserted = sum(pool.map(_one_pass, range(WORKERS)))
        seconds = time.perf_counter() - began
    assert inserted == calls, f"{inserted} of {calls} calls inserted"
    return seconds


def _wait_ready(_index: int) -> None:
    assert _worker is not None  # the initializer ran: imports, keys, a connection


def bare_copy(cluster: PgCluster, source_db: str, per_batch: int, scratch: Path) -> float:
    """Seconds for one connection to COPY the stored calls (with their ``call_keys`` rows, which
    the partitioned store's foreign keys need) and call_costs into a fresh store, ``per_batch``
    rows a transaction as ingest commits them. The rows are dumped to files in ``scratch`` first
    and read a batch at a time outside the clock (at 10,000,000 calls they do not fit in memory);
    the fresh store is dropped afterwards (it would double the disk the run needs)."""
    target_db = cluster.create_database("copy")
    engine = open_store(cluster.url(target_db))
    upgrade(engine)
    engine.dispose()
    dsn = f"host=127.0.0.1 port={cluster.port} user=postgres dbname="
    tables = ("tenants", "agents", "call_keys", "calls", "call_costs")
    with psycopg.connect(dsn + source_db) as source:
        for table in tables:
            order = " ORDER BY tenant_id, record_id" if table.startswith("call") else ""
            with (
                (scratch / f"{table}.copy").open("wb") as out,
                source.cursor().copy(f"COPY (SELECT * FROM {table}{order}) TO STDOUT") as copy,
            ):
                for block in copy:
                    out.write(block)
    seconds = 0.0
    with psycopg.connect(dsn + target_db) as sink:
        with sink.cursor() as cursor:  # untimed: what the calls refer to
            for table in ("tenants", "agents"):
                with cursor.copy(f"COPY {table} FROM STDIN") as copy:
                    copy.write((scratch / f"{table}.copy").read_bytes())
        sink.commit()
        files = [(scratch / f"{t}.copy").open("rb") for t in ("call_keys", "calls", "call_costs")]
        try:
            for number in itertools.count():
                keys, calls, costs = (list(itertools.islice(f, per_batch)) for f in files)
                assert len(keys) == len(calls) == len(costs), "every call is rated here"
                if not calls:
                    break
                began = time.perf_counter()
                with sink.cursor() as cursor:
                    with cursor.copy("COPY call_keys FROM STDIN") as copy:
                        copy.write(b"".join(keys))
                    with cursor.copy("COPY calls FROM STDIN") as copy:
                        copy.write(b"".join(calls))
                    if number == 0:  # as ingest does: sized statistics, so FK checks use the key
                        cursor.execute("ANALYZE call_keys")
                    with cursor.copy("COPY call_costs FROM STDIN") as copy:
                        copy.write(b"".join(costs))
                sink.commit()
                seconds += time.perf_counter() - began
        finally:
            for file in files:
                file.close()
    for table in tables:
        (scratch / f"{table}.copy").unlink()
    with psycopg.connect(dsn + "postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{target_db}"')
    return seconds


def disk(engine: sa.Engine, calls: int) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")

        def total(tables: tuple[str, ...]) -> int:
            # A partitioned table has no storage of its own: sum its partitions (a plain table
            # has no partition tree: its own size).
            return sum(
                int(conn.exec_driver_sql(
                    "SELECT coalesce((SELECT sum(pg_total_relation_size(relid)) FROM "
                    f"pg_partition_tree('{t}')), pg_total_relation_size('{t}'))"
                ).scalar_one())
                for t in tables
            )  # fmt: skip

        call_bytes, rollup_bytes = total(CALL_TABLES), total(ROLLUP_TABLES)
        database = int(
            conn.exec_driver_sql("SELECT pg_database_size(current_database())").scalar_one()
        )
    per = 1_000_000 / calls
    print(f"size per million calls: call tables {call_bytes * per / 2**20:,.0f} MiB, rollups "
          f"{rollup_bytes * per / 2**20:,.0f} MiB, whole database {database * per / 2**20:,.0f} "
          f"MiB (database {database / 2**20:,.0f} MiB for {calls:,} calls, empty schema "
          f"included)")  # fmt: skip


def p95(times: list[float]) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] * 1000


def timed_rows(engine: sa.Engine, query: sa.Select[Any]) -> tuple[list[float], list[Any]]:
    times: list[float] = []
    rows: list[Any] = []
    with engine.connect() as conn:
        for _ in range(RUNS):
            began = time.perf_counter()
            rows = [tuple(row) for row in conn.execute(query)]
            times.append(time.perf_counter() - began)
    return times, rows


def reports(engine: sa.Engine, large: Tenant, small: Tenant, month: date) -> None:
    last = (month + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    for label, tenant in (("large", large), ("small", small)):
        for by in ("extension", "destination_class"):
            request = SummaryRequest(tenant.tenant_id, tenant.zone, by, month, last)
            fast, fast_rows = timed_rows(engine, summary_query(request))
            slow, slow_rows = timed_rows(engine, summary_query(request, source="raw"))
            assert fast_rows == slow_rows, (label, by)
            print(f"report p95, {label} tenant ({tenant.slug}), {month:%Y-%m} by {by:<17}: "
                  f"rollups {p95(fast):8.1f} ms, raw {p95(slow):8.1f} ms, raw/rollups "
                  f"{p95(slow) / p95(fast):6.1f}x")  # fmt: skip


def mobile_fix() -> TariffPlan:
    """The demo tariff with UK mobile at 0.1200 instead of 0.0700 in its 2025-07 version."""
    plan = load_tariff(DEMO / "britline.toml")
    deck = (DEMO / "britline-2025-07.csv").read_text()
    deck = deck.replace("447,mobile,UK mobile,day,0.0700", "447,mobile,UK mobile,day,0.1200")
    v2 = plan.versions[1]
    rates = parse_rates_csv(deck, file="fix.csv", currency="GBP", bands=v2.calendar.bands)
    return TariffPlan("britline", (plan.versions[0], replace(v2, destinations=rates)))


def rerate_month(url: str, engine: sa.Engine, tenant: Tenant, month: date) -> None:
    last = (month + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    since, until = (
        local_midnight(month, tenant.zone),
        local_midnight(last + timedelta(1), tenant.zone),
    )
    began = time.perf_counter()
    single = rerate(engine, tenant.tenant_id, since=since, until=until, zone=tenant.zone)
    one = time.perf_counter() - began
    jobs = partial(rerate_with_workers, url, tenant.tenant_id, first_day=month, last_day=last,
                   workers=WORKERS, timeout=60)  # fmt: skip
    began = time.perf_counter()
    same = jobs()
    two = time.perf_counter() - began
    assert same.report.examined == single.examined and not same.failed
    print(
        f"re-rate {tenant.slug} {month:%Y-%m} ({single.examined:,} calls, unchanged): "
        f"{WORKERS} workers through store jobs {two:6.1f} s ({single.examined / two:,.0f} "
        f"calls/s); baseline single-process rerate {one:6.1f} s; single/jobs {one / two:.2f}x"
    )
    with write_transaction(engine) as conn:
        import_tariff_plan(conn, tenant.tenant_id, mobile_fix(), now=START)
    began = time.perf_counter()
    fixed = jobs()
    three = time.perf_counter() - began
    print(
        f"re-rate {tenant.slug} {month:%Y-%m} after a tariff fix: {WORKERS} workers "
        f"{three:6.1f} s, {fixed.report.changed:,} of {fixed.report.examined:,} calls changed "
        f"(history and rollups written); fixed/unchanged time {three / two:.2f}x"
    )


def delete_month(engine: sa.Engine, before: datetime) -> float:
    """Seconds to DELETE every row of the calls before ``before`` (rolled back: baseline)."""
    old = "SELECT tenant_id, record_id FROM calls WHERE start_utc < %(before)s"
    began = time.perf_counter()
    with engine.connect() as conn, conn.begin() as transaction:
        for table in ("call_cost_history", "call_costs", "unrated_calls"):
            conn.exec_driver_sql(
                f"DELETE FROM {table} WHERE (tenant_id, record_id) IN ({old})", {"before": before}
            )
        conn.exec_driver_sql("DELETE FROM calls WHERE start_utc < %(before)s", {"before": before})
        seconds = time.perf_counter() - began
        transaction.rollback()
    return seconds


def drop_month(engine: sa.Engine, month: date) -> None:
    before = datetime(month.year, month.month, 1, tzinfo=UTC)
    deleting = delete_month(engine, before)
    print(f"baseline: DELETE of the calls before {month} (and their costs): {deleting:.1f} s")
    try:
        from datacenter.store.partitions import drop_months_before  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        print("drop a month: partitions not available in this build")
        return
    began = time.perf_counter()
    try:
        drop_months_before(engine, month)
    except Exception as exc:  # a store it cannot drop from (e.g. not partitioned): say so
        print(f"drop a month: drop_months_before failed: {type(exc).__name__}: {exc}")
        return
    dropped = time.perf_counter() - began
    print(f"drop a month (drop_months_before {month}): {dropped:.2f} s; DELETE/drop "
          f"{deleting / dropped:.1f}x")  # fmt: skip


def run(calls: int, tenants: int, months: int, per_batch: int) -> None:
    counts = sizes(calls, tenants)
    with (
        tempfile.TemporaryDirectory(prefix="cc-scale-") as tmp,
        throwaway_cluster(server_memory()) as cluster,
    ):
        dc = settings_for_data_dir(Path(tmp) / "dc")
        bundle = ensure_keys(dc.keys).certificates
        identity: AgentIdentity = new_agent_identity(AGENT)
        database = cluster.create_database("scale")
        url = cluster.url(database)
        settings = replace(dc, store=replace(dc.store, url=url))
        began = time.perf_counter()
        made = make_tenants(url, tenants, identity.certificate)
        protect = partial(cms.protect, signer=identity, recipient=bundle.envelope)
        land_all(settings, [t.slug for t in made], counts, months, per_batch, protect)
        print(f"set up {tenants:,} tenants and sealed {calls:,} calls in {per_batch:,}-call "
              f"batches: {time.perf_counter() - began:.0f} s (untimed)")  # fmt: skip
        seconds = ingest(settings, calls)
        floor = calls / bare_copy(cluster, database, per_batch, Path(tmp))
        rate = calls / seconds
        print(
            f"ingest, {WORKERS} workers: {seconds:.1f} s, {rate:,.0f} calls/s; baseline bare "
            f"COPY of the same rows {floor:,.0f} calls/s; COPY/ingest {floor / rate:.2f}x"
        )
        engine = open_store(url)
        try:
            disk(engine, calls)
            second = (START + timedelta(days=31 * min(1, months - 1))).date().replace(day=1)
            reports(engine, made[0], made[-1], second)
            rerate_month(url, engine, made[0], second)
            drop_month(engine, second if months > 1 else START.date())
        finally:
            engine.dispose()
    print(f"size of this run: {calls:,} calls across {tenants:,} tenants over {months} month(s) "
          f"(large tenant {counts[0]:,}, small {counts[-1]:,}); 2 cores shared with other "
          "work, so wall-clock figures are under load")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000, help="issue size: 10000000")
    parser.add_argument("--tenants", type=int, default=20, help="issue size: 1000")
    parser.add_argument("--months", type=int, default=3)
    parser.add_argument("--per-batch", type=int, default=5_000)
    args = parser.parse_args()
    if args.tenants < 2 or args.calls < args.tenants * 10 or args.months < 1:
        parser.error("need at least 2 tenants, 10 calls per tenant and 1 month")
    run(args.calls, args.tenants, args.months, args.per_batch)


if __name__ == "__main__":
    main()
