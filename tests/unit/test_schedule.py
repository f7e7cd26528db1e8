"""Upload schedule: parsing, and when the next session is due (DST included)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from edge_agent.delivery.schedule import UploadSchedule, parse_schedule

LONDON = ZoneInfo("Europe/London")
MINUTE = timedelta(seconds=60)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("continuous", UploadSchedule()),
        ("Continuous", UploadSchedule()),
        ("every 15 minutes", UploadSchedule(every=timedelta(minutes=15))),
        ("every 1 minute", UploadSchedule(every=timedelta(minutes=1))),
        (["13:30", "02:00", "13:30"], UploadSchedule(times=(time(2, 0), time(13, 30)))),
    ],
)
def test_parse(value: object, expected: UploadSchedule) -> None:
    assert parse_schedule(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("hourly", "'hourly' is not a schedule"),
        ("every 0 minutes", "out of range"),
        ("every 1441 minutes", "out of range"),
        (["24:00"], "is not a time of day"),
        (["2:00"], "is not a time of day"),
        ([900], "is not a time of day"),
        ([], "is not a schedule"),
        (15, "is not a schedule"),
    ],
)
def test_parse_errors(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_schedule(value)


@pytest.mark.parametrize(
    ("schedule", "now", "due"),
    [
        ("continuous", datetime(2026, 3, 2, 9, 0, tzinfo=UTC), datetime(2026, 3, 2, 9, 1, tzinfo=UTC)),
        ("every 15 minutes", datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
         datetime(2026, 3, 2, 9, 15, tzinfo=UTC)),
        # winter: London is UTC
        (["02:00", "13:30"], datetime(2026, 1, 5, 9, 0, tzinfo=UTC),
         datetime(2026, 1, 5, 13, 30, tzinfo=UTC)),
        (["02:00", "13:30"], datetime(2026, 1, 5, 13, 30, tzinfo=UTC),
         datetime(2026, 1, 6, 2, 0, tzinfo=UTC)),
        # summer: 13:30 BST is 12:30 UTC
        (["02:00", "13:30"], datetime(2026, 7, 1, 9, 0, tzinfo=UTC),
         datetime(2026, 7, 1, 12, 30, tzinfo=UTC)),
        # spring forward (29 March 2026, 01:00 GMT -> 02:00 BST): 01:30 does not exist, fires
        # shifted by the gap, at 02:30 BST
        (["01:30"], datetime(2026, 3, 29, 0, 0, tzinfo=UTC),
         datetime(2026, 3, 29, 1, 30, tzinfo=UTC)),
        # fall back (25 October 2026): 01:30 happens twice, fires at the first (BST) only
        (["01:30"], datetime(2026, 10, 25, 0, 0, tzinfo=UTC),
         datetime(2026, 10, 25, 0, 30, tzinfo=UTC)),
        (["01:30"], datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
         datetime(2026, 10, 26, 1, 30, tzinfo=UTC)),
    ],
)  # fmt: skip
def test_next_after(schedule: object, now: datetime, due: datetime) -> None:
    assert parse_schedule(schedule).next_after(now, zone=LONDON, interval=MINUTE) == due


@pytest.mark.parametrize(
    ("value", "text"),
    [("continuous", "continuous"), ("every 5 minutes", "every 5 minutes"),
     (["13:30", "02:00"], "at 02:00, 13:30")],
)  # fmt: skip
def test_describe(value: object, text: str) -> None:
    assert parse_schedule(value).describe() == text
