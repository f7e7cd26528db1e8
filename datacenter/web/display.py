"""How call data is shown: pure functions, no Flask, registered as Jinja filters.

Times are stored in UTC; a tenant reads them on its own wall clock. ``local_time`` renders an
instant in the tenant's zone with the zone's abbreviation (``2025-03-04 09:15:02 GMT``), so a
time is never shown without saying which clock it is on. Durations are ``h:mm:ss`` with hours
not wrapped at 24.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo

from shared.icdr import Completion, Direction

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

DIRECTION_LABELS: dict[str, str] = {
    Direction.IN: "Incoming",
    Direction.OUT: "Outgoing",
    Direction.INTERNAL: "Internal",
    Direction.TANDEM: "Tandem",
    Direction.UNKNOWN: "Unknown",
}
COMPLETION_LABELS: dict[str, str] = {
    Completion.ANSWERED: "Answered",
    Completion.NO_ANSWER: "No answer",
    Completion.BUSY: "Busy",
    Completion.INVALID: "Invalid number",
    Completion.FAILED: "Failed",
    Completion.ABANDONED: "Abandoned",
    Completion.UNKNOWN: "Unknown",
}


def local_time(value: datetime | None, tz: tzinfo) -> str:
    """``YYYY-MM-DD HH:MM:SS ZONE`` on the given clock; empty for a missing time."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)  # the store only ever holds UTC
    local = value.astimezone(tz)
    return f"{local.strftime(TIME_FORMAT)} {local.tzname()}"


def stored_time(text: str | None, tz: tzinfo) -> str:
    """An ISO 8601 time held as text (a rating explanation's ``2025-07-14T23:00:00Z``) on the
    given clock, like ``local_time``; text that is not such a time is shown as it is."""
    if not text:
        return ""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return text
    return local_time(value, tz)


def duration(seconds: int | float | None) -> str:
    """``h:mm:ss`` (hours not wrapped at 24): 0:00:00, 0:01:05, 27:46:40."""
    if seconds is None:
        return ""
    total = max(0, int(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def direction_label(value: str) -> str:
    return DIRECTION_LABELS.get(value, value)


def completion_label(value: str) -> str:
    return COMPLETION_LABELS.get(value, value)


def utc_offset(minutes: int) -> str:
    """A site's UTC offset as ``UTC+01:00`` / ``UTC-05:30``."""
    sign = "-" if minutes < 0 else "+"
    hours, mins = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours:02d}:{mins:02d}"


JINJA_FILTERS = {
    "local_time": local_time,
    "stored_time": stored_time,
    "duration": duration,
    "direction_label": direction_label,
    "completion_label": completion_label,
    "utc_offset": utc_offset,
}
