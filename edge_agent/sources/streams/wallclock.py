"""Site wall-clock time to UTC, for the Mitel formats that record local time without an offset.

Contract: ``to_utc`` maps a naive local time to an aware UTC time with the site's IANA zone.
In the autumn fall-back hour a wall-clock time happens twice; ``after`` picks the later instant
when the earlier one would put an event before the one that preceded it in the same call
(formats.md §3.5: ordering within a call decides). A time skipped by the spring change is read
with the offset before the change, as ``zoneinfo`` does.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo


def to_utc(local: datetime, zone: ZoneInfo, *, after: datetime | None = None) -> datetime:
    """Convert a naive local time; ``after`` (UTC) is the previous event of the same call."""
    first = local.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if after is not None and first < after:
        second = local.replace(tzinfo=zone, fold=1).astimezone(UTC)
        if second >= after:
            return second
    return first


def offset_minutes(instant: datetime, zone: ZoneInfo) -> int:
    """The site's UTC offset at ``instant``, in whole minutes."""
    offset = instant.astimezone(zone).utcoffset()
    return 0 if offset is None else int(offset.total_seconds() // 60)
