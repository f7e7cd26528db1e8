"""The cost alarm rules document: examples, every refusal naming its key, and properties."""

from __future__ import annotations

from datetime import datetime, time
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from datacenter.cost_alarms.rules import (
    DAY_NAMES,
    KIND_KEYS,
    KNOWN_CLASSES,
    BusinessHours,
    RuleError,
    RuleKind,
    format_micro,
    parse_amount,
    parse_days,
    parse_rules,
)
from datacenter.rating.numbering import NumberClass
from datacenter.web.cost_alarms import EXAMPLE_RULES

FULL = """
[hours]
days = "mon-fri, sun"
open = "07:30"
close = "24:00"

[delivery]
emails = ["noc@acme.example", "cfo@acme.example"]
webhook_url = "https://hooks.acme.example/callcollect"

[[rules]]
id = "big-call"
kind = "call_cost"
over = "25.50"
currency = "GBP"

[[rules]]
kind = "extension_day_cost"
over = 100

[[rules]]
kind = "tenant_day_cost"
over = 1000.25

[[rules]]
kind = "off_hours"
classes = ["premium"]

[[rules]]
kind = "long_call"
minutes = 120

[[rules]]
kind = "volume"
weeks = 6
factor = 2.5
min_calls = 40
direction = "any"

[[rules]]
kind = "short_calls"
calls = 8
seconds = 5
window_minutes = 30
"""


def test_a_full_document() -> None:
    rules = parse_rules(FULL)
    assert rules.hours == BusinessHours(frozenset({0, 1, 2, 3, 4, 6}), time(7, 30), None)
    assert rules.emails == ("noc@acme.example", "cfo@acme.example")
    assert rules.webhook_url == "https://hooks.acme.example/callcollect"
    assert [r.rule_id for r in rules.rules] == [
        "big-call", "extension_day_cost", "tenant_day_cost", "off_hours", "long_call", "volume",
        "short_calls",
    ]  # fmt: skip
    big = rules.rule("big-call")
    assert big is not None and (big.over_micro, big.currency) == (25_500_000, "GBP")
    assert [r.over_micro for r in rules.rules[1:3]] == [100_000_000, 1_000_250_000]
    assert rules.rules[3].classes == frozenset({"premium"})
    assert rules.rules[4].minutes == 120
    volume = rules.rules[5]
    assert (volume.weeks, volume.factor, volume.min_calls, volume.direction) == (
        6, Decimal("2.5"), 40, "any",
    )  # fmt: skip
    short = rules.rules[6]
    assert (short.calls, short.seconds, short.window_minutes) == (8, 5, 30)


def test_an_empty_document_has_default_hours_and_no_rules() -> None:
    rules = parse_rules("")
    assert rules.rules == () and rules.hours.days == frozenset(range(5))
    assert (rules.hours.open, rules.hours.close) == (time(8), time(18))


@pytest.mark.parametrize(
    ("text", "key", "says"),
    [
        ("[[rules]\n", "document", "not valid TOML"),
        ("color = 1\n", "color", "not a key here"),
        ('[[rules]]\nkind = "cheap"\n', "rules[0].kind", "not a rule kind"),
        ('[[rules]]\nkind = "call_cost"\n', "rules[0].over", "is required"),
        ('[[rules]]\nkind = "call_cost"\nover = "ten"\n', "rules[0].over", "not an amount"),
        ('[[rules]]\nkind = "call_cost"\nover = -1\n', "rules[0].over", "above 0"),
        ('[[rules]]\nkind = "call_cost"\nover = "0.0000001"\n', "rules[0].over", "6 decimals"),
        ('[[rules]]\nkind = "call_cost"\nover = 1\nminutes = 3\n', "rules[0].minutes",
         "not a key here"),
        ('[[rules]]\nkind = "long_call"\n', "rules[0].minutes", "is required"),
        ('[[rules]]\nkind = "long_call"\nminutes = 0\n', "rules[0].minutes", "from 1 to 1440"),
        ('[[rules]]\nkind = "long_call"\nminutes = true\n', "rules[0].minutes", "whole number"),
        ('[[rules]]\nkind = "volume"\nfactor = 0\n', "rules[0].factor", "above 0"),
        ('[[rules]]\nkind = "volume"\ndirection = "up"\n', "rules[0].direction", "one of"),
        ('[[rules]]\nkind = "off_hours"\nclasses = ["gold"]\n', "rules[0].classes",
         "not a destination class"),
        ('[[rules]]\nkind = "call_cost"\nover = 1\ncurrency = "gbp"\n', "rules[0].currency",
         "currency code"),
        ('[[rules]]\nkind = "long_call"\nminutes = 9\n[[rules]]\nkind = "long_call"\n'
         'minutes = 5\n', "rules[1].id", "used twice"),
        ('[[rules]]\nid = "Big Call"\nkind = "long_call"\nminutes = 5\n', "rules[0].id",
         "not an id"),
        ('[hours]\ndays = "mon-fry"\n', "hours.days", "not a day"),
        ('[hours]\nopen = "8am"\n', "hours.open", "not a time of day"),
        ('[hours]\nopen = "18:00"\nclose = "08:00"\n', "hours.close", "not after open"),
        ('[hours]\nopen = "24:00"\n', "hours.open", "end of a day"),
        ('[delivery]\nemails = ["nobody"]\n', "delivery.emails", "not an email"),
        ('[delivery]\nwebhook_url = "ftp://x.example/"\n', "delivery.webhook_url",
         "http(s) URL"),
        ('[delivery]\nwebhook_url = "http://x.example:99999/"\n', "delivery.webhook_url",
         "not a URL"),
        ("rules = 3\n", "rules", "array of tables"),
        ("hours = 3\n", "hours", "must be a table"),
    ],
)  # fmt: skip
def test_every_refusal_names_the_key(text: str, key: str, says: str) -> None:
    with pytest.raises(RuleError) as caught:
        parse_rules(text)
    assert caught.value.field == key
    assert says in str(caught.value)


def test_the_known_classes_are_ratings_classes() -> None:
    assert set(KNOWN_CLASSES) == {c.value for c in NumberClass}


def test_every_kind_has_its_keys() -> None:
    assert set(KIND_KEYS) == set(RuleKind)


# --- properties ---------------------------------------------------------------------------------

day_sets = st.sets(st.integers(0, 6), min_size=1)


def _days_text(days: set[int], as_ranges: bool) -> str:
    """A days string for ``days``: a list of names, or each run of days as a range."""
    ordered = sorted(days)
    if not as_ranges:
        return ",".join(DAY_NAMES[d] for d in ordered)
    runs: list[list[int]] = []
    for day in ordered:
        if runs and runs[-1][-1] == day - 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    return ", ".join(
        DAY_NAMES[run[0]] if len(run) == 1 else f"{DAY_NAMES[run[0]]}-{DAY_NAMES[run[-1]]}"
        for run in runs
    )


@given(day_sets, st.booleans())
def test_days_written_as_lists_or_ranges_parse_to_the_same_set(
    days: set[int], ranges: bool
) -> None:
    assert parse_days(_days_text(days, ranges), "hours.days") == frozenset(days)


@given(st.integers(0, 6), st.integers(0, 6))
def test_a_range_of_days_wraps_round_the_week(first: int, last: int) -> None:
    days = parse_days(f"{DAY_NAMES[first]}-{DAY_NAMES[last]}", "d")
    assert len(days) == (last - first) % 7 + 1 and first in days and last in days


@given(st.integers(1, 10**15))
def test_amounts_round_trip_through_their_text(micro: int) -> None:
    assert parse_amount(format_micro(micro), "over") == micro


@given(st.text(max_size=200))
def test_any_text_parses_or_is_refused_with_a_rule_error(text: str) -> None:
    try:
        parse_rules(text)
    except RuleError as exc:
        assert exc.field


@given(
    st.dictionaries(
        st.sampled_from(["kind", "id", "over", "minutes", "calls", "classes", "factor", "weeks"]),
        st.one_of(st.integers(-5, 10**6), st.text(max_size=8), st.booleans(),
                  st.floats(allow_nan=False, allow_infinity=False), st.lists(st.text(max_size=5), max_size=3)),
    )
)  # fmt: skip
def test_any_rule_table_parses_or_is_refused_with_a_rule_error(entry: dict[str, object]) -> None:
    lines = ["[[rules]]"]
    for key, value in entry.items():
        lines.append(f"{key} = {_toml(value)}")
    try:
        parse_rules("\n".join(lines) + "\n")
    except RuleError as exc:
        assert exc.field.startswith(("rules[0]", "document"))


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


@given(
    st.sets(st.integers(0, 6), min_size=1),
    st.integers(0, 23),
    st.integers(1, 24),
    st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1)),
)
def test_business_hours_contain_exactly_the_open_span_of_open_days(
    days: set[int], open_hour: int, close_hour: int, moment: datetime
) -> None:
    if close_hour <= open_hour:
        close_hour = open_hour + 1
    hours = BusinessHours(frozenset(days), time(open_hour),
                          None if close_hour == 24 else time(close_hour))  # fmt: skip
    expected = moment.weekday() in days and open_hour <= moment.hour < close_hour
    assert hours.contains(moment) == expected


def test_the_rules_page_example_parses_with_every_kind() -> None:
    assert {r.kind for r in parse_rules(EXAMPLE_RULES).rules} == set(RuleKind)
