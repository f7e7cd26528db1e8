"""Tariff shapes: hand-computed tables for each, monotone cost, and export/import round-trips.

Every expected cost is worked out in the table's comment (or expression) from the tariff's
own figures; the engine is never asked for the answer.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datacenter.rating.engine import RatedCall, Unrated, UnratedReason, ZeroReason, rate_call
from datacenter.rating.money import RoundingMode
from datacenter.rating.tariffs import (
    ALL_COLUMNS,
    BandRule,
    TariffImportError,
    parse_rates_csv,
    rates_to_csv,
)
from shared.icdr import ICDR, Direction
from tests.factories import gen_rated_call
from tests.unit.rating_factories import (
    PEAK_CALENDAR,
    gen_carriers,
    gen_dial_plan,
    gen_plan,
    gen_version,
)

TUESDAY_10 = datetime(2025, 3, 4, 10, tzinfo=UTC)  # Europe/London is on UTC in early March


def deck(*rows: dict[str, Any]) -> str:
    """A rate deck with every column; each row a dict of the cells it sets."""
    lines = [",".join(ALL_COLUMNS)]
    for row in rows:
        cells = {"prefix": "33", "destination": "France", "band": "*", **row}
        lines.append(",".join(str(cells.get(c, "")) for c in ALL_COLUMNS))
    return "\n".join(lines) + "\n"


def price(
    csv_text: str, seconds: int, *, answer: datetime = TUESDAY_10, **options: Any
) -> RatedCall:
    result = rate_call(
        gen_rated_call(number="0033612345678", answer=answer, seconds=seconds),
        dial_plan=gen_dial_plan(),
        tariffs=gen_plan(gen_version(csv_text, **options)),
        carriers=gen_carriers(),
    )
    assert isinstance(result, RatedCall), result
    return result


def cents(result: RatedCall) -> str:
    return result.cost_text


# --- a first block priced on its own -----------------------------------------------------------

# "the first 60 s cost 0.25, then 0.08 per minute billed by the second"
FIRST_BLOCK = {"rate_per_minute": "0.0800", "initial_increment": 1, "subsequent_increment": 1,
               "first_block_seconds": 60, "first_block_price": "0.2500"}  # fmt: skip
# "the first minute at 0.12, then 0.04 per 30 s" (0.04 per 30 s = 0.08 per minute, 30/30)
FIRST_MINUTE = {"rate_per_minute": "0.0800", "initial_increment": 30, "subsequent_increment": 30,
                "first_block_seconds": 60, "first_block_price": "0.1200"}  # fmt: skip


@pytest.mark.parametrize(
    ("row", "seconds", "billed", "cost"),
    [
        (FIRST_BLOCK, 1, 60, "0.25"),  # the whole block, whatever part was used
        (FIRST_BLOCK, 60, 60, "0.25"),
        (FIRST_BLOCK, 61, 61, "0.25"),  # 0.25 + 0.08 x 1/60 = 0.2513...
        (FIRST_BLOCK, 95, 95, "0.30"),  # 0.25 + 0.08 x 35/60 = 0.2966...
        (FIRST_BLOCK, 600, 600, "0.97"),  # 0.25 + 0.08 x 540/60 = 0.25 + 0.72
        (
            {**FIRST_BLOCK, "connection_fee": "0.0500"},
            95,
            95,
            "0.35",
        ),  # 0.05 + 0.2966... = 0.3466...
        (FIRST_MINUTE, 45, 60, "0.12"),
        (FIRST_MINUTE, 61, 90, "0.16"),  # 0.12 + 0.08 x 30/60 = 0.12 + 0.04
        (FIRST_MINUTE, 90, 90, "0.16"),
        (FIRST_MINUTE, 91, 120, "0.20"),  # 0.12 + 0.08 x 60/60
    ],
)
def test_first_block(row: dict[str, Any], seconds: int, billed: int, cost: str) -> None:
    result = price(deck(row), seconds)
    assert (result.billed_seconds, cents(result)) == (billed, cost)
    assert result.charges[0].label == "first block"
    assert result.charges[0].amount60 == int(row["first_block_price"].replace(".", "")) * 100 * 60


# --- duration tiers ---------------------------------------------------------------------------

# three 20-second blocks, then 6-second blocks, all at 0.12 per minute
BLOCKS_20_THEN_6 = {"rate_per_minute": "0.1200", "initial_increment": 20,
                    "subsequent_increment": 20, "tiers": "60=0.1200/6"}  # fmt: skip
# the first 10 minutes at 0.10 per minute, the rest at 0.05, per minute
TEN_MINUTES = {"rate_per_minute": "0.1000", "initial_increment": 60, "subsequent_increment": 60,
               "tiers": "600=0.0500/60"}  # fmt: skip


@pytest.mark.parametrize(
    ("row", "seconds", "billed", "cost"),
    [
        (BLOCKS_20_THEN_6, 1, 20, "0.04"),  # 0.12 x 20/60
        (BLOCKS_20_THEN_6, 25, 40, "0.08"),  # 0.12 x 40/60
        (BLOCKS_20_THEN_6, 60, 60, "0.12"),
        (BLOCKS_20_THEN_6, 61, 66, "0.13"),  # 0.12 x 60/60 + 0.12 x 6/60 = 0.132
        (BLOCKS_20_THEN_6, 95, 96, "0.19"),  # 60 + ceil(35/6) x 6 = 96 s; 0.12 x 96/60 = 0.192
        (TEN_MINUTES, 600, 600, "1.00"),  # 10 x 0.10
        (TEN_MINUTES, 601, 660, "1.05"),  # 1.00 + 0.05 x 60/60
        (TEN_MINUTES, 1800, 1800, "2.00"),  # 1.00 + 0.05 x 1200/60
    ],
)
def test_duration_tiers(row: dict[str, Any], seconds: int, billed: int, cost: str) -> None:
    result = price(deck(row), seconds)
    assert (result.billed_seconds, cents(result)) == (billed, cost)
    assert sum(c.seconds for c in result.charges) == billed


def test_tier_explanation_shows_each_line() -> None:
    explained = price(deck(TEN_MINUTES), 1800).explanation.to_dict()
    assert [(c["line"], c["seconds"], c["amount"]) for c in explained["charges"]] == [
        ("base rate", 600, "1.0000"), ("tier from 600 s", 1200, "1.0000"),
    ]  # fmt: skip
    assert explained["shape"]["tiers"] == "600=0.0500/60"
    assert explained["arithmetic"] == (
        "0.0000 + 0.1000 x 600/60 + 0.0500 x 1200/60 = 2.0000 -> half_up to 2 decimals = 2.00"
    )


# --- free seconds -------------------------------------------------------------------------------

# 0.60 per minute (a cent a second), 30/6, the first 10 seconds free
FREE_BEFORE = {"rate_per_minute": "0.6000", "initial_increment": 30, "subsequent_increment": 6,
               "free_seconds": 10, "free_seconds_rounding": "before"}  # fmt: skip
FREE_AFTER = {**FREE_BEFORE, "free_seconds_rounding": "after"}


@pytest.mark.parametrize(
    ("row", "seconds", "billed", "cost"),
    [
        (FREE_BEFORE, 10, 0, "0.00"),  # 10 - 10 = 0 chargeable seconds
        (FREE_BEFORE, 11, 30, "0.30"),  # 1 chargeable second -> the 30 s first increment
        (FREE_BEFORE, 45, 36, "0.36"),  # 35 chargeable -> 30 + ceil(5/6) x 6 = 36
        (FREE_AFTER, 10, 20, "0.20"),  # 10 s -> 30 billed, less 10 free = 20
        (FREE_AFTER, 45, 38, "0.38"),  # 45 -> 30 + ceil(15/6) x 6 = 48, less 10 = 38
        ({**FREE_AFTER, "connection_fee": "0.1000"}, 45, 38, "0.48"),  # the fee is not free
    ],
)
def test_free_seconds(row: dict[str, Any], seconds: int, billed: int, cost: str) -> None:
    result = price(deck(row), seconds)
    assert (result.billed_seconds, cents(result)) == (billed, cost)


def test_free_seconds_cover_a_first_block_only_whole() -> None:
    # block 60 s at 0.25 then 0.60/min by the second; 30 free seconds taken after rounding
    row = {**FIRST_BLOCK, "rate_per_minute": "0.6000", "free_seconds": 30,
           "free_seconds_rounding": "after"}  # fmt: skip
    assert cents(price(deck(row), 70)) == "0.35"  # block 0.25 (not wholly free) + 0.60 x 10/60
    wholly = {**row, "free_seconds": 60}
    assert cents(price(deck(wholly), 70)) == "0.10"  # block free; 0.60 x 10/60


# --- a surcharge once a call passes N seconds ----------------------------------------------------

SURCHARGE = {"rate_per_minute": "0.0600", "surcharge": "0.5000", "surcharge_after": 3600}


@pytest.mark.parametrize(
    ("seconds", "cost"),
    [
        (3599, "3.60"),  # 60 minutes x 0.06, no surcharge
        (3600, "3.60"),  # not more than 3600 s
        (3601, "4.16"),  # 61 x 0.06 = 3.66, + 0.50 once
        (7200, "7.70"),  # 120 x 0.06 = 7.20, + 0.50 once
    ],
)
def test_surcharge_once_past_n_seconds(seconds: int, cost: str) -> None:
    result = price(deck(SURCHARGE), seconds)
    assert cents(result) == cost
    explained = result.explanation.to_dict()
    assert explained["surcharge"] == ("0.5000" if seconds > 3600 else None)


# --- rounding in more than one step ------------------------------------------------------------


@pytest.mark.parametrize(
    ("row", "rounding", "seconds", "before_rounding", "cost"),
    [
        # each 30 s increment costs 0.01 x 30/60 = 0.005, rounded up to 0.01; 95 s = 4 increments
        ({"rate_per_minute": "0.0100", "initial_increment": 30, "subsequent_increment": 30,
          "step_rounding": "increment:2:up"}, "half_up", 95, "0.0400", "0.04"),
        # the same without the step: 0.01 x 120/60 = 0.02
        ({"rate_per_minute": "0.0100", "initial_increment": 30, "subsequent_increment": 30},
         "half_up", 95, "0.0200", "0.02"),
        # 0.123457 x 7/60 = 0.0144033... kept to 4 decimals (half_even: 0.0144), then up: 0.02
        ({"rate_per_minute": "0.123457", "initial_increment": 1, "subsequent_increment": 1,
          "step_rounding": "charge:4:half_even"}, "up", 7, "0.0144", "0.02"),
        # fee 0.015 + 0.02 x 96/60 = 0.047; subtotal down to 2 decimals = 0.04; then up: 0.04
        ({"rate_per_minute": "0.0200", "connection_fee": "0.0150", "initial_increment": 30,
          "subsequent_increment": 6, "step_rounding": "subtotal:2:down"}, "up", 95, "0.0400",
         "0.04"),
        # the same without the step: 0.047 up -> 0.05
        ({"rate_per_minute": "0.0200", "connection_fee": "0.0150", "initial_increment": 30,
          "subsequent_increment": 6}, "up", 95, "0.0470", "0.05"),
        # a per-second rate of a fraction of a cent, six decimals: 0.000125 x 60 = 0.0075 per
        # minute; 1 hour = 0.45; half_even step to 3 decimals on the line keeps 0.450
        ({"rate_per_minute": "0.007500", "initial_increment": 1, "subsequent_increment": 1,
          "step_rounding": "charge:3:half_even"}, "half_up", 3600, "0.4500", "0.45"),
    ],
)  # fmt: skip
def test_rounding_steps(
    row: dict[str, Any], rounding: str, seconds: int, before_rounding: str, cost: str
) -> None:
    result = price(deck(row), seconds, rounding=RoundingMode(rounding))
    explained = result.explanation.to_dict()
    assert (explained["before_rounding"], cents(result)) == (before_rounding, cost)


def test_step_rounding_modes_differ_on_a_half() -> None:
    # 0.0900 x 1/60 = 0.0015: to 3 decimals half_up 0.002, half_even 0.002, down 0.001, up 0.002
    base = {"rate_per_minute": "0.0900", "initial_increment": 1, "subsequent_increment": 1}
    seen = {}
    for mode in ("half_up", "half_even", "down", "up"):
        result = price(deck({**base, "step_rounding": f"charge:3:{mode}"}), 1, decimals=4)
        seen[mode] = result.explanation.to_dict()["charges"][0]["amount"]
    assert seen == {"half_up": "0.0020", "half_even": "0.0020", "down": "0.0010", "up": "0.0020"}
    # 0.0500 x 3/60 = 0.0025: half_even keeps 0.002 (even), half_up gives 0.003
    odd = {"rate_per_minute": "0.0500", "initial_increment": 1, "subsequent_increment": 1}
    amounts = [
        price(deck({**odd, "step_rounding": f"charge:3:{m}"}), 3, decimals=4).explanation.to_dict()[
            "charges"
        ][0]["amount"]
        for m in ("half_even", "half_up")
    ]
    assert amounts == ["0.0020", "0.0030"]


# --- minimum and maximum ------------------------------------------------------------------------


def test_a_minimum_above_the_maximum_is_a_load_error() -> None:
    text = deck({"rate_per_minute": "0.0100", "minimum_charge": "2.0000", "max_cost": "1.0000"})
    with pytest.raises(TariffImportError) as caught:
        parse_rates_csv(text, file="t.csv", currency="EUR")
    assert "t.csv:2: column minimum_charge: is more than max_cost" in str(caught.value)


@pytest.mark.parametrize(
    ("seconds", "cost", "adjustment"),
    [
        (10, "0.50", "minimum_charge"),  # 0.06 x 60/60 = 0.06 -> minimum 0.50
        (600, "0.60", None),  # 0.06 x 10 = 0.60, between the two
        (3601, "2.00", "max_cost"),  # 0.06 x 61 + surcharge 0.50 = 4.16 -> maximum 2.00
    ],
)
def test_minimum_then_maximum_after_the_surcharge(
    seconds: int, cost: str, adjustment: str | None
) -> None:
    row = {**SURCHARGE, "minimum_charge": "0.5000", "max_cost": "2.0000"}
    result = price(deck(row), seconds)
    assert (cents(result), result.adjustment or None) == (cost, adjustment)


# --- times left unpriced ------------------------------------------------------------------------

UNPRICED_OFFPEAK = deck(
    {"band": "peak", "rate_per_minute": "0.1000"},
    {"band": "offpeak", "rate_per_minute": "unpriced"},
    {"band": "weekend", "rate_per_minute": "0.0500"},
)


def rate_unpriced(answer: datetime, seconds: int, band_rule: BandRule) -> RatedCall | Unrated:
    version = gen_version(UNPRICED_OFFPEAK, calendar=PEAK_CALENDAR, band_rule=band_rule)
    return rate_call(
        gen_rated_call(number="0033612345678", answer=answer, seconds=seconds),
        dial_plan=gen_dial_plan(), tariffs=gen_plan(version), carriers=gen_carriers(),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("hour", "minute", "seconds", "band_rule", "expected"),
    [
        (10, 0, 120, BandRule.PER_INCREMENT, "0.20"),  # peak: 2 x 0.10
        (19, 0, 120, BandRule.PER_INCREMENT, UnratedReason.UNPRICED_TIME),  # off-peak
        (17, 59, 120, BandRule.PER_INCREMENT, UnratedReason.UNPRICED_TIME),  # 2nd minute off-peak
        (17, 59, 120, BandRule.PRORATE, UnratedReason.UNPRICED_TIME),
        (17, 59, 120, BandRule.START_BAND, "0.20"),  # whole call at the peak rate
    ],
)
def test_a_band_without_a_price_leaves_the_call_unrated(
    hour: int, minute: int, seconds: int, band_rule: BandRule, expected: object
) -> None:
    result = rate_unpriced(TUESDAY_10.replace(hour=hour, minute=minute), seconds, band_rule)
    if isinstance(expected, UnratedReason):
        assert isinstance(result, Unrated) and result.reason is expected
        assert "no price" in result.detail and "offpeak" in result.detail
    else:
        assert isinstance(result, RatedCall) and result.cost_text == expected


def test_a_missing_band_row_is_still_a_load_error_not_a_placeholder() -> None:
    text = deck({"band": "peak", "rate_per_minute": "0.1000"})
    with pytest.raises(TariffImportError, match="no rate for band"):
        gen_version(text, calendar=PEAK_CALENDAR)


# --- inbound and service rating without a dialled number ---------------------------------------

INBOUND = deck(
    {"prefix": "", "class": "toll-free", "destination": "Freephone inbound", "direction": "in",
     "rate_per_minute": "0.0300"},
    {"prefix": "", "class": "premium", "destination": "Premium inbound", "direction": "in",
     "rate_per_minute": "0.0000", "connection_fee": "0.1000"},
    {"prefix": "", "class": "local", "destination": "DDI inbound", "direction": "in",
     "rate_per_minute": "0.0100"},
    {"prefix": "", "destination": "Trunk T7 receiving", "direction": "in", "trunk": "T7",
     "rate_per_minute": "0.0200", "connection_fee": "0.0500"},
)  # fmt: skip


@pytest.mark.parametrize(
    ("ddi", "trunk", "seconds", "destination", "cost"),
    [
        ("08001234567", "", 120, "Freephone inbound", "0.06"),  # 0.03 x 2
        ("09098790000", "", 120, "Premium inbound", "0.10"),  # fee only
        ("02079460123", "", 180, "DDI inbound", "0.03"),  # the site's own DDI is local: 0.01 x 3
        ("", "T7", 120, "Trunk T7 receiving", "0.09"),  # no DDI: 0.05 + 0.02 x 2
        ("", "T8", 120, "", ZeroReason.INBOUND),  # no DDI, no row for its trunk: free
    ],
)
def test_inbound_by_service_class_and_by_trunk(
    ddi: str, trunk: str, seconds: int, destination: str, cost: object
) -> None:
    call = gen_rated_call(number="", direction=Direction.IN, seconds=seconds, dnis=ddi, trunk=trunk)
    result = rate_call(
        call, dial_plan=gen_dial_plan(), tariffs=gen_plan(gen_version(INBOUND)),
        carriers=gen_carriers(),
    )  # fmt: skip
    assert isinstance(result, RatedCall), result
    if isinstance(cost, ZeroReason):
        assert (result.zero_reason, result.cost) == (cost.value, 0)
    else:
        assert (result.destination, result.cost_text, result.zero_reason) == (
            destination, cost, "",
        )  # fmt: skip


def test_a_trunk_row_must_be_inbound() -> None:
    text = deck({"prefix": "", "trunk": "T7", "rate_per_minute": "0.0200"})
    with pytest.raises(TariffImportError, match="trunk row is an inbound row"):
        parse_rates_csv(text, file="t.csv", currency="EUR")


@pytest.mark.parametrize(
    ("row", "column"),
    [
        ({"tiers": "50=0.1/6", "initial_increment": 20, "subsequent_increment": 20}, "tiers"),
        ({"tiers": "sixty"}, "tiers"),
        ({"first_block_seconds": 60}, "first_block_price"),
        ({"step_rounding": "total:2:up"}, "step_rounding"),
        ({"free_seconds": 5, "free_seconds_rounding": "during"}, "free_seconds_rounding"),
        ({"free_seconds": 5, "free_seconds_rounding": "after",
          "step_rounding": "increment:2:up"}, "step_rounding"),
        ({"surcharge_after": 60}, "surcharge"),
    ],
)  # fmt: skip
def test_inconsistent_shapes_are_load_errors_naming_the_column(
    row: dict[str, Any], column: str
) -> None:
    with pytest.raises(TariffImportError) as caught:
        parse_rates_csv(deck({"rate_per_minute": "0.1000", **row}), file="t.csv", currency="EUR")
    assert f"t.csv:2: column {column}:" in str(caught.value)


# --- monotone cost, round trips -----------------------------------------------------------------

money = st.integers(0, 2_000_000).map(lambda n: f"{n // 1_000_000}.{n % 1_000_000:06d}")
modes = st.sampled_from([m.value for m in RoundingMode])


@st.composite
def shaped_rows(draw: st.DrawFn) -> dict[str, Any]:
    """Any consistent row using the shapes whose cost must not fall as a call gets longer."""
    step = draw(st.sampled_from([1, 6, 30, 60]))
    row: dict[str, Any] = {"rate_per_minute": draw(money), "initial_increment": step,
                           "subsequent_increment": step, "connection_fee": draw(money)}  # fmt: skip
    if draw(st.booleans()):
        row.update(first_block_seconds=60, first_block_price=draw(money))
    if draw(st.booleans()):
        start = 60 + 60 * draw(st.integers(1, 10))
        row["tiers"] = f"{start}={draw(money)}/{draw(st.sampled_from([1, 6, 60]))}"
    after = draw(st.booleans())
    if draw(st.booleans()):
        row.update(free_seconds=draw(st.integers(1, 90)),
                   free_seconds_rounding="after" if after else "before")  # fmt: skip
    if draw(st.booleans()):
        row.update(surcharge=draw(money), surcharge_after=draw(st.integers(0, 3600)))
    scopes = draw(
        st.sets(st.sampled_from(["charge", "subtotal"] + ([] if after else ["increment"])))
    )
    if scopes:
        row["step_rounding"] = "; ".join(
            f"{s}:{draw(st.integers(0, 6))}:{draw(modes)}" for s in sorted(scopes)
        )
    return row


@settings(max_examples=80, deadline=None)
@given(row=shaped_rows(), d1=st.integers(0, 5400), d2=st.integers(0, 5400), mode=modes)
def test_shaped_cost_is_monotone_in_duration(
    row: dict[str, Any], d1: int, d2: int, mode: str
) -> None:
    text = deck(row)
    short, long = sorted((d1, d2))
    first = price(text, short, rounding=RoundingMode(mode))
    second = price(text, long, rounding=RoundingMode(mode))
    assert first.cost <= second.cost
    assert first.billed_seconds <= second.billed_seconds


ALL_SHAPES = [FIRST_BLOCK, FIRST_MINUTE, BLOCKS_20_THEN_6, TEN_MINUTES, FREE_BEFORE, FREE_AFTER,
              SURCHARGE, {"rate_per_minute": "0.0100", "step_rounding": "increment:2:up"},
              {"rate_per_minute": "0.0100", "step_rounding": "charge:4:half_even; subtotal:2:down"}]  # fmt: skip


@pytest.mark.parametrize("row", ALL_SHAPES)
def test_every_shape_round_trips_through_the_export_format(row: dict[str, Any]) -> None:
    version = gen_version(deck(row, {"prefix": "34", "destination": "Spain",
                                     "rate_per_minute": "0.0500"}))  # fmt: skip
    exported = rates_to_csv(version)
    again = gen_version(exported)
    strip = [(d.prefix, d.name, {b: (r.shape, r.rate_per_minute) for b, r in d.rates.items()})
             for d in version.destinations]  # fmt: skip
    assert [(d.prefix, d.name, {b: (r.shape, r.rate_per_minute) for b, r in d.rates.items()})
            for d in again.destinations] == strip  # fmt: skip
    assert rates_to_csv(again) == exported
    for seconds in (1, 59, 61, 95, 601, 3601):
        assert price(exported, seconds).cost == price(deck(row), seconds).cost


def test_a_deck_without_shapes_exports_the_columns_it_always_had() -> None:
    plain = gen_version("prefix,destination,rate_per_minute\n33,France,0.0900\n")
    assert "tiers" not in rates_to_csv(plain).splitlines()[0]


def test_a_shaped_call_stays_in_its_start_band() -> None:
    # 17:59 + 120 s crosses into off-peak; a shaped row prices the whole call at its start band
    text = deck(
        {**TEN_MINUTES, "band": "peak"},
        {**TEN_MINUTES, "band": "offpeak", "rate_per_minute": "0.0100"},
        {**TEN_MINUTES, "band": "weekend"},
    )
    result = price(text, 120, answer=TUESDAY_10.replace(hour=17, minute=59), calendar=PEAK_CALENDAR)
    assert (result.bands, result.cost_text) == (("peak",), "0.20")
    started = TUESDAY_10.replace(hour=17, minute=59) - datetime(1970, 1, 1, tzinfo=UTC)
    assert result.charges[0].start == started // timedelta(seconds=1)


@pytest.mark.parametrize(
    ("hour", "band", "cost"), [(10, "peak", "0.10"), (19, "offpeak", "0.20"), (20, "", "")]
)
def test_an_unanswered_call_is_charged_at_the_band_it_started_in(
    hour: int, band: str, cost: str
) -> None:
    # charge_unanswered: the connection fee of the band in force at the call's start (peak
    # 0.10, off-peak 0.20), never the alphabetically first band's row as a stand-in
    rows = deck(
        {"band": "peak", "rate_per_minute": "0.1000", "connection_fee": "0.1000",
         "charge_unanswered": "true"},
        {"band": "offpeak", "rate_per_minute": "0.0500", "connection_fee": "0.2000",
         "charge_unanswered": "true"},
        {"band": "weekend", "rate_per_minute": "unpriced"},
    )  # fmt: skip
    version = gen_version(rows, calendar=PEAK_CALENDAR)
    start = TUESDAY_10.replace(hour=hour) if hour != 20 else datetime(2025, 3, 8, 12, tzinfo=UTC)
    call = gen_rated_call(number="0033612345678", answer=None, answered=False, seconds=0)
    call = ICDR.from_dict({**call.to_dict(), "start": start, "end": start + timedelta(seconds=30)})
    result = rate_call(
        call, dial_plan=gen_dial_plan(), tariffs=gen_plan(version), carriers=gen_carriers()
    )
    assert isinstance(result, RatedCall), result
    if band:
        assert (result.cost_text, result.bands, result.zero_reason) == (cost, (band,), "")
    else:  # Saturday: the weekend has no price, and an unanswered call is never queued
        assert (result.cost, result.zero_reason) == (0, ZeroReason.UNANSWERED.value)


@settings(max_examples=60, deadline=None)
@given(row=shaped_rows(), seconds=st.integers(1, 5400))
def test_the_explained_lines_add_up_to_the_raw_cost(row: dict[str, Any], seconds: int) -> None:
    # the lines are recomputed when explained (rating keeps none): they must be what was priced
    result = price(deck(row), seconds)
    lines = sum(c.amount60 for c in result.charges)
    assert result.fee * 60 + lines + result.surcharge * 60 == result.raw60
    if result.rate is not None and result.rate.shape is not None:
        assert sum(c.seconds for c in result.charges) == result.billed_seconds
