"""Report exports through the web app, on the fixed data set of test_reports, on both backends.

The CSV and the XLSX are read back and checked cell by cell against the report's own figures
(the catalogue's table in the same store) and against the hand-computed ones of
``tests/integration/test_reports.py``; the PDF is rendered to PNG with pdftoppm and read with
pdftotext. A user limited to extension 2001 exports only 2001's calls.
"""

from __future__ import annotations

import csv
import io
import re
import subprocess
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import openpyxl
import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from datacenter.accounts import audit
from datacenter.accounts.scopes import scope_from, set_mask_digits, set_scope
from datacenter.accounts.tenants import Tenant
from datacenter.accounts.users import create_user
from datacenter.exports import pdf
from datacenter.exports.cells import QUOTE, formula_risk
from datacenter.reports.catalog import Column, ReportParams, report
from datacenter.settings import Settings
from datacenter.store.engine import write_transaction
from datacenter.web import create_app
from tests.fixtures.web import LENIENT, PASSWORD, login
from tests.integration.test_reports import CALLS, MON, SAT, SUN
from tests.integration.test_reports import tenant as tenant  # the fixed data set's fixture

ADMIN = "ada@acme.example"
OWN = "otto@acme.example"  # limited to extension 2001
PERIOD = "from=2025-03-29&to=2025-03-31"
DETAIL = f"/reports/detail/export.{{fmt}}?{PERIOD}&sort=start&order=asc"
BY_CLASS = "/reports/summary/export.{fmt}?from=2025-03-30&to=2025-03-31&o.by=destination_class"
ORDER = "DABCE"  # the calls by start time


@pytest.fixture
def app(
    tenant: Tenant, store: sa.Engine, dc_settings: Settings, cheap_passwords: None
) -> Iterator[Flask]:
    with write_transaction(store) as conn:
        create_user(conn, ADMIN, PASSWORD, "tenant_admin", tenant.tenant_id)
        own = create_user(conn, OWN, PASSWORD, "tenant", tenant.tenant_id)
        set_scope(conn, own, scope_from({"extension": ["2001"]}))
    app = create_app(dc_settings, test_config={"TESTING": True, "LOGIN_THROTTLE": LENIENT})
    yield app
    app.extensions["callcollect.store"].dispose()


def _client(app: Flask, email: str = ADMIN) -> FlaskClient:
    client = app.test_client()
    login(client, email)
    return client


def _figures(
    store: sa.Engine, tenant: Tenant, name: str, **kw: Any
) -> tuple[list[Column], list[tuple[Any, ...]], tuple[Any, ...] | None]:
    params = ReportParams(tenant.tenant_id, tenant.zone, kw.pop("first_day", SAT), MON, **kw)
    with store.connect() as conn:
        table = report(name).run(conn, params)
        return list(table.columns), list(table.rows), table.totals


def _csv_value(column: Column, text: str) -> Any:
    """A CSV cell back as the report's typed value."""
    if text == "":
        return None
    if column.kind == "money":
        return Decimal(text)
    if column.kind in ("integer", "seconds"):
        return int(text)
    if column.kind == "boolean":
        return {"yes": True, "no": False}[text]
    if column.kind == "datetime":
        return datetime.fromisoformat(text)
    return text[1:] if text.startswith(QUOTE) and formula_risk(text[1:]) else text


def _local(value: Any, tenant: Tenant) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(tenant.zone).replace(tzinfo=None)
    return value


def _empty_as_none(value: Any) -> Any:
    return None if value == "" else value


def test_the_call_detail_csv_holds_the_reports_figures_cell_by_cell(
    app: Flask, store: sa.Engine, tenant: Tenant
) -> None:
    response = _client(app).get(DETAIL.format(fmt="csv"))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="acme-detail-2025-03-29-2025-03-31.csv"'
    )
    assert response.headers["Cache-Control"] == "no-store"
    header, *rows = list(csv.reader(io.StringIO(response.get_data().decode("utf-8-sig"))))
    columns, figures, _ = _figures(store, tenant, "detail", descending=False)
    assert header == [c.title for c in columns]
    assert len(rows) == len(figures) == 5
    for row, expected in zip(rows, figures, strict=True):
        for column, text, value in zip(columns, row, expected, strict=True):
            assert _csv_value(column, text) == _empty_as_none(_local(value, tenant)), column.key
    # The hand-computed figures (test_reports): ids in start order, local times, costs.
    keys = [c.key for c in columns]

    def col(key: str) -> list[str]:
        return [row[keys.index(key)] for row in rows]

    assert col("record_id") == [CALLS[n].record_id for n in ORDER]
    assert col("start_utc") == ["2025-03-29 23:30:00", "2025-03-30 00:30:00",
                                "2025-03-30 23:59:30", "2025-03-31 00:00:00",
                                "2025-03-31 10:00:00"]  # fmt: skip
    assert col("cost")[1:] == ["0.050000", "0.030000", "0.030000", "0.080000"]
    assert col("billed_seconds")[1:] == ["180", "60", "60", "60"]


def test_the_summary_xlsx_holds_typed_figures_and_totals(
    app: Flask, store: sa.Engine, tenant: Tenant
) -> None:
    response = _client(app).get(BY_CLASS.format(fmt="xlsx"))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="acme-summary-destination_class-2025-03-30-2025-03-31.xlsx"'
    )
    sheet = openpyxl.load_workbook(io.BytesIO(response.get_data())).active
    assert sheet is not None
    header, *rows, totals = [[c.value for c in row] for row in sheet.iter_rows()]
    assert header == ["Destination class", "Currency", "Calls", "Answered", "Talk time",
                      "Billed time", "Cost"]  # fmt: skip
    assert rows == [
        ["mobile", "GBP", 1, 1, 60, 60, 0.08],
        ["national", "GBP", 3, 3, 235, 300, 0.11],
    ]
    assert totals == ["Total", "GBP", 4, 4, 295, 360, 0.19]
    columns, figures, figure_totals = _figures(
        store, tenant, "summary", first_day=SUN, options={"by": "destination_class"}
    )
    assert figure_totals is not None
    for row, expected in zip([*rows, totals], [*figures, figure_totals], strict=True):
        for column, got, value in zip(columns, row, expected, strict=True):
            want = float(value) if isinstance(value, Decimal) else value
            assert got == _empty_as_none(want), column.key
    assert sheet["G2"].number_format == "#,##0.00####"


def test_the_call_detail_xlsx_holds_the_reports_figures_cell_by_cell(
    app: Flask, store: sa.Engine, tenant: Tenant
) -> None:
    response = _client(app).get(DETAIL.format(fmt="xlsx"))
    assert response.status_code == 200, response.get_data(as_text=True)
    sheet = openpyxl.load_workbook(io.BytesIO(response.get_data())).active
    assert sheet is not None
    header, *rows = list(sheet.iter_rows())
    columns, figures, _ = _figures(store, tenant, "detail", descending=False)
    assert [c.value for c in header] == [c.title for c in columns]
    assert len(rows) == len(figures)
    for row, expected in zip(rows, figures, strict=True):
        for column, cell, value in zip(columns, row, expected, strict=True):
            want = _empty_as_none(_local(value, tenant))
            want = float(want) if isinstance(want, Decimal) else want
            assert cell.value == want, column.key
            if column.kind == "datetime" and want is not None:
                assert cell.is_date
    starts = [row[1].value for row in rows]
    assert starts[2] == datetime(2025, 3, 30, 23, 59, 30)  # B: 22:59:30 UTC is 23:59:30 BST


def _pdf_text(data: bytes, folder: Path) -> tuple[str, int]:
    path = folder / "report.pdf"
    path.write_bytes(data)
    subprocess.run(["pdftoppm", "-r", "50", "-gray", str(path), str(folder / "page")], check=True)
    pages = sorted(folder.glob("page-*.pgm"))
    for page in pages:
        assert _ink(page.read_bytes()) > 0.002, f"{page.name} is blank"
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True,
                          capture_output=True, text=True).stdout  # fmt: skip
    return text, len(pages)


def _ink(pgm: bytes) -> float:
    """The share of dark pixels of a binary PGM (P5) page."""
    fields = pgm.split(maxsplit=4)
    assert fields[0] == b"P5"
    pixels = fields[4]
    return sum(1 for value in pixels if value < 128) / len(pixels)


def test_the_summary_pdf_renders_with_its_heading_totals_and_page_number(
    app: Flask, tmp_path: Path
) -> None:
    response = _client(app).get(BY_CLASS.format(fmt="pdf"))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/pdf"
    text, pages = _pdf_text(response.get_data(), tmp_path)
    assert pages == 1
    assert "Summary by destination class" in text
    assert "Tenant: Acme" in text
    assert "Period: 2025-03-30 to 2025-03-31" in text
    assert "Scope: Whole organisation" in text
    totals = next(line for line in text.splitlines() if line.strip().startswith("Total"))
    assert totals.split() == ["Total", "GBP", "4", "4", "0:04:55", "0:06:00", "0.19"]
    assert re.search(r"mobile\s+GBP\s+1\s+1\s+0:01:00\s+0:01:00\s+0.08", text)
    assert "Page 1 of 1" in text


def test_a_pdf_of_too_many_rows_is_a_clear_400(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pdf, "MAX_ROWS", 4)
    response = _client(app).get(DETAIL.format(fmt="pdf"))
    assert response.status_code == 400
    body = response.get_data(as_text=True)
    assert "a PDF holds at most 4 rows" in body and "export it as CSV or XLSX" in body
    assert "Traceback" not in body


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("from=2025-13-01", "from: &#39;2025-13-01&#39; is not a date; write YYYY-MM-DD"),
        ("from=2025-03-02&to=2025-03-01", "to: the last day is before the first"),
        ("f.cost=cheap", "cost"),
        ("f.extension=2001-", "extension"),
        ("order=sideways", "order is asc or desc"),
    ],
)
def test_bad_parameters_are_a_400_that_names_them(app: Flask, query: str, message: str) -> None:
    for fmt in ("csv", "xlsx", "pdf"):
        response = _client(app).get(f"/reports/detail/export.{fmt}?{query}")
        body = response.get_data(as_text=True)
        assert response.status_code == 400, (fmt, query, body[:300])
        assert message in body and "Traceback" not in body


def test_a_summary_by_an_unknown_dimension_is_a_400(app: Flask) -> None:
    response = _client(app).get("/reports/summary/export.csv?o.by=shoe_size")
    assert response.status_code == 400
    assert "by: &#39;shoe_size&#39; is not one of" in response.get_data(as_text=True)


def test_a_scoped_user_exports_only_the_calls_in_scope(
    app: Flask, store: sa.Engine, tenant: Tenant
) -> None:
    client = _client(app, OWN)
    detail = client.get(DETAIL.format(fmt="csv")).get_data().decode("utf-8-sig")
    ids = [row[0] for row in list(csv.reader(io.StringIO(detail)))[1:]]
    assert ids == [CALLS["A"].record_id, CALLS["B"].record_id]
    for other in "CDE":
        assert CALLS[other].record_id not in detail
    book = openpyxl.load_workbook(io.BytesIO(client.get(BY_CLASS.format(fmt="xlsx")).get_data()))
    assert book.active is not None
    values = [[c.value for c in row] for row in book.active.iter_rows()]
    # 2001's calls A and B on the 30th, both national: E (mobile) and C (2002) are not counted.
    assert values[1:] == [
        ["national", "GBP", 2, 2, 175, 240, 0.08],
        ["Total", "GBP", 2, 2, 175, 240, 0.08],
    ]


def test_every_export_is_in_the_audit_log(app: Flask, store: sa.Engine, tenant: Tenant) -> None:
    client = _client(app)
    client.get(DETAIL.format(fmt="csv")).close()
    client.get(BY_CLASS.format(fmt="pdf")).close()
    client.get("/reports/detail/export.csv?from=nonsense").close()  # refused: not an export
    with store.connect() as conn:
        exports = [e for e in audit.events(conn, tenant.tenant_id) if e.event == "export"]
    assert [(e.actor, e.subject, e.details["format"]) for e in reversed(exports)] == [
        (ADMIN, "detail", "csv"), (ADMIN, "summary", "pdf"),
    ]  # fmt: skip
    assert exports[0].details["parameters"] == {
        "from": "2025-03-30", "to": "2025-03-31", "o.by": "destination_class",
    }  # fmt: skip


def test_the_store_connection_lives_as_long_as_the_stream(app: Flask) -> None:
    pool = app.extensions["callcollect.store"].pool
    client = _client(app)
    idle = pool.checkedout()
    # Drained: the connection is open while the file is read, and back once it is sent.
    response = client.get(DETAIL.format(fmt="xlsx"), buffered=False)
    chunks = cast(Iterator[bytes], iter(response.response))
    assert next(chunks).startswith(b"PK")
    assert pool.checkedout() == idle + 1
    assert b"".join(chunks)
    assert pool.checkedout() == idle
    response.close()
    # Abandoned after one chunk (the client went away): the server closes the response.
    response = client.get(DETAIL.format(fmt="csv"), buffered=False)
    next(iter(response.response))
    assert pool.checkedout() == idle + 1
    response.close()
    assert pool.checkedout() == idle
    # Never read at all.
    response = client.get(DETAIL.format(fmt="csv"), buffered=False)
    assert pool.checkedout() == idle + 1
    response.close()
    assert pool.checkedout() == idle


def test_only_tenant_users_may_export(app: Flask) -> None:
    anonymous = app.test_client().get(DETAIL.format(fmt="csv"))
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]


def test_every_catalogue_report_has_every_export(app: Flask) -> None:
    from datacenter.exports.stream import MEDIA_TYPES
    from datacenter.reports.catalog import REPORTS

    rules = {rule.rule for rule in app.url_map.iter_rules()}
    for name in REPORTS:
        for fmt in MEDIA_TYPES:
            assert f"/reports/{name}/export.{fmt}" in rules


def test_numbers_are_masked_in_an_export_as_in_the_call_list(
    app: Flask, store: sa.Engine, tenant: Tenant
) -> None:
    with write_transaction(store) as conn:
        set_mask_digits(conn, tenant.tenant_id, "tenant", 3)
    detail = _client(app, OWN).get(DETAIL.format(fmt="csv")).get_data().decode("utf-8-sig")
    header, *rows = list(csv.reader(io.StringIO(detail)))
    called, e164 = header.index("Called"), header.index("Number")
    assert [row[called] for row in rows] == ["901632960xxx", "901632960xxx"]  # A and B
    assert all(row[e164].endswith("xxx") for row in rows)
    assert "901632960123" not in detail


def test_a_masked_export_hides_the_most_called_numbers_and_refuses_a_number_filter(
    app: Flask, store: sa.Engine, tenant: Tenant
) -> None:
    """Exports mask through the catalogue (``ReportParams.mask_digits``), so every number column
    of every report is hidden, and a number filter (which would reveal the digits by counts)
    is refused, as on the report page."""
    with write_transaction(store) as conn:
        set_mask_digits(conn, tenant.tenant_id, "tenant", 3)
    client = _client(app, OWN)
    top = client.get(f"/reports/top/export.csv?{PERIOD}&o.kind=numbers&o.n=10")
    assert top.status_code == 200
    header, *rows = list(csv.reader(io.StringIO(top.get_data().decode("utf-8-sig"))))
    number = header.index("Number")
    numbers = [row[number] for row in rows if row[0] != "Total"]
    assert numbers and all(n.endswith("xxx") and n[:-3].isdigit() for n in numbers)
    refused = client.get(DETAIL.format(fmt="csv") + "&f.called=901632960123")
    assert refused.status_code == 400 and "cannot be filtered" in refused.get_data(as_text=True)
