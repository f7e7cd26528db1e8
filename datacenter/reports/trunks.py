"""Trunk utilisation and busy hour: simultaneous calls per trunk group, from call overlaps.

Read from the raw calls (the rollups keep no times of day): every call with a trunk that is in
progress at some moment of the range — it started before the range's end, ended after its start,
and started at most ``LOOKBACK`` before the range (a longer call that began earlier is not seen).
Filters and the scope apply to the calls, so a scoped viewer sees the load of their own calls.

Per trunk and per local hour of the range (``[since + i h, since + (i + 1) h)``: a spring DST
day has 23, an autumn one 25), ``sweep`` walks the trunk's call starts and ends in time order —
an end before a start at the same instant, so back-to-back calls are not simultaneous — and
records:

- ``peak``: the most calls in progress at once during the hour (counting those already in
  progress when it began: a call across midnight loads the first hour of the next day);
- ``calls``: calls that started in the hour;
- ``occupied_seconds``: the seconds of the hour each call was in progress, added up (divided by
  3,600 that is the hour's traffic in erlangs).

``trunks`` lists every (trunk, hour) with any traffic, grouped by trunk with a sub-total per trunk
(its peak over the range, its calls and occupied time); ``busy_hour`` gives one row per trunk: the
hour with the highest peak (then the most occupied seconds, then the earliest).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby
from typing import Any

import sqlalchemy as sa

from datacenter.reports import columns as cols
from datacenter.reports.periods import utc_bounds
from datacenter.reports.scope import ScopeTarget, scope_conditions
from datacenter.reports.tables import Column, ReportParams, ReportSpec, ReportTable, drill_filters
from datacenter.store.tables.core import calls
from shared.errors import ValidationError

LOOKBACK = timedelta(days=1)
HOUR = timedelta(hours=1)


@dataclass(slots=True)
class HourLoad:
    start: datetime  # UTC
    peak: int = 0
    calls: int = 0
    occupied_seconds: int = 0


def sweep(
    spans: list[tuple[datetime, datetime]], since: datetime, until: datetime
) -> list[HourLoad]:
    """The load of each hour of ``[since, until)`` from the calls' (start, end) ``spans``."""
    hours = [HourLoad(since + i * HOUR) for i in range(int((until - since) / HOUR))]
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    level, at = 0, 0
    while at < len(events) and events[at][0] < since:
        level += events[at][1]
        at += 1
    for hour in hours:
        end = hour.start + HOUR
        # A call that ends as the hour begins is not in progress in it.
        while at < len(events) and events[at] == (hour.start, -1):
            level -= 1
            at += 1
        hour.peak = level
        while at < len(events) and events[at][0] < end:
            level += events[at][1]
            if events[at][1] > 0:
                hour.calls += 1
                hour.peak = max(hour.peak, level)
            at += 1
    for start, stop in spans:
        first = max(0, int((start - since) / HOUR))
        for hour in hours[first:]:
            if hour.start >= stop:
                break
            overlap = min(stop, hour.start + HOUR) - max(start, hour.start)
            hour.occupied_seconds += max(0, int(overlap.total_seconds()))
    return hours


def _spans(conn: sa.Connection, params: ReportParams) -> Iterator[tuple[str, Iterable[Any]]]:
    since, until = utc_bounds(params.first_day, params.last_day, params.zone)
    scoped = scope_conditions(
        params.scope, ScopeTarget(params.tenant_id, calls.c.extension, start_utc=calls.c.start_utc)
    )
    if scoped is None:  # pragma: no cover - every scope applies to the raw calls
        raise ValidationError("scope", "the scope cannot be applied to the raw calls")
    columns = cols.raw_columns()
    query = (
        sa.select(calls.c.trunk, calls.c.start_utc, calls.c.end_utc)
        .select_from(cols.raw_from(attributed=cols.needs_attribution(params.filters)))
        .where(
            calls.c.tenant_id == params.tenant_id,
            calls.c.start_utc >= since - LOOKBACK,
            calls.c.start_utc < until,
            calls.c.end_utc > since,
            calls.c.trunk != "",
            *cols.filter_conditions(columns, params.filters),
            *scoped,
        )
        .order_by(calls.c.trunk, calls.c.start_utc)
    )
    yield from groupby(conn.execute(query), key=lambda row: row.trunk)


def trunk_loads(conn: sa.Connection, params: ReportParams) -> Iterator[tuple[str, list[HourLoad]]]:
    """Per trunk (in order) the load of every hour of the range."""
    since, until = utc_bounds(params.first_day, params.last_day, params.zone)
    for trunk, rows in _spans(conn, params):
        spans = [(row.start_utc, max(row.end_utc, row.start_utc)) for row in rows]
        yield trunk, sweep(spans, since, until)


UTILISATION_COLUMNS = (
    Column("trunk", "Trunk", "text"),
    Column("hour", "Hour", "datetime"),
    Column("peak", "Peak simultaneous", "integer"),
    Column("calls", "Calls started", "integer"),
    Column("occupied_seconds", "Occupied time", "seconds"),
)


def _utilisation(conn: sa.Connection, params: ReportParams) -> ReportTable:
    rows: list[tuple[Any, ...]] = []
    subtotals: dict[Any, tuple[Any, ...]] = {}
    for trunk, hours in trunk_loads(conn, params):
        busy = [h for h in hours if h.peak or h.calls]
        rows.extend((trunk, h.start, h.peak, h.calls, h.occupied_seconds) for h in busy)
        subtotals[trunk] = (trunk, None, max((h.peak for h in hours), default=0),
                            sum(h.calls for h in hours), sum(h.occupied_seconds for h in hours))  # fmt: skip
    totals = ("Total", None, max((s[2] for s in subtotals.values()), default=0),
              sum(s[3] for s in subtotals.values()), sum(s[4] for s in subtotals.values()))  # fmt: skip
    return ReportTable("Trunk utilisation", UTILISATION_COLUMNS, rows, totals,
                       group_by="trunk", subtotals=subtotals,
                       drill=lambda row: drill_filters(params, trunk=row[0]))  # fmt: skip


BUSY_COLUMNS = (
    Column("trunk", "Trunk", "text"),
    Column("busy_hour", "Busy hour", "datetime"),
    Column("peak", "Peak simultaneous", "integer"),
    Column("busy_calls", "Calls started in it", "integer"),
    Column("busy_occupied_seconds", "Occupied time in it", "seconds"),
    Column("calls", "Calls in range", "integer"),
)


def _busy_hour(conn: sa.Connection, params: ReportParams) -> ReportTable:
    rows = []
    for trunk, hours in trunk_loads(conn, params):
        if not hours:
            continue
        busy = min(hours, key=lambda h: (-h.peak, -h.occupied_seconds, h.start))
        rows.append((trunk, busy.start, busy.peak, busy.calls, busy.occupied_seconds,
                     sum(h.calls for h in hours)))  # fmt: skip
    totals = ("Total", None, max((r[2] for r in rows), default=0), None, None,
              sum(r[5] for r in rows))  # fmt: skip
    return ReportTable("Busy hour per trunk", BUSY_COLUMNS, rows, totals,
                       drill=lambda row: drill_filters(params, trunk=row[0]))  # fmt: skip


UTILISATION_SPEC = ReportSpec(
    "trunks", "Trunk utilisation", _utilisation,
    description="Per trunk and hour: the peak of simultaneous calls, calls started and "
    "occupied time, with each trunk's sub-total.",
)  # fmt: skip
BUSY_HOUR_SPEC = ReportSpec(
    "busy_hour", "Busy hour", _busy_hour,
    description="Per trunk: the hour with the most simultaneous calls.",
)  # fmt: skip
