"""ClockJumpWatch: a stepped wall clock is told from real time passing, both ways."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.health.clock_jump import ClockJumpWatch

T0 = datetime(2026, 12, 6, 7, 0, tzinfo=UTC)


def test_the_first_reading_only_records() -> None:
    assert ClockJumpWatch().observe(T0, 100.0) is None


@pytest.mark.parametrize("jump", [-40 * 86400.0, -3600.0, -61.0, 61.0, 600.0, 7 * 86400.0])
def test_a_step_is_reported_with_its_sign(jump: float, caplog: pytest.LogCaptureFixture) -> None:
    watch = ClockJumpWatch()
    watch.observe(T0, 100.0)
    found = watch.observe(T0 + timedelta(seconds=5 + jump), 105.0)
    assert found == pytest.approx(jump)
    assert "the wall clock jumped" in caplog.text


# Drift up to the threshold less a millisecond: a datetime keeps microseconds, so a drift of
# exactly 60 s came back as 60.0000005 s and was rightly a jump (hypothesis found it).
@given(
    elapsed=st.floats(min_value=0, max_value=86400),
    drift=st.floats(min_value=-59.999, max_value=59.999),
)
def test_time_passing_and_small_drift_are_not_jumps(elapsed: float, drift: float) -> None:
    watch = ClockJumpWatch()
    watch.observe(T0, 0.0)
    assert watch.observe(T0 + timedelta(seconds=elapsed + drift), elapsed) is None


def test_each_reading_is_compared_with_the_one_before() -> None:
    watch = ClockJumpWatch()
    watch.observe(T0, 0.0)
    assert watch.observe(T0 + timedelta(days=1), 1.0) is not None
    assert watch.observe(T0 + timedelta(days=1, seconds=2), 3.0) is None  # no second report
