"""The rating engine: worked examples, every pricing rule, every outcome, and properties."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import datacenter.rating as rating
from datacenter.rating.bands import epoch_seconds
from datacenter.rating.carriers import carrier_rules_from_dict, load_carrier_rules
from datacenter.rating.engine import (
    RatedCall,
    Unrated,
    UnratedReason,
    ZeroReason,
    billed_seconds,
    rate_call,
)
from datacenter.rating.money import RoundingMode
from datacenter.rating.numbering import load_dial_plan
from datacenter.rating.tariffs import BandRule, Rate, load_tariff
from shared.icdr import ICDR, Direction
from tests.factories import gen_rated_call
from tests.unit.rating_factories import (
    DEMO,
    PEAK_CALENDAR,
    gen_carriers,
    gen_dial_plan,
    gen_plan,
    gen_version,
)

HEADER = "prefix,class,destination,band,rate_per_minute,connection_fee,initial_increment,subsequent_increment,minimum_charge,max_cost,grace_seconds\n"
FRANCE = (
    HEADER
    + "33,,France,*,0.0900,0,60,1,,,0\n336,mobile,France mobile,*,{rate},{fee},{a},{b},{minimum},{cap},{grace}\n"
)
TUESDAY = datetime(2025, 3, 4, tzinfo=UTC)  # Europe/London is on UTC in early March
TUESDAY_10 = TUESDAY.replace(hour=10)


def rate(
    csv_text: str,
    *,
    seconds: int,
    answer: datetime = TUESDAY_10,
    number: str = "0033612345678",
    **version_options: Any,
) -> RatedCall:
    version = gen_version(csv_text, **version_options)
    call = gen_rated_call(number=number, answer=answer, seconds=seconds)
    result = rate_call(
        call, dial_plan=gen_dial_plan(), tariffs=gen_plan(version), carriers=gen_carriers()
    )
    assert isinstance(result, RatedCall), result
    return result


def france(rate: str = "0.1500", fee: str = "0", a: int = 60, b: int = 1, minimum: str = "",
           cap: str = "", grace: int = 0) -> str:  # fmt: skip
    return FRANCE.format(rate=rate, fee=fee, a=a, b=b, minimum=minimum, cap=cap, grace=grace)


# --- the five worked examples of formats.md §7.11 ------------------------------------------------

WORKED = [
    # example, tariff row, rounding, seconds, billed, raw, cost
    ("1: 95 s at 30/6 with a fee", france("0.1200", "0.0500", 30, 6), "half_up", 95, 96, "0.2420", "0.24"),
    ("1: same, rounding up", france("0.1200", "0.0500", 30, 6), "up", 95, 96, "0.2420", "0.25"),
    ("2: 61 s at 60/60", france("0.0800", a=60, b=60), "half_up", 61, 120, "0.1600", "0.16"),
    ("2: 61 s at 1/1", france("0.0800", a=1, b=1), "half_up", 61, 61, "0.0813333333...", "0.08"),
    ("3: 4 s inside 5 s grace", france("0.0200", a=60, b=60, minimum="0.0500", grace=5), "half_up", 4, 0, "0.0000", "0.00"),
    ("3: 12 s, minimum charge", france("0.0200", a=60, b=60, minimum="0.0500", grace=5), "half_up", 12, 60, "0.0200", "0.05"),
    ("5: 1234 s at 60/1, half-up", france(cap="5.0000"), "half_up", 1234, 1234, "3.0850", "3.09"),
    ("5: 1234 s at 60/1, half-even", france(cap="5.0000"), "half_even", 1234, 1234, "3.0850", "3.08"),
    ("5: 2500 s capped at max cost", france(cap="5.0000"), "half_up", 2500, 2500, "6.2500", "5.00"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("example", "csv_text", "mode", "seconds", "billed", "raw", "cost"), WORKED
)
def test_worked_examples(
    example: str, csv_text: str, mode: str, seconds: int, billed: int, raw: str, cost: str
) -> None:
    rated = rate(csv_text, seconds=seconds, rounding=RoundingMode(mode))
    explained = rated.to_dict()["explanation"]
    assert (rated.billed_seconds, explained["raw"], rated.cost_text) == (billed, raw, cost)


def test_worked_example_5_normalises_through_the_access_digit_to_france_mobile() -> None:
    plan = gen_dial_plan(outside_line_prefixes=["9"], includes_access_digits=True)
    version = gen_version(france(cap="5.0000"))
    call = gen_rated_call(number="9 00 33 6 12 34 56 78", seconds=1234)
    rated = rate_call(call, dial_plan=plan, tariffs=gen_plan(version), carriers=gen_carriers())
    assert isinstance(rated, RatedCall)
    assert (rated.e164, rated.prefix, rated.destination, rated.cost) == (
        "33612345678", "336", "France mobile", 309,
    )  # fmt: skip
    # integer units: rate 1500 (1/10,000) x 1234 / 60 = 30850 exactly
    assert rated.explanation.raw60 == 150_000 * 1234


EXAMPLE_4 = [
    # band rule, cost: 17:58:30 + 300 s, peak 0.10 until 18:00, off-peak 0.04, 60/60
    (BandRule.PER_INCREMENT, "0.32", [("peak", 120, 2), ("offpeak", 180, 3)]),
    (BandRule.START_BAND, "0.50", [("peak", 300, 5)]),
    (BandRule.PRORATE, "0.29", [("peak", 90, 0), ("offpeak", 210, 0)]),
]
PEAK_CSV = (
    HEADER
    + "33,,France,peak,0.1000,0,60,60,,,0\n33,,France,offpeak,0.0400,0,60,60,,,0\n33,,France,weekend,0.0400,0,60,60,,,0\n"
)


@pytest.mark.parametrize(("rule", "cost", "charges"), EXAMPLE_4)
def test_worked_example_4_crossing_peak_to_offpeak(
    rule: BandRule, cost: str, charges: list[tuple[str, int, int]]
) -> None:
    rated = rate(
        PEAK_CSV, seconds=300, answer=TUESDAY.replace(hour=17, minute=58, second=30),
        number="0033123456789", calendar=PEAK_CALENDAR, band_rule=rule,
    )  # fmt: skip
    got = [(c.band, c.seconds, c.increments) for c in rated.explanation.charges]
    assert (rated.cost_text, got) == (cost, charges)


# --- increments, fees, minimum, maximum, grace ---------------------------------------------------

INCREMENTS = [
    # a, b, talk seconds, billed seconds
    (60, 60, 1, 60), (60, 60, 60, 60), (60, 60, 61, 120), (60, 60, 179, 180),
    (30, 6, 1, 30), (30, 6, 30, 30), (30, 6, 31, 36), (30, 6, 95, 96), (30, 6, 96, 96),
    (1, 1, 1, 1), (1, 1, 61, 61), (1, 1, 3600, 3600),
    (60, 1, 59, 60), (60, 1, 61, 61), (45, 15, 46, 60), (45, 15, 61, 75),
    (60, 60, 0, 0),
]  # fmt: skip


@pytest.mark.parametrize(("a", "b", "seconds", "billed"), INCREMENTS)
def test_increment_schemes(a: int, b: int, seconds: int, billed: int) -> None:
    assert (
        billed_seconds(seconds, Rate("all", 1, initial_increment=a, subsequent_increment=b))
        == billed
    )


CHARGES = [
    # what, tariff row, seconds, cost, adjustment
    ("fee on a 1 s call", france("0.0600", "0.1000", 60, 60), 1, "0.16", None),
    ("fee on a 2 min call", france("0.0600", "0.1000", 60, 60), 120, "0.22", None),
    ("minimum raises a short call", france("0.0600", a=1, b=1, minimum="0.2500"), 10, "0.25", "minimum_charge"),
    ("minimum includes the fee", france("0.0600", "0.2000", 1, 1, minimum="0.2500"), 60, "0.26", None),
    ("max cost caps a long call", france("0.6000", a=60, b=60, cap="1.0000"), 600, "1.00", "max_cost"),
    ("grace: 5 s free", france("0.6000", "0.5000", grace=5), 5, "0.00", None),
    ("grace: 6 s billed in full", france("0.6000", "0.5000", grace=5), 6, "1.10", None),
]  # fmt: skip


@pytest.mark.parametrize(("what", "csv_text", "seconds", "cost", "adjustment"), CHARGES)
def test_fees_minimum_maximum_grace(
    what: str, csv_text: str, seconds: int, cost: str, adjustment: str | None
) -> None:
    rated = rate(csv_text, seconds=seconds)
    assert (rated.cost_text, rated.to_dict()["explanation"].get("adjustment")) == (cost, adjustment)


def test_fee_in_grace_charges_the_fee_only() -> None:
    csv_text = (
        "prefix,destination,rate_per_minute,connection_fee,grace_seconds,fee_in_grace\n"
        "33,France,0.6000,0.1500,5,true\n"
    )
    assert (rate(csv_text, seconds=3).cost_text, rate(csv_text, seconds=3).billed_seconds) == (
        "0.15",
        0,
    )


# --- money: currency decimals and rounding modes ---------------------------------------------------

ROUNDING = [
    # currency, decimals, mode, rate per minute, seconds, cost
    ("JPY", 0, "half_up", "12.5000", 60, "13"),
    ("JPY", 0, "half_even", "12.5000", 60, "12"),
    ("JPY", 0, "down", "12.9000", 60, "12"),
    ("BHD", 3, "half_up", "0.0125", 60, "0.013"),
    ("BHD", 3, "half_even", "0.0125", 60, "0.012"),
    ("BHD", 3, "up", "0.012001", 60, "0.013"),
    ("EUR", 2, "up", "0.0800", 61, "0.09"),  # 0.081333... -> up
    ("EUR", 2, "down", "0.0800", 61, "0.08"),
    ("EUR", 2, "half_up", "0.0150", 60, "0.02"),
    ("EUR", 2, "half_even", "0.0150", 60, "0.02"),  # 1.5 cents -> the even 2
    ("EUR", 2, "half_even", "0.0250", 60, "0.02"),  # 2.5 cents -> the even 2
]


@pytest.mark.parametrize(
    ("currency", "decimals", "mode", "per_minute", "seconds", "cost"), ROUNDING
)
def test_currency_rounding(
    currency: str, decimals: int, mode: str, per_minute: str, seconds: int, cost: str
) -> None:
    csv_text = f"prefix,destination,rate_per_minute,initial_increment,subsequent_increment\n33,France,{per_minute},1,1\n"
    rated = rate(
        csv_text, seconds=seconds, currency=currency, decimals=decimals, rounding=RoundingMode(mode)
    )
    assert (rated.cost_text, rated.currency) == (cost, currency)


# --- time bands: midnight, DST, holidays -----------------------------------------------------------

WEEKEND_CSV = (
    "prefix,destination,band,rate_per_minute,initial_increment,subsequent_increment\n"
    "33,France,peak,0.6000,60,60\n33,France,offpeak,0.3000,60,60\n33,France,weekend,0.1200,60,60\n"
)
BANDS = [
    # what, zone, answer (UTC), seconds, charges (band, seconds), cost
    ("Friday 23:59 into Saturday (London, winter = UTC)", "Europe/London",
     datetime(2025, 3, 7, 23, 59, 0, tzinfo=UTC), 180, [("offpeak", 60), ("weekend", 120)], "0.54"),
    ("Sunday 23:58:30 into Monday off-peak", "Europe/London",
     datetime(2025, 3, 9, 23, 58, 30, tzinfo=UTC), 120, [("weekend", 120)], "0.24"),
    ("Monday 07:59 London BST: peak starts 08:00 local = 07:00 UTC", "Europe/London",
     datetime(2025, 6, 2, 6, 59, 0, tzinfo=UTC), 120, [("offpeak", 60), ("peak", 60)], "0.90"),
    ("Toronto 17:59 EDT crosses 18:00 local (22:00 UTC)", "America/Toronto",
     datetime(2025, 6, 3, 21, 59, 0, tzinfo=UTC), 120, [("peak", 60), ("offpeak", 60)], "0.90"),
    ("Holiday: Christmas Thursday 10:00 is weekend-rated", "Europe/London",
     datetime(2025, 12, 25, 10, 0, 0, tzinfo=UTC), 60, [("weekend", 60)], "0.12"),
    ("The day after the holiday is an ordinary weekday", "Europe/London",
     datetime(2025, 12, 26, 10, 0, 0, tzinfo=UTC), 60, [("peak", 60)], "0.60"),
    ("Holiday ends at local midnight", "Europe/London",
     datetime(2025, 12, 24, 23, 59, 0, tzinfo=UTC), 120, [("offpeak", 60), ("weekend", 60)], "0.42"),
]  # fmt: skip

CALENDAR_WITH_HOLIDAY = {**PEAK_CALENDAR, "holidays": ["2025-12-25"]}


@pytest.mark.parametrize(("what", "zone", "answer", "seconds", "charges", "cost"), BANDS)
def test_band_crossings(
    what: str, zone: str, answer: datetime, seconds: int, charges: list[tuple[str, int]], cost: str
) -> None:
    version = gen_version(WEEKEND_CSV, calendar=CALENDAR_WITH_HOLIDAY)
    call = gen_rated_call(number="0033123456789", answer=answer, seconds=seconds)
    plan = gen_dial_plan(timezone=zone)
    rated = rate_call(call, dial_plan=plan, tariffs=gen_plan(version), carriers=gen_carriers())
    assert isinstance(rated, RatedCall)
    got = [(c.band, c.seconds) for c in rated.explanation.charges]
    assert (got, rated.cost_text) == (charges, cost)


DST_CALENDAR = {"weekday": {"00:00": "night", "02:30": "early", "06:00": "day"}, "weekend": {"00:00": "night", "02:30": "early", "06:00": "day"}}  # fmt: skip
DST_CSV = (
    "prefix,destination,band,rate_per_minute,initial_increment,subsequent_increment\n"
    "33,France,night,0.0100,60,60\n33,France,early,0.1000,60,60\n33,France,day,1.0000,60,60\n"
)
DST = [
    # London springs forward 2025-03-30 01:00 UTC (01:00 GMT -> 02:00 BST): 02:30 local is
    # 01:30 UTC, so a call answered 00:59 UTC (00:59 GMT) meets 'early' 31 minutes later.
    ("spring forward", datetime(2025, 3, 30, 0, 59, 0, tzinfo=UTC), 33 * 60,
     [("night", 31 * 60), ("early", 2 * 60)]),
    # London falls back 2025-10-26 01:00 UTC (02:00 BST -> 01:00 GMT): 01:xx local happens
    # twice, both 'night'; 02:30 GMT is 02:30 UTC. Answered 00:30 UTC (01:30 BST).
    ("fall back", datetime(2025, 10, 26, 0, 30, 0, tzinfo=UTC), 125 * 60,
     [("night", 120 * 60), ("early", 5 * 60)]),
]  # fmt: skip


@pytest.mark.parametrize(("what", "answer", "seconds", "charges"), DST)
def test_band_boundaries_across_dst_changes(
    what: str, answer: datetime, seconds: int, charges: list[tuple[str, int]]
) -> None:
    version = gen_version(DST_CSV, calendar=DST_CALENDAR)
    call = gen_rated_call(number="0033123456789", answer=answer, seconds=seconds)
    rated = rate_call(
        call, dial_plan=gen_dial_plan(), tariffs=gen_plan(version), carriers=gen_carriers()
    )
    assert isinstance(rated, RatedCall)
    assert [(c.band, c.seconds) for c in rated.explanation.charges] == charges


def test_a_call_crossing_too_many_bands_is_queued() -> None:
    version = gen_version(WEEKEND_CSV, calendar=PEAK_CALENDAR, max_band_spans=3)
    call = gen_rated_call(number="0033123456789", answer=TUESDAY.replace(hour=7), seconds=30 * 3600)
    result = rate_call(
        call, dial_plan=gen_dial_plan(), tariffs=gen_plan(version), carriers=gen_carriers()
    )
    assert isinstance(result, Unrated) and result.reason is UnratedReason.BAND_SPAN_LIMIT


# --- versions ----------------------------------------------------------------------------------------

MID_MONTH = datetime(2025, 7, 15, tzinfo=UTC)
VERSIONS = [
    # call start, version used, cost of 60 s
    (MID_MONTH - timedelta(seconds=1), "june", "0.10"),
    (MID_MONTH, "july", "0.20"),  # valid_from is inclusive
    (MID_MONTH + timedelta(days=10), "july", "0.20"),
]


@pytest.mark.parametrize(("start", "version", "cost"), VERSIONS)
def test_the_version_in_force_at_the_call_start_is_used(
    start: datetime, version: str, cost: str
) -> None:
    june = gen_version("prefix,destination,rate_per_minute\n33,France,0.1000\n", version="june",
                       valid_to=MID_MONTH)  # fmt: skip
    july = gen_version("prefix,destination,rate_per_minute\n33,France,0.2000\n", version="july",
                       valid_from=MID_MONTH)  # fmt: skip
    call = gen_rated_call(number="0033123456789", answer=start + timedelta(seconds=5), seconds=60)
    rated = rate_call(
        call, dial_plan=gen_dial_plan(), tariffs=gen_plan(june, july), carriers=gen_carriers()
    )
    assert isinstance(rated, RatedCall)
    assert (rated.tariff_version, rated.cost_text) == (version, cost)


def test_a_call_before_the_first_version_has_no_tariff_for_date() -> None:
    july = gen_version(
        "prefix,destination,rate_per_minute\n33,France,0.2000\n", valid_from=MID_MONTH
    )
    call = gen_rated_call(number="0033123456789", answer=datetime(2025, 7, 1, tzinfo=UTC))
    result = rate_call(
        call, dial_plan=gen_dial_plan(), tariffs=gen_plan(july), carriers=gen_carriers()
    )
    assert isinstance(result, Unrated) and result.reason is UnratedReason.NO_TARIFF_FOR_DATE


# --- outcomes that are not a priced call -----------------------------------------------------------

SIMPLE = (
    "prefix,class,destination,direction,rate_per_minute,connection_fee,charge_unanswered\n"
    "33,,France,out,0.1000,0,false\n"
    "4420,,London,out,0.0200,0.0500,true\n"
    "44800,toll-free,Freephone,out,0,0,false\n"
    "448001234567,toll-free,Our freephone number (inbound),in,0.0300,0,false\n"
)
OUTCOMES: list[tuple[str, dict[str, Any], str]] = [
    ("internal extension", {"number": "2345"}, "zero:internal"),
    ("internal direction", {"number": "0033123456789", "direction": Direction.INTERNAL}, "zero:internal"),
    ("emergency", {"number": "999"}, "zero:emergency"),
    ("unanswered", {"number": "0033123456789", "answered": False}, "zero:unanswered"),
    ("unanswered, rate charges unanswered", {"number": "02079460123", "answered": False}, "cost:0.05"),
    ("unanswered to an unknown number", {"number": "0099999", "answered": False}, "zero:unanswered"),
    ("answered 0 s", {"number": "0033123456789", "seconds": 0}, "cost:0.00"),
    ("inbound, no inbound row", {"number": "02079460123", "direction": Direction.IN, "dnis": "02079460999"}, "zero:inbound_not_tariffed"),
    ("inbound to our freephone", {"number": "", "direction": Direction.IN, "dnis": "08001234567", "seconds": 120}, "cost:0.06"),
    ("outbound toll-free row at 0", {"number": "08001234568"}, "cost:0.00"),
    ("toll-free without a row is free", {"number": "08081570000"}, "zero:toll_free"),
    ("no prefix matches", {"number": "0049301234567"}, "unrated:NO_PREFIX_MATCH"),
    ("not a number", {"number": "abc"}, "unrated:INVALID_NUMBER"),
    ("truncated by the PBX", {"number": "0033612>"}, "unrated:AMBIGUOUS_NUMBER"),
    ("unknown to libphonenumber", {"number": "01000000000"}, "unrated:INVALID_NUMBER"),
    ("no number at all", {"number": ""}, "unrated:INVALID_NUMBER"),
    ("direction unknown", {"number": "0033123456789", "direction": Direction.UNKNOWN}, "unrated:UNKNOWN_DIRECTION"),
    ("partial record", {"number": "0033123456789", "flags": ("partial",)}, "unrated:PARSE_INCOMPLETE"),
    ("answered without times", {"number": "0033123456789", "answer": None, "talk_seconds": 30}, "cost:0.10"),
]  # fmt: skip


def outcome(result: rating.RatingResult) -> str:
    if isinstance(result, Unrated):
        return f"unrated:{result.reason}"
    if result.zero_reason:
        assert result.cost == 0
        return f"zero:{result.zero_reason}"
    return f"cost:{result.cost_text}"


@pytest.mark.parametrize(("what", "call", "expected"), OUTCOMES)
def test_outcomes(what: str, call: dict[str, Any], expected: str) -> None:
    result = rate_call(
        gen_rated_call(**call), dial_plan=gen_dial_plan(), tariffs=gen_plan(gen_version(SIMPLE)),
        carriers=gen_carriers(),
    )  # fmt: skip
    assert outcome(result) == expected


ROUTES: list[tuple[str, dict[str, Any], dict[str, str], str]] = [
    ("trunk rule", {"route": [{"trunk": "T1*", "carrier": "testco"}], "exact": True}, {"trunk": "T12"}, "cost:0.10"),
    ("on-net tie trunk", {"route": [{"trunk": "X*", "on_net": True}], "default_carrier": "testco"}, {"trunk": "X5"}, "zero:on_net"),
    ("exact map, unknown trunk", {"route": [{"trunk": "T1*", "carrier": "testco"}], "exact": True}, {"trunk": "T2"}, "unrated:UNKNOWN_ROUTE"),
    ("default carrier", {"default_carrier": "testco"}, {"trunk": "T2"}, "cost:0.10"),
    ("carrier without tariff", {"default_carrier": "other"}, {}, "unrated:NO_TARIFF_FOR_DATE"),
    ("site bills in another currency", {"default_carrier": "testco", "currency": "GBP"}, {}, "unrated:CURRENCY_MISMATCH"),
]  # fmt: skip


@pytest.mark.parametrize(("what", "routes", "call", "expected"), ROUTES)
def test_carrier_selection_outcomes(
    what: str, routes: dict[str, Any], call: dict[str, Any], expected: str
) -> None:
    result = rate_call(
        gen_rated_call(number="0033123456789", **call), dial_plan=gen_dial_plan(),
        tariffs=gen_plan(gen_version(SIMPLE)), carriers=carrier_rules_from_dict(routes),
    )  # fmt: skip
    assert outcome(result) == expected


def test_route_defaulted_is_explained() -> None:
    result = rate_call(
        gen_rated_call(number="0033123456789", trunk="T9"), dial_plan=gen_dial_plan(),
        tariffs=gen_plan(gen_version(SIMPLE)), carriers=gen_carriers(),
    )  # fmt: skip
    assert result.explanation.to_dict()["carrier"]["route_defaulted"] is True


def test_bands_need_a_site_timezone() -> None:
    version = gen_version(WEEKEND_CSV, calendar=PEAK_CALENDAR)
    plan = gen_dial_plan(timezone=None)
    result = rate_call(
        gen_rated_call(number="0033123456789"),
        dial_plan=plan,
        tariffs=gen_plan(version),
        carriers=gen_carriers(),
    )
    assert isinstance(result, Unrated) and result.reason is UnratedReason.NO_TIMEZONE


UNSUPERVISED = [
    # talk seconds recorded, allowance 10 s / threshold 5 s -> billed or unanswered
    (12, "zero:unanswered"),  # 2 s after the allowance: under the threshold
    (15, "cost:0.10"),  # 5 s -> one 60 s block
    (75, "cost:0.20"),  # 65 s -> two blocks
]


@pytest.mark.parametrize(("talk", "expected"), UNSUPERVISED)
def test_unsupervised_trunks_take_the_allowance_off(talk: int, expected: str) -> None:
    call = gen_rated_call(number="0033123456789", answered=False, seconds=talk, talk_seconds=talk,
                    flags=("unsupervised",))  # fmt: skip
    plan = gen_dial_plan(unsupervised_allowance=10, unsupervised_min_seconds=5)
    result = rate_call(
        call, dial_plan=plan, tariffs=gen_plan(gen_version(SIMPLE)), carriers=gen_carriers()
    )
    assert outcome(result) == expected


# --- explanation -----------------------------------------------------------------------------------


def test_the_explanation_shows_the_arithmetic() -> None:
    explained = rate(france("0.1200", "0.0500", 30, 6), seconds=95).to_dict()["explanation"]
    assert explained["arithmetic"] == (
        "0.0500 + 0.1200 x 96/60 = 0.2420 -> half_up to 2 decimals = 0.24"
    )
    assert explained["duration"]["increments"] == "30/6"
    assert explained["destination"] == {
        "name": "France mobile", "prefix": "336", "class": "mobile", "match": "longest prefix",
        "priority": 0,
    }  # fmt: skip


def test_public_names_are_pinned() -> None:
    assert rating.__all__ == sorted(rating.__all__, key=lambda n: (not n.isupper(), n))
    assert set(rating.__all__) == {
        "ENGINE_VERSION", "CarrierChoice", "CarrierRules", "DialPlan", "Explanation",
        "Normalised", "NumberClass", "RatedCall", "RatingResult", "RoundingMode",
        "TariffImportError", "TariffPlan", "TariffVersion", "Unrated", "UnratedReason",
        "ZeroReason", "load_carrier_rules", "load_dial_plan", "load_tariff", "rate_call",
    }  # fmt: skip


# --- properties ------------------------------------------------------------------------------------

increments = st.sampled_from([(60, 60), (30, 6), (1, 1), (60, 1), (45, 15)])
amounts = st.integers(min_value=0, max_value=5_0000).map(lambda n: f"{n // 10000}.{n % 10000:04d}")


@settings(max_examples=60, deadline=None)
@given(
    inc=increments, per_minute=amounts, fee=amounts, minimum=amounts,
    grace=st.integers(0, 10), d1=st.integers(0, 7200), d2=st.integers(0, 7200),
    mode=st.sampled_from(list(RoundingMode)),
)  # fmt: skip
def test_cost_is_monotone_in_duration(
    inc: tuple[int, int],
    per_minute: str,
    fee: str,
    minimum: str,
    grace: int,
    d1: int,
    d2: int,
    mode: RoundingMode,
) -> None:
    csv_text = france(per_minute, fee, inc[0], inc[1], minimum=minimum, grace=grace)
    version = gen_version(csv_text, rounding=mode)
    costs = []
    for seconds in sorted((d1, d2)):
        result = rate_call(
            gen_rated_call(number="0033612345678", answer=TUESDAY.replace(hour=10), seconds=seconds),
            dial_plan=gen_dial_plan(), tariffs=gen_plan(version), carriers=gen_carriers(),
        )  # fmt: skip
        assert isinstance(result, RatedCall)
        costs.append(result.cost)
    assert costs[0] <= costs[1]


@settings(max_examples=80, deadline=None)
@given(
    seconds=st.integers(1, 40000), minute=st.integers(0, 7 * 24 * 60),
    rule=st.sampled_from(list(BandRule)), inc=increments,
)  # fmt: skip
def test_charges_add_up_to_the_billed_time_and_the_raw_cost(
    seconds: int, minute: int, rule: BandRule, inc: tuple[int, int]
) -> None:
    # a call in one band keeps no charge tuples; the charge it shows must still add up
    csv_text = WEEKEND_CSV.replace("60,60", f"{inc[0]},{inc[1]}")
    version = gen_version(csv_text, calendar=PEAK_CALENDAR, band_rule=rule, max_band_spans=99)
    call = gen_rated_call(number="0033123456789", answer=TUESDAY + timedelta(minutes=minute),
                    seconds=seconds)  # fmt: skip
    rated = rate_call(
        call, dial_plan=gen_dial_plan(), tariffs=gen_plan(version), carriers=gen_carriers()
    )
    assert isinstance(rated, RatedCall)
    charges = rated.explanation.charges
    assert sum(c.seconds for c in charges) == rated.billed_seconds > 0
    assert rated.raw60 == rated.fee * 60 + sum(c.amount60 for c in charges)
    assert rated.bands == tuple(dict.fromkeys(c.band for c in charges))
    assert charges[0].start == epoch_seconds(call.answer or call.end)
    assert rated.to_dict()["explanation"]["charges"][0]["band"] == charges[0].band


@settings(max_examples=40, deadline=None)
@given(
    seconds=st.integers(0, 20000), minute=st.integers(0, 7 * 24 * 60),
    number=st.sampled_from(["0033612345678", "0033123456789", "999", "2345", "02079460123", "07700900123"]),
    answered=st.booleans(), direction=st.sampled_from([Direction.OUT, Direction.IN, Direction.INTERNAL]),
)  # fmt: skip
def test_rerating_with_the_same_inputs_changes_nothing(
    seconds: int, minute: int, number: str, answered: bool, direction: Direction
) -> None:
    version = gen_version(WEEKEND_CSV, calendar=PEAK_CALENDAR)
    call = gen_rated_call(number=number, answer=TUESDAY + timedelta(minutes=minute), seconds=seconds,
                    answered=answered, direction=direction, dnis=number)  # fmt: skip
    first = rate_call(
        call, dial_plan=gen_dial_plan(), tariffs=gen_plan(version), carriers=gen_carriers()
    )
    # fresh objects (no warm caches) and the same objects again give the same result
    again = rate_call(call, dial_plan=gen_dial_plan(), tariffs=gen_plan(gen_version(
        WEEKEND_CSV, calendar=PEAK_CALENDAR)), carriers=gen_carriers())  # fmt: skip
    assert first.to_dict() == again.to_dict()


@settings(max_examples=40, deadline=None)
@given(
    number=st.sampled_from(
        ["0033612345678", "02079460123", "0049301234567", "999", "abc", "0033>"]
    ),
    direction=st.sampled_from(list(Direction)),
)
def test_a_zero_second_unanswered_call_costs_nothing(number: str, direction: Direction) -> None:
    call = gen_rated_call(
        number=number, seconds=0, answered=False, direction=direction, dnis=number
    )
    tariff = SIMPLE.replace("0.0200,0.0500,true", "0.0200,0.0500,false")
    result = rate_call(
        call,
        dial_plan=gen_dial_plan(),
        tariffs=gen_plan(gen_version(tariff)),
        carriers=gen_carriers(),
    )
    assert isinstance(result, RatedCall) and result.cost == 0


def test_zero_reason_values_are_stable() -> None:
    # reports group by these strings; renaming one is a data migration
    assert [z.value for z in ZeroReason] == [
        "internal", "on_net", "emergency", "inbound_not_tariffed", "unanswered", "toll_free",
        "not_billed",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "flags",
    [("retried_session", "not_billed"), ("rgs_agent_leg", "not_billed")],
)
def test_a_record_its_source_marks_not_billed_costs_nothing(flags: tuple[str, ...]) -> None:
    """Lync's retried sessions and Response Group agent legs are real records, but billing
    them would charge the call twice (formats.md §1.9): zero, with the reason."""
    charged = rate(france(), seconds=125)
    assert charged.cost > 0
    call = gen_rated_call(number="0033612345678", answer=TUESDAY_10, seconds=125, flags=flags)
    result = rate_call(
        call,
        dial_plan=gen_dial_plan(),
        tariffs=gen_plan(gen_version(france())),
        carriers=gen_carriers(),
    )
    assert isinstance(result, RatedCall)
    assert (result.cost, result.zero_reason) == (0, "not_billed")


def _json_native(value: object) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, str) and _json_native(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_json_native(v) for v in value)
    return value is None or type(value) in (str, int, bool)


@pytest.mark.parametrize("site", ["london", "toronto"])
def test_explanations_are_plain_json_as_the_store_gives_them_back(site: str) -> None:
    """Stored as they are and compared with stored ones by re-rating: no tuples, no objects."""
    tariffs = {name: load_tariff(DEMO / f"{name}.toml") for name in ("britline", "northtel")}
    plan = load_dial_plan(DEMO / f"{site}.toml")
    routes = load_carrier_rules(DEMO / f"{site}-routes.toml")
    lines = (DEMO / f"{site}-calls.jsonl").read_text().splitlines()
    results = [
        rate_call(ICDR.from_json(line), dial_plan=plan, tariffs=tariffs, carriers=routes)
        for line in lines
    ]
    assert any(isinstance(r, RatedCall) for r in results)
    for result in results:
        document = result.explanation.to_dict()
        assert _json_native(document), document
        assert json.loads(json.dumps(document)) == document


# --- bugs of issue 14 ------------------------------------------------------------------------------


def test_an_answered_call_without_answer_time_or_talk_time_is_missing_times() -> None:
    # answered and outgoing, but the source recorded neither an answer time nor talk time:
    # nothing to bill from, so the queue (docs: MISSING_TIMES), never a silent 0.00
    call = gen_rated_call(number="0033612345678", answer=None, seconds=0)
    call = ICDR.from_dict({**call.to_dict(), "answered": True, "talk_seconds": 0})
    result = rate_call(
        call, dial_plan=gen_dial_plan(), tariffs=gen_plan(gen_version(france())),
        carriers=gen_carriers(),
    )  # fmt: skip
    assert isinstance(result, Unrated), result
    assert result.reason is UnratedReason.MISSING_TIMES


@pytest.mark.parametrize("seconds", [0, 1, 95])
def test_a_tariff_without_bands_reports_band_all(seconds: int) -> None:
    # one '*' row and no calendar: the band is the single band 'all' whether or not time is billed
    version = gen_version(france(grace=0))
    call = gen_rated_call(number="0033612345678", seconds=seconds)  # answered; 0 s bills nothing
    result = rate_call(
        call, dial_plan=gen_dial_plan(), tariffs=gen_plan(version), carriers=gen_carriers()
    )
    assert isinstance(result, RatedCall), result
    assert result.bands == ("all",)
    assert [c["band"] for c in result.explanation.to_dict()["charges"]] == ["all"] * bool(seconds)
