"""Who held each extension on each tenant-local day of a report: what lets a daily rollup row
be attributed exactly.

A call belongs to whoever held its extension at the call's start (``store.attribution``). The
rollups hold one row per extension and tenant-local day, so a rollup row can be counted under a
person, department, cost centre or site only if one value of that attribute held the extension
for the whole day. ``holdings`` reads the directory entries that overlap a report's days and
sorts the extensions into:

- ``whole``: one entry held the extension over every day of the range (the common case); its
  rollup rows all count under that entry's value. An extension nobody held is in neither map
  and counts under ``""``, as the raw join gives it.
- ``segments``: the extension's attribute changed inside the range (an extension that changed
  hands), but on most days one value held it all day: runs of such days with their value
  (``""`` where nobody held it); their rollup rows count under it.
- ``raw_days``: the days on which the value changed at an instant other than local midnight
  (or entries overlap): only those days of that extension need each call's start time, so only
  they are read from the raw calls (``raw_condition``).

A change that keeps the attribute's value (a person renamed, for a summary by site) cuts no day.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from datacenter.reports.periods import local_midnight, utc_bounds
from datacenter.store.tables.directory import directory_entries


@dataclass(frozen=True)
class Segment:
    first_day: date
    last_day: date  # inclusive
    value: str


@dataclass(frozen=True)
class Holdings:
    whole: dict[str, str] = field(default_factory=dict)  # extension -> value over the range
    segments: dict[str, list[Segment]] = field(default_factory=dict)
    raw_days: dict[str, list[date]] = field(default_factory=dict)

    @property
    def split(self) -> list[str]:
        """The extensions read per day (segments) or from the raw calls (raw days)."""
        return sorted(set(self.segments) | set(self.raw_days))

    def day_value(self, extension: str, day: date) -> str | None:
        """The value a split extension's rollup row of ``day`` counts under; None on a raw day
        (or outside the range)."""
        for segment in self.segments.get(extension, ()):
            if segment.first_day <= day <= segment.last_day:
                return segment.value
        return None


@dataclass(frozen=True)
class _Entry:
    valid_from: datetime
    valid_to: datetime | None
    value: str


def holdings(
    conn: sa.Connection, tenant_id: int, attribute: str, first_day: date, last_day: date,
    zone: ZoneInfo,
) -> Holdings:  # fmt: skip
    """The holdings of ``attribute`` (person, department, cost_centre, site) over the local days
    ``first_day`` .. ``last_day`` (module doc)."""
    since, until = utc_bounds(first_day, last_day, zone)
    d = directory_entries.c
    entries: dict[str, list[_Entry]] = defaultdict(list)
    for extension, valid_from, valid_to, value in conn.execute(
        sa.select(d.extension, d.valid_from, d.valid_to, d[attribute]).where(
            d.tenant_id == tenant_id,
            d.valid_from < until,
            sa.or_(d.valid_to.is_(None), d.valid_to > since),
        )
    ):
        entries[extension].append(_Entry(valid_from, valid_to, value or ""))
    found = Holdings()
    for extension, held in entries.items():
        only = held[0]
        if len(held) == 1 and only.valid_from <= since and _ends_after(only, until):
            found.whole[extension] = only.value
            continue
        segments, raw = _days_of(held, first_day, last_day, zone)
        if segments:
            found.segments[extension] = segments
        if raw:
            found.raw_days[extension] = raw
    return found


def _ends_after(entry: _Entry, instant: datetime) -> bool:
    return entry.valid_to is None or entry.valid_to >= instant


def _days_of(
    held: list[_Entry], first_day: date, last_day: date, zone: ZoneInfo
) -> tuple[list[Segment], list[date]]:
    """Runs of days with one value all day, and the days on which the value changed."""
    since, until = utc_bounds(first_day, last_day, zone)
    cuts = sorted(
        {e.valid_from for e in held if since < e.valid_from < until}
        | {e.valid_to for e in held if e.valid_to is not None and since < e.valid_to < until}
    )
    # Between two cuts the entries holding the extension do not change. Pieces of equal value
    # are merged (a cut that keeps the value cuts no day); a day holding a remaining cut other
    # than at its midnight, or a piece where entries overlap (value None), is read raw.
    pieces: list[tuple[datetime, datetime, str | None]] = []
    for start, end in zip([since, *cuts], [*cuts, until], strict=True):
        value = _value_at(held, start)
        if pieces and pieces[-1][2] == value and value is not None:
            pieces[-1] = (pieces[-1][0], end, value)
        else:
            pieces.append((start, end, value))
    raw: set[date] = set()
    segments: list[Segment] = []
    for start, end, value in pieces:
        first, last = _local_day(start, zone), _local_day(end - _INSTANT, zone)
        if value is None:
            raw.update(first + timedelta(days=n) for n in range((last - first).days + 1))
            continue
        if local_midnight(first, zone) != start:
            raw.add(first)
            first += timedelta(days=1)
        if local_midnight(last + timedelta(days=1), zone) != end:
            raw.add(last)
            last -= timedelta(days=1)
        if first <= last:
            segments.append(Segment(first, last, value))
    return segments, sorted(raw)


_INSTANT = timedelta(microseconds=1)


def _local_day(instant: datetime, zone: ZoneInfo) -> date:
    return instant.astimezone(zone).date()


def _value_at(held: list[_Entry], instant: datetime) -> str | None:
    """The value of the entry holding the extension at ``instant`` ("" for none; None when
    entries overlap)."""
    holding = [e for e in held if e.valid_from <= instant and _ends_after_strict(e, instant)]
    if len(holding) > 1:
        return None
    return holding[0].value if holding else ""


def _ends_after_strict(entry: _Entry, instant: datetime) -> bool:
    return entry.valid_to is None or instant < entry.valid_to


def raw_condition(
    found: Holdings, zone: ZoneInfo, extension: sa.ColumnElement[str],
    start: sa.ColumnElement[datetime],
) -> sa.ColumnElement[bool] | None:  # fmt: skip
    """Calls of the raw days only (``extension`` and ``start`` columns of ``calls``), or None
    when there are none."""
    if not found.raw_days:
        return None
    per_extension = []
    for name, days in sorted(found.raw_days.items()):
        within = [
            sa.and_(start >= local_midnight(day, zone),
                    start < local_midnight(day + timedelta(days=1), zone))
            for day in days
        ]  # fmt: skip
        per_extension.append(sa.and_(extension == name, sa.or_(*within)))
    return sa.or_(*per_extension)
