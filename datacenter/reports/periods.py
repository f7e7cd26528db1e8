"""Report periods: tenant-local days and the UTC instants that bound them.

A report's range is a run of the tenant's local days (what the rollups are keyed by). The raw
calls are selected by ``start_utc`` between the local midnight that opens the first day and the
one that closes the last, so a 23- or 25-hour DST day and a call starting before midnight and
ending after it fall on the same day in both.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """The UTC instant ``day`` starts at in ``zone``."""
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def utc_bounds(first_day: date, last_day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """``[since, until)`` in UTC covering the local days ``first_day`` .. ``last_day``."""
    return local_midnight(first_day, zone), local_midnight(last_day + timedelta(days=1), zone)
