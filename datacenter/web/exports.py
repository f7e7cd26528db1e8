"""Report exports as downloads: ``/reports/<name>/export.<csv|xlsx|pdf>?<report parameters>``.

Contract:

- One URL per catalogue report and format (``datacenter.reports.catalog.REPORTS`` x
  ``datacenter.exports.stream.MEDIA_TYPES``), endpoint ``exports.<name>_<format>``; the query
  string is the report page's (``datacenter.reports.query_string``), so a page links to its own
  export with ``export_url``. Only tenant users (``tenant``, ``tenant_admin``) may export, and
  only within their own scope: the report runs with ``report_scope`` of the signed-in user's
  ``UserScope``, and external numbers are masked as the portal masks them.
- A bad parameter (a date, a filter, an option, a PDF of too many rows) is answered 400 with a
  page naming the parameter and the fix, never a stack trace: the report's first row and the
  file's first chunk are produced before the answer starts, so those errors come first.
- The file streams (Flask's ``stream_with_context``) from a store connection of its own, open
  for the life of the stream and closed when the last chunk is sent or when the client goes
  away (the WSGI server closes the response, which closes the rows and the connection).
- ``Content-Disposition`` names the tenant, report and period
  (``acme-summary-extension-2025-03-01-2025-03-31.xlsx``); ``Cache-Control: no-store``.
- Every export is recorded in the audit log (event ``export``: report, format, parameters).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Response, abort, render_template, request, stream_with_context, url_for
from flask.typing import ResponseReturnValue

from datacenter.accounts import audit
from datacenter.accounts.tenants import Tenant
from datacenter.exports.heading import ExportHeading
from datacenter.exports.stream import MEDIA_TYPES, export_stream
from datacenter.reports.catalog import REPORTS, ReportParams, ReportTable
from datacenter.reports.query_string import query_args, report_params
from datacenter.reports.user_scope import report_scope
from datacenter.store.engine import write_transaction
from datacenter.web.auth import TENANT_ROLES, Viewer, require_viewer, role_required
from datacenter.web.database import store
from shared.errors import ValidationError

_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")

bp = Blueprint("exports", __name__)


def endpoint(name: str, fmt: str) -> str:
    return f"{name}_{fmt}"


def export_url(name: str, fmt: str, args: dict[str, str]) -> str:
    """The export of report ``name`` as ``fmt`` with the page's query-string ``args``."""
    values: dict[str, Any] = dict(args)
    return url_for(f"exports.{endpoint(name, fmt)}", **values)


def _view(name: str, fmt: str) -> Callable[[], ResponseReturnValue]:
    @role_required(*TENANT_ROLES)
    def view() -> ResponseReturnValue:
        return _export(name, fmt)

    view.__name__ = endpoint(name, fmt)
    return view


for _name in REPORTS:
    for _fmt in MEDIA_TYPES:
        bp.add_url_rule(
            f"/reports/{_name}/export.{_fmt}", endpoint(_name, _fmt), _view(_name, _fmt)
        )


def _export(name: str, fmt: str) -> ResponseReturnValue:
    viewer = require_viewer()
    tenant = viewer.tenant
    if tenant is None:  # pragma: no cover - the schema gives every tenant user a tenant
        abort(403)
    # The export's own connection, not the request's: Flask tears the request's down when the
    # view returns, before the body is read (stream_with_context pushes the context again only
    # then), and a streamed result must keep its connection until the last row.
    download = _Download(store.report_engine.connect())
    try:
        params = _params(tenant, viewer)
        table = REPORTS[name].run(download.conn, params)
        download.rows = table.rows
        table = _peeked(table)  # runs the query: a bad filter is an error now, not mid-file
        download.chunks = export_stream(
            table, fmt, tenant.zone, heading=_heading(tenant, viewer, params)
        )
        download.first = next(download.chunks, b"")
        _audit(tenant, viewer, name, fmt, params)
    except ValidationError as error:
        download.close()
        return _bad_request(error)
    except BaseException:
        download.close()
        raise
    response = Response(stream_with_context(download.body()), mimetype=MEDIA_TYPES[fmt])
    response.call_on_close(download.close)  # the server closes the body, read or not
    response.headers["Content-Disposition"] = (
        f'attachment; filename="{_filename(tenant, name, fmt, params)}"'
    )
    response.headers["Cache-Control"] = "no-store"
    return response


class _Download:
    """A file being sent: its chunks, the rows they are made of and the rows' connection.

    ``close`` ends all three; it runs when the last chunk has gone and again (harmlessly) when
    the WSGI server closes the response, which it does also when the client went away
    mid-file or before the first chunk was read."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self.rows: Iterable[Any] = ()
        self.chunks: Iterator[bytes] = iter(())
        self.first = b""

    def body(self) -> Iterator[bytes]:
        try:
            yield self.first
            yield from self.chunks
        finally:
            self.close()

    def close(self) -> None:
        for source in (self.chunks, self.rows):  # generators: stop reading, close the cursor
            close = getattr(source, "close", None)
            if close is not None:
                close()
        self.conn.close()


def _params(tenant: Tenant, viewer: Viewer) -> ReportParams:
    today = datetime.now(UTC).astimezone(tenant.zone).date()
    params = report_params(
        request.args, tenant_id=tenant.tenant_id, zone=tenant.zone, today=today,
        scope=report_scope(viewer.scope),
    )  # fmt: skip
    return replace(params, mask_digits=viewer.mask_digits)  # the catalogue masks the rows


def _peeked(table: ReportTable) -> ReportTable:
    rows = iter(table.rows)
    first = next(rows, None)
    return replace(table, rows=rows if first is None else itertools.chain([first], rows))


def _heading(tenant: Tenant, viewer: Viewer, params: ReportParams) -> ExportHeading:
    period = f"{params.first_day.isoformat()} to {params.last_day.isoformat()}"
    return ExportHeading(tenant.name, period, viewer.scope.describe())


def _filename(tenant: Tenant, name: str, fmt: str, params: ReportParams) -> str:
    parts = [tenant.slug, name, params.options.get("by", "") if name == "summary" else "",
             params.first_day.isoformat(), params.last_day.isoformat()]  # fmt: skip
    stem = "-".join(part for part in parts if part)
    return f"{_UNSAFE_FILENAME.sub('_', stem)}.{fmt}"


def _audit(tenant: Tenant, viewer: Viewer, name: str, fmt: str, params: ReportParams) -> None:
    with write_transaction(store.engine) as conn:
        audit.record(
            conn, "export", at=datetime.now(UTC), tenant_id=tenant.tenant_id,
            actor=viewer.email, subject=name, address=request.remote_addr or "",
            details={"report": name, "format": fmt, "parameters": query_args(params)},
        )  # fmt: skip


def _bad_request(error: ValidationError) -> ResponseReturnValue:
    message = f"The export could not be made: {error.field}: {error.problem}."
    page = render_template("errors/error.html", code=400, title="Bad Request", message=message)
    return page, 400


__all__ = ["bp", "endpoint", "export_url"]
del _name, _fmt
