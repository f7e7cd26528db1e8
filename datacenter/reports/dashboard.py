"""The dashboard's figures: today and this month at a glance, each against the previous period.

Periods (tenant-local days): today against yesterday; this month so far (the 1st .. today)
against the same days of the previous month (the 1st .. the same day number, cut at that
month's end). Per period: calls, talk time, cost per currency, unanswered incoming calls, and
cost by destination class and by site (directory attribution at the call's start).

How (``_from_rollups``, for a viewer who sees the whole tenant): the four periods are cut into
disjoint buckets of days (today, yesterday, the rest of this month, the previous month's days)
and each rollup is read once for all of them, grouped by bucket: ``rollup_route_days`` for the
totals, unanswered incoming calls and cost by class; ``rollup_extension_days`` joined to the
directory entry that held each extension over the whole span for cost by site. An extension whose
site changed inside the span (``reports.holdings``) is read from the same rollup per day, each
day under the site that held it all day, and from the raw calls (bucketed by start time) only on
the days its site changed at an instant other than local midnight.
A period's figures are the sum of its buckets. A scoped viewer gets the same figures through
``summaries.summary`` per period (which reads raw calls where the rollups cannot carry the scope),
and ``source="raw"`` computes everything as bare SQL over the raw calls (the benchmark's
baseline; the tests check both ways agree).
"""

from __future__ import annotations

import calendar
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from datacenter.reports.columns import raw_columns, raw_from
from datacenter.reports.holdings import Holdings, holdings, raw_condition
from datacenter.reports.periods import utc_bounds
from datacenter.reports.scope import Scope
from datacenter.reports.summaries import Source, SummaryRequest, summary
from datacenter.store.tables.core import calls
from datacenter.store.tables.directory import directory_entries
from datacenter.store.tables.rollups import rollup_extension_days, rollup_route_days

Costs = dict[str, int]  # currency -> micro-units


@dataclass(frozen=True)
class Figures:
    first_day: date
    last_day: date
    calls: int = 0
    talk_seconds: int = 0
    unanswered_inbound: int = 0
    cost: Costs = field(default_factory=dict)
    by_class: dict[str, Costs] = field(default_factory=dict)
    by_site: dict[str, Costs] = field(default_factory=dict)


@dataclass(frozen=True)
class Comparison:
    label: str
    current: Figures
    previous: Figures
    previous_label: str


@dataclass(frozen=True)
class Dashboard:
    today: Comparison
    month: Comparison
    currency: str  # the currency most of the cost is in ("" before any rated call)


def periods(today: date) -> tuple[tuple[date, date, date, date], tuple[date, date, date, date]]:
    """((today, today, yesterday, yesterday), (1st, today, previous 1st, previous same day))."""
    yesterday = today - timedelta(days=1)
    first = today.replace(day=1)
    previous_first = (first - timedelta(days=1)).replace(day=1)
    length = calendar.monthrange(previous_first.year, previous_first.month)[1]
    previous_last = previous_first.replace(day=min(today.day, length))
    return (today, today, yesterday, yesterday), (first, today, previous_first, previous_last)


def figures(
    conn: sa.Connection, tenant_id: int, zone: ZoneInfo, first: date, last: date,
    scope: Scope | None, *, source: Source = "auto",
) -> Figures:  # fmt: skip
    """One period's figures; ``source="raw"`` computes them with bare SQL over the raw calls
    (the benchmark's baseline)."""

    def rows(by: str) -> list[tuple[str, str, int]]:
        request = SummaryRequest(tenant_id, zone, by, first, last, scope=scope)
        return [(str(r.value), r.currency, r.cost_micro)
                for r in summary(conn, request, source=source)]  # fmt: skip

    request = SummaryRequest(tenant_id, zone, "direction", first, last, scope=scope)
    calls = talk = unanswered = 0
    cost: Costs = defaultdict(int)
    for r in summary(conn, request, source=source):
        calls += r.calls
        talk += r.talk_seconds
        if r.value == "in":
            unanswered += r.calls - r.answered
        if r.currency:
            cost[r.currency] += r.cost_micro
    return Figures(first, last, calls, talk, unanswered, dict(cost),
                   _costs(rows("destination_class")), _costs(rows("site")))  # fmt: skip


def _costs(rows: list[tuple[str, str, int]]) -> dict[str, Costs]:
    found: dict[str, Costs] = defaultdict(dict)
    for value, currency, micro in rows:
        if currency:
            found[value][currency] = found[value].get(currency, 0) + micro
    return dict(found)


def dashboard(
    conn: sa.Connection, tenant_id: int, zone: ZoneInfo, today: date, scope: Scope | None,
    *, source: Source = "auto",
) -> Dashboard:  # fmt: skip
    if source == "auto" and scope is None:
        return _from_rollups(conn, tenant_id, zone, today)
    day, month = periods(today)
    made = []
    for first, last, previous_first, previous_last in (day, month):
        made.append((
            figures(conn, tenant_id, zone, first, last, scope, source=source),
            figures(conn, tenant_id, zone, previous_first, previous_last, scope, source=source),
        ))  # fmt: skip
    return _assembled(made[0], made[1])


def _assembled(day: tuple[Figures, Figures], month: tuple[Figures, Figures]) -> Dashboard:
    totals: Counter[str] = Counter()
    for figures_ in (*day, *month):
        totals.update(figures_.cost)
    currency = totals.most_common(1)[0][0] if totals else ""
    return Dashboard(
        Comparison("Today", day[0], day[1], "yesterday"),
        Comparison("This month", month[0], month[1], "same days last month"),
        currency,
    )


# --- every period from one read of each rollup ---------------------------------------------

Bucket = str  # "T" today, "Y" yesterday, "M" the rest of this month, "P" the previous month's


@dataclass
class _Sums:
    calls: int = 0
    talk_seconds: int = 0
    unanswered_inbound: int = 0
    cost: Costs = field(default_factory=lambda: defaultdict(int))
    by_class: dict[str, Costs] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(int))
    )
    by_site: dict[str, Costs] = field(default_factory=lambda: defaultdict(lambda: defaultdict(int)))


def _bucket_of_day(
    day: sa.ColumnElement[date], today: date
) -> tuple[sa.ColumnElement[str], sa.ColumnElement[bool]]:
    (_, _, yesterday, _), (first, _, previous_first, previous_last) = periods(today)
    bucket = sa.case(
        (day == today, "T"), (day == yesterday, "Y"), (day.between(first, today), "M"),
        (day.between(previous_first, previous_last), "P"), else_=None,
    )  # fmt: skip
    wanted = sa.or_(day.between(first, today), day.between(previous_first, previous_last),
                    day == yesterday)  # fmt: skip
    return bucket, wanted


def _bucket_of_start(
    start: sa.ColumnElement[datetime], today: date, zone: ZoneInfo
) -> tuple[sa.ColumnElement[str], sa.ColumnElement[bool]]:
    (_, _, yesterday, _), (first, _, previous_first, previous_last) = periods(today)

    def within(a: date, b: date) -> sa.ColumnElement[bool]:
        since, until = utc_bounds(a, b, zone)
        return sa.and_(start >= since, start < until)

    bucket = sa.case(
        (within(today, today), "T"), (within(yesterday, yesterday), "Y"),
        (within(first, today), "M"), (within(previous_first, previous_last), "P"), else_=None,
    )  # fmt: skip
    wanted = sa.or_(within(first, today), within(previous_first, previous_last),
                    within(yesterday, yesterday))  # fmt: skip
    return bucket, wanted


def _from_rollups(conn: sa.Connection, tenant_id: int, zone: ZoneInfo, today: date) -> Dashboard:
    sums: dict[Bucket, _Sums] = defaultdict(_Sums)
    r = rollup_route_days.c
    bucket, wanted = _bucket_of_day(r.day, today)
    answered_in = sa.case((sa.and_(r.direction == "in", sa.not_(r.answered)), r.calls), else_=0)
    keys = (bucket, r.number_class, r.currency)
    for row in conn.execute(
        sa.select(*keys, sa.func.sum(r.calls), sa.func.sum(r.talk_seconds),
                  sa.func.sum(r.cost_micro), sa.func.sum(answered_in))
        .where(r.tenant_id == tenant_id, wanted).group_by(*keys)
    ):  # fmt: skip
        got = sums[row[0]]
        got.calls += int(row[3])
        got.talk_seconds += int(row[4] or 0)
        got.unanswered_inbound += int(row[6] or 0)
        if row[2]:
            got.cost[row[2]] += int(row[5] or 0)
            got.by_class[row[1]][row[2]] += int(row[5] or 0)
    _add_sites(conn, tenant_id, zone, today, sums)
    day, month = periods(today)
    made = []
    plan: list[tuple[tuple[date, date, date, date], list[Bucket], list[Bucket]]] = [
        (day, ["T"], ["Y"]), (month, ["T", "M"], ["P"]),
    ]  # fmt: skip
    for (first, last, previous_first, previous_last), now, before in plan:
        yesterday = day[2]  # in this month's bucket "Y" unless today is the 1st
        if first <= yesterday <= last:
            now.append("Y")
        elif previous_first <= yesterday <= previous_last and "Y" not in before:
            before.append("Y")
        made.append((_figures(first, last, [sums[b] for b in now]),
                     _figures(previous_first, previous_last, [sums[b] for b in before])))  # fmt: skip
    return _assembled(made[0], made[1])


def _add_sites(conn: sa.Connection, tenant_id: int, zone: ZoneInfo, today: date,
               sums: dict[Bucket, _Sums]) -> None:  # fmt: skip
    """Cost by site: the extension rollup under the site that held each extension all day, the
    raw calls only for the days on which an extension changed site (``reports.holdings``)."""
    (_, _, yesterday, _), (_, _, previous_first, _) = periods(today)
    held = holdings(conn, tenant_id, "site", min(previous_first, yesterday), today, zone)
    rows = _rollup_sites(conn, tenant_id, zone, today, held)
    raw_days = raw_condition(held, zone, calls.c.extension, calls.c.start_utc)
    if raw_days is not None:
        columns = raw_columns()
        raw_bucket, raw_wanted = _bucket_of_start(calls.c.start_utc, today, zone)
        raw_keys = (raw_bucket, columns["site"], columns["currency"])
        rows += [tuple(row) for row in conn.execute(
            sa.select(*raw_keys, sa.func.sum(columns["cost_micro"]))
            .select_from(raw_from(attributed=True))
            .where(calls.c.tenant_id == tenant_id, raw_wanted, raw_days,
                   columns["currency"] != "")
            .group_by(*raw_keys)
        )]  # fmt: skip
    for bucket, site, currency, cost in rows:
        sums[bucket].by_site[site][currency] += int(cost or 0)


def _rollup_sites(
    conn: sa.Connection, tenant_id: int, zone: ZoneInfo, today: date, held: Holdings
) -> list[tuple[Bucket, str, str, int]]:
    """(bucket, site, currency, cost) from one read of the extension rollup: an extension held
    by one entry over the whole span under that entry's site (joined in SQL), one that changed
    site per day under the site that held it all day (``held``); raw days left out."""
    (_, _, yesterday, _), (_, _, previous_first, _) = periods(today)
    since, until = utc_bounds(min(previous_first, yesterday), today, zone)
    e, d = rollup_extension_days.c, directory_entries.c
    bucket, wanted = _bucket_of_day(e.day, today)
    # The entry that held the extension over the whole span (at most one: periods never overlap).
    joined = rollup_extension_days.outerjoin(
        directory_entries,
        sa.and_(d.tenant_id == e.tenant_id, d.extension == e.extension, d.valid_from <= since,
                sa.or_(d.valid_to.is_(None), d.valid_to >= until)),
    )  # fmt: skip
    per_day = sorted(held.segments)
    raw_only = sorted(set(held.raw_days) - set(per_day))
    changed = e.extension.in_(per_day) if per_day else sa.false()
    keys = (
        bucket, sa.func.coalesce(d.site, ""), e.currency,
        sa.case((changed, e.extension), else_=None), sa.case((changed, e.day), else_=None),
    )  # fmt: skip
    query = (
        sa.select(*keys, sa.func.sum(e.cost_micro)).select_from(joined)
        .where(e.tenant_id == tenant_id, wanted, e.currency != "",
               *([e.extension.not_in(raw_only)] if raw_only else []))
        .group_by(*keys)
    )  # fmt: skip
    found = []
    for bucket_, site, currency, extension, day, cost in conn.execute(query):
        if extension is not None:
            site = held.day_value(extension, day)
            if site is None:
                continue  # a raw day: read from the raw calls
        found.append((bucket_, site, currency, int(cost or 0)))
    return found


def _figures(first: date, last: date, parts: list[_Sums]) -> Figures:
    cost: Costs = defaultdict(int)
    by_class: dict[str, Costs] = defaultdict(lambda: defaultdict(int))
    by_site: dict[str, Costs] = defaultdict(lambda: defaultdict(int))
    for part in parts:
        for currency, micro in part.cost.items():
            cost[currency] += micro
        for target, source in ((by_class, part.by_class), (by_site, part.by_site)):
            for value, costs in source.items():
                for currency, micro in costs.items():
                    target[value][currency] += micro
    return Figures(
        first, last, sum(p.calls for p in parts), sum(p.talk_seconds for p in parts),
        sum(p.unanswered_inbound for p in parts), dict(cost),
        {k: dict(v) for k, v in by_class.items()}, {k: dict(v) for k, v in by_site.items()},
    )  # fmt: skip
