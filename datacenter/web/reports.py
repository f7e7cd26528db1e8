"""Report pages and the dashboard: the catalogue (``reports.catalog``) in the tenant portal.

Contract:

- ``/dashboard`` (the tenant's landing page): today and this month against the previous period
  (``reports.dashboard``), drawn as server-side SVG (``web.charts``); read from the rollups.
  ``?day=YYYY-MM-DD`` shows it for an earlier day (that day and its month up to it).
- ``/reports``: the catalogue, one entry per report with what it answers.
- ``/reports/<report_name>``: the report for the query string (``web.report_params``: ``from``,
  ``to``, ``sort``, ``order``, ``f.<column>`` filters in the MCS syntax, ``o.<option>``), with its
  totals and sub-totals. Every cost opens its explanation: in a table of calls it links to the
  call's page (``/calls/<id>``), in a summary row to the call-detail report filtered to the
  calls that row counts. Export links carry the same query string (``/reports/<name>/export.csv``,
  ``.xlsx``, ``.pdf``).
- Every page needs the ``tenant`` or ``tenant_admin`` role; reports run with the viewer's scope
  (``reports.user_scope``) and number masking, so a viewer never sees a call outside their scope
  in a row or a total. A bad parameter is answered 400 with the page and the message naming it
  (never a stack trace); an unknown report is 404.
- A streaming report (call detail) shows its first ``PAGE_ROWS`` rows; the export has them all.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from itertools import islice
from urllib.parse import quote, urlencode

from flask import Blueprint, abort, render_template, request, url_for
from flask.typing import ResponseReturnValue

from datacenter.reports.catalog import REPORTS, ReportParams, ReportSpec, ReportTable, label
from datacenter.reports.columns import FILTERS
from datacenter.reports.dashboard import dashboard as dashboard_figures
from datacenter.reports.query_string import query_args, report_params
from datacenter.reports.tables import Row
from datacenter.reports.user_scope import report_scope
from datacenter.web.auth import Viewer, require_viewer, role_required, utc_now
from datacenter.web.charts import dashboard_charts
from datacenter.web.database import store
from datacenter.web.report_cells import cell_text, is_number
from shared.errors import ValidationError

PAGE_ROWS = 500
EXPORT_FORMATS = ("csv", "xlsx", "pdf")

bp = Blueprint("reports", __name__)


def _viewer() -> Viewer:
    viewer = require_viewer()
    if viewer.tenant is None:  # pragma: no cover - the schema gives every tenant user a tenant
        abort(403)
    return viewer


@bp.route("/dashboard")
@role_required("tenant", "tenant_admin")
def dashboard() -> ResponseReturnValue:
    viewer = _viewer()
    assert viewer.tenant is not None
    zone = viewer.tenant.zone
    today = utc_now().astimezone(zone).date()
    asked = request.args.get("day", "").strip()
    if asked:  # the dashboard as it stood at the end of an earlier day
        try:
            today = date.fromisoformat(asked)
        except ValueError:
            message = f"'day': {asked!r} is not a date; write YYYY-MM-DD"
            return render_template("reports/dashboard.html", error=message, zone=zone), 400
    figures = dashboard_figures(
        store.report_connection(), viewer.tenant.tenant_id, zone, today, report_scope(viewer.scope)
    )
    return render_template(
        "reports/dashboard.html", board=figures, zone=zone, today=today,
        charts=dashboard_charts(figures), error=None,
    )  # fmt: skip


@bp.route("/reports")
@role_required("tenant", "tenant_admin")
def index() -> ResponseReturnValue:
    return render_template("reports/index.html", reports=list(REPORTS.values()))


@bp.route("/reports/<report_name>")
@role_required("tenant", "tenant_admin")
def report_page(report_name: str) -> ResponseReturnValue:
    spec = REPORTS.get(report_name)
    if spec is None:
        abort(404)
    viewer = _viewer()
    assert viewer.tenant is not None
    zone = viewer.tenant.zone
    today = utc_now().astimezone(zone).date()
    args = {key: request.args.get(key, "") for key in request.args}
    error: ValidationError | None = None
    params: ReportParams | None = None
    table: ReportTable | None = None
    rows: list[Row] = []
    more = False
    try:
        params = report_params(args, tenant_id=viewer.tenant.tenant_id, zone=zone, today=today,
                               scope=report_scope(viewer.scope))  # fmt: skip
        params = replace(params, mask_digits=viewer.mask_digits)
        table = spec.run(store.report_connection(), params)
        rows = list(islice(table.rows, PAGE_ROWS + 1))
        more = len(rows) > PAGE_ROWS
        rows = rows[:PAGE_ROWS]
    except ValidationError as problem:
        error = problem
    page = render_template(
        "reports/report.html", spec=spec, table=table, rows=rows, more=more, error=error,
        args=args, zone=zone, filters=_filter_fields(spec, args), page_rows=PAGE_ROWS,
        links=_Links(spec, table, params), cell=cell_text, is_number=is_number, label=label,
        defaults=_defaults(today), export_formats=EXPORT_FORMATS,
    )  # fmt: skip
    return page, 400 if error else 200


def _defaults(today: date) -> dict[str, str]:
    return {"from": today.replace(day=1).isoformat(), "to": today.isoformat()}


def _filter_fields(spec: ReportSpec, args: dict[str, str]) -> list[tuple[str, str, str]]:
    """(query key, label, value) of each filter the report takes, in column order."""
    return [(f"f.{name}", label(name), args.get(f"f.{name}", "")) for name in FILTERS
            if name in spec.filters]  # fmt: skip


class _Links:
    """The page's links: sorting, drill-downs, call explanations, exports."""

    def __init__(self, spec: ReportSpec, table: ReportTable | None, params: ReportParams | None):
        self.spec, self.table, self.params = spec, table, params
        marker = "RECORD-ID"
        self._call = url_for("portal.call_detail", record_id=marker)
        self._marker = marker
        self._record_at = (
            table.index(table.record_column) if table is not None and table.record_column else None
        )

    def export(self, fmt: str) -> str:
        query = urlencode(query_args(self.params)) if self.params is not None else ""
        path = url_for("reports.report_page", report_name=self.spec.name) + f"/export.{fmt}"
        return f"{path}?{query}" if query else path

    def save(self) -> str:
        """The saved-report form with this page's report and parameters."""
        args = {"report": self.spec.name}
        if self.params is not None:
            args |= query_args(self.params)
        return url_for("saved.saved_new") + "?" + urlencode(args)

    def sort(self, key: str) -> str:
        if self.params is None:
            return "#"
        descending = not (self.params.sort == key and self.params.descending)
        args = query_args(replace(self.params, sort=key, descending=descending))
        return url_for("reports.report_page", report_name=self.spec.name) + "?" + urlencode(args)

    def call(self, row: Row) -> str | None:
        if self._record_at is None or not row[self._record_at]:
            return None
        return self._call.replace(self._marker, quote(str(row[self._record_at]), safe=""))

    def drill(self, row: Row) -> str | None:
        if self.table is None or self.table.drill is None or self.params is None:
            return None
        filters = self.table.drill(row)
        if filters is None:
            return None
        detail = replace(self.params, filters=filters, options={}, sort=None)
        path = url_for("reports.report_page", report_name="detail")
        return f"{path}?{urlencode(query_args(detail))}"

    def cost(self, row: Row) -> str | None:
        """Where a money cell of ``row`` leads: the call's explanation, else the drill-down."""
        return self.call(row) or self.drill(row)
