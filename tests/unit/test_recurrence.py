"""Schedule arithmetic: rrule occurrences placed in a tenant's zone, across DST, and periods."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datacenter.reports.recurrence import (
    LAST_DAY,
    Recurrence,
    covered_days,
    from_json,
    latest_due,
    next_due,
    place,
    recurrence,
)
from shared.errors import ValidationError

ZONES = [ZoneInfo(z) for z in ("Europe/London", "America/New_York", "Australia/Sydney",
                                "Asia/Kolkata", "America/Santiago", "UTC")]  # fmt: skip
LONDON = ZoneInfo("Europe/London")

times = st.builds(time, st.integers(0, 23), st.sampled_from([0, 15, 30, 45]))
weekday_sets = st.sets(st.integers(0, 6), min_size=1).map(lambda s: tuple(sorted(s)))
rules = st.one_of(
    st.builds(lambda at: recurrence("daily", at), times),
    st.builds(lambda at, days: recurrence("weekly", at, weekdays=days), times, weekday_sets),
    st.builds(lambda at, d: recurrence("monthly", at, month_day=d), times,
              st.one_of(st.integers(1, 28), st.just(LAST_DAY))),
    st.builds(lambda at, n, wd: recurrence("monthly", at, nth=n, nth_weekday=wd), times,
              st.sampled_from([1, 2, 3, 4, -1]), st.integers(0, 6)),
)  # fmt: skip
instants = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2035, 12, 31), timezones=st.just(UTC)
)


def _in_gap(local_wall: datetime, zone: ZoneInfo) -> bool:
    """Whether this wall-clock time does not exist in ``zone`` (the spring-forward hour)."""
    aware = local_wall.replace(tzinfo=zone)
    return aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != local_wall


def _on_the_rule(rec: Recurrence, day: date) -> bool:
    if rec.frequency == "daily":
        return True
    if rec.frequency == "weekly":
        return day.weekday() in rec.weekdays
    if rec.month_day is not None:
        last = (day.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
        return day.day == (last.day if rec.month_day == LAST_DAY else rec.month_day)
    assert rec.nth is not None
    if day.weekday() != rec.nth_weekday:
        return False
    if rec.nth == -1:
        return (day + timedelta(days=7)).month != day.month
    return (day.day - 1) // 7 + 1 == rec.nth


@settings(max_examples=400, deadline=None)
@given(rec=rules, zone=st.sampled_from(ZONES), after=instants)
def test_next_run_is_in_the_future_at_the_local_time_on_the_right_day(
    rec: Recurrence, zone: ZoneInfo, after: datetime
) -> None:
    due = next_due(rec, zone, after=after)
    assert due > after
    local = due.astimezone(zone)
    wall = datetime.combine(local.date(), rec.at)
    if _in_gap(wall, zone):
        # The asked time did not exist that day: the run is the gap's length later, same day.
        assert local.date() == wall.date() and local.replace(tzinfo=None) > wall
    else:
        assert local.time().replace(tzinfo=None) == rec.at
        assert local.fold == 0  # a repeated hour runs at its first occurrence
    assert _on_the_rule(rec, local.date())
    # No occurrence was skipped: the one before ``due`` is not after ``after``.
    previous = latest_due(rec, zone, at=due - timedelta(microseconds=1))
    assert previous is None or previous <= after


@settings(max_examples=200, deadline=None)
@given(rec=rules, zone=st.sampled_from(ZONES), at=instants)
def test_latest_due_is_the_occurrence_before_the_next(
    rec: Recurrence, zone: ZoneInfo, at: datetime
) -> None:
    latest = latest_due(rec, zone, at=at)
    assert latest is not None and latest <= at
    assert next_due(rec, zone, after=latest) > at


@given(rec=rules)
def test_a_recurrence_round_trips_through_its_stored_form(rec: Recurrence) -> None:
    assert from_json(rec.to_json()) == rec


def test_daily_runs_keep_the_local_time_across_both_changes() -> None:
    rec = recurrence("daily", "07:00")
    spring = [next_due(rec, LONDON, after=datetime(2025, 3, d, 12, tzinfo=UTC)) for d in (29, 30)]
    assert [d.isoformat() for d in spring] == ["2025-03-30T06:00:00+00:00",
                                               "2025-03-31T06:00:00+00:00"]  # fmt: skip
    autumn = next_due(rec, LONDON, after=datetime(2025, 10, 25, 12, tzinfo=UTC))
    assert autumn == datetime(2025, 10, 26, 7, 0, tzinfo=UTC)  # GMT again: 07:00 local


def test_a_time_in_the_spring_gap_runs_an_hour_later_that_day() -> None:
    due = next_due(
        recurrence("daily", "01:30"), LONDON, after=datetime(2025, 3, 29, 12, tzinfo=UTC)
    )
    assert due.astimezone(LONDON).isoformat() == "2025-03-30T02:30:00+01:00"


def test_a_repeated_time_in_the_autumn_runs_once_at_the_first() -> None:
    rec = recurrence("daily", "01:30")
    first = next_due(rec, LONDON, after=datetime(2025, 10, 25, 12, tzinfo=UTC))
    assert first == datetime(2025, 10, 26, 0, 30, tzinfo=UTC)  # 01:30 BST
    assert next_due(rec, LONDON, after=first) == datetime(2025, 10, 27, 1, 30, tzinfo=UTC)


def test_first_monday_and_last_friday() -> None:
    first_monday = recurrence("monthly", "08:00", nth=1, nth_weekday=0)
    due = next_due(first_monday, LONDON, after=datetime(2025, 3, 3, 9, tzinfo=UTC))
    assert due.astimezone(LONDON).date() == date(2025, 4, 7)
    last_friday = recurrence("monthly", "17:00", nth=-1, nth_weekday=4)
    assert next_due(last_friday, LONDON, after=datetime(2025, 2, 1, tzinfo=UTC)).date() == date(
        2025, 2, 28
    )
    assert last_friday.describe() == "Monthly on the last Friday at 17:00"


def test_weekly_on_chosen_days() -> None:
    rec = recurrence("weekly", "06:00", weekdays=[3, 0])
    assert rec.describe() == "Every Monday and Thursday at 06:00"
    got = next_due(rec, LONDON, after=datetime(2025, 3, 4, tzinfo=UTC))  # a Tuesday
    assert got.astimezone(LONDON).date() == date(2025, 3, 6)


def test_place_uses_the_first_of_a_repeated_hour() -> None:
    assert place(datetime(2025, 11, 2, 1, 30), ZoneInfo("America/New_York")) == datetime(
        2025, 11, 2, 5, 30, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("period", "due", "expected"),
    [
        ("previous_day", date(2025, 3, 1), (date(2025, 2, 28), date(2025, 2, 28))),
        ("previous_week", date(2025, 3, 5), (date(2025, 2, 24), date(2025, 3, 2))),
        ("previous_week", date(2025, 3, 3), (date(2025, 2, 24), date(2025, 3, 2))),
        ("previous_month", date(2025, 3, 1), (date(2025, 2, 1), date(2025, 2, 28))),
        ("previous_month", date(2024, 3, 15), (date(2024, 2, 1), date(2024, 2, 29))),
        ("month_to_date", date(2025, 3, 17), (date(2025, 3, 1), date(2025, 3, 17))),
        ("week_to_date", date(2025, 3, 6), (date(2025, 3, 3), date(2025, 3, 6))),
    ],
)
def test_covered_days(period: str, due: date, expected: tuple[date, date]) -> None:
    assert covered_days(period, due) == expected


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"frequency": "hourly", "at": "07:00"}, "frequency"),
        ({"frequency": "daily", "at": "7am"}, "at"),
        ({"frequency": "daily", "at": "25:00"}, "at"),
        ({"frequency": "weekly", "at": "07:00"}, "weekdays"),
        ({"frequency": "weekly", "at": "07:00", "weekdays": [7]}, "weekdays"),
        ({"frequency": "monthly", "at": "07:00", "month_day": 31}, "month_day"),
        ({"frequency": "monthly", "at": "07:00", "nth": 5, "nth_weekday": 0}, "nth"),
        ({"frequency": "monthly", "at": "07:00"}, "nth"),
    ],
)
def test_bad_recurrences_name_their_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        recurrence(**kwargs)  # type: ignore[arg-type]
    assert caught.value.field == field


def test_unknown_period_is_refused() -> None:
    with pytest.raises(ValidationError, match="period"):
        covered_days("fortnight", date(2025, 3, 1))


def test_as_saved_is_the_reports_own_dates() -> None:
    saved = (date(2025, 9, 1), date(2025, 9, 30))
    assert covered_days("as_saved", date(2026, 1, 5), saved=saved) == saved
    with pytest.raises(ValidationError, match="as_saved"):
        covered_days("as_saved", date(2026, 1, 5))
