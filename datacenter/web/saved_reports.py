"""Saved, shared and scheduled reports in the portal, and the signed links scheduled mail carries.

Contract:

- Every page but the link needs the ``tenant`` or ``tenant_admin`` role. A saved report the
  viewer may not see (another tenant's, a colleague's private one) and a schedule the viewer
  may not manage answer 404, exactly like an id that does not exist.
- Opening a saved report runs it under the *viewer's* scope (``reports.saved.run_saved``), so
  a report shared by a tenant admin shows a scoped colleague only their own calls; the preview
  shows ``PREVIEW_ROWS`` rows and the totals, the download streams the whole file.
- ``/saved/new?report=NAME&<query string>`` saves the report a page shows (its query string,
  as ``datacenter.reports.query_string`` reads it); the form picks the title, the columns and
  whether the tenant shares it.
- Schedules: add, pause/resume, delete, "Run now" (a manual run the scheduler sends on its
  next pass), and each schedule's run history with its status and error.
- ``/reports/links/<token>``: no sign-in; a valid link streams the run's report (run as the
  schedule's owner, over the run's period), a tampered one answers 403, an expired one 410;
  every fetch and refusal is in the audit log.
- Every form is a Flask-WTF form (CSRF token); changes are audit-logged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from itertools import islice
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    HiddenField,
    IntegerField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    widgets,
)
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from datacenter.accounts.tenants import Tenant
from datacenter.exports.stream import MEDIA_TYPES, csv_value, export_stream
from datacenter.reports.catalog import REPORTS, ReportTable
from datacenter.reports.links import LinkExpired, LinkSigner, LinkTampered
from datacenter.reports.recurrence import (
    LAST_DAY,
    MAX_MONTH_DAY,
    ORDINALS,
    PERIODS,
    WEEKDAY_NAMES,
    recurrence,
)
from datacenter.reports.saved import (
    SavedReport,
    can_manage,
    delete,
    get_saved,
    list_saved,
    rename,
    report_args,
    run_saved,
    save_report,
    set_shared,
)
from datacenter.reports.scheduler import (
    attachment_name,
    owned_report,
    owner_view,
    report_as_owner,
)
from datacenter.reports.schedules import (
    DEFAULT_LINK_DAYS,
    DELIVERIES,
    MAX_LINK_DAYS,
    Schedule,
    add_schedule,
    delete_schedule,
    get_schedule,
    queue_run,
    run_by_id,
    runs_of,
    schedule_by_id,
    schedules_of,
    set_active,
)
from datacenter.store.engine import write_transaction
from datacenter.web.auth import Viewer, record_audit, require_viewer, role_required
from datacenter.web.database import store
from datacenter.web.display import duration
from datacenter.web.forms import ButtonForm, form_errors
from shared.errors import CallCollectError

PREVIEW_ROWS = 50
TENANT_ROLES = ("tenant", "tenant_admin")

bp = Blueprint("saved", __name__)


class _Checkboxes(SelectMultipleField):  # type: ignore[misc]
    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


class SaveReportForm(FlaskForm):  # type: ignore[misc]
    report = HiddenField(validators=[DataRequired()])
    query = StringField(
        "Parameters (the report page's query string: dates, f.filters, o.options)",
        validators=[Optional(), Length(max=4000)],
    )
    title = StringField("Title", validators=[DataRequired(), Length(max=200)])
    columns = _Checkboxes("Columns (none ticked: all)", choices=[], validate_choice=False)
    shared = BooleanField("Share with everyone in the organisation")


class RenameForm(FlaskForm):  # type: ignore[misc]
    title = StringField("Title", validators=[DataRequired(), Length(max=200)])


class ShareForm(FlaskForm):  # type: ignore[misc]
    shared = SelectField("Who sees it", choices=[SelectChoice("0", "Only me (and tenant admins)"),
                                                  SelectChoice("1", "Everyone in the organisation")])  # fmt: skip


class ScheduleForm(FlaskForm):  # type: ignore[misc]
    frequency = SelectField("Repeat", choices=[SelectChoice("daily", "Every day"),
                                               SelectChoice("weekly", "Weekly"),
                                               SelectChoice("monthly", "Monthly")])  # fmt: skip
    at = StringField("At (local time, HH:MM)", default="07:00",
                     validators=[DataRequired(), Length(max=5)])  # fmt: skip
    weekdays = _Checkboxes(
        "On (weekly)", choices=[SelectChoice(str(i), n) for i, n in enumerate(WEEKDAY_NAMES)]
    )
    monthly = SelectField("Monthly on", choices=[SelectChoice("day", "a day of the month"),
                                                 SelectChoice("weekday", "a weekday")])  # fmt: skip
    month_day = SelectField(
        "Day of the month",
        choices=[SelectChoice(str(d), str(d)) for d in range(1, MAX_MONTH_DAY + 1)]
        + [SelectChoice(str(LAST_DAY), "the last day")],
    )
    nth = SelectField("Which", choices=[SelectChoice(str(n), w) for n, w in ORDINALS.items()])
    nth_weekday = SelectField(
        "Weekday", choices=[SelectChoice(str(i), n) for i, n in enumerate(WEEKDAY_NAMES)]
    )
    period = SelectField("Covering", choices=[SelectChoice(k, v) for k, v in PERIODS.items()])
    recipients = TextAreaField("Send to (addresses, one a line or comma-separated)",
                               validators=[DataRequired(), Length(max=6000)])  # fmt: skip
    format = SelectField("Format", choices=[])
    delivery = SelectField("Delivery", choices=[SelectChoice(k, v) for k, v in DELIVERIES.items()])
    link_days = IntegerField("Link valid for (days)", default=DEFAULT_LINK_DAYS,
                             validators=[Optional(), NumberRange(min=1, max=MAX_LINK_DAYS)])  # fmt: skip

    def set_formats(self) -> None:
        self.format.choices = [SelectChoice(k, k.upper()) for k in MEDIA_TYPES]


# --- helpers ------------------------------------------------------------------------------


def _viewer() -> tuple[Viewer, Tenant]:
    viewer = require_viewer()
    if viewer.tenant is None:  # pragma: no cover - role_required lets only tenant users in
        abort(403)
    return viewer, viewer.tenant


def _now() -> datetime:
    return datetime.now(UTC)


def _saved_or_404(saved_id: int, *, manage: bool = False) -> SavedReport:
    viewer, _ = _viewer()
    saved = get_saved(store.connection(), saved_id, viewer.user)
    if saved is None or (manage and not can_manage(saved, viewer.user)):
        abort(404)
    return saved


def _schedule_or_404(schedule_id: int) -> tuple[Schedule, SavedReport]:
    viewer, _ = _viewer()
    found = get_schedule(store.connection(), schedule_id, viewer.user)
    if found is None:
        abort(404)
    return found


def _posted_schedule(schedule_id: int) -> tuple[Viewer, Tenant, Schedule, SavedReport]:
    """The schedule a button on its page acts on, once the button's CSRF token is checked."""
    viewer, tenant = _viewer()
    found, saved = _schedule_or_404(schedule_id)
    form = ButtonForm()
    if not form.validate_on_submit():
        form_errors(form)
    return viewer, tenant, found, saved


def _download(
    build: Callable[[sa.Connection], ReportTable], fmt: str, tenant: Tenant, filename: str
) -> Response:
    """Stream the report ``build`` makes, on a connection of its own: the request's connection
    is closed when the view returns, long before a large file has been read."""
    engine = store.report_engine

    def chunks() -> Iterator[bytes]:
        with engine.connect() as conn:
            yield from export_stream(build(conn), fmt, tenant.zone)

    response = Response(chunks(), mimetype=MEDIA_TYPES[fmt])
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


# --- saved reports ------------------------------------------------------------------------


@bp.route("/saved")
@role_required(*TENANT_ROLES)
def saved_list() -> ResponseReturnValue:
    viewer, _ = _viewer()
    reports = list_saved(store.connection(), viewer.user)
    return render_template("saved/list.html", reports=reports, catalogue=REPORTS,
                           viewer_id=viewer.user.user_id)  # fmt: skip


@bp.route("/saved/new", methods=["GET", "POST"])
@role_required(*TENANT_ROLES)
def saved_new() -> ResponseReturnValue:
    viewer, tenant = _viewer()
    form = SaveReportForm()
    if request.method == "GET":
        args = {k: v for k, v in request.args.items() if k != "report"}
        form.report.data = request.args.get("report", "summary")
        form.query.data = urlencode(sorted(args.items()))
        form.title.data = REPORTS[form.report.data].title if form.report.data in REPORTS else ""
    columns: list[tuple[str, str]] = []
    try:
        probe = SavedReport(0, tenant.tenant_id, viewer.user.user_id, viewer.email,
                            form.report.data or "", form.query.data or "", (), "probe", False,
                            _now(), _now())  # fmt: skip
        if probe.report not in REPORTS:
            raise CallCollectError(f"no report {probe.report!r}")
        table = run_saved(store.report_connection(), probe, zone=tenant.zone, scope=viewer.scope,
                          today=_now().astimezone(tenant.zone).date())  # fmt: skip
        columns = [(c.key, c.title) for c in table.columns]
    except CallCollectError as exc:
        flash(f"This report cannot be saved: {exc}", "error")
        return render_template("saved/new.html", form=form, columns=[]), 400
    form.columns.choices = [SelectChoice(k, t) for k, t in columns]
    if form.validate_on_submit():
        try:
            with write_transaction(store.engine) as conn:
                saved = save_report(
                    conn, viewer.user, name=form.report.data, query=form.query.data or "",
                    columns=form.columns.data or [], title=form.title.data or "",
                    shared=bool(form.shared.data), zone=tenant.zone, now=_now(),
                )  # fmt: skip
                record_audit(conn, "report_saved", tenant_id=tenant.tenant_id,
                             subject=saved.title, details={"saved_id": saved.saved_id,
                                                           "shared": saved.shared})  # fmt: skip
        except CallCollectError as exc:
            flash(f"Nothing saved: {exc}", "error")
        else:
            flash(f"Saved “{saved.title}”.", "success")
            return redirect(url_for("saved.saved_report", saved_id=saved.saved_id))
    elif request.method == "POST":
        flash(f"Nothing saved: {form_errors(form)}", "error")
    return render_template("saved/new.html", form=form, columns=columns)


@bp.route("/saved/<int:saved_id>")
@role_required(*TENANT_ROLES)
def saved_report(saved_id: int) -> ResponseReturnValue:
    viewer, tenant = _viewer()
    saved = _saved_or_404(saved_id)
    conn = store.connection()
    error = ""
    table: ReportTable | None = None
    rows: list[list[str]] = []
    totals: list[str] | None = None
    try:
        table = run_saved(store.report_connection(), saved, zone=tenant.zone, scope=viewer.scope,
                          today=_now().astimezone(tenant.zone).date(),
                          mask_digits=viewer.mask_digits)  # fmt: skip
        rows = [_cells(table, row, tenant) for row in islice(table.rows, PREVIEW_ROWS)]
        totals = _cells(table, table.totals, tenant) if table.totals is not None else None
    except CallCollectError as exc:
        error = str(exc)
    manage = can_manage(saved, viewer.user)
    report_page = _report_page_url(saved)
    return render_template(
        "saved/report.html", saved=saved, table=table, rows=rows, totals=totals, error=error,
        manage=manage, schedules=schedules_of(conn, saved) if manage else [],
        rename_form=RenameForm(title=saved.title), share_form=ShareForm(shared=str(int(saved.shared))),
        button=ButtonForm(), formats=list(MEDIA_TYPES), preview_rows=PREVIEW_ROWS,
        report_page=report_page, zone=tenant.zone, own=saved.owner_id == viewer.user.user_id,
    )  # fmt: skip


def _cells(table: ReportTable, row: Any, tenant: Tenant) -> list[str]:
    """A row as the page shows it: durations as h:mm:ss, the rest as in the CSV file."""
    return [
        duration(v) if c.kind == "seconds" and v is not None else csv_value(c, v, tenant.zone)
        for c, v in zip(table.columns, row, strict=True)
    ]


def _report_page_url(saved: SavedReport) -> str:
    """The report's own page (/reports/<name>) with these parameters."""
    return url_for("reports.report_page", report_name=saved.report) + "?" + saved.query


@bp.route("/saved/<int:saved_id>/download")
@role_required(*TENANT_ROLES)
def saved_download(saved_id: int) -> ResponseReturnValue:
    viewer, tenant = _viewer()
    saved = _saved_or_404(saved_id)
    fmt = request.args.get("format", "csv")
    if fmt not in MEDIA_TYPES:
        abort(404)
    today = _now().astimezone(tenant.zone).date()
    try:  # a bad parameter is refused here, before the download starts
        report_args(saved.query, tenant_id=tenant.tenant_id, zone=tenant.zone, today=today,
                    scope=viewer.scope)  # fmt: skip
    except CallCollectError as exc:
        flash(f"This report cannot run: {exc}", "error")
        return redirect(url_for("saved.saved_report", saved_id=saved_id))
    with write_transaction(store.engine) as conn:
        record_audit(conn, "export", tenant_id=tenant.tenant_id, subject=saved.title,
                     details={"saved_id": saved_id, "format": fmt})  # fmt: skip
    scope, masked = viewer.scope, viewer.mask_digits
    return _download(
        lambda conn: run_saved(conn, saved, zone=tenant.zone, scope=scope, today=today,
                               mask_digits=masked),
        fmt, tenant, f"{saved.report}-{saved_id}.{fmt}",
    )  # fmt: skip


@bp.route("/saved/<int:saved_id>/rename", methods=["POST"])
@role_required(*TENANT_ROLES)
def saved_rename(saved_id: int) -> ResponseReturnValue:
    viewer, tenant = _viewer()
    saved = _saved_or_404(saved_id, manage=True)
    form = RenameForm()
    if not form.validate_on_submit():
        flash(f"Nothing changed: {form_errors(form)}", "error")
        return redirect(url_for("saved.saved_report", saved_id=saved_id))
    try:
        with write_transaction(store.engine) as conn:
            rename(conn, saved, viewer.user, form.title.data or "", now=_now())
            record_audit(conn, "report_changed", tenant_id=tenant.tenant_id, subject=saved.title,
                         details={"saved_id": saved_id, "title": form.title.data})  # fmt: skip
    except CallCollectError as exc:
        flash(f"Nothing changed: {exc}", "error")
    else:
        flash("Renamed.", "success")
    return redirect(url_for("saved.saved_report", saved_id=saved_id))


@bp.route("/saved/<int:saved_id>/share", methods=["POST"])
@role_required(*TENANT_ROLES)
def saved_share(saved_id: int) -> ResponseReturnValue:
    viewer, tenant = _viewer()
    saved = _saved_or_404(saved_id, manage=True)
    form = ShareForm()
    if not form.validate_on_submit():
        flash(f"Nothing changed: {form_errors(form)}", "error")
        return redirect(url_for("saved.saved_report", saved_id=saved_id))
    shared = form.shared.data == "1"
    with write_transaction(store.engine) as conn:
        set_shared(conn, saved, viewer.user, shared, now=_now())
        record_audit(conn, "report_changed", tenant_id=tenant.tenant_id, subject=saved.title,
                     details={"saved_id": saved_id, "shared": shared})  # fmt: skip
    flash("Shared with the organisation." if shared else "Now private.", "success")
    return redirect(url_for("saved.saved_report", saved_id=saved_id))


@bp.route("/saved/<int:saved_id>/delete", methods=["POST"])
@role_required(*TENANT_ROLES)
def saved_delete(saved_id: int) -> ResponseReturnValue:
    viewer, tenant = _viewer()
    saved = _saved_or_404(saved_id, manage=True)
    form = ButtonForm()
    if not form.validate_on_submit():
        form_errors(form)
    with write_transaction(store.engine) as conn:
        delete(conn, saved, viewer.user)
        record_audit(conn, "report_deleted", tenant_id=tenant.tenant_id, subject=saved.title,
                     details={"saved_id": saved_id})  # fmt: skip
    flash(f"Deleted “{saved.title}” and its schedules.", "success")
    return redirect(url_for("saved.saved_list"))


# --- schedules ----------------------------------------------------------------------------


@bp.route("/saved/<int:saved_id>/schedule", methods=["GET", "POST"])
@role_required(*TENANT_ROLES)
def schedule_new(saved_id: int) -> ResponseReturnValue:
    viewer, tenant = _viewer()
    saved = _saved_or_404(saved_id, manage=True)
    form = ScheduleForm()
    form.set_formats()
    if request.method == "GET":
        form.recipients.data = viewer.email
    if form.validate_on_submit():
        try:
            with write_transaction(store.engine) as conn:
                schedule = add_schedule(
                    conn, saved, viewer.user, recurrence=_recurrence(form),
                    period=form.period.data, recipients=form.recipients.data or "",
                    fmt=form.format.data, delivery=form.delivery.data,
                    link_days=form.link_days.data or DEFAULT_LINK_DAYS, zone=tenant.zone,
                    now=_now(),
                )  # fmt: skip
                record_audit(conn, "schedule_added", tenant_id=tenant.tenant_id,
                             subject=saved.title,
                             details={"schedule_id": schedule.schedule_id,
                                      "when": schedule.recurrence.describe(),
                                      "recipients": list(schedule.recipients)})  # fmt: skip
        except CallCollectError as exc:
            flash(f"Nothing scheduled: {exc}", "error")
        else:
            flash(f"Scheduled: {schedule.recurrence.describe()}.", "success")
            return redirect(url_for("saved.schedule", schedule_id=schedule.schedule_id))
    elif request.method == "POST":
        flash(f"Nothing scheduled: {form_errors(form)}", "error")
    return render_template("saved/schedule_new.html", form=form, saved=saved, tenant=tenant)


def _recurrence(form: ScheduleForm) -> Any:
    if form.frequency.data == "monthly" and form.monthly.data == "day":
        return recurrence("monthly", form.at.data or "", month_day=int(form.month_day.data))
    if form.frequency.data == "monthly":
        return recurrence("monthly", form.at.data or "", nth=int(form.nth.data),
                          nth_weekday=int(form.nth_weekday.data))  # fmt: skip
    return recurrence(form.frequency.data, form.at.data or "",
                      weekdays=[int(d) for d in form.weekdays.data or []])  # fmt: skip


@bp.route("/schedules/<int:schedule_id>")
@role_required(*TENANT_ROLES)
def schedule(schedule_id: int) -> ResponseReturnValue:
    _, tenant = _viewer()
    found, saved = _schedule_or_404(schedule_id)
    return render_template(
        "saved/schedule.html", schedule=found, saved=saved, runs=runs_of(store.connection(), found),
        button=ButtonForm(), zone=tenant.zone, periods=PERIODS, deliveries=DELIVERIES,
    )  # fmt: skip


@bp.route("/schedules/<int:schedule_id>/run", methods=["POST"])
@role_required(*TENANT_ROLES)
def schedule_run_now(schedule_id: int) -> ResponseReturnValue:
    viewer, tenant, found, saved = _posted_schedule(schedule_id)
    with write_transaction(store.engine) as conn:
        run_id = queue_run(conn, found, saved, zone=tenant.zone, now=_now(),
                           requested_by=viewer.email)  # fmt: skip
        record_audit(conn, "schedule_run_requested", tenant_id=tenant.tenant_id,
                     subject=saved.title, details={"schedule_id": schedule_id, "run_id": run_id})  # fmt: skip
    flash("Queued: the scheduler sends it on its next pass (within a minute).", "success")
    return redirect(url_for("saved.schedule", schedule_id=schedule_id))


@bp.route("/schedules/<int:schedule_id>/pause", methods=["POST"])
@role_required(*TENANT_ROLES)
def schedule_pause(schedule_id: int) -> ResponseReturnValue:
    _, tenant, found, saved = _posted_schedule(schedule_id)
    with write_transaction(store.engine) as conn:
        set_active(conn, found, not found.active, zone=tenant.zone, now=_now())
        record_audit(conn, "schedule_changed", tenant_id=tenant.tenant_id, subject=saved.title,
                     details={"schedule_id": schedule_id, "active": not found.active})  # fmt: skip
    flash("Resumed." if not found.active else "Paused.", "success")
    return redirect(url_for("saved.schedule", schedule_id=schedule_id))


@bp.route("/schedules/<int:schedule_id>/delete", methods=["POST"])
@role_required(*TENANT_ROLES)
def schedule_delete(schedule_id: int) -> ResponseReturnValue:
    _, tenant, found, saved = _posted_schedule(schedule_id)
    with write_transaction(store.engine) as conn:
        delete_schedule(conn, found)
        record_audit(conn, "schedule_deleted", tenant_id=tenant.tenant_id, subject=saved.title,
                     details={"schedule_id": schedule_id})  # fmt: skip
    flash("Schedule deleted with its history.", "success")
    return redirect(url_for("saved.saved_report", saved_id=saved.saved_id))


# --- signed links -------------------------------------------------------------------------


@bp.route("/reports/links/<token>")
def report_link(token: str) -> ResponseReturnValue:
    now = _now()
    try:
        target = LinkSigner(current_app.config["SECRET_KEY"]).read(token, now=now)
    except LinkTampered:
        _link_audit("report_link_refused", None, {"reason": "tampered"})
        abort(403)
    except LinkExpired as exc:
        _link_audit("report_link_refused", None, {"reason": str(exc)})
        abort(410)
    conn = store.connection()
    run = run_by_id(conn, target.run_id)
    found = schedule_by_id(conn, run.schedule_id) if run is not None else None
    if run is None or found is None or run.tenant_id != target.tenant_id:
        abort(404)
    try:  # owner and parameters checked before the download starts
        saved, tenant = owned_report(conn, found)
        report_args(saved.query, tenant_id=tenant.tenant_id, zone=tenant.zone,
                    today=now.astimezone(tenant.zone).date(), scope=owner_view(conn, saved)[0])  # fmt: skip
    except CallCollectError:
        abort(404)
    _link_audit("report_link_fetched", run.tenant_id,
                {"run_id": run.run_id, "saved_id": saved.saved_id}, subject=saved.title)  # fmt: skip
    return _download(
        lambda conn: report_as_owner(conn, saved, tenant, run, now=now),
        found.format, tenant, attachment_name(saved, run, found.format),
    )  # fmt: skip


def _link_audit(
    event: str, tenant_id: int | None, details: dict[str, Any], *, subject: str = ""
) -> None:
    try:
        with write_transaction(store.engine) as conn:
            record_audit(conn, event, tenant_id=tenant_id, subject=subject, details=details,
                         actor="signed link")  # fmt: skip
    except sa.exc.SQLAlchemyError:  # pragma: no cover - the answer matters more than the log
        current_app.logger.exception("could not audit-log a report link")
