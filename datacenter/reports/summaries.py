"""Summaries over a date range, by one dimension, from the rollups (or the raw calls).

``summary(conn, request)`` answers "calls, answered, minutes and cost by <dimension>" for the
tenant-local days ``first_day`` .. ``last_day``, one ``SummaryRow`` per (dimension value,
currency), ordered by value then currency. Dimensions: ``extension``, ``direction``, ``trunk``,
``carrier``, ``destination_class`` (the rated number class), ``destination``, ``answered``,
``account_code`` and, through the directory entry that held the extension at the call's start,
``person``, ``department``, ``cost_centre`` and ``site``.

Where it reads (``summary_source``): the rollup table that has the dimension and every filtered
dimension (``rollup_extension_days`` for extension, ``rollup_route_days`` for trunk, carrier and
class, either for direction and answered; person, department, cost centre and site from the
extension rollup read through the directory where that is exact, below); the raw calls
(``calls`` left-joined to ``call_costs``) when no rollup has them (account code, destination, a
number filter), when ``source="raw"`` (the benchmark's baseline and the tests' cross-check), or
when a ``scope`` cannot be carried by the rollup (``reports.scope``). Both give the same rows:
the rollups hold exactly the raw aggregates (``datacenter.store.rollups``).

``filters`` maps a column of ``reports.columns`` to a filter string (``reports.filters``); blank
strings are ignored. Every statement is SQLAlchemy Core with bound parameters.

Attribution (``attributed_summary``). A call belongs to whoever held its extension at the
call's start (``store.attribution``); ``reports.holdings`` says, per extension and tenant-local
day of the range, which value of the attribute held it all day. Most extensions are held by one
directory entry the whole range (or by nobody): their rows of the extension rollup count under
that value unchanged. An extension that changed hands inside the range is read per day from the
same rollup, each day counted under the value that held it all day; only the days on which the
value changed at an instant other than local midnight (the change's day) are read from the raw
calls with the directory join, for that extension alone.

So it runs up to three statements (the extension rollup grouped by extension; the same for the
extensions that changed hands grouped by extension and day; the raw calls of their change days
grouped by the attribute) and adds them up per (value, currency), ordered as Python orders
text. When the rollup cannot answer at all (a filter on a column it lacks, a scope it cannot
carry) the whole summary reads the raw calls.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from datacenter.reports.columns import FILTERS, filter_conditions, needs_attribution, raw_columns
from datacenter.reports.columns import raw_from as _raw_from
from datacenter.reports.filters import parse_filter, text_condition
from datacenter.reports.holdings import holdings, raw_condition
from datacenter.reports.periods import utc_bounds
from datacenter.reports.scope import Scope, ScopeTarget, scope_conditions
from datacenter.store.rollups import ROLLUPS, Rollup
from datacenter.store.tables.core import calls
from datacenter.store.tables.rollups import rollup_extension_days
from shared.errors import ValidationError

DIMENSIONS = ("extension", "direction", "trunk", "carrier", "destination_class", "answered",
              "person", "department", "cost_centre", "site", "account_code", "destination")  # fmt: skip
ATTRIBUTED = ("person", "department", "cost_centre", "site")
# What the rollups answer (``source="rollups"``): their own dimensions and, through the
# directory, who held the extension.
ROLLUP_DIMENSIONS = ("extension", "direction", "trunk", "carrier", "destination_class",
                     "answered", *ATTRIBUTED)  # fmt: skip
_STORED = {"destination_class": "number_class"}  # report name -> rollup column
TEXT_FILTERS = FILTERS  # every column of reports.columns

Source = Literal["auto", "rollups", "raw"]


@dataclass(frozen=True)
class SummaryRequest:
    tenant_id: int
    zone: ZoneInfo
    by: str
    first_day: date
    last_day: date  # inclusive
    filters: Mapping[str, str] = field(default_factory=dict)
    scope: Scope | None = None


@dataclass(frozen=True, slots=True)
class SummaryRow:
    value: str | bool  # the dimension's value ("" for none: e.g. an unrated call's carrier)
    currency: str  # "" for calls without a cost in a currency
    calls: int
    answered: int
    talk_seconds: int
    billed_seconds: int
    cost_micro: int  # millionths of the currency unit
    rated: int


def summary(
    conn: sa.Connection, request: SummaryRequest, *, source: Source = "auto"
) -> list[SummaryRow]:
    """The summary ``request`` asks for (module doc)."""
    if source != "raw" and request.by in ATTRIBUTED:
        found = attributed_summary(conn, request)
        if found is not None:
            return found
    query = summary_query(request, source=source)
    return [
        SummaryRow(row[0], row[1], *(int(v or 0) for v in row[2:])) for row in conn.execute(query)
    ]


def summary_query(
    request: SummaryRequest,
    *,
    source: Source = "auto",
    where: tuple[sa.ColumnElement[bool], ...] = (),
) -> sa.Select[Any]:
    """The statement behind ``summary`` (for callers that stream or explain it); ``where``
    adds conditions on ``calls`` (the raw query only)."""
    if request.by not in DIMENSIONS:
        raise ValidationError("by", f"{request.by!r} is not one of {', '.join(DIMENSIONS)}")
    filters = {k: v for k, v in request.filters.items() if v.strip()}
    for name in filters:
        if name not in TEXT_FILTERS:
            raise ValidationError(name, f"no such filter; filters: {', '.join(TEXT_FILTERS)}")
    if source != "raw" and not where:
        rollup = summary_source(request.by, filters)
        if rollup is not None:
            query = _rollup_query(rollup, request, filters)
            if query is not None:
                return query
        if source == "rollups":
            raise ValidationError("by", f"no rollup answers a summary by {request.by}")
    return _raw_query(request, filters, where)


def summary_source(by: str, filters: Mapping[str, str]) -> Rollup | None:
    """The rollup that has ``by`` and every filtered dimension (the narrowest), or None."""
    needed = {_STORED.get(name, name) for name in (by, *filters) if name != "day"}
    fitting = [r for r in ROLLUPS if needed <= set(r.dimensions)]
    return min(fitting, key=lambda r: len(r.dimensions)) if fitting else None


def rollup_summary_query(request: SummaryRequest) -> sa.Select[Any] | None:
    """The summary from a rollup, or None when none answers it exactly; ``by`` may also be
    ``day`` (the tenant-local day, which only the rollups hold)."""
    filters = {k: v for k, v in request.filters.items() if v.strip()}
    rollup = summary_source(request.by, filters)
    return None if rollup is None else _rollup_query(rollup, request, filters)


def _measures(
    count: sa.ColumnElement[Any], answered: Any, talk: Any, billed: Any, cost: Any, rated: Any
) -> list[Any]:
    return [
        count.label("calls"),
        sa.func.sum(answered).label("answered"),
        sa.func.sum(talk).label("talk_seconds"),
        sa.func.sum(billed).label("billed_seconds"),
        sa.func.sum(cost).label("cost_micro"),
        sa.func.sum(rated).label("rated"),
    ]


def _rollup_query(
    rollup: Rollup, request: SummaryRequest, filters: Mapping[str, str]
) -> sa.Select[Any] | None:
    table = rollup.table
    has_extension = "extension" in rollup.dimensions
    target = ScopeTarget(
        request.tenant_id, table.c.extension if has_extension else None, day=table.c.day
    )
    scoped = scope_conditions(request.scope, target)
    if scoped is None:
        return None  # the scope needs the raw calls
    column = table.c[_STORED.get(request.by, request.by)]  # "day": every rollup has it
    conditions = [
        table.c.tenant_id == request.tenant_id,
        table.c.day.between(request.first_day, request.last_day),
        *(_filter(table.c[_STORED.get(name, name)], name, text) for name, text in filters.items()),
        *scoped,
    ]
    answered = sa.case((table.c.answered, table.c.calls), else_=0)
    return (
        sa.select(
            column.label("value"),
            table.c.currency,
            *_measures(
                sa.func.sum(table.c.calls),
                answered,
                table.c.talk_seconds,
                table.c.billed_seconds,
                table.c.cost_micro,
                table.c.rated,
            ),
        )
        .where(*conditions)
        .group_by(column, table.c.currency)
        .order_by(column, table.c.currency)
    )


def raw_from() -> sa.FromClause:
    return _raw_from()


def _raw_query(
    request: SummaryRequest,
    filters: Mapping[str, str],
    where: tuple[sa.ColumnElement[bool], ...] = (),
) -> sa.Select[Any]:
    columns = raw_columns()
    since, until = utc_bounds(request.first_day, request.last_day, request.zone)
    target = ScopeTarget(request.tenant_id, calls.c.extension, start_utc=calls.c.start_utc)
    scoped = scope_conditions(request.scope, target)
    if scoped is None:
        raise ValidationError("scope", "the scope cannot be applied to the raw calls")
    column = columns[request.by]
    currency = columns["currency"]
    answered = sa.case((calls.c.answered, 1), else_=0)
    return (
        sa.select(
            column.label("value"),
            currency.label("currency"),
            *_measures(
                sa.func.count(),
                answered,
                calls.c.talk_seconds,
                columns["billed_seconds"],
                columns["cost_micro"],
                columns["rated"],
            ),
        )
        .select_from(_raw_from(attributed=needs_attribution((request.by, *filters))))
        .where(
            calls.c.tenant_id == request.tenant_id,
            calls.c.start_utc >= since,
            calls.c.start_utc < until,
            *filter_conditions(columns, filters),
            *scoped,
            *where,
        )
        .group_by(column, currency)
        .order_by(column, currency)
    )


def _filter(column: sa.ColumnElement[Any], name: str, text: str) -> sa.ColumnElement[bool]:
    return text_condition(column, parse_filter(text, field=name))


# --- summaries by who held the extension ---------------------------------------------------


def attributed_summary(conn: sa.Connection, request: SummaryRequest) -> list[SummaryRow] | None:
    """The summary by ``request.by`` (an attribution column), or None (see "Attribution"
    in the module doc)."""
    filters = {k: v for k, v in request.filters.items() if v.strip()}
    by_extension = SummaryRequest(
        request.tenant_id, request.zone, "extension", request.first_day, request.last_day,
        filters=filters, scope=request.scope,
    )  # fmt: skip
    query = rollup_summary_query(by_extension)
    if query is None:
        return None  # a filter or the scope needs the raw calls: read them by the attribute
    held = holdings(conn, request.tenant_id, request.by, request.first_day, request.last_day,
                    request.zone)  # fmt: skip
    split = set(held.split)
    totals: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0] * 6)
    for row in conn.execute(query):
        if row.value not in split:
            _add(totals, held.whole.get(row.value, ""), row)
    if held.segments:
        for row in conn.execute(_per_day(query, sorted(held.segments))):
            value = held.day_value(row.value, row.day)
            if value is not None:  # None: a raw day, read below
                _add(totals, value, row)
    raw_days = raw_condition(held, request.zone, calls.c.extension, calls.c.start_utc)
    if raw_days is not None:
        for row in conn.execute(summary_query(request, source="raw", where=(raw_days,))):
            _add(totals, row.value, row)
    return [SummaryRow(value, currency, *measures) for (value, currency), measures in
            sorted(totals.items())]  # fmt: skip


def _per_day(by_extension: sa.Select[Any], extensions: list[str]) -> sa.Select[Any]:
    """The extension rollup summary ``by_extension``, for ``extensions`` only, per day too."""
    e = rollup_extension_days.c
    return (
        by_extension.add_columns(e.day.label("day"))
        .where(e.extension.in_(extensions))
        .group_by(e.day)
        .order_by(None)
    )


def _add(totals: dict[tuple[str, str], list[int]], value: str, row: sa.Row[object]) -> None:
    measures = totals[(value, row.currency)]
    for i, name in enumerate(
        ("calls", "answered", "talk_seconds", "billed_seconds", "cost_micro", "rated")
    ):
        measures[i] += int(getattr(row, name) or 0)
