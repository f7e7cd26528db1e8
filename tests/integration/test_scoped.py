"""TenantScope on both backends: isolation between tenants, filters, paging, day summaries."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from datacenter.ingest.worker import ingest_once
from datacenter.rating.numbering import DialPlan, load_dial_plan
from datacenter.rating.store import set_site
from datacenter.settings import Settings
from datacenter.store.scoped import CallFilter, TenantScope
from shared.errors import StoreError, ValidationError
from shared.icdr import Direction
from tests.factories import gen_outgoing_call
from tests.fixtures.store import gen_agent, gen_batch, gen_tenant, land

# 20:00 UTC on 1 March is 07:00 on 2 March in Sydney (AEDT, +11).
EVENING = datetime(2026, 3, 1, 20, 0, tzinfo=UTC)


@pytest.fixture
def two_tenants(store: sa.Engine, dc_settings: Settings) -> tuple[sa.Engine, int, int]:
    """acme (Australia/Sydney) with 30 calls; globex (UTC) with 5 calls of its own."""
    acme = gen_tenant(store, "acme", timezone="Australia/Sydney")
    globex = gen_tenant(store, "globex")
    gen_agent(store, "acme", "edge-1")
    gen_agent(store, "globex", "edge-g")
    acme_calls = [
        gen_outgoing_call(
            n,
            start=EVENING + timedelta(hours=n),
            direction=Direction.IN if n % 3 == 0 else Direction.OUT,
            extension="2001" if n % 2 else "2002",
            called=f"0207946{n:04d}",
            dialled_digits=f"90207946{n:04d}",
        )
        for n in range(30)
    ]
    land(dc_settings, "acme", *gen_batch(acme_calls))
    globex_calls = [
        gen_outgoing_call(100 + n, agent_id="edge-g", start=EVENING, extension="2001")
        for n in range(5)
    ]
    land(dc_settings, "globex", *gen_batch(globex_calls, tenant="globex", agent_id="edge-g"))
    report = ingest_once(store, dc_settings)
    assert report.inserted == 35
    return store, acme.tenant_id, globex.tenant_id


def test_a_tenant_sees_only_its_own_calls(two_tenants: tuple[sa.Engine, int, int]) -> None:
    engine, acme_id, globex_id = two_tenants
    with engine.connect() as conn:
        acme, globex = TenantScope(conn, acme_id), TenantScope(conn, globex_id)
        assert acme.count_calls(CallFilter()) == 30
        assert globex.count_calls(CallFilter()) == 5
        globex_ids = {c.record_id for c in globex.list_calls(CallFilter(), per_page=500).calls}
        acme_ids = {c.record_id for c in acme.list_calls(CallFilter(), per_page=500).calls}
        assert not globex_ids & acme_ids
        some_globex_call = sorted(globex_ids)[0]
        assert globex.get_call(some_globex_call) is not None
        assert acme.get_call(some_globex_call) is None
        assert sum(d.calls for d in globex.day_summary()) == 5
        assert sum(d.calls for d in acme.day_summary()) == 30


@pytest.mark.parametrize(
    ("filter", "expected"),
    [
        (CallFilter(), 30),
        (CallFilter(extension="2001"), 15),
        (CallFilter(direction=Direction.IN), 10),
        (CallFilter(extension="2002", direction=Direction.IN), 5),
        (CallFilter(number="0207946 0012"), 1),  # spaces typed in a number are ignored
        (CallFilter(number="(020) 7946-001"), 10),  # 0010-0019
        (CallFilter(number="%"), 0),  # LIKE wildcards are literal
        # Sydney days: 20:00 UTC 1 Mar = 07:00 2 Mar local; calls 0-16 fall on 2 Mar local.
        (CallFilter(date_from=date(2026, 3, 2), date_to=date(2026, 3, 2)), 17),
        (CallFilter(date_from=date(2026, 3, 3)), 13),
        # UTC days: calls 0-3 are on 1 Mar UTC.
        (CallFilter(date_to=date(2026, 3, 1), utc=True), 4),
        (CallFilter(date_from=date(2026, 3, 2), date_to=date(2026, 3, 2), utc=True), 24),
    ],
)
def test_filters(
    two_tenants: tuple[sa.Engine, int, int], filter: CallFilter, expected: int
) -> None:
    engine, acme_id, _globex_id = two_tenants
    with engine.connect() as conn:
        scope = TenantScope(conn, acme_id)
        assert scope.count_calls(filter) == expected
        assert len(scope.list_calls(filter, per_page=500).calls) == expected


def test_paging_is_newest_first_and_complete(two_tenants: tuple[sa.Engine, int, int]) -> None:
    engine, acme_id, _globex_id = two_tenants
    with engine.connect() as conn:
        scope = TenantScope(conn, acme_id)
        pages = [scope.list_calls(CallFilter(), page=n, per_page=7) for n in range(1, 6)]
    assert [len(p.calls) for p in pages] == [7, 7, 7, 7, 2]
    assert [(p.has_prev, p.has_next) for p in (pages[0], pages[4])] == [
        (False, True),
        (True, False),
    ]
    assert {p.total for p in pages} == {30} and pages[0].pages == 5
    starts = [c.start_utc for p in pages for c in p.calls]
    assert starts == sorted(starts, reverse=True)
    assert starts[0] == EVENING + timedelta(hours=29)
    assert len({c.record_id for p in pages for c in p.calls}) == 30


def test_day_summary_uses_local_days(two_tenants: tuple[sa.Engine, int, int]) -> None:
    engine, acme_id, _globex_id = two_tenants
    with engine.connect() as conn:
        days = TenantScope(conn, acme_id).day_summary(
            date_from=date(2026, 3, 2), date_to=date(2026, 3, 2)
        )
    by_direction = {d.direction: d.calls for d in days}
    assert by_direction == {"in": 6, "out": 11}  # calls 0-16; n % 3 == 0 are incoming
    assert {d.day for d in days} == {date(2026, 3, 2)}


def test_call_detail_carries_provenance(two_tenants: tuple[sa.Engine, int, int]) -> None:
    engine, acme_id, _globex_id = two_tenants
    with engine.connect() as conn:
        scope = TenantScope(conn, acme_id)
        first = scope.list_calls(CallFilter(number="02079460000")).calls[0]
        detail = scope.get_call(first.record_id)
    assert detail is not None
    assert detail.raw == "raw line 0" and detail.landed_file == "edge-1-0000000001.ccb"
    assert detail.to_icdr().record_id == first.record_id
    assert first.start_site == first.start_utc  # the fixtures' site offset is 0


@pytest.mark.parametrize(
    ("page", "per_page", "message"),
    [(0, 10, "pages start at 1"), (1, 0, "between 1 and 500"), (1, 501, "between 1 and 500")],
)
def test_bad_paging_is_refused(store: sa.Engine, page: int, per_page: int, message: str) -> None:
    tenant = gen_tenant(store, "acme")
    with store.connect() as conn, pytest.raises(ValidationError, match=message):
        TenantScope(conn, tenant.tenant_id).list_calls(CallFilter(), page=page, per_page=per_page)


def test_a_scope_needs_a_real_tenant(store: sa.Engine) -> None:
    with store.connect() as conn:
        with pytest.raises(StoreError, match="no tenant with id 42"):
            TenantScope(conn, 42)
        with pytest.raises(TypeError):
            TenantScope(conn, None)  # type: ignore[arg-type]


def test_the_tenants_country_comes_from_its_dial_plans(
    two_tenants: tuple[sa.Engine, int, int],
) -> None:
    """The default plan's region; else the one region all sites share; else none."""
    engine, acme_id, globex_id = two_tenants
    demo = Path(__file__).resolve().parents[2] / "datacenter" / "rating" / "demo"
    london, toronto = load_dial_plan(demo / "london.toml"), load_dial_plan(demo / "toronto.toml")
    now = datetime(2026, 1, 1, tzinfo=UTC)

    def country(*sites: tuple[str, DialPlan]) -> str | None:
        with engine.begin() as conn:
            for agent, plan in sites:
                set_site(conn, acme_id, agent, dial_plan=plan, carriers=None, now=now)
            return TenantScope(conn, acme_id).country()

    with engine.connect() as conn:
        assert TenantScope(conn, acme_id).country() is None  # no dial plan at all
    assert country(("edge-1", london)) == "GB"
    assert country(("edge-2", toronto)) is None  # two sites, two countries
    assert country(("*", toronto)) == "CA"  # the tenant-wide plan decides
    with engine.connect() as conn:
        assert TenantScope(conn, globex_id).country() is None  # never another tenant's
