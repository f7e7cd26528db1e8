"""Top N: the costliest calls, the longest calls, the most-called numbers, the busiest extensions.

``o.kind`` chooses which, ``o.n`` how many (default 10, at most ``MAX_N``); every filter of
``reports.columns`` applies, and so does the viewer's scope.

- ``costliest`` / ``longest``: single calls from the raw calls, by cost (micro-units, so costs
  in different currencies compare by amount) or by talk time, ties broken by record id. Each
  cost opens its call's explanation.
- ``numbers``: outgoing calls grouped by the number called: its E.164 form when the call was
  rated, else the recorded ``called`` number; most calls first, then cost. A rated number drills
  down to its calls (``f.e164``); an unrated one cannot be selected exactly, so it has no link.
- ``extensions``: calls per extension from the extension rollup (``reports.summaries``; raw when
  a filter or the scope needs it), most calls first. An extension's costs in several currencies
  are not added: its cost is then blank.

Ties after the measure are broken by the value (number, extension), so the N shown are always
the same N.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import sqlalchemy as sa

from datacenter.reports import columns as cols
from datacenter.reports.detail import DetailRequest, detail_query
from datacenter.reports.periods import utc_bounds
from datacenter.reports.scope import ScopeTarget, scope_conditions
from datacenter.reports.summaries import SummaryRequest, summary
from datacenter.reports.tables import (
    Column,
    Option,
    ReportParams,
    ReportSpec,
    ReportTable,
    Row,
    drill_filters,
    int_option,
    money,
    option,
    totals_of,
)
from datacenter.store.tables.core import calls
from shared.errors import ValidationError

MAX_N = 1_000
KIND = Option("kind", "Top", "costliest", ("costliest", "longest", "numbers", "extensions"))
N = Option("n", "How many", "10", help=f"1-{MAX_N}")

_CALL_COLUMNS = (
    Column("record_id", "Record", "text"),
    Column("start_utc", "Start", "datetime"),
    Column("extension", "Extension", "text"),
    Column("person", "Person", "text"),
    Column("number", "Number", "text"),
    Column("destination", "Destination", "text"),
    Column("talk_seconds", "Talk time", "seconds"),
    Column("currency", "Currency", "text"),
    Column("cost", "Cost", "money"),
)
_NUMBER_COLUMNS = (
    Column("number", "Number", "text"),
    Column("destination", "Destination", "text"),
    Column("currency", "Currency", "text"),
    Column("calls", "Calls", "integer"),
    Column("talk_seconds", "Talk time", "seconds"),
    Column("cost", "Cost", "money"),
)
_EXTENSION_COLUMNS = (
    Column("extension", "Extension", "text"),
    Column("calls", "Calls", "integer"),
    Column("answered", "Answered", "integer"),
    Column("talk_seconds", "Talk time", "seconds"),
    Column("currency", "Currency", "text"),
    Column("cost", "Cost", "money"),
)


def _calls(conn: sa.Connection, params: ReportParams, kind: str, n: int) -> ReportTable:
    request = DetailRequest(
        params.tenant_id, params.zone, params.first_day, params.last_day,
        filters=params.filters, scope=params.scope,
        sort="cost" if kind == "costliest" else "talk_seconds", limit=n,
    )  # fmt: skip
    rows = []
    for r in conn.execute(detail_query(request)):
        number = r.e164 or r.called
        rows.append((r.record_id, r.start_utc, r.extension, r.person, number, r.destination,
                     r.talk_seconds, r.currency, money(int(r.cost_micro or 0))))  # fmt: skip
    title = "Costliest calls" if kind == "costliest" else "Longest calls"
    return ReportTable(title, _CALL_COLUMNS, rows, totals_of(_CALL_COLUMNS, rows),
                       record_column="record_id")  # fmt: skip


def _numbers(conn: sa.Connection, params: ReportParams, n: int) -> ReportTable:
    columns = cols.raw_columns()
    since, until = utc_bounds(params.first_day, params.last_day, params.zone)
    scoped = scope_conditions(
        params.scope, ScopeTarget(params.tenant_id, calls.c.extension, start_utc=calls.c.start_utc)
    )
    if scoped is None:  # pragma: no cover - every scope applies to the raw calls
        raise ValidationError("scope", "the scope cannot be applied to the raw calls")
    number = sa.func.coalesce(sa.func.nullif(columns["e164"], ""), calls.c.called)
    count = sa.func.count()
    cost = sa.func.sum(columns["cost_micro"])
    query = (
        sa.select(
            number.label("number"),
            sa.func.max(columns["destination"]).label("destination"),
            sa.func.max(columns["e164"]).label("e164"),
            columns["currency"].label("currency"),
            count.label("calls"),
            sa.func.sum(calls.c.talk_seconds).label("talk_seconds"),
            cost.label("cost_micro"),
        )
        .select_from(cols.raw_from(attributed=cols.needs_attribution(params.filters)))
        .where(
            calls.c.tenant_id == params.tenant_id,
            calls.c.start_utc >= since,
            calls.c.start_utc < until,
            calls.c.direction == "out",
            *cols.filter_conditions(columns, params.filters),
            *scoped,
        )
        .group_by(number, columns["currency"])
        .order_by(count.desc(), cost.desc(), number, columns["currency"])
        .limit(n)
    )
    found = list(conn.execute(query))
    rows = [(r.number, r.destination, r.currency, r.calls, int(r.talk_seconds or 0),
             money(int(r.cost_micro or 0))) for r in found]  # fmt: skip
    rated = {r.number for r in found if r.e164 == r.number}

    def drill(row: Row) -> dict[str, str] | None:
        if row[0] not in rated:
            return None  # an unrated number: other calls to it may be rated under its E.164
        return drill_filters(params, e164=row[0], direction="out")

    return ReportTable("Most-called numbers", _NUMBER_COLUMNS, rows,
                       totals_of(_NUMBER_COLUMNS, rows), drill=drill)  # fmt: skip


def _extensions(conn: sa.Connection, params: ReportParams, n: int) -> ReportTable:
    request = SummaryRequest(
        params.tenant_id, params.zone, "extension", params.first_day, params.last_day,
        filters=params.filters, scope=params.scope,
    )  # fmt: skip
    merged: dict[str, list[Any]] = defaultdict(lambda: [0, 0, 0, set(), 0])
    for r in summary(conn, request):
        m = merged[str(r.value)]
        m[0] += r.calls
        m[1] += r.answered
        m[2] += r.talk_seconds
        if r.currency:
            m[3].add(r.currency)
        m[4] += r.cost_micro
    ranked = sorted(merged.items(), key=lambda item: (-item[1][0], -item[1][4], item[0]))[:n]
    rows = []
    for extension, (count, answered, talk, currencies, cost) in ranked:
        single = len(currencies) <= 1
        rows.append((extension, count, answered, talk, "".join(currencies) if single else "",
                     money(cost) if single else None))  # fmt: skip

    def drill(row: Row) -> dict[str, str] | None:
        return drill_filters(params, extension=row[0])

    return ReportTable("Busiest extensions", _EXTENSION_COLUMNS, rows,
                       totals_of(_EXTENSION_COLUMNS, rows), drill=drill)  # fmt: skip


def run(conn: sa.Connection, params: ReportParams) -> ReportTable:
    kind = option(params, KIND)
    n = int_option(params, N, low=1, high=MAX_N)
    if kind in ("costliest", "longest"):
        return _calls(conn, params, kind, n)
    if kind == "numbers":
        return _numbers(conn, params, n)
    return _extensions(conn, params, n)


SPEC = ReportSpec(
    "top", "Top N", run, options=(KIND, N),
    description="The costliest or longest calls, the most-called numbers, the busiest extensions.",
)  # fmt: skip
