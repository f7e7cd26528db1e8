"""One cell of an exported report: guarded against formula injection, and as text.

Formula injection: a called number, account code or trunk name comes from a customer's PBX, and
a hostile one can carry ``=HYPERLINK(...)`` or ``@SUM(...)``; a spreadsheet program opening the
export would run it. ``formula_risk(text)`` says whether a text cell could be taken for a
formula: it starts with ``=``, ``@``, a tab or a carriage return, or with ``+`` or ``-`` not
followed by digits alone (so ``+447700900123``, an E.164 number, and ``-5`` are left as they
are, while ``+1+cmd|...`` and ``-A1`` are not). The CSV writer puts a ``'`` before such a cell
(OWASP's advice: spreadsheet programs show it as text and hide the quote); the XLSX writer
stores it as a text cell marked "quote prefix", so it stays text even when the cell is edited.
Number, money and time cells are typed values and never at risk.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from datacenter.reports.catalog import Column

FORMULA_STARTS = ("=", "@", "\t", "\r")
SIGNED_DIGITS = re.compile(r"[+-][0-9][0-9 ]*")
QUOTE = "'"
MAX_MONEY_PLACES = 6  # the store's micro-units
DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def formula_risk(text: str) -> bool:
    """Whether a spreadsheet program could read ``text`` as a formula."""
    if text.startswith(FORMULA_STARTS):
        return True
    return text[:1] in ("+", "-") and SIGNED_DIGITS.fullmatch(text) is None


def safe_text(text: str) -> str:
    """``text`` as a CSV cell: prefixed with ``'`` if it could be read as a formula."""
    return QUOTE + text if formula_risk(text) else text


def local_time(value: datetime, zone: ZoneInfo) -> datetime:
    """An aware UTC time as the tenant's wall-clock time, without a zone (as spreadsheets want)."""
    return value.astimezone(zone).replace(tzinfo=None)


def money_text(value: Decimal) -> str:
    """Money with two to six decimals, no trailing zeros past two: 0.05, 0.0125."""
    places = max(2, -value.normalize().as_tuple().exponent)  # type: ignore[operator]
    return f"{value:,.{min(places, MAX_MONEY_PLACES)}f}"


def display_text(column: Column, value: Any, zone: ZoneInfo) -> str:
    """A cell as a person reads it (the PDF): times local, money with 2+ decimals, h:mm:ss."""
    if value is None:
        return ""
    if column.kind == "datetime" and isinstance(value, datetime):
        return local_time(value, zone).strftime(DATETIME_FORMAT)
    if column.kind == "boolean":
        return "yes" if value else "no"
    if column.kind == "money" and isinstance(value, Decimal):
        return money_text(value)
    if column.kind == "seconds" and isinstance(value, int):
        hours, rest = divmod(value, 3600)
        return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"
    if column.kind == "percent" and isinstance(value, Decimal):
        return f"{value:.1f} %"
    if column.kind == "integer" and isinstance(value, int):
        return f"{value:,}"
    return str(value)
