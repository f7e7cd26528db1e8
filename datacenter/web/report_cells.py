"""How a report's values are shown on a page: one text per cell, by the column's kind.

Pure functions (no Flask). Money keeps every decimal the store has but at least two
(``0.05``, ``0.045``, ``1,234.50``); times are on the tenant's clock with the zone named;
seconds as ``h:mm:ss``; percentages with one decimal; booleans yes/no; a missing value is blank.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from decimal import Decimal
from typing import Any

from datacenter.reports.tables import Column
from datacenter.web.display import duration, local_time

MIN_MONEY_PLACES = 2


def money_text(amount: Decimal) -> str:
    places = max(MIN_MONEY_PLACES, -amount.normalize().as_tuple().exponent)  # type: ignore[operator]
    return f"{amount:,.{places}f}"


def cell_text(column: Column, value: Any, zone: tzinfo) -> str:
    if value is None:
        return ""
    kind = column.kind
    if kind == "money":
        return money_text(value)
    if kind == "seconds":
        return duration(value)
    if kind == "datetime" and isinstance(value, datetime):
        return local_time(value, zone)
    if kind == "integer":
        return f"{value:,}"
    if kind == "percent":
        return f"{value:.1f} %"
    if kind == "boolean":
        return "yes" if value else "no"
    return str(value)


def is_number(column: Column) -> bool:
    return column.kind in ("money", "seconds", "integer", "percent")
