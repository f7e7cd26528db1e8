"""A report table as the bytes of a file, produced chunk by chunk.

``export_stream(table, fmt, zone, heading=None)`` yields the file in chunks while it reads the
table's rows, so a download starts at once and a CSV or XLSX export of any number of rows never
holds them all (``xlsx.py`` says how the workbook streams). A PDF (``pdf.py``) is built whole
and is refused past ``pdf.MAX_ROWS`` rows; ``heading`` (tenant, period, scope) is printed on
it. The error for an unknown format or a PDF too large is raised when the first chunk is
asked for, so a caller that takes the first chunk before answering can still answer 400.

CSV values are written as their column's kind says: money as a plain decimal (no currency
sign: the row's currency has its own column), seconds as whole seconds, times in the tenant's
zone as ``YYYY-MM-DD HH:MM:SS``, and text that a spreadsheet could take for a formula with a
``'`` before it (``cells.formula_risk``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from datacenter.exports.cells import safe_text
from datacenter.exports.heading import ExportHeading
from datacenter.reports.catalog import Column, ReportTable
from shared.errors import ValidationError

CSV_FLUSH_ROWS = 1_000
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
}


def csv_value(column: Column, value: Any, zone: ZoneInfo) -> str:
    """One cell as CSV text."""
    if value is None:
        return ""
    if column.kind == "datetime" and isinstance(value, datetime):
        return value.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")
    if column.kind == "boolean":
        return "yes" if value else "no"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, str):
        return safe_text(value)
    return str(value)


def _csv(table: ReportTable, zone: ZoneInfo) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")  # RFC 4180
    buffer.write("\ufeff")  # a byte-order mark, so spreadsheet programs read UTF-8
    writer.writerow([c.title for c in table.columns])
    # The header leaves at once: the download starts while the first rows are read and written
    # (a thousand rows take a few hundred ms on a loaded machine).
    yield buffer.getvalue().encode()
    buffer.seek(0)
    buffer.truncate()
    for count, row in enumerate(table.rows, start=1):
        writer.writerow([csv_value(c, v, zone) for c, v in zip(table.columns, row, strict=True)])
        if count % CSV_FLUSH_ROWS == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    if table.totals is not None:
        cells = zip(table.columns, table.totals, strict=True)
        writer.writerow([csv_value(c, v, zone) for c, v in cells])
    yield buffer.getvalue().encode()


def export_stream(
    table: ReportTable, fmt: str, zone: ZoneInfo, *, heading: ExportHeading | None = None
) -> Iterator[bytes]:
    """The file of ``table`` in ``fmt`` (a key of ``MEDIA_TYPES``), in chunks."""
    if fmt == "csv":
        return _csv(table, zone)
    # The writers are imported when asked for: openpyxl adds about 20 MB to a process, fpdf2
    # (with the numpy it loads when present) about 50 MB, to every web worker that never makes
    # such a file (benchmarks/exports.py measures an export's peak RSS).
    if fmt == "xlsx":
        from datacenter.exports.xlsx import xlsx_chunks

        return xlsx_chunks(table, zone)
    if fmt == "pdf":
        from datacenter.exports.pdf import pdf_chunks

        return pdf_chunks(table, zone, heading)
    raise ValidationError("format", f"{fmt!r} is not one of: {', '.join(MEDIA_TYPES)}")
