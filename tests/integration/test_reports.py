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

(Each outgoing call is answered 5 s after it starts; billing runs from the answer.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from datacenter.accounts.tenants import Tenant
from datacenter.directory.entries import EntryInput, add_entry
from datacenter.ingest.worker import ingest_once
from datacenter.rating.carriers import load_carrier_rules
from datacenter.rating.numbering import load_dial_plan
from datacenter.rating.store import import_tariff_plan, set_site
from datacenter.rating.tariffs import load_tariff
from datacenter.reports.catalog import ReportParams, report
from datacenter.reports.detail import DetailRequest, call_detail
from datacenter.reports.scope import ScopeTarget
from datacenter.reports.summaries import SummaryRequest, SummaryRow, summary, summary_query
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
    name, data = gen_batch(list(CALLS.values()))
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
