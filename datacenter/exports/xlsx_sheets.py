"""The openpyxl half of the streamed workbook (``xlsx.py``): sheets, typed cells, styles.

Imported by ``xlsx.xlsx_chunks`` only after the zip's first bytes have left, so loading
openpyxl (a second or more on a busy machine) never delays the start of a download.
"""

from __future__ import annotations

import zipfile
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

SHEET_TITLE_LENGTH = 31  # Excel's limit
NUMBER_FORMATS: dict[ColumnKind, str] = {
    "money": "#,##0.00####",  # two decimals at least, up to the store's six
    "percent": '0.0"%"',  # the value is 0-100, as in the report
    "datetime": "yyyy-mm-dd hh:mm:ss",
}
COLUMN_WIDTHS: dict[ColumnKind, int] = {"datetime": 20, "money": 12, "text": 18}
BOLD = Font(bold=True)
REPLACEMENT = "\ufffd"


def sheet_path(number: int) -> str:
    """The archive path openpyxl's ExcelWriter gives the n-th sheet."""
    return f"xl/worksheets/sheet{number}.xml"


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


class SheetStream:
    """The workbook's sheets, one open at a time, each a member of ``archive``."""

    def __init__(
        self, table: ReportTable, zone: ZoneInfo, archive: zipfile.ZipFile, *,
        first_member: Any, max_rows: int, max_bytes: int,
    ) -> None:  # fmt: skip
        self.table, self.zone, self.archive = table, zone, archive
        self.first_member, self.max_rows, self.max_bytes = first_member, max_rows, max_bytes
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
        # The member at the path ExcelWriter gives the n-th sheet: the writer streams into it.
        member, self.first_member = self.first_member, None
        self.out = _Counted(member or self.archive.open(sheet_path(number), "w"))
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
        return self.rows >= self.max_rows - 1 or self.out.written >= self.max_bytes

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

    def finish(self) -> None:
        """The workbook's other parts (styles, workbook, content types) after its sheets."""
        self.close()
        _StreamedExcelWriter(self.workbook, self.archive).write_data()


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
