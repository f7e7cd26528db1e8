"""Report tables streamed as CSV, XLSX and PDF: cells by column kind, chunked, readable back."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from datacenter.exports import pdf, xlsx
from datacenter.exports.cells import formula_risk, safe_text
from datacenter.exports.stream import CSV_FLUSH_ROWS, MEDIA_TYPES, export_stream
from datacenter.exports.xlsx import FLUSH_ROWS as XLSX_FLUSH_ROWS
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
        # BST; "+" then a non-digit could be a formula: quoted (datacenter.exports.cells)
        ["2025-07-01 09:00:00", '\'+44 "7700", 900', "yes", "61", "0.050000"],
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
    header = next(chunks)
    assert produced == 0  # the header left before any row was read
    assert _read([header]) == [[c.title for c in COLUMNS]]
    first = next(chunks)
    assert produced == CSV_FLUSH_ROWS  # the first rows left before the rest were read
    assert len(_read([header, first])) == CSV_FLUSH_ROWS + 1
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
    assert [r[1] for r in got[1:]] == [safe_text(text) for text, _, _ in values]
    assert not any(formula_risk(r[1]) for r in got[1:])


# --- XLSX ---------------------------------------------------------------------------------------


def _workbook(chunks: Iterator[bytes]) -> tuple[openpyxl.Workbook, bytes]:
    data = b"".join(chunks)
    return openpyxl.load_workbook(io.BytesIO(data)), data


def _sheet_xml(data: bytes, number: int = 1) -> str:
    return zipfile.ZipFile(io.BytesIO(data)).read(f"xl/worksheets/sheet{number}.xml").decode()


def test_xlsx_cells_are_typed_and_the_totals_row_is_bold() -> None:
    rows = [(datetime(2025, 7, 1, 8, 0, tzinfo=UTC), "+447700900123", True, 61,
             Decimal("0.050000"))]  # fmt: skip
    table = ReportTable("Call detail", COLUMNS, rows, ("Total", None, None, 61, Decimal("0.05")))
    book, _ = _workbook(export_stream(table, "xlsx", LONDON))
    sheet = book.active
    assert sheet is not None and sheet.title == "Call detail"
    header, row, totals = list(sheet.iter_rows())
    assert [c.value for c in header] == ["Start", "Called", "Answered", "Talk time", "Cost"]
    assert all(c.font.b for c in header)
    assert [c.value for c in row] == [datetime(2025, 7, 1, 9, 0), "+447700900123", True, 61, 0.05]
    assert [c.data_type for c in row] == ["d", "s", "b", "n", "n"]
    assert row[0].number_format == "yyyy-mm-dd hh:mm:ss"  # 09:00 BST, the tenant's clock
    assert row[4].number_format == "#,##0.00####"  # money: two decimals at least
    assert not row[1].quotePrefix  # an E.164 number is left as it is
    assert [c.value for c in totals] == ["Total", None, None, 61, 0.05]
    assert all(c.font.b for c in totals)


def test_xlsx_text_that_looks_like_a_formula_stays_text() -> None:
    hostile = ['=HYPERLINK("http://198.18.0.1/","x")', "@SUM(A1)", "+1+cmd|' /C calc'!A0", "-A1"]
    rows = [(None, text, False, 0, Decimal(0)) for text in hostile]
    book, data = _workbook(export_stream(ReportTable("t", COLUMNS, rows), "xlsx", LONDON))
    assert "<f>" not in _sheet_xml(data)  # no formula anywhere in the sheet
    cells = [row[1] for row in book.active.iter_rows(min_row=2)]  # type: ignore[union-attr]
    assert [c.value for c in cells] == hostile
    assert all(c.data_type == "s" and c.quotePrefix for c in cells)


_XML_TEXT = st.text(st.characters(exclude_categories=["Cs", "Cc"]))


@given(st.lists(_XML_TEXT, max_size=20))
def test_xlsx_any_text_round_trips(texts: list[str]) -> None:
    rows = [(None, text, False, 0, Decimal(0)) for text in texts]
    book, data = _workbook(export_stream(ReportTable("t", COLUMNS, rows), "xlsx", LONDON))
    got = [row[1] for row in book.active.iter_rows(min_row=2, values_only=True)]  # type: ignore[union-attr]
    assert got == [text or None for text in texts]  # an empty string is an empty cell
    assert "<f>" not in _sheet_xml(data)


def test_xlsx_control_characters_a_pbx_sent_become_replacement_characters() -> None:
    rows = [(None, "20\x0101", False, 0, Decimal(0))]
    book, _ = _workbook(export_stream(ReportTable("t", COLUMNS, rows), "xlsx", LONDON))
    assert book.active["B2"].value == "20\ufffd01"  # type: ignore[index]


def test_xlsx_rows_are_read_as_the_file_is_written() -> None:
    produced = 0

    def rows() -> Iterator[tuple[object, ...]]:
        nonlocal produced
        for n in range(XLSX_FLUSH_ROWS * 40):
            produced += 1
            yield (None, f"{n:012d}", False, n, Decimal(n))

    chunks = export_stream(ReportTable("t", COLUMNS, rows()), "xlsx", LONDON)
    assert next(chunks).startswith(b"PK\x03\x04")  # the zip has begun before any row was read
    assert produced == 0
    sizes = []
    while produced < XLSX_FLUSH_ROWS * 40:
        sizes.append(len(next(chunks)))
    assert len(sizes) > 1  # compressed bytes left while rows were still being read
    rest = list(chunks)
    assert rest and rest[-1]


def test_xlsx_past_a_sheets_limit_the_rows_go_on_in_a_new_sheet(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(xlsx, "SHEET_MAX_ROWS", 4)  # header + 2 rows, one row kept for totals
    rows = [(None, str(n), False, n, Decimal(n)) for n in range(5)]
    table = ReportTable("Call detail", COLUMNS, rows, ("Total", None, None, 10, Decimal(10)))
    book, _ = _workbook(export_stream(table, "xlsx", LONDON))
    assert book.sheetnames == ["Call detail", "Call detail (2)", "Call detail (3)"]
    values = [[row[1] for row in sheet.iter_rows(values_only=True)] for sheet in book]
    assert values == [["Called", "0", "1"], ["Called", "2", "3"], ["Called", "4", None]]
    assert [c.value for c in book.worksheets[-1][3]] == ["Total", None, None, 10, 10]


def test_xlsx_a_reader_that_goes_away_leaves_nothing_open() -> None:
    rows = ((None, str(n), False, n, Decimal(n)) for n in range(XLSX_FLUSH_ROWS * 3))
    chunks = export_stream(ReportTable("t", COLUMNS, rows), "xlsx", LONDON)
    next(chunks)
    next(chunks)
    chunks.close()  # type: ignore[attr-defined]  # a generator; warnings would fail the test
    assert next(rows, None) is not None  # the rest was never read


# --- PDF ----------------------------------------------------------------------------------------


def test_a_pdf_of_too_many_rows_is_refused_before_a_byte_is_made(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pdf, "MAX_ROWS", 3)
    rows = [(None, str(n), False, n, Decimal(n)) for n in range(4)]
    with pytest.raises(ValidationError, match="at most 3 rows") as raised:
        next(export_stream(ReportTable("t", COLUMNS, rows), "pdf", LONDON))
    assert raised.value.field == "format" and "CSV or XLSX" in raised.value.problem
    small = ReportTable("t", COLUMNS, rows[:3])
    assert b"".join(export_stream(small, "pdf", LONDON)).startswith(b"%PDF-")


def test_every_format_has_a_media_type() -> None:
    assert set(MEDIA_TYPES) == {"csv", "xlsx", "pdf"}


def test_an_xlsx_download_starts_before_openpyxl_is_loaded() -> None:
    """Loading openpyxl takes seconds on a busy machine: the first chunk must not wait for it."""
    program = (
        "import sys\n"
        "from zoneinfo import ZoneInfo\n"
        "from datacenter.exports.stream import export_stream\n"
        "from datacenter.reports.catalog import Column, ReportTable\n"
        "table = ReportTable('t', (Column('a', 'A', 'text'),), [('x',)])\n"
        "chunks = export_stream(table, 'xlsx', ZoneInfo('UTC'))\n"
        "first = next(chunks)\n"
        "print(first[:2].decode(), 'openpyxl' in sys.modules)\n"
        "rest = b''.join(chunks)\n"
        "print('openpyxl' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                         check=True).stdout.split()  # fmt: skip
    assert out == ["PK", "False", "True"]
