"""Exact money for rating: integer micro-units, one rounding per call, never float.

Every amount a tariff holds (rate per minute, connection fee, minimum charge, cap) is an integer
number of **micro-units**: millionths of the currency unit, so 0.1500/min is ``150_000``. A raw
call cost is kept as an integer number of *sixtieths of a micro-unit* (rate x seconds needs no
division), and is rounded exactly once, to the currency's minor unit, with the tariff's mode.

Guarantees:

- ``parse_amount`` accepts plain decimals with at most six places and rejects everything else
  (exponents, signs, thousands separators, float-looking junk) with a message naming the problem.
- ``round_to_minor`` is exact for every non-negative integer input and matches ``Decimal``
  quantization in the same mode (a property test pins this).
- The number of decimals comes from the currency (ISO 4217), never from a constant.
"""

from __future__ import annotations

import functools
import re
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction

MICRO = 1_000_000  # tariff amounts are integers in millionths of the currency unit
MICRO_PLACES = 6
SECONDS_PER_MINUTE = 60

# ISO 4217 minor units for the currencies a tariff is likely to use; a tariff plan may state
# `decimals` for anything else.
CURRENCY_DECIMALS: dict[str, int] = {
    "AUD": 2, "BHD": 3, "BRL": 2, "CAD": 2, "CHF": 2, "CNY": 2, "CZK": 2, "DKK": 2, "EUR": 2,
    "GBP": 2, "HKD": 2, "HUF": 2, "IDR": 2, "ILS": 2, "INR": 2, "IQD": 3, "ISK": 0, "JOD": 3,
    "JPY": 0, "KRW": 0, "KWD": 3, "LYD": 3, "MXN": 2, "NOK": 2, "NZD": 2, "OMR": 3, "PLN": 2,
    "SEK": 2, "SGD": 2, "TND": 3, "TRY": 2, "USD": 2, "VND": 0, "ZAR": 2,
}  # fmt: skip

_AMOUNT = re.compile(r"^(\d{1,12})(?:\.(\d{1,6}))?$")


class RoundingMode(StrEnum):
    """How the one rounding per call resolves the last kept digit."""

    HALF_UP = "half_up"  # commercial norm: .5 goes away from zero
    UP = "up"  # carriers' favourite: any remainder rounds up
    HALF_EVEN = "half_even"  # banker's rounding, Decimal's default
    DOWN = "down"  # truncate


def currency_decimals(currency: str) -> int:
    """Minor-unit decimals of an ISO 4217 code; KeyError if this table does not know it."""
    return CURRENCY_DECIMALS[currency]


def parse_amount(text: str) -> int:
    """``"0.1500"`` -> ``150000`` micro-units. ValueError with the reason for anything else."""
    match = _AMOUNT.match(text.strip())
    if match is None:
        if re.match(r"^\d+\.\d{7,}$", text.strip()):
            raise ValueError(f"{text!r} has more than {MICRO_PLACES} decimal places")
        raise ValueError(f"{text!r} is not a non-negative decimal amount like 0.1500")
    whole, frac = match.group(1), match.group(2) or ""
    return int(whole) * MICRO + int(frac.ljust(MICRO_PLACES, "0"))


# The explanation of every rated call formats its tariff's few rates and amounts again and again;
# the formatters are pure, so their results are kept (ingest: about a third of rating's time).
@functools.lru_cache(maxsize=4096)
def format_micro(micro: int, *, places: int = 4) -> str:
    """Micro-units as a decimal string with at least ``places`` decimals (more if needed)."""
    text = str(Decimal(micro).scaleb(-MICRO_PLACES).normalize())
    value = Decimal(text)
    exponent = value.as_tuple().exponent
    shown = max(places, -exponent if isinstance(exponent, int) else 0)
    return f"{value:.{shown}f}"


def format_minor(minor: int, decimals: int) -> str:
    """Minor units as the currency's decimal string: ``309, 2`` -> ``"3.09"``."""
    return f"{Decimal(minor).scaleb(-decimals):.{decimals}f}"


@functools.lru_cache(maxsize=16384)
def format_fraction(numerator: int, denominator: int, *, places: int = 10) -> str:
    """An exact rational amount: terminating decimals in full, otherwise ``places`` and '...'."""
    value = Fraction(numerator, denominator)
    scaled = value * 10**places
    if scaled.denominator == 1:
        text = f"{Decimal(scaled.numerator).scaleb(-places):.{places}f}".rstrip("0")
        return text + "0" * max(0, 4 - len(text.partition(".")[2]))
    truncated = scaled.numerator // scaled.denominator
    return f"{Decimal(truncated).scaleb(-places):.{places}f}..."


def round_to_minor(numerator: int, denominator: int, mode: RoundingMode) -> int:
    """Round the non-negative amount ``numerator / denominator`` minor units to an integer."""
    if numerator < 0 or denominator <= 0:
        raise ValueError("round_to_minor takes a non-negative amount and a positive denominator")
    quotient, remainder = divmod(numerator, denominator)
    if remainder == 0 or mode is RoundingMode.DOWN:
        return quotient
    if mode is RoundingMode.UP:
        return quotient + 1
    twice = 2 * remainder
    if twice > denominator:
        return quotient + 1
    if twice < denominator:
        return quotient
    if mode is RoundingMode.HALF_UP:
        return quotient + 1
    return quotient + (quotient & 1)  # half_even: to the even neighbour


def minor_denominator(decimals: int) -> int:
    """Sixtieths of a micro-unit per minor unit: the divisor that turns a raw cost into minor units."""
    if not 0 <= decimals <= MICRO_PLACES:
        raise ValueError(f"decimals must be between 0 and {MICRO_PLACES}, got {decimals}")
    return _MINOR_DENOMINATORS[decimals]


_MINOR_DENOMINATORS: tuple[int, ...] = tuple(
    SECONDS_PER_MINUTE * pow(10, places) for places in range(MICRO_PLACES, -1, -1)
)
