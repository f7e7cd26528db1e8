"""Parse a directory CSV into entries, reporting every bad line before anything is written.

Contract:

- The first line is the header. ``extension`` and ``person`` are required columns; ``email``,
  ``department``, ``cost_centre``, ``site``, ``valid_from``, ``valid_to`` are optional; any other
  column is an error on line 1 (a typo would otherwise drop a column silently). Names are
  case-insensitive; a UTF-8 byte-order mark (Excel's "CSV UTF-8") is ignored.
- ``valid_from``/``valid_to`` are days (``2025-03-01``, midnight in the tenant's time zone) or
  ISO 8601 times with an offset. Empty ``valid_from`` means "from now" (or the current period
  when the same person already has the extension).
- ``parse_directory_csv`` never raises on bad content: it returns the good rows and one
  ``EntryProblem`` per bad line (the line a row starts on, counting from 1), so the page and
  the command can show a preview. Two rows of the file giving one extension overlapping periods
  is an error on the later line.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from datacenter.directory.entries import EntryInput, EntryProblem

if TYPE_CHECKING:
    from _csv import Reader

REQUIRED_COLUMNS = ("extension", "person")
OPTIONAL_COLUMNS = ("email", "department", "cost_centre", "site", "valid_from", "valid_to")
COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
MAX_LENGTHS = {"extension": 64, "person": 200, "email": 254, "department": 200,
               "cost_centre": 200, "site": 200}  # fmt: skip
MAX_ROWS = 100_000
# Digits and dial-string characters, or a SIP address: a Lync / Skype for Business call's
# extension is its user's SIP address (alice@example.com).
_EXTENSION_RE = re.compile(r"^[0-9A-Za-z*#+._-]+(@[0-9A-Za-z._-]+)?$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass
class CsvPreview:
    """What an import would write, and what it refuses, line by line."""

    entries: list[EntryInput] = field(default_factory=list)
    problems: list[EntryProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def parse_directory_csv(text: str, zone: ZoneInfo) -> CsvPreview:
    """Parse ``text`` (the whole file); never raises for bad content."""
    preview = CsvPreview()
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    try:
        header = next(reader, None)
    except csv.Error as exc:
        preview.problems.append(EntryProblem(1, f"the header is not CSV: {exc}"))
        return preview
    if header is None:
        preview.problems.append(EntryProblem(1, "the file is empty: it needs a header line"))
        return preview
    columns = [name.strip().lower() for name in header]
    problem = _header_problem(columns)
    if problem:
        preview.problems.append(EntryProblem(1, problem))
        return preview
    _read_rows(reader, columns, zone, preview)
    _check_overlaps(preview)
    return preview


def _header_problem(columns: list[str]) -> str | None:
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    if missing:
        return f"the header lacks {', '.join(missing)} (columns: {', '.join(COLUMNS)})"
    unknown = [name for name in columns if name not in COLUMNS]
    if unknown:
        return f"unknown column {unknown[0]!r} (columns: {', '.join(COLUMNS)})"
    doubled = sorted({name for name in columns if columns.count(name) > 1})
    if doubled:
        return f"column {doubled[0]!r} appears twice"
    return None


def _read_rows(reader: Reader, columns: list[str], zone: ZoneInfo, preview: CsvPreview) -> None:
    line = reader.line_num + 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            preview.problems.append(EntryProblem(line, f"not valid CSV: {exc}"))
            return  # the reader cannot resynchronise after a broken quote
        if any(cell.strip() for cell in row):
            if len(preview.entries) + len(preview.problems) >= MAX_ROWS:
                preview.problems.append(EntryProblem(line, f"more than {MAX_ROWS} rows"))
                return
            _read_row(row, columns, zone, line, preview)
        line = reader.line_num + 1


def _read_row(
    row: list[str], columns: list[str], zone: ZoneInfo, line: int, preview: CsvPreview
) -> None:
    if len(row) != len(columns):
        preview.problems.append(
            EntryProblem(line, f"{len(row)} fields where the header has {len(columns)}")
        )
        return
    values = {name: cell.strip() for name, cell in zip(columns, row, strict=True)}
    try:
        preview.entries.append(_entry(values, zone, line))
    except ValueError as exc:
        preview.problems.append(EntryProblem(line, str(exc)))


def _entry(values: dict[str, str], zone: ZoneInfo, line: int) -> EntryInput:
    for name, limit in MAX_LENGTHS.items():
        if len(values.get(name, "")) > limit:
            raise ValueError(f"{name} is longer than {limit} characters")
    extension = values["extension"]
    if not extension:
        raise ValueError("extension is empty")
    if not _EXTENSION_RE.match(extension):
        raise ValueError(f"extension {extension!r} has characters an extension cannot have")
    if not values["person"]:
        raise ValueError("person is empty")
    email = values.get("email", "")
    if email and not _EMAIL_RE.match(email):
        raise ValueError(f"email {email!r} is not an email address")
    valid_from = _when(values.get("valid_from", ""), zone, "valid_from")
    valid_to = _when(values.get("valid_to", ""), zone, "valid_to")
    if valid_from and valid_to and valid_to <= valid_from:
        raise ValueError("valid_to is not after valid_from")
    return EntryInput(
        extension=extension,
        person=values["person"],
        email=email,
        department=values.get("department", ""),
        cost_centre=values.get("cost_centre", ""),
        site=values.get("site", ""),
        valid_from=valid_from,
        valid_to=valid_to,
        line=line,
    )


def _when(text: str, zone: ZoneInfo, name: str) -> datetime | None:
    if not text:
        return None
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(), tzinfo=zone)
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{name} {text!r} is not a day (2025-03-01) or a time with an offset"
        ) from None
    if when.tzinfo is None:
        raise ValueError(f"{name} {text!r} has no UTC offset (add +01:00, or give a day)")
    return when


def _check_overlaps(preview: CsvPreview) -> None:
    """Refuse a later row whose period overlaps an earlier row's for the same extension."""
    seen: dict[str, list[EntryInput]] = {}
    kept: list[EntryInput] = []
    for entry in preview.entries:
        clash = next((e for e in seen.get(entry.extension, []) if _overlap(e, entry)), None)
        if clash is not None:
            preview.problems.append(
                EntryProblem(
                    entry.line,
                    f"extension {entry.extension} overlaps line {clash.line}: "
                    "give both rows valid_from/valid_to that do not overlap",
                )
            )
            continue
        seen.setdefault(entry.extension, []).append(entry)
        kept.append(entry)
    preview.entries = kept
    preview.problems.sort(key=lambda p: p.line)


def _overlap(a: EntryInput, b: EntryInput) -> bool:
    if a.valid_from is None and b.valid_from is None:
        return True  # two "from now" rows for one extension: which one wins is not said
    now = datetime.now(UTC)
    a_start, b_start = a.valid_from or now, b.valid_from or now
    a_end, b_end = a.valid_to, b.valid_to
    return (b_end is None or a_start < b_end) and (a_end is None or b_start < a_end)
