"""Formatting of call data for the web pages: durations, local times, labels."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from datacenter.web.display import (
    COMPLETION_LABELS,
    DIRECTION_LABELS,
    completion_label,
    direction_label,
    duration,
    local_time,
    stored_time,
    utc_offset,
)
from shared.icdr import Completion, Direction


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0, "0:00:00"),
        (5, "0:00:05"),
        (65, "0:01:05"),
        (3599, "0:59:59"),
        (3600, "1:00:00"),
        (3725, "1:02:05"),
        (100_000, "27:46:40"),  # hours are not wrapped at a day
        (-3, "0:00:00"),
        (61.9, "0:01:01"),
        (None, ""),
    ],
)
def test_duration(seconds: float | None, shown: str) -> None:
    assert duration(seconds) == shown


@given(st.integers(min_value=0, max_value=400 * 3600))
def test_duration_reads_back(seconds: int) -> None:
    hours, minutes, secs = (int(part) for part in duration(seconds).split(":"))
    assert 0 <= minutes < 60 and 0 <= secs < 60
    assert hours * 3600 + minutes * 60 + secs == seconds


@pytest.mark.parametrize(
    ("instant", "zone", "shown"),
    [
        (datetime(2025, 7, 14, 23, 30, tzinfo=UTC), "Europe/London", "2025-07-15 00:30:00 BST"),
        (datetime(2025, 1, 15, 9, 0, tzinfo=UTC), "Europe/London", "2025-01-15 09:00:00 GMT"),
        (datetime(2025, 3, 10, 15, 0, tzinfo=UTC), "America/New_York", "2025-03-10 11:00:00 EDT"),
        (datetime(2025, 3, 8, 15, 0, tzinfo=UTC), "America/New_York", "2025-03-08 10:00:00 EST"),
        (datetime(2025, 6, 1, 0, 0, tzinfo=UTC), "Asia/Kolkata", "2025-06-01 05:30:00 IST"),
        (datetime(2025, 6, 1, 12, 0, tzinfo=UTC), "UTC", "2025-06-01 12:00:00 UTC"),
        # SQLite's naive datetimes are UTC.
        (datetime(2025, 6, 1, 12, 0), "Europe/London", "2025-06-01 13:00:00 BST"),
        (None, "Europe/London", ""),
    ],
)
def test_local_time(instant: datetime | None, zone: str, shown: str) -> None:
    assert local_time(instant, ZoneInfo(zone)) == shown


def test_local_time_on_a_fixed_offset() -> None:
    clock = timezone(timedelta(hours=-5), "UTC-05:00")
    assert (
        local_time(datetime(2025, 6, 1, 12, tzinfo=UTC), clock) == "2025-06-01 07:00:00 UTC-05:00"
    )


@pytest.mark.parametrize(
    ("minutes", "shown"),
    [
        (0, "UTC+00:00"),
        (60, "UTC+01:00"),
        (-300, "UTC-05:00"),
        (330, "UTC+05:30"),
        (-570, "UTC-09:30"),
    ],
)
def test_utc_offset(minutes: int, shown: str) -> None:
    assert utc_offset(minutes) == shown


def test_every_enum_value_has_a_label() -> None:
    assert set(DIRECTION_LABELS) == {d.value for d in Direction}
    assert set(COMPLETION_LABELS) == {c.value for c in Completion}
    assert direction_label("in") == "Incoming" and completion_label("no_answer") == "No answer"
    assert direction_label("sideways") == "sideways"  # an unknown code is shown as it is


@pytest.mark.parametrize(
    ("text", "shown"),
    [("2025-07-14T23:00:00Z", "2025-07-15 00:00:00 BST"),  # a tariff's validity, on the tenant's clock
     ("2025-07-16T10:00:05+00:00", "2025-07-16 11:00:05 BST"),
     ("", ""), (None, ""), ("not a time", "not a time"), ("day", "day")],
)  # fmt: skip
def test_stored_time_shows_an_explanations_time_on_the_tenants_clock(
    text: str | None, shown: str
) -> None:
    assert stored_time(text, ZoneInfo("Europe/London")) == shown
