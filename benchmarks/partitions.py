"""Converting a store to monthly partitions, and dropping a month, on PostgreSQL.

    .venv/bin/python benchmarks/partitions.py [--quick] [--calls N] [--tenants N]

Builds an unpartitioned store (revision 0016) holding N calls (default 1,000,000; --quick:
100,000) of ``--tenants`` tenants spread evenly over six UTC months, each with its
``call_costs`` row, written server-side from one template row (``INSERT ... SELECT`` over
``generate_series``), then ANALYZEs and times, in a throwaway cluster (tests/fixtures/postgres.py):

- the migration to head (0018: result ``start_utc`` filled, ``call_keys`` filled, the four
  tables renamed and attached as DEFAULT partitions, their new primary keys built);
- ``partitions.convert``: the six months moved out of DEFAULT, one transaction each (rows/s,
  counting calls and cost rows);
- ``partitions.drop_months_before`` of the oldest month: detach and drop four partitions, then
  rebuild the rollups of every tenant that had calls then.

Baselines in the same run on the same server: a bare ``INSERT INTO copy SELECT * FROM calls``
(and ``call_costs``) into plain tables with the same indexes (``LIKE ... INCLUDING ALL``, no
foreign keys), the floor for moving the rows (the ratio says what the conversion adds: its
foreign-key checks, ``DELETE`` and ``ATTACH``); and ``DELETE`` of the same month from those
copies, what dropping a month would cost row by row. Prints the figures and
the ratios. The machine is shared: figures are wall clock, taken under whatever load there is.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datacenter.accounts.agents import enroll_agent
from datacenter.accounts.tenants import create_tenant
from datacenter.ingest.rows import CALL_COLUMNS, call_values
from datacenter.store import partitions
from datacenter.store.engine import open_store, upgrade, write_transaction
from datacenter.store.rollups import rebuild
from shared.icdr import ICDR, Completion, Direction
from tests.fixtures.postgres import server_memory, throwaway_cluster

FIRST = date(2026, 1, 1)
MONTHS = 6
SPAN_SECONDS = 181 * 86_400  # 1 January to 1 July 2026


def template(tenant_id: int) -> dict[str, object]:
    """One call's row (the others are copies with their own id, tenant and start)."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rec = ICDR(
        record_id="template", agent_id="edge-1", source_id="mivb", source_kind="mivb-smdr",
        start=start, answer=start.replace(second=5), end=start.replace(minute=2),
        utc_offset_minutes=0, ring_seconds=5, talk_seconds=115, direction=Direction.OUT,
        calling="2201", called="T025", dialled_digits="07700900123", extension="2201",
        trunk="T025", answered=True, completion=Completion.ANSWERED,
        raw="template 07700900123", parser_version="bench/1",
    )  # fmt: skip
    return dict(zip(CALL_COLUMNS, call_values(tenant_id, rec, "bench.ccb", start), strict=True))


def load(engine: sa.Engine, calls: int, tenants: int) -> None:
    """``calls`` calls and their costs over ``MONTHS`` months, round-robin over the tenants."""
    with write_transaction(engine) as conn:
        ids = []
        for n in range(tenants):
            ids.append(create_tenant(conn, f"t{n}", f"T{n}", "Europe/London").tenant_id)
            enroll_agent(conn, f"t{n}", "edge-1")
        table = sa.Table("calls", sa.MetaData(), autoload_with=conn)
        conn.execute(table.insert().values(**template(ids[0])))
        columns = [c.name for c in table.columns]
        select = []
        for name in columns:
            if name == "tenant_id":
                select.append(f"(array{ids})[1 + mod(g, {tenants})]")
            elif name == "record_id":
                select.append("'c' || g")
            elif name in ("start_utc", "answer_utc", "end_utc"):
                select.append(f"t.{name} + (g::bigint * {SPAN_SECONDS} / {calls}) * interval '1 s'")
            else:
                select.append(f"t.{name}")
        conn.exec_driver_sql(
            f"INSERT INTO calls ({', '.join(columns)}) SELECT {', '.join(select)} "
            f"FROM calls t, generate_series(1, {calls - 1}) g WHERE t.record_id = 'template'"
        )
        conn.exec_driver_sql("UPDATE calls SET record_id = 'c0' WHERE record_id = 'template'")
        conn.exec_driver_sql("ANALYZE calls")  # or each cost's foreign-key check scans calls
        conn.exec_driver_sql(
            "INSERT INTO call_costs (tenant_id, record_id, cost_minor, currency, decimals, "
            "number_class, e164, carrier, destination, prefix, tariff_version, billed_seconds, "
            "bands, zero_reason, explanation, engine_version, rated_at) "
            "SELECT tenant_id, record_id, 12, 'GBP', 2, 'mobile', '+447700900123', 'britline', "
            "'UK mobile', '447', 'v1', 120, '[\"day\"]', NULL, '{}', 'bench', ingested_at "
            "FROM calls"
        )
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")


def rebuild_all(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        tenants = conn.execute(sa.text("SELECT tenant_id, timezone FROM tenants")).all()
    for tenant_id, zone in tenants:
        with write_transaction(engine) as conn:
            rebuild(conn, tenant_id, ZoneInfo(zone))


def timed(action: object) -> tuple[object, float]:
    started = time.perf_counter()
    result = action()  # type: ignore[operator]
    return result, time.perf_counter() - started


def baselines(engine: sa.Engine) -> tuple[float, float, int]:
    """Seconds to copy calls and call_costs into bare tables, and to DELETE the first month
    from the copies; rows copied."""
    with write_transaction(engine) as conn:
        conn.exec_driver_sql("CREATE TABLE bare_calls (LIKE calls INCLUDING ALL)")
        conn.exec_driver_sql("CREATE TABLE bare_costs (LIKE call_costs INCLUDING ALL)")
    started = time.perf_counter()
    with write_transaction(engine) as conn:
        rows = conn.exec_driver_sql("INSERT INTO bare_calls SELECT * FROM calls").rowcount
        rows += conn.exec_driver_sql("INSERT INTO bare_costs SELECT * FROM call_costs").rowcount
    copy = time.perf_counter() - started
    started = time.perf_counter()
    with write_transaction(engine) as conn:
        conn.exec_driver_sql(  # 0016's costs have no start of their own: by their calls
            "DELETE FROM bare_costs c USING bare_calls k WHERE k.tenant_id = c.tenant_id "
            "AND k.record_id = c.record_id AND k.start_utc < '2026-02-01 00:00+00'"
        )
        conn.exec_driver_sql("DELETE FROM bare_calls WHERE start_utc < '2026-02-01 00:00+00'")
    delete = time.perf_counter() - started
    with write_transaction(engine) as conn:
        conn.exec_driver_sql("DROP TABLE bare_calls, bare_costs")
    return copy, delete, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="100,000 calls")
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--tenants", type=int, default=50)
    args = parser.parse_args()
    calls = 100_000 if args.quick else args.calls
    print(f"load average at start: {os.getloadavg()[0]:.1f} (2 shared cores)")
    with throwaway_cluster(server_memory()) as cluster:
        engine = open_store(cluster.url(cluster.create_database("bench")))
        try:
            upgrade(engine, revision="0016")
            _, seconds = timed(lambda: load(engine, calls, args.tenants))
            print(
                f"loaded {calls:,} calls and their costs (0016, unpartitioned) in {seconds:.1f} s"
            )
            copy, delete, copied = baselines(engine)
            print(f"baseline: bare copy of {copied:,} rows in {copy:.1f} s "
                  f"({copied / copy:,.0f} rows/s); DELETE of one month from it {delete:.2f} s")  # fmt: skip
            _, migrate = timed(lambda: upgrade(engine))
            print(f"migration 0018 (in place, all in DEFAULT): {migrate:.1f} s "
                  f"({calls / migrate:,.0f} calls/s)")  # fmt: skip
            result = partitions.convert(
                engine,
                lambda s: print(f"  moved {s.month:%Y-%m}: {s.rows:,} rows ({s.done}/{s.total})"),
            )
            rate = result.rows / result.seconds
            print(f"convert: {result.rows:,} rows in {len(result.months)} months in "
                  f"{result.seconds:.1f} s = {rate:,.0f} rows/s "
                  f"(bare copy {copied / copy:,.0f} rows/s: {copy / copied * rate:.2f}x its rate)")  # fmt: skip
            with engine.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")
            _, seconds = timed(lambda: rebuild_all(engine))
            print(f"rollups built for every tenant (for the drop to fix): {seconds:.1f} s")
            dropped = partitions.drop_months_before(engine, date(2026, 2, 1))
            drop = dropped.seconds - dropped.rollup_seconds
            print(f"drop 2026-01: {len(dropped.partitions)} partitions detached and dropped "
                  f"in {drop:.2f} s (DELETE of the same month row by row: {delete:.2f} s, "
                  f"{delete / drop:.0f}x the drop); then the rollups of "
                  f"{dropped.tenants_rebuilt} tenants fixed in {dropped.rollup_seconds:.2f} s")  # fmt: skip
        finally:
            engine.dispose()
    print(f"load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
