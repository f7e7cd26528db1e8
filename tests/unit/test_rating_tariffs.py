"""Tariffs: CSV rate decks, plan files, versions, and the longest-prefix index."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datacenter.rating.numbering import NumberClass
from datacenter.rating.tariffs import (
    PrefixIndex,
    TariffImportError,
    TariffPlan,
    load_tariff,
    parse_rates_csv,
    plan_to_toml,
    rates_to_csv,
    version_settings_to_dict,
)
from tests.unit.rating_factories import DEMO, PEAK_CALENDAR, gen_version

BANDS = frozenset({"peak", "offpeak", "weekend"})

CSV_ERRORS = [
    # what, CSV text, (line, column) of the first problem
    ("empty file", "", (1, "-")),
    ("unknown column", "prefix,destination,rate_per_minute,colour\n", (1, "colour")),
    ("missing required column", "prefix,destination\n33,France\n", (1, "rate_per_minute")),
    ("repeated column", "prefix,destination,rate_per_minute,prefix\n", (1, "prefix")),
    ("bad prefix", "prefix,destination,rate_per_minute\n\n33a,France,0.1\n", (3, "prefix")),
    ("prefix too long", "prefix,destination,rate_per_minute\n1234567890123456,X,0.1\n", (2, "prefix")),
    ("no prefix and no class", "prefix,destination,rate_per_minute\n,France,0.1\n", (2, "prefix")),
    ("unknown class", "prefix,class,destination,rate_per_minute\n33,cheap,France,0.1\n", (2, "class")),
    ("empty destination", "prefix,destination,rate_per_minute\n33,,0.1\n", (2, "destination")),
    ("negative rate", "prefix,destination,rate_per_minute\n33,France,-0.1\n", (2, "rate_per_minute")),
    ("seven decimals", "prefix,destination,rate_per_minute\n33,France,0.1234567\n", (2, "rate_per_minute")),
    ("float-looking junk", "prefix,destination,rate_per_minute\n33,France,1e-3\n", (2, "rate_per_minute")),
    ("zero increment", "prefix,destination,rate_per_minute,initial_increment\n33,France,0.1,0\n", (2, "initial_increment")),
    ("bad boolean", "prefix,destination,rate_per_minute,fee_in_grace\n33,France,0.1,maybe\n", (2, "fee_in_grace")),
    ("bad direction", "prefix,destination,rate_per_minute,direction\n33,France,0.1,sideways\n", (2, "direction")),
    ("unknown band", "prefix,destination,rate_per_minute,band\n33,France,0.1,night\n", (2, "band")),
    ("other currency", "prefix,destination,rate_per_minute,currency\n33,France,0.1,USD\n", (2, "currency")),
    ("short row", "prefix,destination,rate_per_minute\n33,France\n", (2, "-")),
    ("duplicate prefix", "prefix,destination,rate_per_minute\n33,France,0.1\n34,Spain,0.1\n33,France,0.2\n", (4, "band")),
    ("same prefix, two names", "prefix,destination,rate_per_minute,band\n33,France,0.1,peak\n33,Francia,0.1,offpeak\n33,France,0.1,weekend\n", (3, "destination")),
    ("band missing", "prefix,destination,rate_per_minute,band\n33,France,0.1,peak\n33,France,0.1,offpeak\n", (2, "band")),
    ("two class rows", "prefix,class,destination,rate_per_minute,priority\n,service,A,0.1,0\n,service,B,0.1,1\n", (3, "class")),
]  # fmt: skip


@pytest.mark.parametrize(("what", "text", "where"), CSV_ERRORS)
def test_csv_errors_name_line_and_column(what: str, text: str, where: tuple[int, str]) -> None:
    with pytest.raises(TariffImportError) as caught:
        parse_rates_csv(text, file="deck.csv", currency="EUR", bands=BANDS)
    first = caught.value.problems[0]
    assert (first.line, first.column) == where
    assert f"deck.csv:{where[0]}" in str(caught.value)


def test_every_problem_is_reported_at_once() -> None:
    text = "prefix,destination,rate_per_minute\nx,France,0.1\n34,,0.1\n35,Y,abc\n"
    with pytest.raises(TariffImportError) as caught:
        parse_rates_csv(text, file="deck.csv", currency="EUR")
    assert [(p.line, p.column) for p in caught.value.problems] == [
        (2, "prefix"), (3, "destination"), (4, "rate_per_minute"),
    ]  # fmt: skip


LPM = """prefix,class,destination,rate_per_minute,priority
1,,NANP,0.01,0
1212,,New York,0.02,0
12125,,Manhattan (test range),0.03,0
33,,France,0.04,0
336,mobile,France mobile,0.05,0
336,mobile,France mobile (carrier override),0.06,5
4420,local,London,0.07,0
,service,Service codes,0.50,0
,premium,Premium class,1.00,0
"""
MATCHES = [
    # E.164, number class, destination expected
    ("12125550199", NumberClass.NATIONAL, "Manhattan (test range)"),
    ("12135550199", NumberClass.NATIONAL, "NANP"),
    ("12120000000", NumberClass.NATIONAL, "New York"),
    (
        "33612345678",
        NumberClass.MOBILE,
        "France mobile (carrier override)",
    ),  # priority breaks the tie
    ("33123456789", NumberClass.INTERNATIONAL, "France"),
    ("442079460123", NumberClass.LOCAL, "London"),
    ("449098790123", NumberClass.PREMIUM, "Premium class"),  # no prefix: the class row
    ("44100", NumberClass.SERVICE, "Service codes"),  # service codes never fall into prefix 4...
    ("4921", NumberClass.INTERNATIONAL, None),
]


@pytest.mark.parametrize(("e164", "number_class", "name"), MATCHES)
def test_longest_prefix_then_priority_then_class(
    e164: str, number_class: NumberClass, name: str | None
) -> None:
    index = PrefixIndex.build(parse_rates_csv(LPM, file="lpm.csv", currency="EUR"))
    found = index.match(e164, number_class)
    assert (found.name if found else None) == name


def test_one_index_answers_every_number_and_class_in_any_order() -> None:
    # the index memoises by number: a number seen as one class must not answer for another
    for order in (MATCHES, MATCHES[::-1]):
        index = PrefixIndex.build(parse_rates_csv(LPM, file="lpm.csv", currency="EUR"))
        for e164, number_class, name in order:
            for _ in range(2):  # the second lookup is answered from the memo
                found = index.match(e164, number_class)
                assert (found.name if found else None) == name, (e164, number_class)
        service = index.match("44100", NumberClass.SERVICE)
        national = index.match("44100", NumberClass.NATIONAL)
        assert service is not None and service.name == "Service codes"
        assert national is None or national.name != "Service codes"


def test_the_tie_rule_does_not_depend_on_row_order() -> None:
    rows = LPM.splitlines()
    reversed_text = "\n".join([rows[0], *reversed(rows[1:])]) + "\n"
    for text in (LPM, reversed_text):
        index = PrefixIndex.build(parse_rates_csv(text, file="lpm.csv", currency="EUR"))
        found = index.match("33612345678", NumberClass.MOBILE)
        assert found is not None and found.priority == 5


@settings(max_examples=100, deadline=None)
@given(
    prefixes=st.sets(
        st.text(alphabet="0123456789", min_size=1, max_size=6), min_size=1, max_size=40
    ),
    number=st.text(alphabet="0123456789", min_size=1, max_size=15),
)
def test_prefix_index_agrees_with_a_linear_scan(prefixes: set[str], number: str) -> None:
    text = "prefix,destination,rate_per_minute\n" + "".join(
        f"{p},D{p},0.01\n" for p in sorted(prefixes)
    )
    index = PrefixIndex.build(parse_rates_csv(text, file="x.csv", currency="EUR"))
    matching = [p for p in prefixes if number.startswith(p)]
    expected = f"D{max(matching, key=len)}" if matching else None
    found = index.match(number, NumberClass.INTERNATIONAL)
    assert (found.name if found else None) == expected


def test_demo_plans_load_with_two_versions_each() -> None:
    for name, first, mid_month in (("britline", "britline-2025-01", "britline-2025-07"),
                                   ("northtel", "northtel-2025-01", "northtel-2025-07")):  # fmt: skip
        plan = load_tariff(DEMO / f"{name}.toml")
        assert [v.version for v in plan.versions] == [first, mid_month]
        assert plan.versions[0].valid_to == plan.versions[1].valid_from
        assert len(plan.versions[0].destinations) >= 30


def test_mid_month_version_starts_at_local_midnight() -> None:
    plan = load_tariff(DEMO / "britline.toml")
    # 2025-07-15 00:00 in Europe/London (BST) is 2025-07-14 23:00 UTC
    assert plan.versions[1].valid_from == datetime(2025, 7, 14, 23, 0, tzinfo=UTC)
    assert plan.version_at(datetime(2025, 7, 14, 22, 59, 59, tzinfo=UTC)) is plan.versions[0]
    assert plan.version_at(datetime(2025, 7, 14, 23, 0, 0, tzinfo=UTC)) is plan.versions[1]
    assert plan.version_at(datetime(2024, 12, 31, 23, 59, tzinfo=UTC)) is None


def test_export_then_import_gives_the_same_plan(tmp_path: Path) -> None:
    plan = load_tariff(DEMO / "britline.toml")
    for version in plan.versions:
        (tmp_path / f"{version.version}.csv").write_text(rates_to_csv(version), encoding="utf-8")
    (tmp_path / "plan.toml").write_text(
        plan_to_toml(plan, rates_name=lambda v: f"{v.version}.csv"), encoding="utf-8"
    )
    again = load_tariff(tmp_path / "plan.toml")
    assert [version_settings_to_dict(v) for v in again.versions] == [
        version_settings_to_dict(v) for v in plan.versions
    ]
    assert [rates_to_csv(v) for v in again.versions] == [rates_to_csv(v) for v in plan.versions]


def write_plan(
    tmp_path: Path, body: str, deck: str = "prefix,destination,rate_per_minute\n33,France,0.1\n"
) -> Path:
    (tmp_path / "deck.csv").write_text(deck, encoding="utf-8")
    path = tmp_path / "plan.toml"
    path.write_text(body, encoding="utf-8")
    return path


PLAN_ERRORS = [
    ('currency = "EUR"\n[[version]]\nid="a"\nvalid_from="2025-01-01"\nrates="deck.csv"\n', "carrier"),
    ('carrier = "x"\ncurrency = "XYZ"\n[[version]]\nid="a"\nvalid_from="2025-01-01"\nrates="deck.csv"\n', "decimals"),
    ('carrier = "x"\ncurrency = "EUR"\nrounding = "nearest"\n[[version]]\nid="a"\nvalid_from="2025-01-01"\nrates="deck.csv"\n', "rounding"),
    ('carrier = "x"\ncurrency = "EUR"\n', "version"),
    ('carrier = "x"\ncurrency = "EUR"\n[[version]]\nid="a"\nrates="deck.csv"\n', "version[0].valid_from"),
    ('carrier = "x"\ncurrency = "EUR"\n[[version]]\nid="a"\nvalid_from="2025-01-01"\nrates="missing.csv"\n', "-"),
    ('carrier = "x"\ncurrency = "EUR"\n[calendar]\nweekday = { "01:00" = "peak" }\nweekend = { "00:00" = "off" }\n[[version]]\nid="a"\nvalid_from="2025-01-01"\nrates="deck.csv"\n', "calendar.weekday"),
    ('carrier = "x"\ncurrency = "EUR"\n[[version]]\nid="a"\nvalid_from="2025-01-01"\nvalid_to="2025-03-01"\nrates="deck.csv"\n'
     '[[version]]\nid="b"\nvalid_from="2025-02-01"\nrates="deck.csv"\n', "version.valid_to"),
    ('carrier = "x"\ncurrency = "EUR"\n[[version]]\nid="a"\nvalid_from="2025-01-01"\nrates="deck.csv"\n'
     '[[version]]\nid="a"\nvalid_from="2025-02-01"\nrates="deck.csv"\n', "version.id"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "column"), PLAN_ERRORS)
def test_plan_errors_name_the_key(tmp_path: Path, body: str, column: str) -> None:
    with pytest.raises(TariffImportError) as caught:
        load_tariff(write_plan(tmp_path, body))
    assert column in [p.column for p in caught.value.problems]


def test_a_bad_row_in_the_second_version_loads_nothing(tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text("prefix,destination,rate_per_minute\n33,France,zero\n")
    body = (
        'carrier = "x"\ncurrency = "EUR"\n[[version]]\nid="a"\nvalid_from="2025-01-01"\n'
        'rates="deck.csv"\n[[version]]\nid="b"\nvalid_from="2025-02-01"\nrates="bad.csv"\n'
    )
    with pytest.raises(TariffImportError) as caught:
        load_tariff(write_plan(tmp_path, body))
    assert str(caught.value.problems[0]) == (
        "bad.csv:2: column rate_per_minute: 'zero' is not a non-negative decimal amount like 0.1500"
    )


def test_version_at_respects_an_explicit_gap() -> None:
    a = gen_version("prefix,destination,rate_per_minute\n33,F,0.1\n", version="a",
                    valid_to=datetime(2025, 2, 1, tzinfo=UTC))  # fmt: skip
    b = gen_version("prefix,destination,rate_per_minute\n33,F,0.1\n", version="b",
                    valid_from=datetime(2025, 3, 1, tzinfo=UTC))  # fmt: skip
    plan = TariffPlan("testco", (a, b))
    assert plan.version_at(datetime(2025, 2, 15, tzinfo=UTC)) is None
    assert plan.version_at(datetime(2025, 3, 1, tzinfo=UTC)) is b


def test_calendar_bands_are_what_rows_may_name() -> None:
    version = gen_version(
        "prefix,destination,rate_per_minute,band\n33,F,0.1,peak\n33,F,0.05,offpeak\n33,F,0.02,weekend\n",
        calendar=PEAK_CALENDAR,
    )
    assert version.calendar.bands == BANDS
    assert version.destinations[0].rate_for("weekend").rate_per_minute == 20_000
