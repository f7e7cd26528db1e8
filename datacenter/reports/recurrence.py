"""When a scheduled report is due: a recurrence in the tenant's local time, and the period a run
covers.

A ``Recurrence`` is daily, weekly on chosen weekdays, or monthly on a day of the month (1-28, or
the last day) or on the n-th weekday ("first Monday", "last Friday"), always at a local time in
the tenant's zone. The occurrences are computed by python-dateutil's ``rrule`` (RFC 5545) on the
local wall clock; each is then placed in the zone:

- a local time that happens twice (the autumn hour) runs at the first of the two;
- a local time that does not happen (the spring gap, e.g. 02:30 in London on the last Sunday
  of March) runs when the clock has moved on by the gap (03:30 there): the run is late that day
  rather than skipped.

``PERIODS`` are what a run covers, relative to the local day it is due on.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from dateutil import rrule

from shared.errors import ValidationError

FREQUENCIES = ("daily", "weekly", "monthly")
WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
ORDINALS = {1: "first", 2: "second", 3: "third", 4: "fourth", -1: "last"}
LAST_DAY = -1
MAX_MONTH_DAY = 28  # every month has it; later days are "the last day"
# Far enough back that the previous occurrence of any rule lies inside (monthly: < 2 months).
LOOKBACK_DAYS = 70
_RRULE_WEEKDAYS = (rrule.MO, rrule.TU, rrule.WE, rrule.TH, rrule.FR, rrule.SA, rrule.SU)
PERIODS = {
    "previous_day": "The previous day",
    "previous_week": "The previous week (Monday to Sunday)",
    "previous_month": "The previous month",
    "month_to_date": "This month so far (the 1st to the day of the run)",
    "week_to_date": "This week so far (Monday to the day of the run)",
    "as_saved": "The dates saved with the report",
}


@dataclass(frozen=True)
class Recurrence:
    """When a schedule fires, in local time. Build it with ``recurrence`` (it validates)."""

    frequency: str
    at: time
    weekdays: tuple[int, ...] = ()  # weekly: 0 = Monday
    month_day: int | None = None  # monthly on a day: 1-28 or LAST_DAY
    nth: int | None = None  # monthly on a weekday: 1-4 or -1 (last) ...
    nth_weekday: int | None = None  # ... of this weekday (0 = Monday)

    def to_json(self) -> dict[str, Any]:
        return {
            "frequency": self.frequency,
            "at": self.at.strftime("%H:%M"),
            "weekdays": list(self.weekdays),
            "month_day": self.month_day,
            "nth": self.nth,
            "nth_weekday": self.nth_weekday,
        }

    def describe(self) -> str:
        """In words: "Every Monday and Thursday at 07:00"."""
        at = self.at.strftime("%H:%M")
        if self.frequency == "daily":
            return f"Every day at {at}"
        if self.frequency == "weekly":
            names = [WEEKDAY_NAMES[d] for d in self.weekdays]
            days = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
            return f"Every {days} at {at}"
        if self.month_day is not None:
            day = "the last day" if self.month_day == LAST_DAY else f"day {self.month_day}"
            return f"Monthly on {day} at {at}"
        assert self.nth is not None and self.nth_weekday is not None
        return f"Monthly on the {ORDINALS[self.nth]} {WEEKDAY_NAMES[self.nth_weekday]} at {at}"


def recurrence(
    frequency: str,
    at: str | time,
    *,
    weekdays: tuple[int, ...] | list[int] = (),
    month_day: int | None = None,
    nth: int | None = None,
    nth_weekday: int | None = None,
) -> Recurrence:
    """A validated ``Recurrence``; a bad value raises ``ValidationError`` naming its field."""
    if frequency not in FREQUENCIES:
        raise ValidationError("frequency", f"{frequency!r} is not one of {', '.join(FREQUENCIES)}")
    local = _time(at)
    days = tuple(sorted(set(weekdays)))
    if any(not 0 <= d <= 6 for d in days):
        raise ValidationError("weekdays", "weekdays are 0 (Monday) to 6 (Sunday)")
    if frequency == "daily":
        return Recurrence("daily", local)
    if frequency == "weekly":
        if not days:
            raise ValidationError("weekdays", "a weekly schedule needs at least one weekday")
        return Recurrence("weekly", local, weekdays=days)
    if month_day is not None:
        if month_day != LAST_DAY and not 1 <= month_day <= MAX_MONTH_DAY:
            raise ValidationError(
                "month_day",
                f"a day of the month is 1 to {MAX_MONTH_DAY}, or the last day (not every month "
                "has a 29th, 30th or 31st)",
            )
        return Recurrence("monthly", local, month_day=month_day)
    if nth not in ORDINALS or nth_weekday is None or not 0 <= nth_weekday <= 6:
        raise ValidationError(
            "nth", "a monthly schedule needs a day of the month, or first/second/third/fourth/"
            "last and a weekday",
        )  # fmt: skip
    return Recurrence("monthly", local, nth=nth, nth_weekday=nth_weekday)


def from_json(data: Mapping[str, Any]) -> Recurrence:
    return recurrence(
        str(data.get("frequency", "")),
        str(data.get("at", "")),
        weekdays=[int(d) for d in data.get("weekdays") or ()],
        month_day=data.get("month_day"),
        nth=data.get("nth"),
        nth_weekday=data.get("nth_weekday"),
    )


def _time(value: str | time) -> time:
    if isinstance(value, time):
        return value.replace(second=0, microsecond=0, tzinfo=None)
    try:
        hours, minutes = (int(part) for part in value.strip().split(":"))
        return time(hours, minutes)
    except ValueError:
        raise ValidationError("at", f"{value!r} is not a time of day; write HH:MM") from None


def _rule(rec: Recurrence, start: date) -> rrule.rrule:
    dtstart = datetime.combine(start, rec.at)
    if rec.frequency == "daily":
        return rrule.rrule(rrule.DAILY, dtstart=dtstart)
    if rec.frequency == "weekly":
        return rrule.rrule(
            rrule.WEEKLY, dtstart=dtstart, byweekday=[_RRULE_WEEKDAYS[d] for d in rec.weekdays]
        )
    if rec.month_day is not None:
        return rrule.rrule(rrule.MONTHLY, dtstart=dtstart, bymonthday=rec.month_day)
    assert rec.nth is not None and rec.nth_weekday is not None
    weekday = _RRULE_WEEKDAYS[rec.nth_weekday](rec.nth)
    return rrule.rrule(rrule.MONTHLY, dtstart=dtstart, byweekday=weekday)


def place(local: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant of the wall-clock time ``local`` in ``zone`` (see the module doc)."""
    # fold=0: the first of a repeated hour; in a gap, zoneinfo applies the offset in force
    # before it, which lands the gap's length later on the new clock.
    return local.replace(tzinfo=zone, fold=0).astimezone(UTC)


def occurrences(rec: Recurrence, zone: ZoneInfo, *, since: datetime) -> Iterator[datetime]:
    """The occurrences (UTC, ascending) from a little before ``since`` on, without end."""
    start = since.astimezone(zone).date() - timedelta(days=1)
    for local in _rule(rec, start):
        yield place(local, zone)


def next_due(rec: Recurrence, zone: ZoneInfo, *, after: datetime) -> datetime:
    """The first occurrence strictly after ``after`` (UTC)."""
    return next(due for due in occurrences(rec, zone, since=after) if due > after)


def latest_due(rec: Recurrence, zone: ZoneInfo, *, at: datetime) -> datetime | None:
    """The last occurrence at or before ``at`` (within ``LOOKBACK_DAYS``), or None."""
    found = None
    for due in occurrences(rec, zone, since=at - timedelta(days=LOOKBACK_DAYS)):
        if due > at:
            return found
        found = due
    return found  # pragma: no cover - occurrences never end


def covered_days(
    period: str, due_day: date, *, saved: tuple[date, date] | None = None
) -> tuple[date, date]:
    """The local days (first, last, inclusive) a run due on ``due_day`` covers; ``as_saved``
    is the report's own dates, ``saved``."""
    if period == "as_saved":
        if saved is None:
            raise ValidationError("period", "as_saved needs the saved report's dates")
        return saved
    if period == "previous_day":
        day = due_day - timedelta(days=1)
        return day, day
    if period == "previous_week":
        monday = due_day - timedelta(days=due_day.weekday() + 7)
        return monday, monday + timedelta(days=6)
    if period == "previous_month":
        last = due_day.replace(day=1) - timedelta(days=1)
        return last.replace(day=1), last
    if period == "month_to_date":
        return due_day.replace(day=1), due_day
    if period == "week_to_date":
        return due_day - timedelta(days=due_day.weekday()), due_day
    raise ValidationError("period", f"{period!r} is not one of {', '.join(PERIODS)}")
