"""The raw-call columns every report can group by, filter on or sort by, and their filters.

Every report that reads the raw calls reads ``raw_from()``: ``calls`` LEFT JOIN ``call_costs``
(an unrated call has carrier, class, currency, destination and number ``""`` and cost 0), and,
when a report asks for who had the extension (``ATTRIBUTION``), LEFT JOIN the directory entry
valid at the call's start (``store.attribution``; ``""`` when nobody had it).

``raw_columns()`` names each column as reports and filters know it; ``filter_condition`` turns a
filter string (``reports.filters`` syntax) on one of them into a condition: ``TEXT`` columns take
wildcards and digit ranges, ``NUMBERS`` are whole seconds or, for ``cost``, currency units
compared in micro-units. Unknown names are a ``ValidationError`` listing the known ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from datacenter.reports.filters import FilterError, number_condition, parse_filter, text_condition
from datacenter.store.attribution import ATTRIBUTION_COLUMNS, attribution_join
from datacenter.store.costs import joined_costs
from datacenter.store.rollups import MICRO_PLACES
from datacenter.store.tables.core import calls
from datacenter.store.tables.directory import directory_entries
from datacenter.store.tables.rating import call_costs
from shared.errors import ValidationError

ATTRIBUTION = ATTRIBUTION_COLUMNS  # person, department, cost_centre, site
TEXT = ("extension", "direction", "trunk", "carrier", "destination_class", "currency",
        "calling", "called", "dialled_digits", "e164", "account_code", "destination",
        "completion", *ATTRIBUTION)  # fmt: skip
NUMBERS = ("talk_seconds", "ring_seconds", "billed_seconds", "cost")
FILTERS = (*TEXT, *NUMBERS)


def raw_columns() -> dict[str, sa.ColumnElement[Any]]:
    """Each column by its report name, as an expression over ``raw_from``."""
    factor = sa.case(
        *((call_costs.c.decimals == d, 10 ** (MICRO_PLACES - d)) for d in range(MICRO_PLACES + 1)),
        else_=0,
    )
    cost_micro = sa.func.coalesce(call_costs.c.cost_minor * factor, 0)
    d = directory_entries.c
    return {
        "record_id": calls.c.record_id,
        "start": calls.c.start_utc,
        "start_utc": calls.c.start_utc,
        "extension": calls.c.extension,
        "direction": calls.c.direction,
        "trunk": calls.c.trunk,
        "answered": calls.c.answered,
        "completion": calls.c.completion,
        "calling": calls.c.calling,
        "called": calls.c.called,
        "dialled_digits": calls.c.dialled_digits,
        "account_code": calls.c.account_code,
        "talk_seconds": calls.c.talk_seconds,
        "ring_seconds": calls.c.ring_seconds,
        "carrier": sa.func.coalesce(call_costs.c.carrier, ""),
        "destination_class": sa.func.coalesce(call_costs.c.number_class, ""),
        "destination": sa.func.coalesce(call_costs.c.destination, ""),
        "e164": sa.func.coalesce(call_costs.c.e164, ""),
        "currency": sa.func.coalesce(call_costs.c.currency, ""),
        "billed_seconds": sa.func.coalesce(call_costs.c.billed_seconds, 0),
        "cost_micro": cost_micro,
        "cost": cost_micro,
        "rated": sa.case((call_costs.c.record_id.is_(None), 0), else_=1),
        **{name: sa.func.coalesce(d[name], "") for name in ATTRIBUTION},
    }


def raw_from(*, attributed: bool = False) -> sa.FromClause:
    """``calls`` LEFT JOIN ``call_costs`` (and the directory entry when ``attributed``)."""
    base = joined_costs()
    return attribution_join(base) if attributed else base


def needs_attribution(names: Iterable[str]) -> bool:
    return any(name in ATTRIBUTION for name in names)


def _micro(number: Decimal) -> int:
    scaled = number.scaleb(MICRO_PLACES)
    if scaled != scaled.to_integral_value():
        raise FilterError("cost", f"{number} has more than {MICRO_PLACES} decimals")
    return int(scaled)


def _whole(name: str) -> Callable[[Decimal], int]:
    def scale(number: Decimal) -> int:
        if number != number.to_integral_value():
            raise FilterError(name, f"{number} is not a whole number of seconds")
        return int(number)

    return scale


def filter_condition(
    columns: Mapping[str, sa.ColumnElement[Any]], name: str, text: str
) -> sa.ColumnElement[bool]:
    """``text`` (filter syntax) on the column ``name`` of ``columns``."""
    if name not in FILTERS:
        raise ValidationError(name, f"no such filter; filters: {', '.join(FILTERS)}")
    parsed = parse_filter(text, field=name)
    if name in TEXT:
        return text_condition(columns[name], parsed)
    scale = _micro if name == "cost" else _whole(name)
    return number_condition(columns[name], parsed, name=name, scale=scale)


def filter_conditions(
    columns: Mapping[str, sa.ColumnElement[Any]], filters: Mapping[str, str]
) -> list[sa.ColumnElement[bool]]:
    """A condition per non-blank filter."""
    return [filter_condition(columns, k, v) for k, v in filters.items() if v.strip()]
