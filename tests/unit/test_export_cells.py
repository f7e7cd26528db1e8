"""The formula-injection guard and how cells read, as exports write them."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from datacenter.exports.cells import QUOTE, display_text, formula_risk, money_text, safe_text
from datacenter.reports.catalog import Column

HOSTILE = ["=HYPERLINK(\"http://x\",\"y\")", "@SUM(A1)", "+1+cmd|' /C calc'!A0", "-A1", "+A1",
           "\t=1", "\r=1", "=1", "-", "+", "-2+3", "+44 7700 900123*2"]  # fmt: skip
HARMLESS = ["+447700900123", "-5", "07700900123", "2001", "", "Total", "a=b", "+44 7700 900123",
            "UK mobile", "britline"]  # fmt: skip


@pytest.mark.parametrize("text", HOSTILE)
def test_a_cell_a_spreadsheet_would_run_is_quoted(text: str) -> None:
    assert formula_risk(text)
    assert safe_text(text) == QUOTE + text


@pytest.mark.parametrize("text", HARMLESS)
def test_numbers_and_plain_text_stay_as_they_are(text: str) -> None:
    assert not formula_risk(text)
    assert safe_text(text) == text


@given(st.text())
def test_a_guarded_cell_never_starts_a_formula_and_keeps_its_text(text: str) -> None:
    guarded = safe_text(text)
    assert guarded in (text, QUOTE + text)  # the text itself is never changed
    starts = guarded[:1]
    if starts in ("=", "@", "\t", "\r"):
        pytest.fail(f"{guarded!r} starts a formula")
    if starts in ("+", "-"):
        assert guarded[1:2].isdigit() and all(c.isdigit() or c == " " for c in guarded[1:])


@given(st.from_regex(r"\+[1-9][0-9]{6,14}", fullmatch=True))
def test_e164_numbers_are_never_touched(number: str) -> None:
    assert safe_text(number) == number


@given(st.sampled_from("=@+-\t\r"), st.text(alphabet=st.characters(exclude_categories=["Nd"]),
                                          min_size=1))  # fmt: skip
def test_a_trigger_followed_by_anything_but_digits_is_quoted(trigger: str, rest: str) -> None:
    if rest.strip(" ") == "":
        rest = "x" + rest
    assert safe_text(trigger + rest).startswith(QUOTE)


def test_cells_read_as_a_person_reads_them() -> None:
    london = ZoneInfo("Europe/London")
    cases = [
        (Column("s", "S", "datetime"), datetime(2025, 3, 30, 22, 59, 30, tzinfo=UTC),
         "2025-03-30 23:59:30"),
        (Column("c", "C", "money"), Decimal("0.050000"), "0.05"),
        (Column("c", "C", "money"), Decimal("0.012500"), "0.0125"),
        (Column("c", "C", "money"), Decimal("1234.5"), "1,234.50"),
        (Column("t", "T", "seconds"), 3725, "1:02:05"),
        (Column("n", "N", "integer"), 12345, "12,345"),
        (Column("a", "A", "boolean"), False, "no"),
        (Column("p", "P", "percent"), Decimal("87.25"), "87.2 %"),
        (Column("x", "X", "text"), None, ""),
    ]  # fmt: skip
    assert [display_text(c, v, london) for c, v, _ in cases] == [e for _, _, e in cases]


@given(st.decimals(min_value=0, max_value=10**9, places=6, allow_nan=False))
def test_money_has_two_decimals_at_least_and_loses_nothing(value: Decimal) -> None:
    text = money_text(value)
    assert Decimal(text.replace(",", "")) == value
    assert len(text.split(".")[1]) >= 2
