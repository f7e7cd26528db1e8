"""Attribution from the rollups per (extension, day): only the days on which an extension changed
hands are read from the raw calls, and the summaries by person, department, cost centre and site
and the dashboard's cost by site stay exactly what bare SQL over the raw calls gives.

The property test draws calls over six days around a DST change and directory histories whose
changes fall at random instants (some on local midnight, some keeping the value, some leaving
gaps nobody held), on both stores; each example is a tenant of its own.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datacenter.directory.entries import EntryInput, add_entry
from datacenter.ingest.rows import call_values
from datacenter.reports.dashboard import dashboard
from datacenter.reports.holdings import Segment, holdings
from datacenter.reports.periods import local_midnight
from datacenter.reports.summaries import ATTRIBUTED, SummaryRequest, summary
from datacenter.store.bulk import append_rows, json_text, time_encoder
from datacenter.store.engine import write_transaction
from datacenter.store.rollups import rebuild
from datacenter.store.tables.core import calls
from datacenter.store.tables.rating import call_costs
from tests.factories import gen_outgoing_call
from tests.fixtures.store import gen_tenant

BASE = datetime(2025, 3, 28, tzinfo=UTC)  # UK clocks go forward on 30 March 2025
DAYS = 6
ZONES = ("Europe/London", "America/Toronto", "Asia/Kolkata")
EXTENSIONS = ("2001", "2002", "2003")
SITES = ("London", "Leeds", "")
_tenants = itertools.count()


@dataclass(frozen=True)
class Change:
    minute: int  # from BASE; or, with ``midnight``, the local midnight of that minute's day
    midnight: bool
    site: str
    held: bool  # False: nobody holds the extension from then on


changes = st.builds(
    Change, st.integers(0, DAYS * 1440 - 1), st.booleans(), st.sampled_from(SITES), st.booleans()
)
call_plans = st.tuples(
    st.integers(0, DAYS * 1440 - 1), st.sampled_from(EXTENSIONS), st.integers(0, 900),
    st.booleans(),
)  # fmt: skip


def _store_calls(
    conn: sa.Connection, tenant_id: int, plans: list[tuple[int, str, int, bool]]
) -> None:
    encode = time_encoder(conn)
    cost_names = [c.name for c in call_costs.columns]
    call_rows, cost_rows = [], []
    for n, (minute, extension, talk, rated) in enumerate(plans):
        call = gen_outgoing_call(n, start=BASE + timedelta(minutes=minute), talk_seconds=talk,
                                 extension=extension)  # fmt: skip
        call_rows.append(tuple(call_values(tenant_id, call, "test.ccb", encode(BASE),
                                           encode_time=encode, encode_json=json_text)))  # fmt: skip
        if rated:
            values: dict[str, Any] = {
                "tenant_id": tenant_id, "record_id": call.record_id, "cost_minor": talk // 10 + 1,
                "currency": "GBP", "decimals": 2, "number_class": "national",
                "e164": "+441632960123", "carrier": "britline", "destination": "UK",
                "prefix": "441", "tariff_version": "v1", "billed_seconds": talk,
                "bands": json_text(["day"]), "zero_reason": None, "explanation": json_text({}),
                "engine_version": "test", "rated_at": encode(BASE),
                "start_utc": encode(call.start),
            }  # fmt: skip
            cost_rows.append(tuple(values[name] for name in cost_names))
    append_rows(conn, calls, call_rows)
    append_rows(conn, call_costs, cost_rows)


def _entries(extension: str, history: list[Change], zone: ZoneInfo) -> list[EntryInput]:
    """Contiguous periods from BASE - 1 day, one per change, ``held=False`` leaving a gap."""
    instants: dict[datetime, Change] = {}
    for change in history:
        at = BASE + timedelta(minutes=change.minute)
        if change.midnight:
            at = local_midnight(at.astimezone(zone).date(), zone)
        instants[max(at, BASE)] = change
    starts = [BASE - timedelta(days=1), *sorted(instants)]
    first = Change(0, False, "London", True)
    periods = [first, *(instants[at] for at in starts[1:])]
    entries = []
    for n, (start, change) in enumerate(zip(starts, periods, strict=True)):
        end = starts[n + 1] if n + 1 < len(starts) else None
        if change.held and start != end:
            entries.append(EntryInput(extension, f"P{extension}-{n}", site=change.site,
                                      department=change.site[:1], valid_from=start,
                                      valid_to=end))  # fmt: skip
    return entries


def _tenant(engine: sa.Engine, zone: str, plans: list[Any], histories: list[list[Change]]) -> int:
    tenant = gen_tenant(engine, f"h{next(_tenants)}", timezone=zone)
    with write_transaction(engine) as conn:
        _store_calls(conn, tenant.tenant_id, plans)
        for extension, history in zip(EXTENSIONS, histories, strict=False):
            for entry in _entries(extension, history, ZoneInfo(zone)):
                report = add_entry(conn, tenant.tenant_id, entry)
                assert not report.problems, report.problems
        rebuild(conn, tenant.tenant_id, ZoneInfo(zone))
    return tenant.tenant_id


@settings(
    max_examples=15, deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)  # fmt: skip
@given(
    zone=st.sampled_from(ZONES),
    plans=st.lists(call_plans, min_size=1, max_size=40),
    histories=st.lists(st.lists(changes, max_size=4), min_size=1, max_size=len(EXTENSIONS)),
    first=st.integers(-1, DAYS),
    length=st.integers(0, DAYS),
)
def test_attributed_summaries_and_dashboard_sites_equal_the_raw_calls(
    store: sa.Engine,
    zone: str,
    plans: list[tuple[int, str, int, bool]],
    histories: list[list[Change]],
    first: int,
    length: int,
) -> None:
    tenant_id = _tenant(store, zone, plans, histories)
    first_day = BASE.date() + timedelta(days=first)
    with store.connect() as conn:
        for by in ATTRIBUTED:
            request = SummaryRequest(tenant_id, ZoneInfo(zone), by, first_day,
                                     first_day + timedelta(days=length))  # fmt: skip
            assert summary(conn, request) == summary(conn, request, source="raw"), by
        board = dashboard(conn, tenant_id, ZoneInfo(zone), first_day, None)
        assert board == dashboard(conn, tenant_id, ZoneInfo(zone), first_day, None, source="raw")


def test_only_the_day_an_extension_changed_hands_is_read_raw(store: sa.Engine) -> None:
    london = ZoneInfo("Europe/London")
    midday = datetime(2025, 3, 31, 11, 0, tzinfo=UTC)  # Monday 12:00 BST
    midnight = local_midnight(date(2025, 4, 2), london)
    since = BASE - timedelta(days=1)
    tenant = gen_tenant(store, f"h{next(_tenants)}", timezone="Europe/London")
    with write_transaction(store) as conn:
        for entry in (
            EntryInput("2001", "Ann", site="London", valid_from=since, valid_to=midday),
            EntryInput("2001", "Bob", site="Leeds", valid_from=midday, valid_to=midnight),
            EntryInput("2001", "Cat", site="Leeds", valid_from=midnight),
            EntryInput("2002", "Dan", site="Leeds", valid_from=since),
            EntryInput("2003", "Eve", site="Bristol", valid_from=since, valid_to=midday),
            EntryInput("2003", "Fay", site="Bristol", valid_from=midday),
        ):
            assert not add_entry(conn, tenant.tenant_id, entry).problems
    first, last = date(2025, 3, 28), date(2025, 4, 5)
    with store.connect() as conn:
        sites = holdings(conn, tenant.tenant_id, "site", first, last, london)
        people = holdings(conn, tenant.tenant_id, "person", first, last, london)
    # 2001 changes site at Monday midday: that day alone is raw; its Wednesday-midnight change
    # of person cuts no day; 2003 changes person, not site.
    assert sites.whole == {"2002": "Leeds"}
    assert sites.raw_days == {"2001": [date(2025, 3, 31)]}
    assert sites.segments == {
        "2001": [Segment(first, date(2025, 3, 30), "London"),
                 Segment(date(2025, 4, 1), last, "Leeds")],
        "2003": [Segment(first, last, "Bristol")],
    }  # fmt: skip
    assert people.raw_days == {"2001": [date(2025, 3, 31)], "2003": [date(2025, 3, 31)]}
    assert people.segments["2001"][-2:] == [
        Segment(date(2025, 4, 1), date(2025, 4, 1), "Bob"), Segment(date(2025, 4, 2), last, "Cat"),
    ]  # fmt: skip
