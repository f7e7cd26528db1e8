"""Money: amounts parse exactly, and one rounding per call matches Decimal in every mode."""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_HALF_UP, ROUND_UP, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from datacenter.rating.money import (
    RoundingMode,
    format_fraction,
    format_micro,
    format_minor,
    minor_denominator,
    parse_amount,
    round_to_minor,
)

AMOUNTS = [("0.1500", 150_000), ("0", 0), ("12", 12_000_000), ("0.000001", 1), (" 1.5 ", 1_500_000)]


@pytest.mark.parametrize(("text", "micro"), AMOUNTS)
def test_parse_amount(text: str, micro: int) -> None:
    assert parse_amount(text) == micro


@pytest.mark.parametrize(
    "text", ["-0.1", "1e-3", "0.1234567", "1,000.00", "", ".5", "0.1.2", "NaN"]
)
def test_parse_amount_refuses(text: str) -> None:
    with pytest.raises(ValueError, match=repr(text.strip()) if text.strip() else "decimal"):
        parse_amount(text)


DECIMAL_MODES = {
    RoundingMode.HALF_UP: ROUND_HALF_UP, RoundingMode.UP: ROUND_UP,
    RoundingMode.HALF_EVEN: ROUND_HALF_EVEN, RoundingMode.DOWN: ROUND_DOWN,
}  # fmt: skip


@given(
    raw60=st.integers(min_value=0, max_value=10**15),
    decimals=st.integers(min_value=0, max_value=6),
    mode=st.sampled_from(list(RoundingMode)),
)
def test_round_to_minor_matches_decimal(raw60: int, decimals: int, mode: RoundingMode) -> None:
    # raw60 / 60 is exact or repeating; a .5 tie is always exact, so 28 digits decide correctly
    exact = (Decimal(raw60) / Decimal(60)).scaleb(-6)
    expected = exact.quantize(Decimal(1).scaleb(-decimals), rounding=DECIMAL_MODES[mode])
    got = round_to_minor(raw60, minor_denominator(decimals), mode)
    assert Decimal(got).scaleb(-decimals) == expected


FORMATS = [
    (format_micro(150_000), "0.1500"),
    (format_micro(1), "0.000001"),
    (format_minor(309, 2), "3.09"),
    (format_minor(13, 0), "13"),
    (format_minor(13, 3), "0.013"),
    (format_fraction(14_520_000, 60_000_000), "0.2420"),
    (format_fraction(1, 3), "0.3333333333..."),
]


@pytest.mark.parametrize(("got", "expected"), FORMATS)
def test_formatting(got: str, expected: str) -> None:
    assert got == expected
