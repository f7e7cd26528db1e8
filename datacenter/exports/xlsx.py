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

The zip's first member is opened, and its header sent, before openpyxl is even imported
(``xlsx_sheets.py``): on a busy machine loading it took seconds, longer than the target for
a download's first byte.

Memory: the sink holds at most one flush's worth of compressed bytes (``FLUSH_ROWS`` rows),
the zip and XML writers a few buffers; nothing grows with the number of rows.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

from datacenter.reports.catalog import ReportTable

FLUSH_ROWS = 1_000
SHEET_MAX_ROWS = 1_048_576  # Excel's rows per sheet
SHEET_MAX_BYTES = 1_500_000_000  # uncompressed sheet XML; zipfile needs ZIP64 past 2**31 - 1
FIRST_SHEET = "xl/worksheets/sheet1.xml"  # where openpyxl's ExcelWriter puts the first sheet


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


def xlsx_chunks(table: ReportTable, zone: ZoneInfo) -> Iterator[bytes]:
    """The workbook of ``table``, in chunks of at least ``FLUSH_ROWS`` rows once started."""
    sink = _Sink()
    archive = zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED)
    first_member = archive.open(FIRST_SHEET, "w")
    sheets: Any = None
    try:
        yield sink.take()  # the zip's first header: the download has started
        from datacenter.exports.xlsx_sheets import SheetStream  # openpyxl: loaded only now

        sheets = SheetStream(
            table, zone, archive, first_member=first_member,
            max_rows=SHEET_MAX_ROWS, max_bytes=SHEET_MAX_BYTES,
        )  # fmt: skip
        sheets.open()
        for count, values in enumerate(table.rows, start=1):
            if sheets.full():
                sheets.close()
                sheets.open()
            sheets.append(sheets.row(values))
            if count % FLUSH_ROWS == 0 and (data := sink.take()):
                yield data
        if table.totals is not None:
            sheets.append(sheets.row(table.totals, bold=True))
        sheets.finish()
    finally:
        # Also when the reader went away: close the member and the archive (into the sink,
        # which is dropped) rather than leave them to a finaliser that would complain.
        if sheets is not None:
            sheets.close()
        first_member.close()
        archive.close()
    yield sink.take()
