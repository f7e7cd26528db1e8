"""Time-band calendars: which band (peak, off-peak, weekend...) is in force at each instant.

A ``Calendar`` maps day types (weekday, saturday, sunday, holiday) x local start times to band
names; a ``BandClock`` evaluates one calendar in one site's IANA zone.

Guarantees:

- Every instant maps to exactly one band: each day type's schedule starts at 00:00 and each
  entry runs until the next, so a calendar cannot have gaps or overlaps (``calendar_from_dict``
  rejects a schedule that does not start at 00:00, repeats a time, or is out of order).
- Bands are looked up from UTC instants, converted to local time in the site's zone, so the
  missing and repeated hours of a DST change need no special case: a band boundary that falls
  in a missing hour takes effect at the transition, and a repeated hour is banded by its wall
  clock both times.
- ``BandClock.spans`` returns the maximal runs of one band inside ``[start, end)`` in UTC epoch
  seconds, adjacent runs of the same band merged. Its results are memoised per UTC hour, so a
  million calls cost a few thousand zone conversions, not millions.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from shared.errors import ConfigError

ALL_BANDS = "*"  # a rate row for every band
SINGLE_BAND = "all"  # the band of a tariff without a calendar
HOUR = 3600
DAY_TYPES = ("weekday", "saturday", "sunday", "holiday")
_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)  # built once: epoch_seconds is on the rating hot path


class Span(NamedTuple):
    """A run of one band: ``[start, end)`` in UTC epoch seconds."""

    start: int
    end: int
    band: str


@dataclass(frozen=True, slots=True)
class Calendar:
    """Day types x local start times -> bands, and the holiday dates."""

    schedules: Mapping[str, tuple[tuple[int, str], ...]]  # day type -> (second of day, band)
    holidays: frozenset[date] = frozenset()

    @property
    def bands(self) -> frozenset[str]:
        return frozenset(band for entries in self.schedules.values() for _, band in entries)

    def day_type(self, day: date) -> str:
        if day in self.holidays:
            return "holiday"
        return ("weekday", "weekday", "weekday", "weekday", "weekday", "saturday", "sunday")[
            day.weekday()
        ]

    def band_at_local(self, local: datetime) -> tuple[str, int]:
        """The band at a local wall time, and the next boundary's second of day (86400 = midnight)."""
        entries = self.schedules[self.day_type(local.date())]
        second = local.hour * 3600 + local.minute * 60 + local.second
        index = bisect_right([start for start, _ in entries], second) - 1
        following = entries[index + 1][0] if index + 1 < len(entries) else 86400
        return entries[index][1], following


SINGLE = Calendar(schedules=dict.fromkeys(DAY_TYPES, ((0, SINGLE_BAND),)))


@dataclass(frozen=True, slots=True)
class BandClock:
    """One calendar evaluated in one zone."""

    calendar: Calendar
    zone: ZoneInfo
    _hours: dict[int, tuple[Span, ...]] = field(default_factory=dict, compare=False, repr=False)

    def spans(self, start: int, end: int) -> list[Span]:
        """Band runs covering ``[start, end)`` (UTC epoch seconds), in order, merged."""
        hour = start // HOUR
        if end <= (hour + 1) * HOUR:  # the common case: inside one hour, often one run
            runs = self._hours.get(hour) or self._hour(hour)
            if len(runs) == 1:
                return [Span(start, end, runs[0].band)]
        out: list[Span] = []
        while hour * HOUR < end:
            for span in self._hour(hour):
                lo, hi = max(span.start, start), min(span.end, end)
                if lo >= hi:
                    continue
                if out and out[-1].band == span.band and out[-1].end == lo:
                    out[-1] = Span(out[-1].start, hi, span.band)
                else:
                    out.append(Span(lo, hi, span.band))
            hour += 1
        return out

    def run_at(self, instant: int) -> Span:
        """The run of one band that holds ``instant``, cut at the UTC hour (memoised per hour).

        The engine's fast path: a call that ends by ``run_at(start).end`` is in one band.
        """
        hour = instant // HOUR
        runs = self._hours.get(hour) or self._hour(hour)
        for run in runs:  # the runs tile the hour in order; most hours hold one
            if instant < run.end:
                return run
        raise AssertionError("an hour's runs tile the hour")  # pragma: no cover

    def _hour(self, hour: int) -> tuple[Span, ...]:
        cached = self._hours.get(hour)
        if cached is None:
            cached = self._hours[hour] = tuple(self._walk(hour * HOUR, (hour + 1) * HOUR))
        return cached

    def _walk(self, start: int, end: int) -> list[Span]:
        """The slow, exact walk: local time at each boundary, DST transitions found by search."""
        spans: list[Span] = []
        now = start
        while now < end:
            local = _local(now, self.zone)
            band, next_second = self.calendar.band_at_local(local)
            boundary = min(_next_wall_instant(local, next_second, self.zone, now), end)
            transition = _offset_change(now, boundary, self.zone)
            stop = boundary if transition is None else transition
            if spans and spans[-1].band == band:
                spans[-1] = Span(spans[-1].start, stop, band)
            else:
                spans.append(Span(now, stop, band))
            now = stop
        return spans


def epoch_seconds(instant: datetime) -> int:
    """Whole UTC epoch seconds (floor), computed without float."""
    return (instant - _EPOCH) // _SECOND


def from_epoch(seconds: int) -> datetime:
    return _EPOCH + timedelta(seconds=seconds)


def _local(instant: int, zone: ZoneInfo) -> datetime:
    return from_epoch(instant).astimezone(zone)


def _next_wall_instant(local: datetime, second_of_day: int, zone: ZoneInfo, after: int) -> int:
    """The first instant after ``after`` whose wall clock is ``second_of_day`` on local's date."""
    day = local.date() + timedelta(days=second_of_day // 86400)
    second = second_of_day % 86400
    wall = datetime.combine(day, time(second // 3600, second // 60 % 60, second % 60))
    candidates = [epoch_seconds(wall.replace(tzinfo=zone, fold=fold)) for fold in (0, 1)]
    later = [c for c in candidates if c > after]
    return min(later) if later else after + HOUR


def _offset_change(start: int, end: int, zone: ZoneInfo) -> int | None:
    """The first instant in ``(start, end)`` with a different UTC offset, if any (binary search)."""
    first = _local(start, zone).utcoffset()
    if end - start <= 1 or _local(end - 1, zone).utcoffset() == first:
        return None
    lo, hi = start, end - 1  # offset(lo) == first, offset(hi) != first
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _local(mid, zone).utcoffset() == first:
            lo = mid
        else:
            hi = mid
    return hi


# --- loading ------------------------------------------------------------------------------------


def calendar_from_dict(data: Mapping[str, Any], *, key: str = "calendar") -> Calendar:
    """Build a calendar from TOML: day types to {"HH:MM" = band}, plus a holiday date list.

    ``weekend`` sets saturday and sunday together; ``holiday`` defaults to sunday's schedule.
    """
    allowed = {*DAY_TYPES, "weekend", "holidays"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ConfigError(
            f"{key}.{unknown[0]}", "is not a day type", f"use {', '.join(sorted(allowed))}"
        )
    raw = dict(data)
    if "weekend" in raw:
        for day in ("saturday", "sunday"):
            if day in raw:
                raise ConfigError(
                    f"{key}.{day}",
                    "is set together with weekend",
                    "set weekend or the day, not both",
                )
            raw[day] = raw["weekend"]
    schedules: dict[str, tuple[tuple[int, str], ...]] = {}
    for day in ("weekday", "saturday", "sunday"):
        if day not in raw:
            raise ConfigError(f"{key}.{day}", "is missing", f"give {day} a schedule")
        schedules[day] = _schedule(raw[day], key=f"{key}.{day}")
    schedules["holiday"] = (
        _schedule(raw["holiday"], key=f"{key}.holiday") if "holiday" in raw else schedules["sunday"]
    )
    return Calendar(schedules=schedules, holidays=_holidays(raw.get("holidays", []), key=key))


def calendar_to_dict(calendar: Calendar) -> dict[str, Any]:
    out: dict[str, Any] = {
        day: {_format_second(start): band for start, band in calendar.schedules[day]}
        for day in DAY_TYPES
    }
    out["holidays"] = sorted(d.isoformat() for d in calendar.holidays)
    return out


def _schedule(value: Any, *, key: str) -> tuple[tuple[int, str], ...]:
    fix = 'write e.g. { "00:00" = "offpeak", "08:00" = "peak", "18:00" = "offpeak" }'
    if not isinstance(value, Mapping) or not value:
        raise ConfigError(key, "must be a table of start time = band", fix)
    entries: list[tuple[int, str]] = []
    for text, band in value.items():
        match = _TIME.match(text) if isinstance(text, str) else None
        if match is None:
            raise ConfigError(f"{key}.{text}", "is not a time HH:MM or HH:MM:SS", fix)
        if not isinstance(band, str) or not band or band in (ALL_BANDS,):
            raise ConfigError(f"{key}.{text}", f"band {band!r} must be a name", fix)
        second = int(match.group(1)) * 3600 + int(match.group(2)) * 60 + int(match.group(3) or 0)
        entries.append((second, band))
    starts = [second for second, _ in entries]
    if starts != sorted(set(starts)):
        raise ConfigError(
            key, "times are repeated or out of order", "list each time once, in order"
        )
    if starts[0] != 0:
        raise ConfigError(
            key, "does not start at 00:00", "add a 00:00 entry so no time is unbanded"
        )
    return tuple(entries)


def _holidays(value: Any, *, key: str) -> frozenset[date]:
    if not isinstance(value, list):
        raise ConfigError(f"{key}.holidays", "must be a list of dates", 'write ["2025-12-25"]')
    days: set[date] = set()
    for item in value:
        if isinstance(item, date) and not isinstance(item, datetime):
            days.add(item)
            continue
        try:
            days.add(date.fromisoformat(item))
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"{key}.holidays", f"{item!r} is not a date", "write YYYY-MM-DD"
            ) from exc
    return frozenset(days)


def _format_second(second: int) -> str:
    hours, rest = divmod(second, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours:02d}:{minutes:02d}" + (f":{seconds:02d}" if seconds else "")
