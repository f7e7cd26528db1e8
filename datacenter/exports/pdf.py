"""A report table as a PDF (fpdf2): for summaries and dashboard tables, not for bulk data.

The document is A4 landscape: the report's title, the tenant, the period and the viewer's
scope at the top of the first page, then the table (its header repeated on every page, the
totals row bold at the end), and "Page N of M" at the foot of each page. Cells read as a person
reads them (``cells.display_text``): times on the tenant's clock, money with at least two
decimals, durations as h:mm:ss.

A PDF is built whole before its first byte, so it is bounded: a table of more than
``MAX_ROWS`` rows (a streamed call detail of a busy month) is refused with a ValidationError
that says to narrow the report or export CSV or XLSX, before anything is sent.

Text is set in DejaVu Sans Condensed (``FONT_DIR``, Debian's fonts-dejavu-core), which covers
the scripts of names and places a directory holds; without it, in the built-in Helvetica, with
the characters Latin-1 lacks shown as "?".
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from pathlib import Path
from zoneinfo import ZoneInfo

from fpdf import FPDF

from datacenter.exports.cells import display_text
from datacenter.exports.heading import ExportHeading
from datacenter.reports.catalog import Column, ColumnKind, ReportTable
from shared.errors import ValidationError

MAX_ROWS = 5_000  # about 170 pages
FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
FONT_FILES = {"": "DejaVuSansCondensed.ttf", "B": "DejaVuSansCondensed-Bold.ttf"}
FONT_SIZE = 8.0
MIN_FONT_SIZE = 5.0
TITLE_SIZE = 14
MARGIN_MM = 10
ROW_HEIGHT_MM = 4.5
WIDTH_TOLERANCE_MM = 0.01  # (w + pad) - pad can fall a hair short of w
HEADER_FILL = (225, 230, 240)
ELLIPSIS = "\u2026"
RIGHT_ALIGNED: frozenset[ColumnKind] = frozenset({"integer", "seconds", "money", "percent"})


class _Document(FPDF):
    def __init__(self) -> None:
        super().__init__(orientation="L", unit="mm", format="A4")
        self.set_margins(MARGIN_MM, MARGIN_MM, MARGIN_MM)
        self.set_auto_page_break(True, margin=MARGIN_MM + 5)
        self.family = _load_font(self)
        self.font_size_for_table = FONT_SIZE

    def footer(self) -> None:
        self.set_y(-(MARGIN_MM + 2))
        self.set_font(self.family, "", FONT_SIZE)
        self.cell(0, 5, f"Page {self.page_no()} of {{nb}}", align="C")

    def text_of(self, text: str) -> str:
        if self.family == "DejaVu":
            return text
        return text.encode("latin-1", "replace").decode("latin-1")


def _load_font(pdf: FPDF) -> str:
    if all((FONT_DIR / name).is_file() for name in FONT_FILES.values()):
        for style, name in FONT_FILES.items():
            pdf.add_font("DejaVu", style, str(FONT_DIR / name))
        return "DejaVu"
    return "Helvetica"


def _bounded_rows(table: ReportTable, zone: ZoneInfo) -> list[list[str]]:
    rows = list(itertools.islice(table.rows, MAX_ROWS + 1))
    if len(rows) > MAX_ROWS:
        raise ValidationError(
            "format",
            f"a PDF holds at most {MAX_ROWS:,} rows and this report has more: narrow the "
            "period or the filters, or export it as CSV or XLSX",
        )
    return [_texts(table.columns, row, zone) for row in rows]


def _texts(columns: Sequence[Column], values: Sequence[object], zone: ZoneInfo) -> list[str]:
    return [display_text(c, v, zone) for c, v in zip(columns, values, strict=True)]


def _widths(pdf: _Document, rows: list[list[str]], *, scale: bool = True) -> list[float]:
    """Each column as wide as its widest text (header and totals included), in millimetres;
    if they do not fit on the page together, all are narrowed in proportion (and long texts
    are cut with an ellipsis)."""
    pad = 2 * pdf.c_margin
    widest = [0.0] * len(rows[0])
    for row in rows:
        widest = [max(w, pdf.get_string_width(t) + pad) for w, t in zip(widest, row, strict=True)]
    factor = min(1.0, pdf.epw / sum(widest)) if scale else 1.0
    return [w * factor for w in widest]


def _fit(pdf: _Document, text: str, width: float) -> str:
    room = width - 2 * pdf.c_margin + WIDTH_TOLERANCE_MM  # the widest text itself must fit
    if pdf.get_string_width(text) <= room:
        return text
    while text and pdf.get_string_width(text + ELLIPSIS) > room:
        text = text[:-1]
    return text + ELLIPSIS


def _heading(pdf: _Document, title: str, heading: ExportHeading | None) -> None:
    pdf.set_font(pdf.family, "B", TITLE_SIZE)
    pdf.cell(0, 8, pdf.text_of(title), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(pdf.family, "", FONT_SIZE + 1.5)
    if heading is not None:
        for label, value in (("Tenant", heading.tenant), ("Period", heading.period),
                             ("Scope", heading.scope)):  # fmt: skip
            pdf.cell(0, 5, pdf.text_of(f"{label}: {value}"), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)


class _Grid:
    """The table drawn cell by cell (fpdf2's ``table()`` lays out every cell as wrapped text,
    about a millisecond each: a 1,000-row summary took seconds), header repeated per page."""

    def __init__(self, pdf: _Document, columns: Sequence[Column], widths: list[float]) -> None:
        self.pdf, self.widths = pdf, widths
        self.align = ["R" if c.kind in RIGHT_ALIGNED else "L" for c in columns]
        self.header = [c.title for c in columns]

    def row(self, texts: Sequence[str], *, style: str = "", fill: bool = False) -> None:
        pdf = self.pdf
        if pdf.will_page_break(ROW_HEIGHT_MM):
            pdf.add_page()
            self.head()
        pdf.set_font(pdf.family, style, pdf.font_size_for_table)
        for text, width, align in zip(texts, self.widths, self.align, strict=True):
            shown = _fit(pdf, pdf.text_of(text), width)
            pdf.cell(width, ROW_HEIGHT_MM, shown, border="B", align=align, fill=fill)
        pdf.ln(ROW_HEIGHT_MM)

    def head(self) -> None:
        self.pdf.set_fill_color(*HEADER_FILL)
        self.row(self.header, style="B", fill=True)


def pdf_bytes(table: ReportTable, zone: ZoneInfo, heading: ExportHeading | None = None) -> bytes:
    """The whole PDF of ``table``; a ValidationError if it has more than ``MAX_ROWS`` rows."""
    rows = _bounded_rows(table, zone)
    totals = _texts(table.columns, table.totals, zone) if table.totals is not None else None
    pdf = _Document()
    pdf.add_page()
    _heading(pdf, table.title, heading)
    header = [c.title for c in table.columns]
    texts = [header, *rows, *([totals] if totals else [])]
    # A wide table is set smaller rather than cut: text width scales with the font size.
    pdf.set_font(pdf.family, "B", FONT_SIZE)  # the widest style: widths fit bold text too
    natural = sum(_widths(pdf, texts, scale=False))
    pdf.font_size_for_table = max(MIN_FONT_SIZE, FONT_SIZE * min(1.0, pdf.epw / natural))
    pdf.set_font(pdf.family, "B", pdf.font_size_for_table)
    grid = _Grid(pdf, table.columns, _widths(pdf, texts))
    grid.head()
    for row in rows:
        grid.row(row)
    if totals is not None:
        grid.row(totals, style="B")
    return bytes(pdf.output())


def pdf_chunks(
    table: ReportTable, zone: ZoneInfo, heading: ExportHeading | None = None
) -> Iterator[bytes]:
    yield pdf_bytes(table, zone, heading)
