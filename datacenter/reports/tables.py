"""What a report is and what it produces: ``ReportSpec``, ``ReportParams``, ``ReportTable``.

The report pages, the exports (CSV, XLSX, PDF) and the scheduled reports all go through the
catalogue (``reports.catalog``), so a report added once is shown, exported and scheduled alike.
A report is a ``ReportSpec``: ``run(conn, params)`` returns a ``ReportTable`` — typed columns,
rows (an iterable that may stream from the store: the caller keeps ``conn`` open while it reads
them), the totals row and, for reports whose rows fall into groups, a sub-total per group.

Values in rows follow the column's kind: ``money`` is a ``Decimal`` in the currency's units
(the row's currency in a ``currency`` text column), ``seconds`` and ``integer`` are ``int``,
``datetime`` an aware UTC ``datetime`` (the presentation converts to the tenant's zone),
``boolean`` a ``bool``, ``percent`` a ``Decimal`` 0-100, ``text`` a ``str``.

Where a number comes from, for the pages' links: ``record_column`` names the column holding a
call's record id (each of its costs opens that call's explanation); ``drill(row)`` gives the
filters of the call-detail report that select exactly the calls a summary row counts (None for
a row that cannot be narrowed that way).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from datacenter.reports.columns import FILTERS
from datacenter.reports.filters import Filter, Term, format_filter
from datacenter.reports.scope import Scope
from datacenter.store.call_scope import mask_number
from datacenter.store.rollups import MICRO_PLACES
from shared.errors import ValidationError

# Columns holding external numbers: the last ``ReportParams.mask_digits`` digits hidden for a
# viewer whose role masks numbers. ``masked_table`` is the one place report rows are masked: the
# pages, exports, saved reports and scheduled runs all get their tables from the catalogue.
NUMBER_COLUMNS = frozenset(("calling", "called", "dialled_digits", "third_party", "ani", "dnis",
                            "e164", "number"))  # fmt: skip
ColumnKind = Literal["text", "integer", "seconds", "money", "percent", "datetime", "boolean"]
Row = tuple[Any, ...]


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
    mask_digits: int = 0  # the viewer's number masking: last N digits of numbers hidden


@dataclass(frozen=True)
class ReportTable:
    title: str
    columns: tuple[Column, ...]
    rows: Iterable[Row]
    totals: Row | None = None  # one value per column, None where it has no total
    group_by: str | None = None  # rows come grouped by this column's value, in group order
    subtotals: Mapping[Any, Row] = field(default_factory=dict)  # group value -> sub-total row
    record_column: str | None = None  # the column holding each row's call record id
    drill: Callable[[Row], Mapping[str, str] | None] | None = None  # row -> detail filters

    def index(self, key: str) -> int:
        return [c.key for c in self.columns].index(key)


@dataclass(frozen=True)
class Option:
    """A report's own parameter (``o.<key>`` in a URL): its choices, or free text."""

    key: str
    title: str
    default: str
    choices: tuple[str, ...] = ()
    help: str = ""


@dataclass(frozen=True)
class ReportSpec:
    name: str
    title: str
    run: Callable[[sa.Connection, ReportParams], ReportTable]
    streams: bool = False  # rows come from the store as they are read (any number of them)
    description: str = ""
    options: tuple[Option, ...] = ()
    filters: tuple[str, ...] = FILTERS  # the columns it can be filtered on


def money(micro: int) -> Decimal:
    """Millionths of a currency unit (the store's report measure) as a Decimal in units."""
    return Decimal(micro).scaleb(-MICRO_PLACES)


EMPTY = "!_%"  # not "one character, then anything": only the empty text


def exact(value: str) -> str:
    """A filter matching exactly ``value`` (its special characters escaped); ``""`` (e.g. calls
    of extensions nobody held) is matched by ``EMPTY``."""
    return format_filter(Filter((Term(False, (value,)),))) if value else EMPTY


def drill_filters(params: ReportParams, **narrow: str) -> dict[str, str] | None:
    """The report's own filters narrowed to the row's values (text columns)."""
    found = {k: v for k, v in params.filters.items() if v.strip()}
    found.update({name: exact(value) for name, value in narrow.items()})
    return found


def option(params: ReportParams, spec: Option) -> str:
    """The option's value (its default when not given); a value outside its choices is a
    ``ValidationError`` naming ``o.<key>``."""
    value = params.options.get(spec.key, "").strip() or spec.default
    if spec.choices and value not in spec.choices:
        raise ValidationError(f"o.{spec.key}", f"{value!r} is not one of {', '.join(spec.choices)}")
    return value


def int_option(params: ReportParams, spec: Option, *, low: int, high: int) -> int:
    text = option(params, spec)
    try:
        value = int(text)
    except ValueError:
        raise ValidationError(f"o.{spec.key}", f"{text!r} is not a whole number") from None
    if not low <= value <= high:
        raise ValidationError(f"o.{spec.key}", f"must be {low}-{high}")
    return value


def check_filters(params: ReportParams, allowed: tuple[str, ...]) -> None:
    for name, text in params.filters.items():
        if text.strip() and name not in allowed:
            raise ValidationError(
                f"f.{name}", f"this report has no filter {name!r}; filters: {', '.join(allowed)}"
            )


def totals_of(columns: tuple[Column, ...], rows: list[Row]) -> Row:
    """Sums of the integer, seconds and money columns (money only in a single currency)."""
    keys = [c.key for c in columns]
    at = keys.index("currency") if "currency" in keys else None
    currencies = {r[at] for r in rows if r[at]} if at is not None else set()
    values: list[Any] = []
    for i, column in enumerate(columns):
        if i == 0:
            values.append("Total")
        elif column.kind in ("integer", "seconds"):
            values.append(sum(r[i] or 0 for r in rows))
        elif (
            column.kind == "money" and len(currencies) <= 1 and all(r[i] is not None for r in rows)
        ):
            values.append(sum((r[i] for r in rows), Decimal(0)))
        elif column.key == "currency" and len(currencies) == 1:
            values.append(next(iter(currencies)))
        else:
            values.append(None)
    return tuple(values)


def _sort_key(value: Any) -> tuple[int, Any]:
    return (1, "") if value is None else (0, value)


def sorted_table(table: ReportTable, params: ReportParams) -> ReportTable:
    """``table`` with its rows sorted by ``params.sort`` (inside their groups, if grouped)."""
    if not params.sort:
        return table
    keys = [c.key for c in table.columns]
    if params.sort not in keys:
        raise ValidationError(
            "sort", f"{params.sort!r} is not a column; columns: {', '.join(keys)}"
        )
    at = keys.index(params.sort)
    given = list(table.rows)
    rows = sorted(given, key=lambda row: _sort_key(row[at]), reverse=params.descending)
    if table.group_by is not None:
        group = keys.index(table.group_by)
        order = {value: n for n, value in enumerate(dict.fromkeys(r[group] for r in given))}
        rows.sort(key=lambda row: order[row[group]])  # stable: the sort above holds inside
    return replace(table, rows=rows)


def check_masked_filters(params: ReportParams) -> None:
    """A viewer whose numbers are masked may not filter on them (a filter would reveal the
    hidden digits one count at a time)."""
    if not params.mask_digits:
        return
    for name, text in params.filters.items():
        if text.strip() and name in NUMBER_COLUMNS:
            raise ValidationError(
                f"f.{name}",
                "numbers are partly hidden for your account, so they cannot be filtered",
            )


def masked_table(table: ReportTable, params: ReportParams) -> ReportTable:
    """``table`` with the last ``params.mask_digits`` digits of every number column hidden."""
    if not params.mask_digits:
        return table
    at = [i for i, c in enumerate(table.columns) if c.key in NUMBER_COLUMNS]
    if not at:
        return table
    digits = params.mask_digits

    def mask(row: Row) -> Row:
        values = list(row)
        for i in at:
            if isinstance(values[i], str):
                values[i] = mask_number(values[i], digits)
        return tuple(values)

    return replace(table, rows=(mask(row) for row in table.rows), drill=None)
