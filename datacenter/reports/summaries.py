"""Summaries over a date range, by one dimension, from the rollups (or the raw calls).

``summary(conn, request)`` answers "calls, answered, minutes and cost by <dimension>" for the
tenant-local days ``first_day`` .. ``last_day``, one ``SummaryRow`` per (dimension value,
currency), ordered by value then currency. Dimensions: ``extension``, ``direction``, ``trunk``,
``carrier``, ``destination_class`` (the rated number class), ``answered``.

Where it reads (``summary_source``): the rollup table that has the dimension and every filtered
dimension (``rollup_extension_days`` for extension, ``rollup_route_days`` for trunk, carrier and
class; either for direction and answered); the raw calls (``calls`` left-joined to
``call_costs``) when no rollup has them, when ``source="raw"`` (the benchmark's baseline and the
tests' cross-check), or when a ``scope`` cannot be carried by the rollup (``reports.scope``).
Both give the same rows: the rollups hold exactly the raw aggregates (``datacenter.store.rollups``).

``filters`` maps a dimension to a filter string (``reports.filters``); blank strings are ignored.
Every statement is SQLAlchemy Core with bound parameters.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from datacenter.reports.filters import parse_filter, text_condition
from datacenter.reports.periods import utc_bounds
from datacenter.reports.scope import Scope, ScopeTarget, scope_conditions
from datacenter.store.rollups import MICRO_PLACES, ROLLUPS, Rollup
from datacenter.store.tables.core import calls
from datacenter.store.tables.rating import call_costs
from shared.errors import ValidationError

DIMENSIONS = ("extension", "direction", "trunk", "carrier", "destination_class", "answered")
_STORED = {"destination_class": "number_class"}  # report name -> rollup column
TEXT_FILTERS = ("extension", "direction", "trunk", "carrier", "destination_class", "currency")

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
    query = summary_query(request, source=source)
    return [
        SummaryRow(row[0], row[1], *(int(v or 0) for v in row[2:])) for row in conn.execute(query)
    ]


def summary_query(request: SummaryRequest, *, source: Source = "auto") -> sa.Select[Any]:
    """The statement behind ``summary`` (for callers that stream or explain it)."""
    if request.by not in DIMENSIONS:
        raise ValidationError("by", f"{request.by!r} is not one of {', '.join(DIMENSIONS)}")
    filters = {k: v for k, v in request.filters.items() if v.strip()}
    for name in filters:
        if name not in TEXT_FILTERS:
            raise ValidationError(name, f"no such filter; filters: {', '.join(TEXT_FILTERS)}")
    if source != "raw":
        rollup = summary_source(request.by, filters)
        if rollup is not None:
            query = _rollup_query(rollup, request, filters)
            if query is not None:
                return query
        if source == "rollups":
            raise ValidationError("by", f"no rollup answers a summary by {request.by}")
    return _raw_query(request, filters)


def summary_source(by: str, filters: Mapping[str, str]) -> Rollup | None:
    """The rollup that has ``by`` and every filtered dimension (the narrowest), or None."""
    needed = {_STORED.get(name, name) for name in (by, *filters)}
    fitting = [r for r in ROLLUPS if needed <= set(r.dimensions)]
    return min(fitting, key=lambda r: len(r.dimensions)) if fitting else None


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
    column = table.c[_STORED.get(request.by, request.by)]
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


def raw_columns() -> dict[str, sa.ColumnElement[Any]]:
    """Each dimension and measure as an expression over ``calls`` LEFT JOIN ``call_costs``."""
    factor = sa.case(
        *((call_costs.c.decimals == d, 10 ** (MICRO_PLACES - d)) for d in range(MICRO_PLACES + 1)),
        else_=0,
    )
    return {
        "extension": calls.c.extension,
        "direction": calls.c.direction,
        "trunk": calls.c.trunk,
        "answered": calls.c.answered,
        "carrier": sa.func.coalesce(call_costs.c.carrier, ""),
        "destination_class": sa.func.coalesce(call_costs.c.number_class, ""),
        "currency": sa.func.coalesce(call_costs.c.currency, ""),
        "billed_seconds": sa.func.coalesce(call_costs.c.billed_seconds, 0),
        "cost_micro": sa.func.coalesce(call_costs.c.cost_minor * factor, 0),
        "rated": sa.case((call_costs.c.record_id.is_(None), 0), else_=1),
    }


def raw_from() -> sa.FromClause:
    return calls.outerjoin(
        call_costs,
        sa.and_(
            call_costs.c.tenant_id == calls.c.tenant_id,
            call_costs.c.record_id == calls.c.record_id,
        ),
    )


def _raw_query(request: SummaryRequest, filters: Mapping[str, str]) -> sa.Select[Any]:
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
        .select_from(raw_from())
        .where(
            calls.c.tenant_id == request.tenant_id,
            calls.c.start_utc >= since,
            calls.c.start_utc < until,
            *(_filter(columns[name], name, text) for name, text in filters.items()),
            *scoped,
        )
        .group_by(column, currency)
        .order_by(column, currency)
    )


def _filter(column: sa.ColumnElement[Any], name: str, text: str) -> sa.ColumnElement[bool]:
    return text_condition(column, parse_filter(text, field=name))
