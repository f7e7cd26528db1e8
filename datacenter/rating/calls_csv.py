"""Plain CSV calls for ``datacenter rate``: check a tariff against a carrier's invoice lines.

An operator holds a carrier's invoice, not ICDR JSON. This reads a CSV with a header line and
one call per row (docs/rating.md, "Calls as CSV")::

    number,start,duration,direction,cost
    +33612345678,2025-03-04T10:00:05Z,1234,out,3.09

- ``number``: the number as dialled or as the invoice prints it (E.164 with ``+``, or the
  site's national form); for an inbound row, the DDI called. Empty only for an inbound row
  rated by its trunk.
- ``start``: when the call was answered, ISO 8601; without an offset it is the site's local
  time (the dial plan's ``timezone``; UTC when it has none).
- ``duration``: whole seconds of talk time; 0 means not answered.
- ``direction``: ``out`` (default when the column is absent or empty) or ``in``.
- optional ``id`` (record id, default ``line-N``), ``trunk``, ``route`` (for the route map),
  ``cost`` (the carrier's cost of the call, for ``--compare``).

Every row becomes an ICDR (answered at ``start``, ending ``duration`` seconds later) or a
``CallRowError`` naming the line and the column; one bad row never stops the others.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import IO
from zoneinfo import ZoneInfo

from shared.errors import ICDRValidationError
from shared.icdr import ICDR, Direction

REQUIRED = ("number", "start", "duration")
OPTIONAL = ("direction", "id", "trunk", "route", "cost")
DIRECTIONS = {"out": Direction.OUT, "in": Direction.IN}
SOURCE_ID = "csv"
MAX_SECONDS = 7 * 86_400  # longer is a typo, not a call
LATEST = datetime(9000, 1, 1, tzinfo=UTC)  # a later start could not hold its end


@dataclass(frozen=True, slots=True)
class CallRow:
    """One parsed row: the call to rate and, when the file has one, the carrier's cost."""

    line: int
    icdr: ICDR
    carrier_cost: Decimal | None


@dataclass(frozen=True, slots=True)
class CallRowError:
    """A row that is not a call, located to the line and column."""

    line: int
    column: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: column {self.column}: {self.message}"


class CallsHeaderError(ValueError):
    """The header line is missing a required column or names one this format does not know."""


def read_calls_csv(stream: IO[str], *, zone: ZoneInfo | None) -> Iterator[CallRow | CallRowError]:
    """Each data row as a ``CallRow`` or a ``CallRowError``; CallsHeaderError for the header."""
    reader = csv.reader(stream, strict=True)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise CallsHeaderError(f"line 1: not valid CSV: {exc}") from exc
    if header is None:
        raise CallsHeaderError("the file is empty; it needs a header line: number,start,duration")
    names = [h.strip().lower() for h in header]
    unknown = [n for n in names if n not in REQUIRED + OPTIONAL]
    missing = [n for n in REQUIRED if n not in names]
    if unknown or missing or len(set(names)) != len(names):
        raise CallsHeaderError(
            f"line 1: header {','.join(names)!r}: columns must be {', '.join(REQUIRED)} and "
            f"optionally {', '.join(OPTIONAL)}, each once"
            + (f"; unknown: {', '.join(unknown)}" if unknown else "")
            + (f"; missing: {', '.join(missing)}" if missing else "")
        )
    local = zone or ZoneInfo("UTC")
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield CallRowError(reader.line_num, "-", f"not valid CSV: {exc}")
            return
        if not any(cell.strip() for cell in record):
            continue
        if len(record) != len(names):
            yield CallRowError(
                reader.line_num, "-", f"has {len(record)} cells, the header has {len(names)}"
            )
            continue
        row = {n: cell.strip() for n, cell in zip(names, record, strict=True)}
        yield _call(reader.line_num, row, local)


def _call(line: int, row: dict[str, str], zone: ZoneInfo) -> CallRow | CallRowError:
    direction = DIRECTIONS.get(row.get("direction", "").lower() or "out")
    if direction is None:
        return CallRowError(line, "direction", f"{row['direction']!r} must be out or in")
    number = row["number"]
    if not number and direction is Direction.OUT:
        return CallRowError(line, "number", "is empty; an outgoing call needs the number dialled")
    try:
        start = datetime.fromisoformat(row["start"].replace("Z", "+00:00"))
        start = (start if start.tzinfo is not None else start.replace(tzinfo=zone)).astimezone(UTC)
        if start > LATEST:
            raise ValueError("too late to hold a call's end")
    except (ValueError, OverflowError):
        return CallRowError(
            line, "start", f"{row['start']!r} is not an ISO 8601 date-time (2025-03-04T10:00:05Z)"
        )
    text = row["duration"]
    if not (text.isascii() and text.isdigit()) or int(text) > MAX_SECONDS:
        return CallRowError(line, "duration", f"{text!r} must be whole seconds, 0-{MAX_SECONDS}")
    seconds = int(text)
    cost: Decimal | None = None
    if row.get("cost"):
        try:
            cost = Decimal(row["cost"])
        except InvalidOperation:
            cost = None
        if cost is None or not cost.is_finite() or cost < 0:
            return CallRowError(line, "cost", f"{row['cost']!r} is not an amount like 3.09")
    try:
        icdr = ICDR(
            record_id=row.get("id") or f"line-{line}", agent_id="csv", source_id=SOURCE_ID,
            source_kind="csv", start=start, answer=start if seconds else None,
            end=start + timedelta(seconds=seconds), talk_seconds=seconds,
            answered=seconds > 0, direction=direction,
            dialled_digits=number if direction is Direction.OUT else "",
            dnis=number if direction is Direction.IN else "",
            trunk=row.get("trunk", ""), route=row.get("route", ""),
        )  # fmt: skip
    except ICDRValidationError as exc:
        return CallRowError(line, "-", str(exc))
    return CallRow(line, icdr, cost)
