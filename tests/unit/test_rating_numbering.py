"""Dial plans: recorded numbers -> E.164 and class, per site and per source."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datacenter.rating.numbering import (
    NumberClass,
    NumberProblem,
    dial_plan_from_dict,
    dial_plan_to_dict,
)
from shared.errors import ConfigError
from tests.unit.rating_factories import demo_dial_plan

C = NumberClass

LONDON = [
    # recorded (this source includes the access digit 9), E.164, class
    ("9 00 33 6 12 34 56 78", "33612345678", C.INTERNATIONAL),  # formats.md §7.2 worked example
    ("9 020 7946 0123", "442079460123", C.LOCAL),
    ("9(020) 7946-0123", "442079460123", C.LOCAL),
    ("9 01632 960123", "441632960123", C.NATIONAL),  # declared drama range
    ("9 0161 496 0000", "441614960000", C.NATIONAL),
    ("9 07700 900123", "447700900123", C.MOBILE),  # declared drama range
    ("9 07400 123456", "447400123456", C.MOBILE),
    ("9 0800 123 4567", "448001234567", C.TOLL_FREE),
    ("9 0909 879 0123", "449098790123", C.PREMIUM),
    (
        "9 0845 123 4567",
        "448451234567",
        C.PREMIUM,
    ),  # libphonenumber: premium; the tariff may re-class
    ("9 0300 123 4567", "443001234567", C.NATIONAL),  # 03: charged as national
    ("9 7946 0123", "442079460123", C.LOCAL),  # local completion with area code 20
    ("9 1470 020 7946 0123", "442079460123", C.LOCAL),  # CLI-release prefix stripped
    ("9 141 0033 1 23 45 67 89", "33123456789", C.INTERNATIONAL),
    ("+442079460123", "442079460123", C.LOCAL),
    ("tel:+44-20-7946-0123;phone-context=example", "442079460123", C.LOCAL),
    ("sip:+33612345678@gw.example.net;user=phone", "33612345678", C.INTERNATIONAL),
    ("9 001 212 555 0199", "12125550199", C.INTERNATIONAL),
    ("9999", "", C.EMERGENCY),
    ("999", "", C.EMERGENCY),  # dialled without the access digit
    ("9112", "", C.EMERGENCY),
    ("9100", "44100", C.SERVICE),
    ("9118500", "44118500", C.SERVICE),
    ("2345", "", C.INTERNAL),
    ("12", "", C.INTERNAL),
]


@pytest.mark.parametrize(("recorded", "e164", "number_class"), LONDON)
def test_london_site(recorded: str, e164: str, number_class: NumberClass) -> None:
    result = demo_dial_plan("london").normalise(recorded, source_id="lcs-london")
    assert (result.e164, result.number_class, result.problem) == (e164, number_class, None)


TORONTO = [
    # MiVB source: digits exclude the access code
    ("416 555 0123", "14165550123", C.LOCAL),
    ("1 416 555 0123", "14165550123", C.LOCAL),
    ("555 0123", "14165550123", C.LOCAL),  # 7-digit local completion
    ("1 613 555 0123", "16135550123", C.NATIONAL),
    ("1 212 555 0199", "12125550199", C.NATIONAL),  # US is domestic for this carrier
    ("1 800 555 0100", "18005550100", C.TOLL_FREE),
    ("1 900 555 0100", "19005550100", C.PREMIUM),
    ("011 44 20 7946 0123", "442079460123", C.INTERNATIONAL),
    ("*67 1 613 555 0123", "16135550123", C.NATIONAL),  # caller-ID block stripped
    ("1010321 1 613 555 0123", "16135550123", C.NATIONAL),  # carrier select 1010xxx stripped
    ("911", "", C.EMERGENCY),
    ("411", "1411", C.SERVICE),
    ("4001", "", C.INTERNAL),
    ("20555", "", C.INTERNAL),  # five-digit extension range
]


@pytest.mark.parametrize(("recorded", "e164", "number_class"), TORONTO)
def test_toronto_site_mivb_source_without_access_digits(
    recorded: str, e164: str, number_class: NumberClass
) -> None:
    result = demo_dial_plan("toronto").normalise(recorded, source_id="mivb-toronto")
    assert (result.e164, result.number_class, result.problem) == (e164, number_class, None)


def test_access_digits_are_stripped_only_for_sources_that_include_them() -> None:
    plan = demo_dial_plan("toronto")
    # the same digits: with access digits '9' is stripped; from MiVB it is part of the number
    with_access = plan.normalise("9 416 555 0123", source_id="lcs-toronto")
    from_mivb = plan.normalise("9 416 555 0123", source_id="mivb-toronto")
    assert with_access.e164 == "14165550123"
    assert from_mivb.e164 != "14165550123"


def test_the_same_digits_inbound_and_outbound_are_read_separately() -> None:
    # outbound "0123" is an extension; inbound it is a short DDI completed with the DID prefix
    for inbound_first in (False, True):
        plan = demo_dial_plan("london")
        order = (True, False) if inbound_first else (False, True)
        seen = {inbound: plan.normalise("0123", inbound=inbound) for inbound in order}
        assert seen[False].number_class is NumberClass.INTERNAL
        assert seen[True].e164 == "442079460123"


PROBLEMS = [
    ("90909879>", NumberProblem.AMBIGUOUS_NUMBER),
    ("alice@example.com", NumberProblem.INVALID_NUMBER),
    ("9 0033 1 2", NumberProblem.INVALID_NUMBER),  # too short for France
    ("+1234567890123456", NumberProblem.INVALID_NUMBER),  # 16 digits
    ("9 01000 000000", NumberProblem.INVALID_NUMBER),  # no UK range: class unknown
    ("+", NumberProblem.INVALID_NUMBER),
    ("9 *21#", NumberProblem.INVALID_NUMBER),
]


@pytest.mark.parametrize(("recorded", "problem"), PROBLEMS)
def test_unreadable_numbers_are_never_guessed(recorded: str, problem: NumberProblem) -> None:
    result = demo_dial_plan("london").normalise(recorded, source_id="lcs-london")
    assert result.problem is problem and result.detail
    assert not result.ok


INBOUND = [
    # site, DDI as delivered, E.164
    ("london", "0123", "442079460123"),  # last 4 digits: completed with 0207946
    ("london", "02079460123", "442079460123"),  # full national DDI untouched
    ("toronto", "0123", "14165550123"),  # completed with 416555
    ("toronto", "+14165550123", "14165550123"),
]


@pytest.mark.parametrize(("site", "ddi", "e164"), INBOUND)
def test_inbound_short_ddi_is_completed_with_the_did_prefix(site: str, ddi: str, e164: str) -> None:
    result = demo_dial_plan(site).normalise(ddi, inbound=True)
    assert (result.e164, result.problem) == (e164, None)


def test_steps_explain_the_decisions() -> None:
    steps = demo_dial_plan("london").normalise("9 00 33 6 12 34 56 78", source_id="x").steps
    assert steps == (
        "cleaned to 90033612345678",
        "stripped outside-line prefix 9",
        "international prefix 00",
        "+33612345678: international (FR)",
    )


BAD_PLANS: list[tuple[dict[str, Any], str]] = [
    ({"country_code": "44", "region": "GB"}, "site"),
    ({"site": "x", "country_code": "+44", "region": "GB"}, "country_code"),
    ({"site": "x", "country_code": "44", "region": "US"}, "region"),
    ({"site": "x", "country_code": "44", "region": "GB", "timezone": "Mars/Base"}, "timezone"),
    ({"site": "x", "country_code": "44", "region": "GB", "emergency_numbers": ["99a"]}, "emergency_numbers"),
    ({"site": "x", "country_code": "44", "region": "GB", "extension_ranges": [["100", "20"]]}, "extension_ranges"),
    ({"site": "x", "country_code": "44", "region": "GB", "ranges": [{"prefix": "44", "class": "cheap"}]}, "ranges[0].class"),
    ({"site": "x", "country_code": "44", "region": "GB", "sources": {"a": {"strip": True}}}, "sources.a"),
    ({"site": "x", "country_code": "44", "region": "GB", "colour": "red"}, "colour"),
]  # fmt: skip


@pytest.mark.parametrize(("data", "key"), BAD_PLANS)
def test_bad_dial_plans_name_the_key(data: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        dial_plan_from_dict(data)
    assert caught.value.key == key


def test_dial_plan_round_trips_through_its_dict_form() -> None:
    plan = demo_dial_plan("toronto")
    assert dial_plan_from_dict(dial_plan_to_dict(plan)) == plan


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="0123456789+*#()- .>;@:tesipl", max_size=24))
def test_normalise_never_raises_and_is_deterministic(text: str) -> None:
    plan = demo_dial_plan("london")
    first = plan.normalise(text, source_id="lcs-london")
    fresh = demo_dial_plan("london").normalise(text, source_id="lcs-london")
    assert first == fresh
    assert first.ok == (first.problem is None)
    if first.e164:
        assert first.e164.isdigit() and len(first.e164) <= 15
