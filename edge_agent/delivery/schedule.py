"""When the uplink sends: continuously, every N minutes, or at fixed times of day.

``uplink.schedule`` is one of::

    "continuous"              every cycle (uplink.interval_seconds) — the default
    "every 15 minutes"        after a good session, wait that long (1 to 1440 minutes)
    ["02:00", "13:30"]        at these local times in agent.timezone, every day

The schedule spaces *good* sessions only. Sealing goes on every cycle whatever the schedule, and
a failed session is retried after the uplink back-off, not at the next slot: a site with a
02:00 slot whose link is down at 02:00 delivers as soon as the link is back.

Fixed times are wall-clock times in the site's zone, so they follow daylight-saving changes; a
time that does not exist on a spring-forward day fires shifted forward by the gap (02:30 in
Europe/London fires at 03:30 BST), and one that happens twice on a fall-back day fires once, at
its first occurrence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from datetime import date as date_
from typing import Any
from zoneinfo import ZoneInfo

CONTINUOUS = "continuous"
MAX_EVERY_MINUTES = 1440
_EVERY_RE = re.compile(r"^every\s+(\d{1,4})\s+minutes?$")
_TIME_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True, slots=True)
class UploadSchedule:
    """``every`` None and ``times`` empty is continuous."""

    every: timedelta | None = None
    times: tuple[time, ...] = ()

    @property
    def continuous(self) -> bool:
        return self.every is None and not self.times

    def describe(self) -> str:
        if self.every is not None:
            return f"every {int(self.every.total_seconds() // 60)} minutes"
        if self.times:
            return "at " + ", ".join(t.strftime("%H:%M") for t in self.times)
        return CONTINUOUS

    def next_after(self, now: datetime, *, zone: ZoneInfo, interval: timedelta) -> datetime:
        """When the session after a good one at ``now`` (aware) is due."""
        if self.every is not None:
            return now + self.every
        if not self.times:
            return now + interval
        local = now.astimezone(zone)
        for day in range(2):
            date = local.date() + timedelta(days=day)
            for slot in self.times:
                due = _wall_time(date, slot, zone)
                if due > now:
                    return due
        raise AssertionError("unreachable: a slot tomorrow is always after now")


def _wall_time(date: date_, slot: time, zone: ZoneInfo) -> datetime:
    """The instant of a local wall-clock time (PEP 495 ``fold=0``: see the module docstring)."""
    return datetime.combine(date, slot, tzinfo=zone).astimezone(UTC)


def parse_schedule(value: Any) -> UploadSchedule:
    """Parse the TOML value; raises ``ValueError`` with a message that says what is allowed."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text == CONTINUOUS:
            return UploadSchedule()
        match = _EVERY_RE.match(text)
        if match:
            minutes = int(match[1])
            if not 1 <= minutes <= MAX_EVERY_MINUTES:
                raise ValueError(f"every {minutes} minutes is out of range (1 to 1440)")
            return UploadSchedule(every=timedelta(minutes=minutes))
        raise ValueError(f"{value!r} is not a schedule")
    if isinstance(value, list) and value:
        times: set[time] = set()
        for item in value:
            match = _TIME_RE.match(item) if isinstance(item, str) else None
            if not match:
                raise ValueError(f'{item!r} is not a time of day as "HH:MM" (24-hour)')
            times.add(time(int(match[1]), int(match[2])))
        return UploadSchedule(times=tuple(sorted(times)))
    raise ValueError(f"{value!r} is not a schedule")
