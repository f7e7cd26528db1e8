"""Site wall clock to UTC, including the hour that happens twice."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from edge_agent.sources.streams.wallclock import offset_minutes, to_utc

LONDON = ZoneInfo("Europe/London")


@pytest.mark.parametrize(
    ("local", "after", "expected"),
    [
        (datetime(2026, 5, 14, 9, 31), None, datetime(2026, 5, 14, 8, 31, tzinfo=UTC)),
        (datetime(2026, 1, 14, 9, 31), None, datetime(2026, 1, 14, 9, 31, tzinfo=UTC)),
        # 25 Oct 2026, 01:30 happens at 00:30 UTC (BST) and again at 01:30 UTC (GMT)
        (datetime(2026, 10, 25, 1, 30), None, datetime(2026, 10, 25, 0, 30, tzinfo=UTC)),
        (
            datetime(2026, 10, 25, 1, 10),
            datetime(2026, 10, 25, 0, 50, tzinfo=UTC),
            datetime(2026, 10, 25, 1, 10, tzinfo=UTC),
        ),
        (  # the earlier reading is already in order: kept
            datetime(2026, 10, 25, 1, 55),
            datetime(2026, 10, 25, 0, 50, tzinfo=UTC),
            datetime(2026, 10, 25, 0, 55, tzinfo=UTC),
        ),
        (  # neither reading is in order (a clock fault): the first one, for the caller to judge
            datetime(2026, 5, 14, 9, 0),
            datetime(2026, 5, 14, 12, 0, tzinfo=UTC),
            datetime(2026, 5, 14, 8, 0, tzinfo=UTC),
        ),
    ],
)
def test_to_utc(local: datetime, after: datetime | None, expected: datetime) -> None:
    assert to_utc(local, LONDON, after=after) == expected


def test_offset_minutes() -> None:
    assert offset_minutes(datetime(2026, 5, 14, 8, 0, tzinfo=UTC), LONDON) == 60
    assert (
        offset_minutes(datetime(2026, 5, 14, 8, 0, tzinfo=UTC), ZoneInfo("America/St_Johns"))
        == -150
    )
