"""Report queries against hand-computed figures on a fixed data set, on both backends.

A London tenant, britline's 2025-01 tariff. Sunday 30 March 2025 is the UK's spring-forward
day: its local day runs 00:00 GMT to 00:00 BST, 23 hours (00:00-23:00 UTC).

    A  2001 out  30 Mar 00:30 UTC (00:30 GMT, Sun)  125 s UK geographic, weekend:
       billed 180 s, 3 x 0.0100 + 0.0150 fee = 0.0450 -> half_up 0.05 GBP = 50,000 micro
    B  2001 out  30 Mar 22:59:30 UTC (23:59:30 BST, Sun) 50 s UK geographic, ends after local
       midnight; one 60 s increment at the weekend rate: 0.0100 + 0.0150 = 0.025 -> 0.03 GBP
    C  2002 out  30 Mar 23:00 UTC = 00:00 BST Mon 31 Mar, 60 s UK geographic, evening:
       0.0150 + 0.0150 = 0.03 GBP (a UTC day would put it on the 30th; the tenant's day is the 31st)
    D  2002 in   29 Mar 23:30 UTC (23:30 GMT, Sat), not answered
    E  2101 out  31 Mar 09:00 UTC (10:00 BST, Mon) 60 s UK mobile, day: 0.0800 GBP
       (re-rated to 0.10 GBP in ``world``: the mobile day rate raised to 0.1000)

(Each outgoing call is answered 5 s after it starts; billing runs from the answer. A to E
run on trunk T1: B (22:59:30-23:00:25 UTC) is still up when C starts at 23:00:00.)

Incoming calls on Tuesday 1 April (BST), trunk T9, answered after ``ring`` seconds:

    F  2001 in 08:00:00 UTC ring  8, answered, talk 100 (ends 08:01:48)
    G  2002 in 08:01:00 UTC ring 25, answered, talk  30 (ends 08:01:55)
    H  2002 in 08:02:00 UTC ring 40, abandoned         (ends 08:02:40)
    I  2101 in 08:03:00 UTC ring 70, no answer         (ends 08:04:10)

``world`` adds the directory (2001 Ann, Sales, CC10, London all along; 2002 Bob, Support, CC20,
Leeds until Monday 00:00 BST = Sunday 23:00 UTC, then Cat, Sales, CC10, London; 2101 nobody),
account codes (A P100, E P200, set at ingest) and the re-rate of E.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from datacenter.accounts.tenants import Tenant
from datacenter.directory.entries import EntryInput, add_entry
from datacenter.ingest.worker import ingest_once
from datacenter.rating.carriers import load_carrier_rules
from datacenter.rating.numbering import load_dial_plan
from datacenter.rating.rerate import rerate
from datacenter.rating.store import import_tariff_plan, set_site
from datacenter.rating.tariffs import load_tariff
from datacenter.reports.catalog import REPORTS, ReportParams, report
from datacenter.reports.dashboard import dashboard
from datacenter.reports.detail import DetailRequest, call_detail
from datacenter.reports.periods import utc_bounds
from datacenter.reports.scope import ScopeTarget
from datacenter.reports.summaries import SummaryRequest, SummaryRow, summary, summary_query
from datacenter.reports.trunks import sweep
from datacenter.reports.user_scope import report_scope
from datacenter.settings import Settings
from datacenter.store.call_scope import UserScope
from datacenter.store.engine import write_transaction
from shared.errors import ValidationError
from shared.icdr import ICDR, Completion, Direction
from tests.factories import gen_outgoing_call
from tests.fixtures.store import gen_agent, gen_batch, gen_tenant, land

DEMO = Path(__file__).resolve().parents[2] / "datacenter" / "rating" / "demo"
SAT, SUN, MON = date(2025, 3, 29), date(2025, 3, 30), date(2025, 3, 31)
NATIONAL, MOBILE = "901632960123", "907700900123"


def _out(n: int, start: datetime, talk: int, extension: str, number: str) -> ICDR:
    return gen_outgoing_call(
        n, start=start, talk_seconds=talk, extension=extension, dialled_digits=number,
        called=number, source_kind="lync-cdr",
    )  # fmt: skip


CALLS = {
    "A": _out(1, datetime(2025, 3, 30, 0, 30, tzinfo=UTC), 125, "2001", NATIONAL),
    "B": _out(2, datetime(2025, 3, 30, 22, 59, 30, tzinfo=UTC), 50, "2001", NATIONAL),
    "C": _out(3, datetime(2025, 3, 30, 23, 0, tzinfo=UTC), 60, "2002", NATIONAL),
    "D": gen_outgoing_call(
        4,
        start=datetime(2025, 3, 29, 23, 30, tzinfo=UTC),
        direction=Direction.IN,
        extension="2002",
        answered=False,
        answer=None,
        talk_seconds=0,
        end=datetime(2025, 3, 29, 23, 30, 20, tzinfo=UTC),
        completion=Completion.NO_ANSWER,
        calling="01632960999",
        called="2002",
        dialled_digits="",
        source_kind="lync-cdr",
    ),
    "E": _out(5, datetime(2025, 3, 31, 9, 0, tzinfo=UTC), 60, "2101", MOBILE),
}
CALLS["A"] = replace(CALLS["A"], account_code="P100")
CALLS["E"] = replace(CALLS["E"], account_code="P200")


def _in(
    n: int, minute: int, ring: int, extension: str, completion: Completion, talk: int = 0
) -> ICDR:
    start = datetime(2025, 4, 1, 8, minute, tzinfo=UTC)
    answered = completion is Completion.ANSWERED
    answer = start + timedelta(seconds=ring) if answered else None
    return gen_outgoing_call(
        n, start=start, direction=Direction.IN, extension=extension, answered=answered,
        answer=answer, ring_seconds=ring, talk_seconds=talk,
        end=(answer + timedelta(seconds=talk)) if answer else start + timedelta(seconds=ring),
        completion=completion, calling=f"0163296{n:04d}", called=extension, dialled_digits="",
        trunk="T9", source_kind="lync-cdr",
    )  # fmt: skip


INBOUND = {
    "F": _in(6, 0, 8, "2001", Completion.ANSWERED, 100),
    "G": _in(7, 1, 25, "2002", Completion.ANSWERED, 30),
    "H": _in(8, 2, 40, "2002", Completion.ABANDONED),
    "I": _in(9, 3, 70, "2101", Completion.NO_ANSWER),
}
TUE = date(2025, 4, 1)


@pytest.fixture
def tenant(store: sa.Engine, dc_settings: Settings) -> Tenant:
    made = gen_tenant(store, "acme", timezone="Europe/London")
    gen_agent(store, "acme", "edge-1")
    start = datetime(2025, 1, 1, tzinfo=UTC)
    with write_transaction(store) as conn:
        import_tariff_plan(conn, made.tenant_id, load_tariff(DEMO / "britline.toml"), now=start)
        set_site(
            conn, made.tenant_id, "edge-1", dial_plan=load_dial_plan(DEMO / "london.toml"),
            carriers=load_carrier_rules(DEMO / "london-routes.toml"), now=start,
        )  # fmt: skip
    name, data = gen_batch([*CALLS.values(), *INBOUND.values()])
    land(dc_settings, "acme", name, data)
    ingest_once(store, dc_settings, worker_id="w1")
    return made


def _summary(
    engine: sa.Engine, tenant: Tenant, by: str, first: date, last: date, **kw: object
) -> list[SummaryRow]:
    request = SummaryRequest(tenant.tenant_id, tenant.zone, by, first, last, **kw)  # type: ignore[arg-type]
    with engine.connect() as conn:
        rows = summary(conn, request)
        assert rows == summary(conn, request, source="raw")
    return rows


def _gbp(rows: Sequence[SummaryRow]) -> dict[object, tuple[int, ...]]:
    """value -> (calls, answered, talk, billed, cost) of the GBP rows."""
    return {
        r.value: (r.calls, r.answered, r.talk_seconds, r.billed_seconds, r.cost_micro)
        for r in rows
        if r.currency == "GBP"
    }


def test_the_spring_forward_day_is_23_hours_and_a_call_belongs_to_the_day_it_started(
    store: sa.Engine, tenant: Tenant
) -> None:
    rows = _summary(store, tenant, "extension", SUN, SUN)
    # A and B (B ends after midnight); C starts at 23:00 UTC, which is already Monday in London.
    assert [(r.value, r.currency) for r in rows] == [("2001", "GBP")]
    assert _gbp(rows) == {"2001": (2, 2, 175, 240, 80_000)}


def test_summaries_by_extension_class_and_direction(store: sa.Engine, tenant: Tenant) -> None:
    by_extension = _summary(store, tenant, "extension", SAT, MON)
    assert _gbp(by_extension) == {
        "2001": (2, 2, 175, 240, 80_000),
        "2002": (1, 1, 60, 60, 30_000),
        "2101": (1, 1, 60, 60, 80_000),
    }
    unanswered = [r for r in by_extension if r.currency != "GBP"]
    assert [(r.value, r.calls, r.answered, r.talk_seconds, r.cost_micro) for r in unanswered] == [
        ("2002", 1, 0, 0, 0)
    ]
    by_class = _gbp(_summary(store, tenant, "destination_class", SUN, MON))
    assert by_class == {"national": (3, 3, 235, 300, 110_000), "mobile": (1, 1, 60, 60, 80_000)}
    by_direction = _summary(store, tenant, "direction", SAT, MON)
    assert {r.value: sum(x.calls for x in by_direction if x.value == r.value) for r in by_direction} == {
        "in": 1, "out": 4,
    }  # fmt: skip
    assert _summary(store, tenant, "extension", SAT, SAT)[0].calls == 1  # D, 23:30 GMT Saturday


def test_filters_narrow_the_summary(store: sa.Engine, tenant: Tenant) -> None:
    rows = _summary(store, tenant, "extension", SAT, MON, filters={"extension": "2000-2099, !2002"})
    assert _gbp(rows) == {"2001": (2, 2, 175, 240, 80_000)}
    by_carrier = _summary(store, tenant, "carrier", SAT, MON, filters={"destination_class": "mob%"})
    assert _gbp(by_carrier) == {"britline": (1, 1, 60, 60, 80_000)}


def _only_2001(target: ScopeTarget) -> list[sa.ColumnElement[bool]]:
    assert target.extension is not None
    return [target.extension == "2001"]


def test_calls_outside_the_scope_are_not_counted(store: sa.Engine, tenant: Tenant) -> None:
    # By carrier the rollup has no extension, so the scoped summary reads the raw calls.
    rows = _summary(store, tenant, "carrier", SAT, MON, scope=_only_2001)
    assert _gbp(rows) == {"britline": (2, 2, 175, 240, 80_000)}
    rows = _summary(store, tenant, "direction", SAT, MON, scope=_only_2001)
    assert [(r.value, r.calls) for r in rows] == [("out", 2)]


def test_call_detail_pages_filters_and_sorts(store: sa.Engine, tenant: Tenant) -> None:
    def ids(**kw: object) -> list[str]:
        request = DetailRequest(tenant.tenant_id, tenant.zone, SAT, MON, **kw)  # type: ignore[arg-type]
        with store.connect() as conn:
            return [row.record_id for row in call_detail(conn, request)]

    rid = {name: rec.record_id for name, rec in CALLS.items()}
    assert ids(descending=False) == [rid[n] for n in "DABCE"]
    assert ids(limit=2) == [rid["E"], rid["C"]]
    assert ids(limit=2, offset=2) == [rid["B"], rid["A"]]
    assert ids(filters={"extension": "!2001"}, descending=False) == [rid[n] for n in "DCE"]
    assert ids(filters={"cost": "0.05-1"}, descending=False) == [rid["A"], rid["E"]]
    assert ids(filters={"talk_seconds": "50,125"}, descending=False) == [rid["A"], rid["B"]]
    assert ids(sort="cost", filters={"direction": "out"})[:2] == [rid["E"], rid["A"]]
    assert ids(scope=_only_2001) == [rid["B"], rid["A"]]
    sunday = DetailRequest(tenant.tenant_id, tenant.zone, SUN, SUN, descending=False)
    with store.connect() as conn:
        assert [r.record_id for r in call_detail(conn, sunday)] == [rid["A"], rid["B"]]


def test_the_catalogue_streams_the_detail_and_totals_the_summary(
    store: sa.Engine, tenant: Tenant
) -> None:
    params = ReportParams(tenant.tenant_id, tenant.zone, SAT, MON, descending=False)
    rid = {name: rec.record_id for name, rec in CALLS.items()}
    with store.connect() as conn:
        detail = report("detail").run(conn, params)
        rows = list(detail.rows)
        keys = [c.key for c in detail.columns]
        assert [r[keys.index("record_id")] for r in rows] == [rid[n] for n in "DABCE"]
        costs = [r[keys.index("cost")] for r in rows]
        assert costs == [Decimal(0), Decimal("0.05"), Decimal("0.03"), Decimal("0.03"),
                         Decimal("0.08")]  # fmt: skip
        by_class = report("summary").run(
            conn, replace(params, options={"by": "destination_class"}, first_day=SUN)
        )
    assert by_class.totals == ("Total", "GBP", 4, 4, 295, 360, Decimal("0.19"))
    assert [row[0] for row in by_class.rows] == ["mobile", "national"]
    with pytest.raises(ValidationError):
        report("no-such-report")


def test_a_portal_users_scope_limits_every_report(store: sa.Engine, tenant: Tenant) -> None:
    # 2002 was in Sales only from Monday 00:00 London time (23:00 UTC Sunday): call C (that
    # instant) is in scope, call D (Saturday) is not; 2001 was never in Sales.
    monday = datetime(2025, 3, 30, 23, 0, tzinfo=UTC)
    with write_transaction(store) as conn:
        add_entry(conn, tenant.tenant_id, EntryInput("2002", "Bo", department="Sales",
                                                     valid_from=monday))  # fmt: skip
    sales = report_scope(UserScope(departments=frozenset({"Sales"})))
    own = report_scope(UserScope(extensions=frozenset({"2001"})))
    assert report_scope(UserScope()) is None
    assert _gbp(_summary(store, tenant, "extension", SAT, MON, scope=sales)) == {
        "2002": (1, 1, 60, 60, 30_000)
    }
    assert _summary(store, tenant, "direction", SAT, MON, scope=sales)[0].calls == 1
    assert _gbp(_summary(store, tenant, "extension", SAT, MON, scope=own)) == {
        "2001": (2, 2, 175, 240, 80_000)
    }
    # The extension scope can be carried by the rollup; the department scope cannot.
    request = SummaryRequest(tenant.tenant_id, tenant.zone, "extension", SAT, MON, scope=own)
    assert "rollup_extension_days" in str(summary_query(request))
    request = replace(request, scope=sales)
    assert "rollup_extension_days" not in str(summary_query(request))


# --- the catalogue's reports on the world: directory, account codes, a re-rated call ---------

BOB_UNTIL = datetime(2025, 3, 30, 23, 0, tzinfo=UTC)  # Monday 00:00 BST


def _dearer_mobiles(folder: Path) -> Path:
    """The demo tariffs with britline-2025-01's UK mobile day rate at 0.1000 (was 0.0800)."""
    shutil.copytree(DEMO, folder)
    deck = folder / "britline-2025-01.csv"
    old = "447,mobile,UK mobile,day,0.0800,"
    assert old in deck.read_text()
    deck.write_text(deck.read_text().replace(old, "447,mobile,UK mobile,day,0.1000,"))
    return folder / "britline.toml"


@pytest.fixture
def world(store: sa.Engine, tenant: Tenant, tmp_path: Path) -> Tenant:
    since = datetime(2025, 1, 1, tzinfo=UTC)
    entries = [
        EntryInput("2001", "Ann", department="Sales", cost_centre="CC10", site="London",
                   valid_from=since),
        EntryInput("2002", "Bob", department="Support", cost_centre="CC20", site="Leeds",
                   valid_from=since, valid_to=BOB_UNTIL),
        EntryInput("2002", "Cat", department="Sales", cost_centre="CC10", site="London",
                   valid_from=BOB_UNTIL),
    ]  # fmt: skip
    rerated_at = datetime(2025, 4, 10, tzinfo=UTC)
    with write_transaction(store) as conn:
        for entry in entries:
            report_ = add_entry(conn, tenant.tenant_id, entry)
            assert not report_.problems, report_.problems
        plan = load_tariff(_dearer_mobiles(tmp_path / "tariff"))
        import_tariff_plan(conn, tenant.tenant_id, plan, now=rerated_at)
    done = rerate(store, tenant.tenant_id, since=datetime(2025, 3, 29, tzinfo=UTC),
                  until=datetime(2025, 4, 2, tzinfo=UTC), zone=tenant.zone, now=rerated_at)  # fmt: skip
    assert done.changed == 1, done  # E only
    return tenant


def _run(store: sa.Engine, tenant: Tenant, name: str, first: date, last: date, **kw: Any) -> Any:
    params = ReportParams(tenant.tenant_id, tenant.zone, first, last, **kw)
    with store.connect() as conn:
        table = report(name).run(conn, params)
        return replace(table, rows=list(table.rows))


def _keyed(table: Any) -> list[dict[str, Any]]:
    keys = [c.key for c in table.columns]
    return [dict(zip(keys, row, strict=True)) for row in table.rows]


G = Decimal  # money in GBP units


def _sorted(rows: Sequence[SummaryRow]) -> list[SummaryRow]:
    return sorted(rows, key=lambda r: (str(r.value), r.currency))


def _both(store: sa.Engine, tenant: Tenant, by: str, first: date, last: date,
          **kw: Any) -> dict[tuple[object, str], tuple[int, ...]]:  # fmt: skip
    """(value, currency) -> (calls, answered, talk, billed, cost); rollups and raw agree."""
    request = SummaryRequest(tenant.tenant_id, tenant.zone, by, first, last, **kw)
    with store.connect() as conn:
        rows = summary(conn, request)
        assert _sorted(rows) == _sorted(summary(conn, request, source="raw"))
    return {(r.value, r.currency): (r.calls, r.answered, r.talk_seconds, r.billed_seconds,
                                    r.cost_micro) for r in rows}  # fmt: skip


def test_summaries_by_person_department_site_cost_centre_and_account_code(
    store: sa.Engine, world: Tenant
) -> None:
    # 2002 changed hands at Monday 00:00 BST: D (Saturday) is Bob's, C (that instant) Cat's;
    # E (2101, nobody's) is re-rated to 0.10.
    assert _both(store, world, "person", SAT, MON) == {
        ("", "GBP"): (1, 1, 60, 60, 100_000),
        ("Ann", "GBP"): (2, 2, 175, 240, 80_000),
        ("Bob", ""): (1, 0, 0, 0, 0),
        ("Cat", "GBP"): (1, 1, 60, 60, 30_000),
    }
    sales = (3, 3, 235, 300, 110_000)
    assert _both(store, world, "department", SAT, MON) == {
        ("", "GBP"): (1, 1, 60, 60, 100_000), ("Sales", "GBP"): sales, ("Support", ""): (1, 0, 0, 0, 0),
    }  # fmt: skip
    assert _both(store, world, "site", SAT, MON) == {
        ("", "GBP"): (1, 1, 60, 60, 100_000), ("London", "GBP"): sales, ("Leeds", ""): (1, 0, 0, 0, 0),
    }  # fmt: skip
    assert _both(store, world, "cost_centre", SAT, MON)[("CC10", "GBP")] == sales
    # Saturday alone: Bob held 2002 all day, so the rollup answers it through the directory.
    assert _both(store, world, "person", SAT, SAT) == {("Bob", ""): (1, 0, 0, 0, 0)}
    assert _both(store, world, "account_code", SAT, MON) == {
        ("", ""): (1, 0, 0, 0, 0),
        ("", "GBP"): (2, 2, 110, 120, 60_000),
        ("P100", "GBP"): (1, 1, 125, 180, 50_000),
        ("P200", "GBP"): (1, 1, 60, 60, 100_000),
    }
    assert _both(store, world, "destination", SUN, MON) == {
        ("UK geographic", "GBP"): (3, 3, 235, 300, 110_000),
        ("UK mobile", "GBP"): (1, 1, 60, 60, 100_000),
    }
    # Filters in the MCS syntax on the new columns, text and number.
    assert _both(store, world, "site", SAT, MON, filters={"person": "A%,C%"}) == {
        ("London", "GBP"): sales
    }
    assert _both(store, world, "person", SAT, MON, filters={"cost": "0.04-1", "site": "!Leeds"}) == {
        ("", "GBP"): (1, 1, 60, 60, 100_000), ("Ann", "GBP"): (1, 1, 125, 180, 50_000),
    }  # fmt: skip


def test_the_summary_table_drills_down_to_the_detail_of_each_row(
    store: sa.Engine, world: Tenant
) -> None:
    table = _run(store, world, "summary", SAT, MON, options={"by": "person"},
                 filters={"direction": "out"})  # fmt: skip
    assert table.totals == ("Total", "GBP", 4, 4, 295, 360, G("0.21"))
    ann = next(row for row in table.rows if row[0] == "Ann")
    assert table.drill(ann) == {"direction": "out", "person": "Ann", "currency": "GBP"}
    detail = _run(store, world, "detail", SAT, MON, filters=table.drill(ann), descending=False)
    ids = [row["record_id"] for row in _keyed(detail)]
    assert ids == [CALLS["A"].record_id, CALLS["B"].record_id]
    assert sum(row["cost"] for row in _keyed(detail)) == ann[-1]
    # "Nobody" (2101's calls) and "no currency" (unrated) are selected with "!_%".
    nobody = next(row for row in table.rows if row[0] == "")
    assert table.drill(nobody) == {"direction": "out", "person": "!_%", "currency": "GBP"}
    detail = _run(store, world, "detail", SAT, MON, filters=table.drill(nobody))
    assert [row["record_id"] for row in _keyed(detail)] == [CALLS["E"].record_id]
    by_extension = _run(store, world, "summary", SAT, MON)
    unrated = next(row for row in by_extension.rows if row[1] == "")
    assert by_extension.drill(unrated) == {"extension": "2002", "currency": "!_%"}
    detail = _run(store, world, "detail", SAT, MON, filters=by_extension.drill(unrated))
    assert [row["record_id"] for row in _keyed(detail)] == [CALLS["D"].record_id]


def test_top_n(store: sa.Engine, world: Tenant) -> None:
    costliest = _keyed(_run(store, world, "top", SAT, MON, options={"n": "2"}))
    assert [(r["record_id"], r["cost"]) for r in costliest] == [
        (CALLS["E"].record_id, G("0.10")), (CALLS["A"].record_id, G("0.05")),
    ]  # fmt: skip
    longest = _keyed(_run(store, world, "top", SAT, MON, options={"kind": "longest", "n": "3"}))
    assert longest[0]["record_id"] == CALLS["A"].record_id
    assert {r["record_id"] for r in longest[1:]} == {CALLS["C"].record_id, CALLS["E"].record_id}
    numbers = _run(store, world, "top", SAT, MON, options={"kind": "numbers"})
    assert [(r["number"], r["calls"], r["talk_seconds"], r["cost"]) for r in _keyed(numbers)] == [
        ("441632960123", 3, 235, G("0.11")), ("447700900123", 1, 60, G("0.10")),
    ]  # fmt: skip
    assert numbers.totals[3:] == (4, 295, G("0.21"))
    assert numbers.drill(numbers.rows[0]) == {"e164": "441632960123", "direction": "out"}
    busiest = _keyed(_run(store, world, "top", SAT, MON, options={"kind": "extensions"}))
    # 2001 and 2002 have two calls each; 2001 cost more.
    assert [(r["extension"], r["calls"], r["answered"], r["cost"]) for r in busiest] == [
        ("2001", 2, 2, G("0.08")), ("2002", 2, 1, G("0.03")), ("2101", 1, 1, G("0.10")),
    ]  # fmt: skip
    with pytest.raises(ValidationError, match=r"o\.n"):
        _run(store, world, "top", SAT, MON, options={"n": "0"})


def test_calls_by_hour_of_day_and_day_of_week_on_the_tenants_clock(
    store: sa.Engine, world: Tenant
) -> None:
    hours = {r["hour"]: (r["calls"], r["answered"], r["talk_seconds"])
             for r in _keyed(_run(store, world, "hour_of_day", SAT, MON)) if r["calls"]}  # fmt: skip
    # A 00:30 GMT and C 00:00 BST; E 10:00 BST; D 23:30 GMT and B 23:59:30 BST.
    assert hours == {"00:00": (2, 2, 185), "10:00": (1, 1, 60), "23:00": (2, 1, 50)}
    week = _run(store, world, "day_of_week", SAT, MON)
    days = {r["weekday"]: (r["calls"], r["answered"], r["talk_seconds"], r["days"])
            for r in _keyed(week) if r["calls"] or r["days"]}  # fmt: skip
    assert days == {"Saturday": (1, 0, 0, 1), "Sunday": (2, 2, 175, 1), "Monday": (2, 2, 120, 1)}
    assert week.totals[1:] == (5, 4, 1, 295, 3)
    # A department scope cannot be carried by the rollups: both read the raw calls then.
    sales = report_scope(UserScope(departments=frozenset({"Sales"})))
    week = _run(store, world, "day_of_week", SAT, MON, scope=sales)
    assert {r["weekday"]: r["calls"] for r in _keyed(week) if r["calls"]} == {
        "Sunday": 2,
        "Monday": 1,
    }
    hours_scoped = _run(store, world, "hour_of_day", SAT, MON, scope=sales)
    assert {r["hour"]: r["calls"] for r in _keyed(hours_scoped) if r["calls"]} == {
        "00:00": 2, "23:00": 1,
    }  # fmt: skip


def test_inbound_service_by_ring_time(store: sa.Engine, world: Tenant) -> None:
    table = _run(store, world, "inbound", SAT, TUE)
    rows = {r["band"]: r for r in _keyed(table)}
    # D (Saturday, rang 5 s, no answer) and F (8 s, answered) in the first band.
    assert [(r["calls"], r["answered"], r["unanswered"], r["abandoned"]) for r in rows.values()] == [
        (2, 1, 1, 0), (0, 0, 0, 0), (1, 1, 0, 0), (1, 0, 0, 1), (1, 0, 1, 0),
    ]  # fmt: skip
    assert list(rows) == ["0-9 s", "10-19 s", "20-29 s", "30-59 s", "60 s and more"]
    assert rows["0-9 s"]["time_to_answer"] == 8 and rows["20-29 s"]["time_to_answer"] == 25
    assert rows["0-9 s"]["answered_percent"] == G("50.0")
    # Totals: 5 calls, 2 answered (mean of 8 and 25 s = 16.5 -> 17), 2 unanswered, 1 abandoned.
    assert table.totals == ("Total", 5, 2, 2, 1, G("40.0"), 17)
    bands = _run(store, world, "inbound", TUE, TUE, options={"bands": "30"})
    assert [r["calls"] for r in _keyed(bands)] == [2, 2]
    own = report_scope(UserScope(extensions=frozenset({"2001"})))
    assert _run(store, world, "inbound", SAT, TUE, scope=own).totals[1:3] == (1, 1)  # F only
    with pytest.raises(ValidationError, match=r"o\.bands"):
        _run(store, world, "inbound", SAT, TUE, options={"bands": "20,10"})


def test_trunk_utilisation_counts_a_call_across_midnight_in_the_next_day(
    store: sa.Engine, world: Tenant
) -> None:
    table = _run(store, world, "trunks", MON, MON)
    # B (Sunday 23:59:30 BST) is still up when C starts at Monday 00:00 BST: two at once.
    assert list(table.rows) == [
        ("T1", datetime(2025, 3, 30, 23, 0, tzinfo=UTC), 2, 1, 25 + 65),
        ("T1", datetime(2025, 3, 31, 9, 0, tzinfo=UTC), 1, 1, 65),
    ]
    assert table.subtotals == {"T1": ("T1", None, 2, 2, 155)}
    assert table.totals == ("Total", None, 2, 2, 155)
    inbound = _run(store, world, "trunks", TUE, TUE)
    # F (08:00:00-08:01:48) and G (08:01:00-08:01:55) overlap; 108 + 55 + 40 + 70 s occupied.
    assert list(inbound.rows) == [("T9", datetime(2025, 4, 1, 8, 0, tzinfo=UTC), 2, 4, 273)]
    busy = _run(store, world, "busy_hour", SAT, TUE)
    assert [tuple(r) for r in busy.rows] == [
        ("T1", datetime(2025, 3, 30, 23, 0, tzinfo=UTC), 2, 1, 90, 5),  # D is on T1 too
        ("T9", datetime(2025, 4, 1, 8, 0, tzinfo=UTC), 2, 4, 273, 4),
    ]
    # Sunday is 23 hours long: A in its first hour, B's last 30 s before midnight in its last.
    sunday = _run(store, world, "trunks", SUN, SUN)
    assert list(sunday.rows) == [
        ("T1", datetime(2025, 3, 30, 0, 0, tzinfo=UTC), 1, 1, 130),
        ("T1", datetime(2025, 3, 30, 22, 0, tzinfo=UTC), 1, 1, 30),
    ]
    since, until = utc_bounds(SUN, SUN, world.zone)
    assert len(sweep([], since, until)) == 23
    own = report_scope(UserScope(extensions=frozenset({"2002"})))
    assert _run(store, world, "busy_hour", SAT, TUE, scope=own).totals == (
        "Total", None, 1, None, None, 4,
    )  # fmt: skip  # C, D on T1; G, H on T9, never at once


def test_chargeback_with_a_mark_up(store: sa.Engine, world: Tenant) -> None:
    table = _run(store, world, "chargeback", SAT, MON, options={"markup": "12.5"})
    m = G("12.5")
    assert list(table.rows) == [
        ("", "", "GBP", 1, 60, G("0.10"), m, G("0.1125")),
        ("CC10", "Sales", "GBP", 3, 300, G("0.11"), m, G("0.12375")),
        ("CC20", "Support", "", 1, 0, G(0), m, G(0)),
    ]
    assert table.subtotals["CC10"] == ("CC10", "", "GBP", 3, 300, G("0.11"), m, G("0.12375"))
    assert table.totals == ("Total", "", "GBP", 5, 360, G("0.21"), m, G("0.23625"))
    assert _run(store, world, "chargeback", SAT, MON).totals[-1] == G("0.21")  # default 0 %
    sales = report_scope(UserScope(departments=frozenset({"Sales"})))
    assert _run(store, world, "chargeback", SAT, MON, scope=sales).totals[3] == 3
    for bad in ("abc", "-1", "1001", "1.23456"):
        with pytest.raises(ValidationError, match=r"o\.markup"):
            _run(store, world, "chargeback", SAT, MON, options={"markup": bad})


def test_every_report_sorts_and_refuses_bad_parameters(store: sa.Engine, world: Tenant) -> None:
    table = _run(store, world, "summary", SAT, MON, options={"by": "person"}, sort="cost")
    assert [row[0] for row in table.rows] == ["", "Ann", "Cat", "Bob"]
    for name in REPORTS:
        with pytest.raises(ValidationError):
            _run(store, world, name, SAT, MON, filters={"no_such_column": "1"})
        with pytest.raises(ValidationError):
            _run(store, world, name, SAT, MON, sort="no_such_column")
    with pytest.raises(ValidationError, match=r"f\.called"):
        _run(store, world, "detail", SAT, MON, filters={"called": "0163%"}, mask_digits=3)
    masked = _run(store, world, "top", SAT, MON, options={"kind": "numbers"}, mask_digits=3)
    assert [r["number"] for r in _keyed(masked)] == ["441632960xxx", "447700900xxx"]


def test_the_dashboard_today_and_this_month_against_the_previous_period(
    store: sa.Engine, world: Tenant
) -> None:
    with store.connect() as conn:
        board = dashboard(conn, world.tenant_id, world.zone, MON, None)
        sales = report_scope(UserScope(departments=frozenset({"Sales"})))
        scoped = dashboard(conn, world.tenant_id, world.zone, MON, sales)
        # One read of each rollup for all periods gives what bare SQL per period gives.
        assert board == dashboard(conn, world.tenant_id, world.zone, MON, None, source="raw")
        first = dashboard(conn, world.tenant_id, world.zone, TUE, None)  # the 1st of April
        assert first == dashboard(conn, world.tenant_id, world.zone, TUE, None, source="raw")
    # On the 1st, yesterday (Monday 31 March) is in neither month's period.
    assert (first.today.current.calls, first.today.current.unanswered_inbound) == (4, 2)
    assert first.today.current.talk_seconds == 130  # F 100 + G 30
    assert first.today.previous.calls == 2 and first.month.current == first.today.current
    assert (first.month.previous.first_day, first.month.previous.calls) == (date(2025, 3, 1), 0)
    today, yesterday = board.today.current, board.today.previous
    assert (today.calls, today.talk_seconds, today.cost, today.unanswered_inbound) == (
        2, 120, {"GBP": 130_000}, 0,
    )  # fmt: skip
    assert today.by_class == {"national": {"GBP": 30_000}, "mobile": {"GBP": 100_000}}
    assert today.by_site == {"London": {"GBP": 30_000}, "": {"GBP": 100_000}}
    assert (yesterday.calls, yesterday.talk_seconds, yesterday.cost) == (2, 175, {"GBP": 80_000})
    assert yesterday.by_site == {"London": {"GBP": 80_000}}
    month, before = board.month.current, board.month.previous
    assert (month.first_day, month.last_day) == (date(2025, 3, 1), MON)
    assert (before.first_day, before.last_day) == (date(2025, 2, 1), date(2025, 2, 28))
    assert (month.calls, month.talk_seconds, month.cost, month.unanswered_inbound) == (
        5, 295, {"GBP": 210_000}, 1,
    )  # fmt: skip
    assert month.by_site == {"London": {"GBP": 110_000}, "": {"GBP": 100_000}}
    assert before.calls == 0 and board.currency == "GBP"
    # Sales saw only C today (Cat's) and A, B yesterday (Ann's); E and D are outside.
    assert (scoped.today.current.calls, scoped.today.current.cost) == (1, {"GBP": 30_000})
    assert scoped.month.current.calls == 3 and scoped.month.current.unanswered_inbound == 0
