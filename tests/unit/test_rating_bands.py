"""Band calendars: every instant has one band, in the site's zone, across DST changes."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datacenter.rating.bands import BandClock, Span, calendar_from_dict, epoch_seconds
from shared.errors import ConfigError

CALENDAR = calendar_from_dict({
    "weekday": {"00:00": "night", "02:30": "early", "08:00": "day", "18:00": "evening"},
    "weekend": {"00:00": "weekend"},
    "holidays": ["2025-12-25"],
})  # fmt: skip


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> int:
    return epoch_seconds(datetime(year, month, day, hour, minute, second, tzinfo=UTC))


SPANS = [
    # zone, from, to (UTC), expected spans (start, end, band)
    ("Europe/London", at(2025, 3, 4, 17, 0), at(2025, 3, 4, 19, 0),
     [(at(2025, 3, 4, 17, 0), at(2025, 3, 4, 18, 0), "day"),
      (at(2025, 3, 4, 18, 0), at(2025, 3, 4, 19, 0), "evening")]),
    # 2025-03-31 is a Monday in BST: 02:30 local = 01:30 UTC
    ("Europe/London", at(2025, 3, 31, 0, 0), at(2025, 3, 31, 2, 0),
     [(at(2025, 3, 31, 0, 0), at(2025, 3, 31, 1, 30), "night"),
      (at(2025, 3, 31, 1, 30), at(2025, 3, 31, 2, 0), "early")]),
    # Toronto 2025-11-03 Monday EST: 08:00 local = 13:00 UTC
    ("America/Toronto", at(2025, 11, 3, 12, 0), at(2025, 11, 3, 14, 0),
     [(at(2025, 11, 3, 12, 0), at(2025, 11, 3, 13, 0), "early"),
      (at(2025, 11, 3, 13, 0), at(2025, 11, 3, 14, 0), "day")]),
    # Kolkata is UTC+05:30: boundaries fall on the half hour of UTC; 18:00 IST = 12:30 UTC
    ("Asia/Kolkata", at(2025, 3, 4, 12, 0), at(2025, 3, 4, 13, 0),
     [(at(2025, 3, 4, 12, 0), at(2025, 3, 4, 12, 30), "day"),
      (at(2025, 3, 4, 12, 30), at(2025, 3, 4, 13, 0), "evening")]),
    # Christmas Thursday: holiday defaults to Sunday's schedule
    ("Europe/London", at(2025, 12, 25, 10, 0), at(2025, 12, 25, 11, 0),
     [(at(2025, 12, 25, 10, 0), at(2025, 12, 25, 11, 0), "weekend")]),
]  # fmt: skip


@pytest.mark.parametrize(("zone", "start", "end", "expected"), SPANS)
def test_spans(zone: str, start: int, end: int, expected: list[tuple[int, int, str]]) -> None:
    clock = BandClock(CALENDAR, ZoneInfo(zone))
    assert clock.spans(start, end) == [Span(*s) for s in expected]


def test_a_boundary_inside_the_missing_dst_hour_takes_effect_at_the_transition() -> None:
    # New York springs forward 2025-03-09 (a Sunday, so use a weekday-only boundary on the
    # weekday schedule of a calendar where every day is the same): 02:00 EST -> 03:00 EDT at
    # 07:00 UTC; the 02:30 boundary never happens on the wall clock, so 'early' starts at 07:00.
    same = {"00:00": "night", "02:30": "early", "08:00": "day"}
    clock = BandClock(
        calendar_from_dict({"weekday": same, "weekend": same}), ZoneInfo("America/New_York")
    )
    assert clock.spans(at(2025, 3, 9, 6, 0), at(2025, 3, 9, 8, 0)) == [
        Span(at(2025, 3, 9, 6, 0), at(2025, 3, 9, 7, 0), "night"),
        Span(at(2025, 3, 9, 7, 0), at(2025, 3, 9, 8, 0), "early"),
    ]


@settings(max_examples=60, deadline=None)
@given(
    start=st.integers(at(2025, 1, 1), at(2026, 12, 31)),
    length=st.integers(1, 3 * 86400),
    zone=st.sampled_from(
        ["Europe/London", "America/Toronto", "Australia/Lord_Howe", "Asia/Kolkata"]
    ),
)
def test_spans_tile_the_interval_and_match_a_direct_lookup(
    start: int, length: int, zone: str
) -> None:
    clock = BandClock(CALENDAR, ZoneInfo(zone))
    spans = clock.spans(start, start + length)
    assert spans[0].start == start and spans[-1].end == start + length
    for before, after in itertools.pairwise(spans):
        assert before.end == after.start and before.band != after.band
    for span in spans:  # the band at each run's first and last second, by wall clock
        for instant in (span.start, span.end - 1):
            local = datetime.fromtimestamp(instant, ZoneInfo(zone))
            assert CALENDAR.band_at_local(local)[0] == span.band


@settings(max_examples=60, deadline=None)
@given(
    instant=st.integers(at(2025, 1, 1), at(2026, 12, 31)),
    zone=st.sampled_from(["Europe/London", "America/New_York", "Asia/Kolkata"]),
)
def test_run_at_is_the_run_holding_the_instant_within_its_utc_hour(instant: int, zone: str) -> None:
    clock = BandClock(CALENDAR, ZoneInfo(zone))
    run = clock.run_at(instant)
    hour_end = (instant // 3600 + 1) * 3600
    assert run.start <= instant < run.end <= hour_end
    local = datetime.fromtimestamp(instant, ZoneInfo(zone))
    assert run.band == CALENDAR.band_at_local(local)[0]
    # the engine's fast path: a call ending by run.end is exactly one span in run's band
    assert clock.spans(instant, run.end) == [Span(instant, run.end, run.band)]


BAD: list[tuple[dict[str, Any], str]] = [
    ({"weekday": {"00:00": "a"}}, "calendar.saturday"),
    ({"weekday": {"01:00": "a"}, "weekend": {"00:00": "b"}}, "calendar.weekday"),
    ({"weekday": {"00:00": "a", "25:00": "b"}, "weekend": {"00:00": "b"}}, "calendar.weekday.25:00"),
    ({"weekday": {"00:00": "a", "08:00": "b", "07:00": "c"}, "weekend": {"00:00": "b"}}, "calendar.weekday"),
    ({"weekday": {"00:00": "a"}, "weekend": {"00:00": "b"}, "saturday": {"00:00": "c"}}, "calendar.saturday"),
    ({"weekday": {"00:00": "a"}, "weekend": {"00:00": "b"}, "holidays": ["25/12/2025"]}, "calendar.holidays"),
    ({"weekday": {"00:00": "a"}, "weekend": {"00:00": "b"}, "monday": {"00:00": "b"}}, "calendar.monday"),
]  # fmt: skip


@pytest.mark.parametrize(("data", "key"), BAD)
def test_bad_calendars_are_refused_at_load(data: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        calendar_from_dict(data)
    assert caught.value.key == key
