"""Monthly partitions of calls on PostgreSQL (migration 0018, ``datacenter.store.partitions``).

Judged from the store: what the tables hold before and after, the catalogue's partitions, the
planner's plans, and the rollups against the raw calls. Retention per tenant runs on both
backends; everything else is PostgreSQL's (SQLite is refused with a clear error).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from datacenter.cli import main
from datacenter.health.runner import AlarmRunner
from datacenter.ingest.rows import CALL_COLUMNS, call_values
from datacenter.ingest.worker import ingest_once
from datacenter.rating import load_carrier_rules, load_dial_plan
from datacenter.rating.rerate import retry_unrated
from datacenter.rating.store import set_site
from datacenter.settings import Settings, StoreSettings, settings_for_data_dir
from datacenter.store import partitions
from datacenter.store.engine import open_store, upgrade, write_transaction
from datacenter.store.rollups import differences
from datacenter.store.scoped import CallFilter, TenantScope
from datacenter.store.stats import store_stats
from datacenter.store.tables.partitioning import PARTITIONED_TABLES
from shared.errors import StoreError
from shared.icdr import ICDR, make_record_id
from tests.fixtures.cost_alarms import AGENT, DEMO, gen_call, seed_cost_world
from tests.fixtures.postgres import PgCluster
from tests.fixtures.store import gen_agent, gen_batch, gen_tenant, land

UNPLANNED = "edge-2"  # an agent without a dial plan: its calls go to the unrated queue
MONTHS = [date(2025, 11, 1), date(2025, 12, 1), date(2026, 1, 1), date(2026, 2, 1)]


def calls_in(month: date, key: str, count: int, *, agent: str = AGENT) -> list[ICDR]:
    """``count`` calls of ``month``, the first one at its very first second (UTC), the others
    spread over its days; ``agent``'s record ids."""
    out = []
    for n in range(count):
        start = datetime(month.year, month.month, 1, tzinfo=UTC) + timedelta(
            days=n % 27, hours=(n * 7) % 24
        )
        rec = gen_call(f"{key}-{n}", start=start, talk=30 + n, dialled="07700900123")
        out.append(replace(rec, agent_id=agent, record_id=make_record_id(agent, f"{key}-{n}")))
    return out


def snapshot(engine: sa.Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the four tables (all their columns), sorted."""
    out = {}
    with engine.connect() as conn:
        for name in PARTITIONED_TABLES:
            table = sa.Table(name, sa.MetaData(), autoload_with=conn)
            rows = conn.execute(sa.select(table)).all()
            out[name] = sorted((tuple(row) for row in rows), key=repr)
    return out


def relations(conn: sa.Connection, statement: str, params: Any) -> set[str]:
    """The tables a statement's plan reads (EXPLAIN, never run)."""
    [plan] = conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {statement}", params).scalar_one()
    found: set[str] = set()

    def walk(node: dict[str, Any]) -> None:
        if "Relation Name" in node:
            found.add(node["Relation Name"])
        for child in node.get("Plans", []):
            walk(child)

    walk(plan["Plan"])
    return found


def settings_for(tmp_path: Path, url: str) -> Settings:
    base = settings_for_data_dir(tmp_path / "data")
    return replace(
        base, store=StoreSettings(url=url), ingest=replace(base.ingest, accept_unprotected=True)
    )


def ingest(settings: Settings, engine: sa.Engine, records: list[ICDR], *, agent: str,
           sequence: int) -> int:  # fmt: skip
    land(settings, "acme", *gen_batch(records, agent_id=agent, sequence=sequence))
    return ingest_once(engine, settings, keys=None).inserted


@pytest.fixture
def old_store(pg_cluster: PgCluster) -> Iterator[sa.Engine]:
    """An empty store at revision 0016: calls and their results not partitioned yet."""
    engine = open_store(pg_cluster.url(pg_cluster.create_database()))
    upgrade(engine, revision="0016")
    try:
        yield engine
    finally:
        engine.dispose()


def _fill_old_store(engine: sa.Engine) -> tuple[int, list[ICDR]]:
    """acme: 40 calls over four months, as the tables of 0016 hold them: costs, queue rows
    and history rows, written straight into them (ingest's code is today's)."""
    tenant = gen_tenant(engine, "acme", timezone="Europe/London")
    gen_agent(engine, "acme", AGENT)
    records = [rec for month in MONTHS for rec in calls_in(month, f"{month:%Y%m}", 10)]
    now = datetime(2026, 3, 1, tzinfo=UTC)
    with write_transaction(engine) as conn:
        old = {n: sa.Table(n, sa.MetaData(), autoload_with=conn) for n in PARTITIONED_TABLES}
        conn.execute(old["calls"].insert(), [
            dict(zip(CALL_COLUMNS, call_values(tenant.tenant_id, rec, "f.ccb", now), strict=True))
            for rec in records
        ])  # fmt: skip
        for n, rec in enumerate(records):
            key = {"tenant_id": tenant.tenant_id, "record_id": rec.record_id}
            if n % 4 == 3:
                conn.execute(old["unrated_calls"].insert().values(
                    **key, reason="no_dial_plan", detail="-", explanation={},
                    first_attempt_at=now, last_attempt_at=now, attempts=n))  # fmt: skip
                continue
            conn.execute(old["call_costs"].insert().values(
                **key, cost_minor=100 + n, currency="GBP", decimals=4, number_class="mobile",
                e164="+447700900123", carrier="britline", destination="UK mobile",
                prefix="447", tariff_version="v1", billed_seconds=60, bands=["day"],
                zero_reason=None, explanation={"n": n}, engine_version="test", rated_at=now))  # fmt: skip
            if n % 5 == 0:
                conn.execute(old["call_cost_history"].insert().values(
                    **key, changed_at=now, old_cost_minor=n, old_currency="GBP",
                    old_tariff_version="v0", old_explanation={}, new_cost_minor=100 + n,
                    new_currency="GBP", new_tariff_version="v1", cause="rerate"))  # fmt: skip
    return tenant.tenant_id, records


@pytest.mark.postgres
def test_conversion_keeps_every_call_and_cost_while_ingest_goes_on(
    old_store: sa.Engine, tmp_path: Path
) -> None:
    engine = old_store
    _tenant_id, records = _fill_old_store(engine)
    before = snapshot(engine)
    upgrade(engine)  # 0018: in place, everything now in the DEFAULT partitions
    starts = {rec.record_id: rec.start for rec in records}
    with engine.connect() as conn:
        assert partitions.is_partitioned(conn) and partitions.attached_months(conn) == []
        assert partitions.default_rows(conn) == 40
        for name in PARTITIONED_TABLES[1:]:  # each result row got its call's start
            rows = conn.execute(sa.text(f"SELECT record_id, start_utc FROM {name}")).all()
            assert rows and all(start == starts[rid] for rid, start in rows), name
    settings = settings_for(tmp_path, engine.url.render_as_string(hide_password=False))
    steps: list[partitions.MonthMoved] = []
    late = calls_in(date(2025, 12, 1), "late", 3)  # ingested between two months' moves

    def progress(step: partitions.MonthMoved) -> None:
        steps.append(step)
        if step.done == 1:
            assert ingest(settings, engine, late, agent=AGENT, sequence=1) == 3

    result = partitions.convert(engine, progress)
    assert result.months == tuple(MONTHS) and [s.month for s in steps] == MONTHS
    assert [s.done for s in steps] == [1, 2, 3, 4] and {s.total for s in steps} == {4}
    # Every row moved once: those of before, and the late calls (December's, which had no
    # partition yet when they came) with their queue rows (no dial plan here).
    assert result.rows == sum(len(rows) for rows in before.values()) + 2 * 3
    assert result.rows == sum(s.rows for s in steps)
    after = snapshot(engine)
    with engine.connect() as conn:
        assert partitions.default_rows(conn) == 0
        assert partitions.attached_months(conn) == MONTHS
        columns = {
            n: [c["name"] for c in sa.inspect(conn).get_columns(n)] for n in PARTITIONED_TABLES
        }
        late_ids = {rec.record_id for rec in late}
        for name in PARTITIONED_TABLES:  # nothing left in DEFAULT, every month in its own
            assert conn.execute(sa.text(f"SELECT count(*) FROM {name}_default")).scalar() == 0
        # The new months have statistics (-1: never analysed) and DEFAULT was vacuumed.
        names = [partitions.partition_name(t, m) for t in PARTITIONED_TABLES for m in MONTHS]
        analysed = conn.execute(
            sa.text("SELECT relname, reltuples FROM pg_class WHERE relname = ANY(:names)"),
            {"names": names},
        ).all()
        assert len(analysed) == len(PARTITIONED_TABLES) * len(MONTHS), analysed
        assert all(tuples >= 0 for _name, tuples in analysed), analysed
        vacuumed = conn.execute(sa.text(
            "SELECT relname FROM pg_stat_user_tables "
            "WHERE relname LIKE '%\\_default' AND last_vacuum IS NOT NULL"
        )).scalars()  # fmt: skip
        assert sorted(vacuumed) == sorted(f"{name}_default" for name in PARTITIONED_TABLES)
        kept = conn.execute(
            sa.text("SELECT count(*) FROM calls_y2025m12 WHERE record_id = ANY(:ids)"),
            {"ids": sorted(late_ids)},
        ).scalar()
        assert kept == 3
    # The rows of before, column for column (the results' new start_utc aside), are the rows now.
    for name in PARTITIONED_TABLES:
        old_columns = columns[name] if name == "calls" else columns[name][:-1]
        assert columns[name][-1] == "start_utc" or name == "calls"
        now_rows = sorted(
            (row[: len(old_columns)] for row in after[name] if _record(row) not in late_ids),
            key=repr,
        )
        assert now_rows == before[name], name


def _record(row: tuple[Any, ...]) -> str:
    return str(row[1])  # record_id, the second column of every table


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgres"])
def test_a_resent_call_is_stored_once_even_in_another_months_partition(
    store: sa.Engine, dc_settings: Settings
) -> None:
    gen_tenant(store, "acme")
    gen_agent(store, "acme", AGENT)
    first = calls_in(date(2026, 3, 1), "x", 20)
    assert ingest(dc_settings, store, first, agent=AGENT, sequence=1) == 20
    # The same ids again, their starts moved 40 days on (April): the partition the copy would
    # land in has no such key, but call_keys has. Half new calls with them: the staging path.
    moved = [replace(rec, start=rec.start + timedelta(days=40), end=rec.end + timedelta(days=40),
                     answer=None if rec.answer is None else rec.answer + timedelta(days=40))
             for rec in first]  # fmt: skip
    fresh = calls_in(date(2026, 4, 1), "y", 10)
    assert ingest(dc_settings, store, moved, agent=AGENT, sequence=2) == 0
    assert ingest(dc_settings, store, [*moved[:5], *fresh], agent=AGENT, sequence=3) == 10
    assert ingest(dc_settings, store, first, agent=AGENT, sequence=4) == 0
    with store.connect() as conn:

        def count(sql: str) -> Any:
            return conn.execute(sa.text(sql)).scalar()

        assert count("SELECT count(*) FROM calls") == 30
        assert count("SELECT count(DISTINCT record_id) FROM calls") == 30
        assert count("SELECT count(*) FROM call_keys") == 30
        assert count("SELECT count(*) FROM calls_y2026m03") == 20
        assert count("SELECT count(*) FROM calls_y2026m04") == 10
        # one result row per call, each in its call's month
        assert count("SELECT count(*) FROM unrated_calls") == 30  # no dial plan here
        assert count("SELECT count(*) FROM unrated_calls_y2026m04") == 10


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgres"])
def test_calls_outside_every_partition_land_in_default_and_show_in_stats(
    store: sa.Engine, dc_settings: Settings
) -> None:
    tenant = gen_tenant(store, "acme")
    gen_agent(store, "acme", AGENT)
    far = calls_in(date(2031, 5, 1), "far", 4)  # no partition for 2031
    assert ingest(dc_settings, store, far, agent=AGENT, sequence=1) == 4
    with store.connect() as conn:
        conn.exec_driver_sql("ANALYZE")  # the figures come from the statistics
        conn.commit()
        assert partitions.default_rows(conn) == 4
        stats = {t.name: t for t in store_stats(conn).tables}
        default = {p.name: p for p in stats["calls"].partitions}["calls_default"]
        assert (default.bounds, default.rows) == ("DEFAULT", 4)  # as ANALYZE counted
        queue = {p.name: p for p in stats["unrated_calls"].partitions}["unrated_calls_default"]
        assert queue.rows == 4
    text = CliRunner().invoke(main, ["store", "stats", "--config", str(_config(dc_settings))])
    assert text.exit_code == 0, text.output
    assert "calls_default" in text.output and "DEFAULT" in text.output
    # Making the month later moves them out of DEFAULT into it: still readable, once.
    assert partitions.create_months(store, [date(2031, 5, 1)]) == [
        f"{name}_y2031m05" for name in PARTITIONED_TABLES
    ]
    assert partitions.create_months(store, [date(2031, 5, 1)]) == []  # made once
    with store.connect() as conn:
        assert partitions.default_rows(conn) == 0
        assert conn.execute(sa.text("SELECT count(*) FROM calls_y2031m05")).scalar() == 4
        assert conn.execute(sa.text("SELECT count(*) FROM unrated_calls_y2031m05")).scalar() == 4
        scope = TenantScope(conn, tenant.tenant_id)
        assert [scope.get_call(rec.record_id) is not None for rec in far] == [True] * 4


def _config(settings: Settings) -> Path:
    path = settings.data_dir / "datacenter.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f'data_dir = "{settings.data_dir}"\n[store]\nurl = "{settings.store.url}"\n'
        "[ingest]\naccept_unprotected = true\n"
    )
    return path


def _rated_world(store: sa.Engine, settings: Settings) -> tuple[int, Any]:
    """acme (London): rated calls, re-rated queue calls (history rows) and queued calls,
    in every month from November 2025 to February 2026."""
    world = seed_cost_world(store, settings)
    gen_agent(store, "acme", UNPLANNED)
    gen_agent(store, "acme", "edge-3")
    sequence = 0
    for month in MONTHS:
        for agent, count in ((AGENT, 6), (UNPLANNED, 3), ("edge-3", 2)):
            sequence += 1
            ingest(settings, store, calls_in(month, f"{month:%Y%m}", count, agent=agent),
                   agent=agent, sequence=sequence)  # fmt: skip
    with write_transaction(store) as conn:  # UNPLANNED gets its dial plan: a retry rates it
        set_site(conn, world.tenant.tenant_id, UNPLANNED,
                 dial_plan=load_dial_plan(DEMO / "london.toml"),
                 carriers=load_carrier_rules(DEMO / "london-routes.toml"),
                 now=datetime(2026, 3, 1, tzinfo=UTC))  # fmt: skip
    report = retry_unrated(store, world.tenant.tenant_id, now=datetime(2026, 3, 2, tzinfo=UTC))
    assert report.changed == 12  # 3 calls x 4 months: each gets a history row
    return world.tenant.tenant_id, world.tenant.zone


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgres"])
def test_drop_before_removes_exactly_those_months_and_the_rollups_follow(
    store: sa.Engine, dc_settings: Settings
) -> None:
    tenant_id, zone = _rated_world(store, dc_settings)
    before = snapshot(store)
    assert all(before[name] for name in PARTITIONED_TABLES)  # every kind of row is there
    result = partitions.drop_months_before(store, date(2026, 1, 1))
    # Every month of the store's 2025 went (the fixture made 2025-2027), for all four tables.
    assert result.months == tuple(date(2025, m, 1) for m in range(1, 13))
    assert len(result.partitions) == 12 * 4 and result.tenants_rebuilt == 1
    after = snapshot(store)
    cutoff = datetime(2026, 1, 1, tzinfo=UTC)
    with store.connect() as conn:
        for name in PARTITIONED_TABLES:
            start = [c["name"] for c in sa.inspect(conn).get_columns(name)].index("start_utc")
            kept = [row for row in before[name] if row[start] >= cutoff]
            assert after[name] == kept and 0 < len(kept) < len(before[name]), name
        assert partitions.attached_months(conn)[0] == date(2026, 1, 1)
        names = set(conn.execute(sa.text("SELECT relname FROM pg_class")).scalars())
        assert not {f"{t}_y2025m12" for t in PARTITIONED_TABLES} & names
        assert differences(conn, tenant_id, zone) == []
        # the keys stay: a batch of November sent again is still a duplicate
        assert conn.execute(sa.text("SELECT count(*) FROM call_keys")).scalar() == 44
    again = calls_in(date(2025, 11, 1), "202511", 6)
    assert ingest(dc_settings, store, again, agent=AGENT, sequence=99) == 0


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgres"])
def test_a_tenant_and_month_query_reads_only_that_months_partitions(
    store: sa.Engine, dc_settings: Settings
) -> None:
    tenant_id, _zone = _rated_world(store, dc_settings)
    seen: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if "FROM calls" in statement:
            seen.append((statement, params))

    month = CallFilter(date_from=date(2025, 12, 1), date_to=date(2025, 12, 31), utc=True)
    sa.event.listen(store, "before_cursor_execute", capture)
    try:
        with store.connect() as conn:
            page = TenantScope(conn, tenant_id).list_calls(month)
    finally:
        sa.event.remove(store, "before_cursor_execute", capture)
    assert page.calls and all(c.start_utc.month == 12 for c in page.calls)
    assert seen
    with store.connect() as conn:
        for statement, params in seen:
            read = relations(conn, statement, params)
            months = {r for r in read if r.startswith("calls_")}
            assert months == {"calls_y2025m12"}, (statement, read)


def test_a_tenants_retention_deletes_its_calls_before_the_day_in_batches(
    store: sa.Engine, dc_settings: Settings
) -> None:
    tenant_id, zone = _rated_world(store, dc_settings)
    other = gen_tenant(store, "globex")
    gen_agent(store, "globex", AGENT)
    land(dc_settings, "globex", *gen_batch(calls_in(date(2025, 11, 1), "g", 5), tenant="globex"))
    assert ingest_once(store, dc_settings, keys=None).inserted == 5
    before = snapshot(store)
    cutoff = datetime(2025, 12, 15, 12, tzinfo=UTC)
    deleted = partitions.delete_calls_before(store, tenant_id, cutoff, batch=7)
    after = snapshot(store)
    with store.connect() as conn:
        for name in PARTITIONED_TABLES:
            columns = [c["name"] for c in sa.inspect(conn).get_columns(name)]
            start, tenant = columns.index("start_utc"), columns.index("tenant_id")
            kept = [
                row for row in before[name]
                if row[tenant] != tenant_id or _utc(row[start]) >= cutoff
            ]  # fmt: skip
            assert after[name] == kept, name
        assert deleted == len(before["calls"]) - len(after["calls"]) > 7  # more than one batch
        assert differences(conn, tenant_id, zone) == []
        assert differences(conn, other.tenant_id, other.zone) == []


def _utc(value: datetime) -> datetime:
    """A time as read back by a reflected table: SQLite's come naive (they are UTC)."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def test_sqlite_is_not_partitioned_and_says_so(tmp_path: Path) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 'callcollect.db'}")
    try:
        upgrade(engine)
        with pytest.raises(StoreError, match="only PostgreSQL"):
            partitions.create_ahead(engine, 1)
        with pytest.raises(StoreError, match="only PostgreSQL"):
            partitions.drop_months_before(engine, date(2024, 1, 1))
    finally:
        engine.dispose()
    config = tmp_path / "datacenter.toml"
    config.write_text(
        f'data_dir = "{tmp_path}"\n[store]\nurl = "sqlite:///{tmp_path / "callcollect.db"}"\n'
    )
    result = CliRunner().invoke(
        main, ["store", "partitions", "--ahead", "2", "--config", str(config)]
    )
    assert result.exit_code == 8 and "only PostgreSQL" in result.output
    bad = CliRunner().invoke(
        main, ["store", "partitions", "--drop-before", "2024-13", "--config", str(config)]
    )
    assert bad.exit_code == 2 and "YYYY-MM" in bad.output


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgres"])
def test_the_partitions_command_makes_converts_and_drops(
    store: sa.Engine, dc_settings: Settings
) -> None:
    gen_tenant(store, "acme")
    gen_agent(store, "acme", AGENT)
    ingest(dc_settings, store, calls_in(date(2031, 5, 1), "far", 3), agent=AGENT, sequence=1)
    config = str(_config(dc_settings))

    def run(*args: str) -> Any:
        return CliRunner().invoke(main, ["store", "partitions", *args, "--config", config])

    listed = run()
    assert listed.exit_code == 0, listed.output
    assert "2025-01 to 2027-12 (36 partitions)" in listed.output
    assert "in DEFAULT: 3 call(s) (run --convert)" in listed.output
    converted = run("--convert")
    assert converted.exit_code == 0, converted.output
    assert "moved 6 row(s) in 1 month(s)" in converted.output  # 3 calls, 3 queue rows
    ahead = run("--ahead", "0")
    assert ahead.exit_code == 0 and "made" in ahead.output
    dropped = run("--drop-before", "2026-01")
    assert dropped.exit_code == 0, dropped.output
    assert "dropped months: 2025-01, 2025-02" in dropped.output
    with store.connect() as conn:
        assert partitions.attached_months(conn)[0] == date(2026, 1, 1)
        assert date(2031, 5, 1) in partitions.attached_months(conn)


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgres"])
def test_the_alarm_loop_keeps_months_ahead_once_a_day(
    store: sa.Engine, dc_settings: Settings
) -> None:
    runner = AlarmRunner(store, dc_settings)
    now = datetime(2027, 11, 20, 6, 0, tzinfo=UTC)  # the store has months up to 2027-12
    made = runner.make_partitions_if_due(now)
    assert made == [
        f"{name}_y{year}m{month:02d}"
        for year, month in ((2028, 1), (2028, 2))
        for name in PARTITIONED_TABLES
    ]
    later = datetime(2028, 2, 10, tzinfo=UTC)  # months on, but the same runner looked today
    assert runner.make_partitions_if_due(now + timedelta(hours=23)) == []
    assert runner.make_partitions_if_due(later) == [
        f"{name}_y{year}m{month:02d}"
        for year, month in ((2028, 3), (2028, 4), (2028, 5))
        for name in PARTITIONED_TABLES
    ]


def test_the_alarm_loop_makes_no_partitions_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'callcollect.db'}"
    engine = open_store(url)
    try:
        upgrade(engine)
        runner = AlarmRunner(engine, settings_for(tmp_path, url))
        assert runner.make_partitions_if_due(datetime.now(UTC)) == []
    finally:
        engine.dispose()
