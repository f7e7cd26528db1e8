"""Calls by hour of day and by day of week, on the tenant's clock.

``hour_of_day``: 24 rows (00:00 .. 23:00 local), from the raw calls: a call counts in the local
hour it started. SQLite has no time zones, so the store groups calls by the UTC hour they started
(``utc_bucket``: one row per UTC hour of the range, at most 24 x days) and each bucket is moved
to the tenant's clock here; in a zone whose offset is not a whole number of hours (India,
Newfoundland) the buckets are UTC minutes instead, so the move stays exact. A DST day simply has
one hour fewer (spring) or one local hour counted twice (autumn, 01:00-02:00 holds both).

``day_of_week``: 7 rows (Monday .. Sunday) with the number of such days in the range, from the
rollups by tenant-local day when they answer (``summaries.rollup_summary_query`` with
``by="day"``), else from the same UTC buckets.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from datacenter.reports import columns as cols
from datacenter.reports.periods import utc_bounds
from datacenter.reports.scope import ScopeTarget, scope_conditions
from datacenter.reports.summaries import SummaryRequest, rollup_summary_query
from datacenter.reports.tables import Column, ReportParams, ReportSpec, ReportTable, totals_of
from datacenter.store.tables.core import calls
from shared.errors import ValidationError

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_FORMATS = {
    False: ("%Y-%m-%d %H", "YYYY-MM-DD HH24"),
    True: ("%Y-%m-%d %H:%M", "YYYY-MM-DD HH24:MI"),
}


class utc_bucket(FunctionElement[str]):
    """The UTC hour (``minutes=False``) or minute a timestamp falls in, as text."""

    type = sa.String()
    inherit_cache = True
    name = "utc_bucket"

    def __init__(self, column: sa.ColumnElement[Any], *, minutes: bool) -> None:
        super().__init__(column)
        self.minutes = minutes


@compiles(utc_bucket, "sqlite")
def _sqlite_bucket(element: utc_bucket, compiler: SQLCompiler, **kw: Any) -> str:
    fmt = _FORMATS[element.minutes][0]
    return f"strftime('{fmt}', {compiler.process(element.clauses, **kw)})"


@compiles(utc_bucket, "postgresql")
def _postgres_bucket(element: utc_bucket, compiler: SQLCompiler, **kw: Any) -> str:
    fmt = _FORMATS[element.minutes][1]
    return f"to_char(({compiler.process(element.clauses, **kw)}) AT TIME ZONE 'UTC', '{fmt}')"


def _minutes_needed(params: ReportParams, since: datetime, until: datetime) -> bool:
    day = since
    while day <= until:
        offset = day.astimezone(params.zone).utcoffset()
        if offset is not None and offset.total_seconds() % 3600:
            return True
        day += timedelta(days=1)
    return False


def local_buckets(conn: sa.Connection, params: ReportParams) -> Iterator[tuple[datetime, Any]]:
    """(local start of the bucket, row with calls, answered, talk_seconds) per UTC bucket."""
    since, until = utc_bounds(params.first_day, params.last_day, params.zone)
    scoped = scope_conditions(
        params.scope, ScopeTarget(params.tenant_id, calls.c.extension, start_utc=calls.c.start_utc)
    )
    if scoped is None:  # pragma: no cover - every scope applies to the raw calls
        raise ValidationError("scope", "the scope cannot be applied to the raw calls")
    minutes = _minutes_needed(params, since, until)
    bucket = utc_bucket(calls.c.start_utc, minutes=minutes)
    columns = cols.raw_columns()
    query = (
        sa.select(
            bucket.label("bucket"),
            sa.func.count().label("calls"),
            sa.func.sum(sa.case((calls.c.answered, 1), else_=0)).label("answered"),
            sa.func.sum(calls.c.talk_seconds).label("talk_seconds"),
        )
        .select_from(cols.raw_from(attributed=cols.needs_attribution(params.filters)))
        .where(
            calls.c.tenant_id == params.tenant_id,
            calls.c.start_utc >= since,
            calls.c.start_utc < until,
            *cols.filter_conditions(columns, params.filters),
            *scoped,
        )
        .group_by(bucket)
    )
    fmt = _FORMATS[minutes][0]
    for row in conn.execute(query):
        start = datetime.strptime(row.bucket, fmt).replace(tzinfo=UTC)
        yield start.astimezone(params.zone), row


_PROFILE_MEASURES = (
    Column("calls", "Calls", "integer"),
    Column("answered", "Answered", "integer"),
    Column("unanswered", "Unanswered", "integer"),
    Column("talk_seconds", "Talk time", "seconds"),
)


def _hour_of_day(conn: sa.Connection, params: ReportParams) -> ReportTable:
    counts = [[0, 0, 0] for _ in range(24)]
    for local, row in local_buckets(conn, params):
        counts[local.hour][0] += row.calls
        counts[local.hour][1] += int(row.answered or 0)
        counts[local.hour][2] += int(row.talk_seconds or 0)
    rows = [(f"{hour:02d}:00", c, a, c - a, t) for hour, (c, a, t) in enumerate(counts)]
    columns = (Column("hour", "Hour", "text"), *_PROFILE_MEASURES)
    return ReportTable("Calls by hour of day", columns, rows, totals_of(columns, rows))


def _day_counts(params: ReportParams) -> list[int]:
    days = [0] * 7
    day = params.first_day
    while day <= params.last_day:
        days[day.weekday()] += 1
        day += timedelta(days=1)
    return days


def _day_of_week(conn: sa.Connection, params: ReportParams) -> ReportTable:
    counts = [[0, 0, 0] for _ in range(7)]
    request = SummaryRequest(
        params.tenant_id, params.zone, "day", params.first_day, params.last_day,
        filters=params.filters, scope=params.scope,
    )  # fmt: skip
    query = rollup_summary_query(request)
    if query is not None:
        for row in conn.execute(query):
            weekday = row.value.weekday()
            counts[weekday][0] += int(row.calls)
            counts[weekday][1] += int(row.answered or 0)
            counts[weekday][2] += int(row.talk_seconds or 0)
    else:
        for local, row in local_buckets(conn, params):
            counts[local.weekday()][0] += row.calls
            counts[local.weekday()][1] += int(row.answered or 0)
            counts[local.weekday()][2] += int(row.talk_seconds or 0)
    days = _day_counts(params)
    rows = [(WEEKDAYS[d], c, a, c - a, t, days[d]) for d, (c, a, t) in enumerate(counts)]
    columns = (Column("weekday", "Day", "text"), *_PROFILE_MEASURES,
               Column("days", "Days in range", "integer"))  # fmt: skip
    return ReportTable("Calls by day of week", columns, rows, totals_of(columns, rows))


HOUR_SPEC = ReportSpec(
    "hour_of_day", "Calls by hour of day", _hour_of_day,
    description="Calls, answered and talk time per hour of the day, on your clock.",
)  # fmt: skip
WEEKDAY_SPEC = ReportSpec(
    "day_of_week", "Calls by day of week", _day_of_week,
    description="Calls, answered and talk time per weekday, with the number of such days.",
)  # fmt: skip
