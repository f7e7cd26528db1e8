"""A report table as an XLSX workbook, streamed: the first bytes leave before the rows are read.

openpyxl's write-only mode writes a sheet's XML row by row, but to a temporary file that it
zips when the workbook is saved, so nothing can be sent before the last row. Here the same
openpyxl writer serialises the rows straight into a member of a ``zipfile.ZipFile`` that writes
to an unseekable sink (the standard library then writes each member's sizes after its data, in
a data descriptor), and the chunks the sink collects are handed on as the rows are read. Once
the rows are done, openpyxl's own ``ExcelWriter`` adds the workbook's other parts (styles,
workbook, content types, properties) to the same archive; the sheets are already in it, so
the member order is sheets first, which the format allows (openpyxl itself writes the content
types last).

Cells are typed: numbers and seconds as numbers, money as numbers formatted with two to six
decimals, times as the tenant's wall-clock time formatted as date and time, yes/no as
booleans, text as text. A text cell that could be read as a formula is stored as text with
Excel's quote prefix (``cells.formula_risk``), never as a formula, and characters XML cannot
carry are replaced with U+FFFD. The header and totals rows are bold.

A sheet holds at most ``SHEET_MAX_ROWS`` rows (Excel's limit) and ``SHEET_MAX_BYTES`` of XML
(below the 2 GiB a zip member may have without ZIP64, which some spreadsheet programs read
badly); past either, the rows go on in a new sheet with the header repeated.

Memory: the sink holds at most one flush's worth of compressed bytes (``FLUSH_ROWS`` rows),
the zip and XML writers a few buffers; nothing grows with the number of rows.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, Cell
from openpyxl.drawing.spreadsheet_drawing import SpreadsheetDrawing
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet
from openpyxl.worksheet._writer import WorksheetWriter
from openpyxl.writer.excel import ExcelWriter

from datacenter.exports.cells import formula_risk, local_time
from datacenter.reports.catalog import Column, ColumnKind, ReportTable

FLUSH_ROWS = 1_000
SHEET_MAX_ROWS = 1_048_576  # Excel's rows per sheet
SHEET_MAX_BYTES = 1_500_000_000  # uncompressed sheet XML; zipfile needs ZIP64 past 2**31 - 1
SHEET_TITLE_LENGTH = 31  # Excel's limit
NUMBER_FORMATS: dict[ColumnKind, str] = {
    "money": "#,##0.00####",  # two decimals at least, up to the store's six
    "percent": '0.0"%"',  # the value is 0-100, as in the report
    "datetime": "yyyy-mm-dd hh:mm:ss",
}
COLUMN_WIDTHS: dict[ColumnKind, int] = {"datetime": 20, "money": 12, "text": 18}
BOLD = Font(bold=True)
REPLACEMENT = "\ufffd"


class _Sink:
    """The unseekable file the zip writes to: bytes kept until the generator takes them."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        """Nothing to do: ``take`` hands the bytes on."""

    def close(self) -> None:
        """Nothing to do: the bytes are taken."""

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


class _Counted:
    """A zip member being written, counting its uncompressed bytes (for SHEET_MAX_BYTES)."""

    def __init__(self, member: Any) -> None:
        self.member = member
        self.written = 0

    def write(self, data: Any, /) -> int:  # bytes, or a buffer of them
        self.written += len(data)
        written: int = self.member.write(data)
        return written

    def flush(self) -> None:
        """The zip member flushes itself when closed."""

    def close(self) -> None:
        self.member.close()


class _StreamedExcelWriter(ExcelWriter):
    """openpyxl's workbook writer for sheets already written into the archive."""

    def write_worksheet(self, ws: Any) -> None:  # openpyxl's private sheet attributes
        ws._drawing = SpreadsheetDrawing()  # what ExcelWriter.write_worksheet sets up too
        ws._drawing.charts = ws._charts
        ws._drawing.images = ws._images
        ws._rels = ws._writer._rels
        self.manifest.append(ws)


class _SheetStream:
    """The workbook's sheets, one open at a time, each a member of ``archive``."""

    def __init__(self, table: ReportTable, zone: ZoneInfo, archive: zipfile.ZipFile) -> None:
        self.table, self.zone, self.archive = table, zone, archive
        self.workbook = Workbook(write_only=True)
        self.sheet: Any = None  # a WriteOnlyWorksheet, its private ``_writer`` set here
        self.out: _Counted | None = None
        self.rows = 0

    def open(self) -> None:
        number = len(self.workbook.worksheets) + 1
        title = self.table.title if number == 1 else f"{self.table.title} ({number})"
        sheet = self.workbook.create_sheet(_sheet_title(title))
        for index, column in enumerate(self.table.columns, start=1):
            letter = get_column_letter(index)
            sheet.column_dimensions[letter].width = COLUMN_WIDTHS.get(column.kind, 12)
        sheet.freeze_panes = "A2"
        # The path ExcelWriter gives the n-th sheet; the writer streams into that member.
        self.out = _Counted(self.archive.open(f"xl/worksheets/sheet{number}.xml", "w"))
        sheet._writer = WorksheetWriter(sheet, out=self.out)
        sheet._writer.write_top()
        self.sheet, self.rows = sheet, 0
        self.append([_bold(sheet, c.title) for c in self.table.columns])

    def append(self, cells: list[Any]) -> None:
        assert self.sheet is not None
        self.sheet.append(cells)
        self.rows += 1

    def full(self) -> bool:
        assert self.out is not None
        # One row kept free for the totals, which close the last sheet.
        return self.rows >= SHEET_MAX_ROWS - 1 or self.out.written >= SHEET_MAX_BYTES

    def close(self) -> None:
        if self.sheet is not None and self.out is not None:
            self.sheet.close()
            self.out.close()
            self.sheet = None

    def row(self, values: tuple[Any, ...], *, bold: bool = False) -> list[Any]:
        make = _bold_cell if bold else _cell
        return [
            make(column, value, self.zone, self.sheet)
            for column, value in zip(self.table.columns, values, strict=True)
        ]


def _sheet_title(title: str) -> str:
    cleaned = "".join(" " if c in "[]:*?/\\" else c for c in title).strip() or "Report"
    return cleaned[:SHEET_TITLE_LENGTH]


def _bold(sheet: WriteOnlyWorksheet, value: Any) -> Cell:
    cell = WriteOnlyCell(sheet, value=_text(str(value)))
    cell.font = BOLD
    return cell


def _text(value: str) -> str:
    return ILLEGAL_CHARACTERS_RE.sub(REPLACEMENT, value)


def _cell(column: Column, value: Any, zone: ZoneInfo, sheet: WriteOnlyWorksheet) -> Any:
    """A value openpyxl writes as it is, or a cell where it needs a style: creating a styled
    cell costs more than writing it, so only times, money, percentages and text that could be
    taken for a formula get one (an export of a million rows writes 17 million cells)."""
    if value is None or isinstance(value, bool | int) or column.kind == "boolean":
        return value
    if isinstance(value, datetime):
        value = local_time(value, zone)
    elif not isinstance(value, Decimal | float):
        text = _text(str(value))
        if not formula_risk(text):
            return text
        cell = WriteOnlyCell(sheet, value=text)
        cell.data_type = "s"  # openpyxl took the leading "=" for a formula
        cell.quotePrefix = True
        return cell
    cell = WriteOnlyCell(sheet, value=value)
    number_format = NUMBER_FORMATS.get(column.kind)
    if number_format is not None:
        cell.number_format = number_format
    return cell


def _bold_cell(column: Column, value: Any, zone: ZoneInfo, sheet: WriteOnlyWorksheet) -> Cell:
    found = _cell(column, value, zone, sheet)
    cell = found if isinstance(found, Cell) else WriteOnlyCell(sheet, value=found)
    cell.font = BOLD
    return cell


def xlsx_chunks(table: ReportTable, zone: ZoneInfo) -> Iterator[bytes]:
    """The workbook of ``table``, in chunks of at least ``FLUSH_ROWS`` rows once started."""
    sink = _Sink()
    archive = zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED)
    sheets = _SheetStream(table, zone, archive)
    try:
        sheets.open()
        yield sink.take()  # the first member's header: the download has started
        for count, values in enumerate(table.rows, start=1):
            if sheets.full():
                sheets.close()
                sheets.open()
            sheets.append(sheets.row(values))
            if count % FLUSH_ROWS == 0 and (data := sink.take()):
                yield data
        if table.totals is not None:
            sheets.append(sheets.row(table.totals, bold=True))
        sheets.close()
        _StreamedExcelWriter(sheets.workbook, archive).write_data()
    finally:
        # Also when the reader went away: close the member and the archive (into the sink,
        # which is dropped) rather than leave them to a finaliser that would complain.
        sheets.close()
        archive.close()
    yield sink.take()
