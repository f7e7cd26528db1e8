"""Report tables streamed as CSV: cells by column kind, chunked, and readable back."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from datacenter.exports.stream import CSV_FLUSH_ROWS, export_stream
from datacenter.reports.catalog import Column, ReportTable
from shared.errors import ValidationError

LONDON = ZoneInfo("Europe/London")
COLUMNS = (
    Column("start", "Start", "datetime"),
    Column("called", "Called", "text"),
    Column("answered", "Answered", "boolean"),
    Column("talk", "Talk time", "seconds"),
    Column("cost", "Cost", "money"),
)


def _read(chunks: list[bytes]) -> list[list[str]]:
    text = b"".join(chunks).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text)))


def test_cells_follow_their_column_kind_and_the_totals_close_the_file() -> None:
    rows = [(datetime(2025, 7, 1, 8, 0, tzinfo=UTC), '+44 "7700", 900', True, 61,
             Decimal("0.050000"))]  # fmt: skip
    table = ReportTable("t", COLUMNS, rows, ("Total", None, None, 61, Decimal("0.05")))
    assert _read(list(export_stream(table, "csv", LONDON))) == [
        ["Start", "Called", "Answered", "Talk time", "Cost"],
        ["2025-07-01 09:00:00", '+44 "7700", 900', "yes", "61", "0.050000"],  # BST
        ["Total", "", "", "61", "0.05"],
    ]


def test_rows_are_read_as_the_file_is_written() -> None:
    produced = 0

    def rows() -> Iterator[tuple[object, ...]]:
        nonlocal produced
        for n in range(CSV_FLUSH_ROWS * 3):
            produced += 1
            yield (None, str(n), False, n, Decimal(n))

    chunks = export_stream(ReportTable("t", COLUMNS, rows()), "csv", LONDON)
    first = next(chunks)
    assert produced == CSV_FLUSH_ROWS  # the first chunk left before the rest were read
    assert len(_read([first])) == CSV_FLUSH_ROWS + 1  # with the header
    assert len(_read(list(chunks))) == CSV_FLUSH_ROWS * 2


def test_an_unknown_format_is_refused_by_name() -> None:
    with pytest.raises(ValidationError) as raised:
        export_stream(ReportTable("t", COLUMNS, []), "docx", LONDON)
    assert raised.value.field == "format"


_TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"))


@given(st.lists(st.tuples(_TEXT, st.booleans(), st.integers(0, 10**6)), max_size=30))
def test_any_text_round_trips(values: list[tuple[str, bool, int]]) -> None:
    rows = [
        (None, text, answered, talk, Decimal(talk).scaleb(-6)) for text, answered, talk in values
    ]
    got = _read(list(export_stream(ReportTable("t", COLUMNS, rows), "csv", LONDON)))
    assert [r[1] for r in got[1:]] == [text for text, _, _ in values]
