"""The dashboard's figures: today and this month at a glance, each against the previous period.

Periods (tenant-local days): today against yesterday; this month so far (the 1st .. today)
against the same days of the previous month (the 1st .. the same day number, cut at that
month's end). Per period: calls, talk time, cost per currency, unanswered incoming calls, and
cost by destination class and by site (directory attribution at the call's start).

Everything comes from ``summaries.summary``, so from the rollups: by direction and class from
the rollups, by site from the extension rollup read through the directory (``reports.attributed``).
The viewer's scope applies as in every report (a scope a rollup cannot carry reads raw calls).
"""

from __future__ import annotations

import calendar
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from datacenter.reports.scope import Scope
from datacenter.reports.summaries import Source, SummaryRequest, summary

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
    day, month = periods(today)
    made = []
    for first, last, previous_first, previous_last in (day, month):
        made.append((
            figures(conn, tenant_id, zone, first, last, scope, source=source),
            figures(conn, tenant_id, zone, previous_first, previous_last, scope, source=source),
        ))  # fmt: skip
    totals: Counter[str] = Counter()
    for current, previous in made:
        totals.update(current.cost)
        totals.update(previous.cost)
    currency = totals.most_common(1)[0][0] if totals else ""
    return Dashboard(
        Comparison("Today", made[0][0], made[0][1], "yesterday"),
        Comparison("This month", made[1][0], made[1][1], "same days last month"),
        currency,
    )
