"""The catalogue of reports: each report's name, title and the table it produces.

The report pages, the exports (CSV, XLSX, PDF) and the scheduled reports all go through this
catalogue, so a report added once is shown, exported and scheduled alike. A report is a
``ReportSpec``: ``run(conn, params)`` returns a ``ReportTable`` — typed columns, rows (an
iterable that may stream from the store: the caller keeps ``conn`` open while it reads them)
and the totals row.

Values in rows follow the column's kind: ``money`` is a ``Decimal`` in the currency's units
(the row's currency in a ``currency`` text column), ``seconds`` and ``integer`` are ``int``,
``datetime`` an aware UTC ``datetime`` (the presentation converts to the tenant's zone),
``boolean`` a ``bool``, ``percent`` a ``Decimal`` 0-100, ``text`` a ``str``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from datacenter.reports.detail import MAX_LIMIT, DetailRequest, detail_query
from datacenter.reports.scope import Scope
from datacenter.reports.summaries import DIMENSIONS, SummaryRequest, summary
from datacenter.store.rollups import MICRO_PLACES
from shared.errors import ValidationError

ColumnKind = Literal["text", "integer", "seconds", "money", "percent", "datetime", "boolean"]


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    kind: ColumnKind


@dataclass(frozen=True)
class ReportParams:
    """What every report is asked with; ``options`` holds a report's own (e.g. ``by``)."""

    tenant_id: int
    zone: ZoneInfo
    first_day: date
    last_day: date  # inclusive
    filters: Mapping[str, str] = field(default_factory=dict)
    scope: Scope | None = None
    sort: str | None = None  # None: the report's own order
    descending: bool = True
    options: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ReportTable:
    title: str
    columns: tuple[Column, ...]
    rows: Iterable[tuple[Any, ...]]
    totals: tuple[Any, ...] | None = None  # one value per column, None where it has no total


@dataclass(frozen=True)
class ReportSpec:
    name: str
    title: str
    run: Callable[[sa.Connection, ReportParams], ReportTable]
    streams: bool = False  # rows come from the store as they are read (any number of them)


def money(micro: int) -> Decimal:
    """Millionths of a currency unit (the store's report measure) as a Decimal in units."""
    return Decimal(micro).scaleb(-MICRO_PLACES)


_SUMMARY_COLUMNS = (
    Column("currency", "Currency", "text"),
    Column("calls", "Calls", "integer"),
    Column("answered", "Answered", "integer"),
    Column("talk_seconds", "Talk time", "seconds"),
    Column("billed_seconds", "Billed time", "seconds"),
    Column("cost", "Cost", "money"),
)


def _summary(conn: sa.Connection, params: ReportParams) -> ReportTable:
    by = params.options.get("by", "extension")
    if by not in DIMENSIONS:
        raise ValidationError("by", f"{by!r} is not one of {', '.join(DIMENSIONS)}")
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
    title = f"Summary by {by.replace('_', ' ')}"
    return ReportTable(title, (Column(by, by.replace("_", " ").capitalize(), "text"),
                               *_SUMMARY_COLUMNS), rows, totals)  # fmt: skip


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
    Column("cost", "Cost", "money"),
)
STREAM_BATCH_ROWS = 2_000


def _detail_rows(conn: sa.Connection, params: ReportParams) -> Iterator[tuple[Any, ...]]:
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
    return ReportTable("Call detail", _DETAIL_COLUMNS, _detail_rows(conn, params))


REPORTS: dict[str, ReportSpec] = {
    spec.name: spec
    for spec in (
        ReportSpec("summary", "Summary", _summary),
        ReportSpec("detail", "Call detail", _detail, streams=True),
    )
}


def report(name: str) -> ReportSpec:
    try:
        return REPORTS[name]
    except KeyError:
        raise ValidationError(
            "report", f"no report {name!r}; reports: {', '.join(REPORTS)}"
        ) from None
