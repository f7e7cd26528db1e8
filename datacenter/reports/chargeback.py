"""Charge-back: what each cost centre's calls cost, and what to charge it with a mark-up.

From the raw calls with the directory entry that held each call's extension at its start
(``store.attribution``: a call belongs to the cost centre of that moment, not of today), grouped
by cost centre, then department, then currency; every filter and the scope apply. ``o.markup``
is the mark-up in percent (default ``DEFAULT_MARKUP``: the tenant has no mark-up setting yet;
0-1000, up to 4 decimals). A row's ``charge`` is its cost x (1 + mark-up / 100), rounded half up
to the micro-unit the costs are kept in, so a cost centre's charge is exactly the sum of its rows'.

Rows are grouped by cost centre (``""``: extensions nobody held), each with a sub-total (money
only where the cost centre's rows share one currency), then the grand total.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa

from datacenter.reports import columns as cols
from datacenter.reports.periods import utc_bounds
from datacenter.reports.scope import ScopeTarget, scope_conditions
from datacenter.reports.tables import (
    Column,
    Option,
    ReportParams,
    ReportSpec,
    ReportTable,
    Row,
    drill_filters,
    money,
    option,
    totals_of,
)
from datacenter.store.rollups import MICRO_PLACES
from datacenter.store.tables.core import calls
from shared.errors import ValidationError

DEFAULT_MARKUP = "0"
MAX_MARKUP = Decimal(1000)
MARKUP = Option("markup", "Mark-up %", DEFAULT_MARKUP, help="percent added to the cost, 0-1000")
COLUMNS = (
    Column("cost_centre", "Cost centre", "text"),
    Column("department", "Department", "text"),
    Column("currency", "Currency", "text"),
    Column("calls", "Calls", "integer"),
    Column("billed_seconds", "Billed time", "seconds"),
    Column("cost", "Cost", "money"),
    Column("markup_percent", "Mark-up %", "percent"),
    Column("charge", "Charge", "money"),
)
MICRO = Decimal(1).scaleb(-MICRO_PLACES)


def markup(params: ReportParams) -> Decimal:
    text = option(params, MARKUP)
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValidationError("o.markup", f"{text!r} is not a number; write e.g. 12.5") from None
    if (
        not value.is_finite()
        or not 0 <= value <= MAX_MARKUP
        or value != value.quantize(Decimal("0.0001"))
    ):
        raise ValidationError("o.markup", "a percentage 0-1000 with at most 4 decimals")
    return value


def charge(cost: Decimal, percent: Decimal) -> Decimal:
    return (cost * (1 + percent / 100)).quantize(MICRO, ROUND_HALF_UP)


def run(conn: sa.Connection, params: ReportParams) -> ReportTable:
    percent = markup(params)
    since, until = utc_bounds(params.first_day, params.last_day, params.zone)
    scoped = scope_conditions(
        params.scope, ScopeTarget(params.tenant_id, calls.c.extension, start_utc=calls.c.start_utc)
    )
    if scoped is None:  # pragma: no cover - every scope applies to the raw calls
        raise ValidationError("scope", "the scope cannot be applied to the raw calls")
    c = cols.raw_columns()
    keys = (c["cost_centre"], c["department"], c["currency"])
    query = (
        sa.select(
            *(key.label(name) for key, name in zip(keys, ("cc", "dept", "cur"), strict=True)),
            sa.func.count().label("calls"),
            sa.func.sum(c["billed_seconds"]).label("billed"),
            sa.func.sum(c["cost_micro"]).label("cost"),
        )
        .select_from(cols.raw_from(attributed=True))
        .where(
            calls.c.tenant_id == params.tenant_id,
            calls.c.start_utc >= since,
            calls.c.start_utc < until,
            *cols.filter_conditions(c, params.filters),
            *scoped,
        )
        .group_by(*keys)
    )
    rows: list[Row] = []
    for r in conn.execute(query):
        cost = money(int(r.cost or 0))
        rows.append((r.cc, r.dept, r.cur, r.calls, int(r.billed or 0), cost, percent,
                     charge(cost, percent)))  # fmt: skip
    rows.sort(key=lambda row: (row[0], row[1], row[2]))
    groups: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        groups[row[0]].append(row)
    subtotals = {cc: _subtotal(cc, members, percent) for cc, members in groups.items()}
    totals = _subtotal("Total", rows, percent)

    def drill(row: Row) -> dict[str, str] | None:
        return drill_filters(params, cost_centre=row[0], department=row[1], currency=row[2])

    return ReportTable("Charge-back by cost centre", COLUMNS, rows, totals,
                       group_by="cost_centre", subtotals=subtotals, drill=drill)  # fmt: skip


def _subtotal(label: str, rows: list[Row], percent: Decimal) -> Row:
    summed: list[Any] = list(totals_of(COLUMNS, rows))
    summed[0], summed[1], summed[6] = label, "", percent
    return tuple(summed)


SPEC = ReportSpec(
    "chargeback", "Charge-back", run, options=(MARKUP,),
    description="Cost per cost centre and department, and the charge with your mark-up.",
)  # fmt: skip
