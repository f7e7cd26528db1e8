"""The catalogue of reports: every report's name, title, options and the table it produces.

``REPORTS`` maps a name to its ``ReportSpec`` (``reports.tables``); the pages list it in this
order, the exports and schedules look reports up with ``report(name)``. Each report module builds
its own table; this one holds the two general ones (summary, call detail) and the registry.
Non-streaming tables are sorted here by ``params.sort`` (any column), so every report sorts alike.

    summary       calls, answered, time and cost by one dimension (o.by)      summaries.py, attributed.py
    detail        one row per call (streams)                                  detail.py
    top           costliest / longest calls, most-called numbers, busiest extensions   top.py
    hour_of_day   calls per hour of the tenant's day                          profiles.py
    day_of_week   calls per weekday                                           profiles.py
    inbound       inbound service by ring-time band                           inbound.py
    trunks        trunk utilisation per hour, with each trunk's busy hour      trunks.py
    busy_hour     per trunk: the peak of simultaneous calls and its hour       trunks.py
    chargeback    cost per cost centre and department with a mark-up          chargeback.py
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace

import sqlalchemy as sa

from datacenter.reports import chargeback, inbound, profiles, top, trunks
from datacenter.reports.detail import MAX_LIMIT, DetailRequest, detail_query
from datacenter.reports.summaries import DIMENSIONS, SummaryRequest, summary
from datacenter.reports.tables import (
    Column,
    ColumnKind,
    Option,
    ReportParams,
    ReportSpec,
    ReportTable,
    Row,
    check_masked_filters,
    drill_filters,
    masked_table,
    money,
    option,
    sorted_table,
)
from shared.errors import ValidationError

__all__ = [
    "REPORTS", "Column", "ColumnKind", "Option", "ReportParams", "ReportSpec", "ReportTable",
    "money", "report",
]  # fmt: skip

_SUMMARY_COLUMNS = (
    Column("currency", "Currency", "text"),
    Column("calls", "Calls", "integer"),
    Column("answered", "Answered", "integer"),
    Column("talk_seconds", "Talk time", "seconds"),
    Column("billed_seconds", "Billed time", "seconds"),
    Column("cost", "Cost", "money"),
)
BY = Option("by", "Summarise by", "extension", DIMENSIONS)
_LABELS = {"cost_centre": "Cost centre", "destination_class": "Destination class",
           "account_code": "Account code"}  # fmt: skip


def label(name: str) -> str:
    return _LABELS.get(name, name.replace("_", " ").capitalize())


def _summary(conn: sa.Connection, params: ReportParams) -> ReportTable:
    by = option(params, BY)
    request = SummaryRequest(
        params.tenant_id, params.zone, by, params.first_day, params.last_day,
        filters=params.filters, scope=params.scope,
    )  # fmt: skip
    found = summary(conn, request)
    rows = [
        (r.value, r.currency, r.calls, r.answered, r.talk_seconds, r.billed_seconds,
         money(r.cost_micro))
        for r in found
    ]  # fmt: skip
    currencies = {r.currency for r in found if r.currency}
    totals = (
        "Total",
        "".join(currencies) if len(currencies) == 1 else "",
        sum(r.calls for r in found),
        sum(r.answered for r in found),
        sum(r.talk_seconds for r in found),
        sum(r.billed_seconds for r in found),
        money(sum(r.cost_micro for r in found)) if len(currencies) <= 1 else None,
    )

    def drill(row: Row) -> dict[str, str] | None:
        if by == "answered":
            return None  # no text filter says "answered"; the detail shows it per call
        return drill_filters(params, **{by: str(row[0]), "currency": row[1]})

    title = f"Summary by {label(by).lower()}"
    columns = (Column(by, label(by), "text"), *_SUMMARY_COLUMNS)
    return ReportTable(title, columns, rows, totals, drill=drill)


_DETAIL_COLUMNS = (
    Column("record_id", "Record", "text"),
    Column("start_utc", "Start", "datetime"),
    Column("direction", "Direction", "text"),
    Column("extension", "Extension", "text"),
    Column("trunk", "Trunk", "text"),
    Column("calling", "Calling", "text"),
    Column("called", "Called", "text"),
    Column("dialled_digits", "Dialled", "text"),
    Column("answered", "Answered", "boolean"),
    Column("talk_seconds", "Talk time", "seconds"),
    Column("e164", "Number", "text"),
    Column("carrier", "Carrier", "text"),
    Column("destination_class", "Class", "text"),
    Column("destination", "Destination", "text"),
    Column("currency", "Currency", "text"),
    Column("billed_seconds", "Billed time", "seconds"),
    Column("person", "Person", "text"),
    Column("department", "Department", "text"),
    Column("cost_centre", "Cost centre", "text"),
    Column("site", "Site", "text"),
    Column("account_code", "Account code", "text"),
    Column("cost", "Cost", "money"),
)
STREAM_BATCH_ROWS = 2_000


def _detail_rows(conn: sa.Connection, params: ReportParams) -> Iterator[Row]:
    # Page through the whole range in one server-side cursor: any number of rows, read
    # STREAM_BATCH_ROWS at a time, never all held at once.
    request = DetailRequest(
        params.tenant_id, params.zone, params.first_day, params.last_day,
        filters=params.filters, scope=params.scope, sort=params.sort or "start",
        descending=params.descending, limit=MAX_LIMIT,
    )  # fmt: skip
    query = detail_query(request).limit(None).offset(None)
    streamed = conn.execution_options(stream_results=True, yield_per=STREAM_BATCH_ROWS)
    # ``with``: a reader that stops early (an export whose client went away) closes the
    # generator, and the server-side cursor is closed with it, not left to the collector.
    with streamed.execute(query) as result:
        for row in result:
            values = tuple(row)
            yield (*values[:-1], money(int(values[-1] or 0)))


def _detail(conn: sa.Connection, params: ReportParams) -> ReportTable:
    # Checked before the first row is read, so a bad sort or filter fails the request, not
    # the middle of a stream.
    detail_query(DetailRequest(params.tenant_id, params.zone, params.first_day, params.last_day,
                               filters=params.filters, sort=params.sort or "start"))  # fmt: skip
    return ReportTable(
        "Call detail", _DETAIL_COLUMNS, _detail_rows(conn, params), record_column="record_id"
    )


Run = Callable[[sa.Connection, ReportParams], ReportTable]


def _finishing(run: Run, *, streams: bool) -> Run:
    """``run`` with the viewer's number masking (and, unless it streams, the sort) applied."""

    def finished_run(conn: sa.Connection, params: ReportParams) -> ReportTable:
        check_masked_filters(params)
        table = run(conn, params)
        if not streams:
            table = sorted_table(replace(table, rows=list(table.rows)), params)
        table = masked_table(table, params)
        if not streams:
            table = replace(table, rows=list(table.rows))
        return table

    return finished_run


def _spec(spec: ReportSpec) -> ReportSpec:
    return replace(spec, run=_finishing(spec.run, streams=spec.streams))


REPORTS: dict[str, ReportSpec] = {
    spec.name: _spec(spec)
    for spec in (
        ReportSpec(
            "summary",
            "Summary",
            _summary,
            options=(BY,),
            description="Calls, answered, talk and billed time and cost by extension, "
            "person, department, cost centre, site, account code, trunk, carrier, "
            "destination or destination class.",
        ),
        ReportSpec(
            "detail",
            "Call detail",
            _detail,
            streams=True,
            description="Every call with its cost; each cost opens its explanation.",
        ),
        top.SPEC,
        profiles.HOUR_SPEC,
        profiles.WEEKDAY_SPEC,
        inbound.SPEC,
        trunks.UTILISATION_SPEC,
        trunks.BUSY_HOUR_SPEC,
        chargeback.SPEC,
    )
}


def report(name: str) -> ReportSpec:
    try:
        return REPORTS[name]
    except KeyError:
        raise ValidationError(
            "report", f"no report {name!r}; reports: {', '.join(REPORTS)}"
        ) from None
