"""The reports' own parameters and the trunk sweep, with hypothesis: ring-time bands
(``o.bands``), the charge-back mark-up (``o.markup``), and simultaneous calls from overlaps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from datacenter.reports.chargeback import charge, markup
from datacenter.reports.filters import parse_filter
from datacenter.reports.inbound import band_edges, band_labels
from datacenter.reports.tables import EMPTY, ReportParams, exact
from datacenter.reports.trunks import HOUR, sweep
from shared.errors import ValidationError

SINCE = datetime(2025, 3, 30, tzinfo=UTC)
PARAMS = ReportParams(1, ZoneInfo("Europe/London"), SINCE.date(), SINCE.date())


@given(st.text(max_size=40))
def test_band_edges_parse_or_name_the_option(text: str) -> None:
    try:
        edges = band_edges(text)
    except ValidationError as error:
        assert error.field == "o.bands"
    else:
        assert edges == sorted(set(edges)) and edges[0] > 0
        assert len(band_labels(edges)) == len(edges) + 1


@given(st.lists(st.integers(1, 10_000), min_size=1, max_size=20, unique=True))
def test_band_edges_round_trip(edges: list[int]) -> None:
    ordered = sorted(edges)
    assert band_edges(",".join(map(str, ordered))) == ordered


@given(st.text(max_size=20))
def test_markup_parses_or_names_the_option(text: str) -> None:
    try:
        value = markup(ReportParams(**{**PARAMS.__dict__, "options": {"markup": text}}))
    except ValidationError as error:
        assert error.field == "o.markup"
    else:
        assert 0 <= value <= 1000


@given(st.decimals(min_value=0, max_value=10**6, places=6), st.decimals(0, 1000, places=4))
def test_a_charge_is_the_cost_plus_the_mark_up_to_the_micro_unit(
    cost: Decimal, percent: Decimal
) -> None:
    charged = charge(cost, percent)
    assert abs(charged - cost * (1 + percent / 100)) <= Decimal("0.0000005")


@given(st.text(max_size=20))
def test_exact_matches_the_value_and_nothing_else(value: str) -> None:
    text = exact(value)
    assert parse_filter(text) is not None
    if not value:
        assert text == EMPTY


spans = st.lists(st.tuples(st.integers(-3_600, 3 * 3_600), st.integers(0, 7_200)), max_size=12).map(
    lambda pairs: [
        (SINCE + timedelta(seconds=s), SINCE + timedelta(seconds=s + d)) for s, d in pairs
    ]
)


@given(spans)
def test_the_sweep_counts_what_the_calls_cover(calls: list[tuple[datetime, datetime]]) -> None:
    hours = sweep(calls, SINCE, SINCE + 3 * HOUR)
    assert len(hours) == 3
    for hour in hours:
        end = hour.start + HOUR
        started = [s for s, _ in calls if hour.start <= s < end]
        assert hour.calls == len(started)
        # The most calls in progress at one instant of the hour (the hour's start or a start).
        assert hour.peak == max(
            sum(1 for s, e in calls if s <= t < e) for t in (hour.start, *started)
        )
        covered = sum(
            int((min(e, end) - max(s, hour.start)).total_seconds())
            for s, e in calls
            if s < end and e > hour.start
        )
        assert hour.occupied_seconds == covered


def test_back_to_back_calls_are_not_simultaneous() -> None:
    one = (SINCE, SINCE + timedelta(minutes=5))
    two = (SINCE + timedelta(minutes=5), SINCE + timedelta(minutes=9))
    assert sweep([one, two], SINCE, SINCE + HOUR)[0].peak == 1
    overlapping = (SINCE + timedelta(minutes=4), SINCE + HOUR)
    assert sweep([one, overlapping], SINCE, SINCE + HOUR)[0].peak == 2
    # a call ending as the next hour begins is not in progress in it
    assert sweep([overlapping], SINCE, SINCE + 2 * HOUR)[1].peak == 0


@pytest.mark.parametrize("text", ["10,20,30,60", "5", "1,2,3"])
def test_band_labels(text: str) -> None:
    labels = band_labels(band_edges(text))
    assert labels[0].startswith("0-") and labels[-1].endswith("and more")
