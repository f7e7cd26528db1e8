"""``/directory``: a tenant's directory, listed, searched, edited, added to and imported from CSV.

Contract:

- Viewing needs a tenant user of the tenant; changing anything needs ``can_edit_directory``,
  the one place the permission is decided (tenant admins only, once roles arrive). Entries are
  always read and written with the viewer's tenant id: an entry id of another tenant is 404.
- The CSV import shows a preview first (rows to write, and every bad line with its number);
  "Import" writes only a file without errors, in one transaction.
- Adding an entry for an extension someone holds closes their period at the new one's start
  (``datacenter.directory.entries``), so their past calls stay theirs.
"""

from __future__ import annotations

from datetime import datetime, time

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from werkzeug.datastructures import FileStorage
from wtforms import BooleanField, DateField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional, Regexp

from datacenter.accounts.tenants import Tenant
from datacenter.accounts.users import User
from datacenter.directory.csv_import import CsvPreview, parse_directory_csv
from datacenter.directory.entries import (
    ApplyReport,
    EntryFilter,
    EntryInput,
    add_entry,
    apply_entries,
    get_entry,
    list_entries,
    update_entry,
)
from datacenter.store.engine import write_transaction
from datacenter.web.auth import require_viewer, role_required
from datacenter.web.database import store

bp = Blueprint("directory", __name__, url_prefix="/directory")
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
MAX_CSV_BYTES = 900_000  # under the app's MAX_CONTENT_LENGTH, with room for the form


def can_edit_directory(user: User) -> bool:
    """Who may change a tenant's directory: its tenant admins."""
    return user.role == "tenant_admin" and user.tenant_id is not None


def _require_whole_tenant() -> None:
    """The directory lists the whole tenant: a user limited to a part of it may not read it."""
    if not require_viewer().scope.whole:
        abort(403)


class SearchForm(FlaskForm):  # type: ignore[misc]
    class Meta:
        csrf = False

    q = StringField("Search", validators=[Optional(), Length(max=200)])
    current = BooleanField("Current only")


class EntryForm(FlaskForm):  # type: ignore[misc]
    person = StringField("Person", validators=[DataRequired("Enter a name."), Length(max=200)])
    email = StringField("Email", validators=[Optional(), Regexp(EMAIL_PATTERN,
                        message="Not an email address."), Length(max=254)])  # fmt: skip
    department = StringField("Department", validators=[Optional(), Length(max=200)])
    cost_centre = StringField("Cost centre", validators=[Optional(), Length(max=200)])
    site = StringField("Site", validators=[Optional(), Length(max=200)])


class NewEntryForm(EntryForm):
    extension = StringField("Extension", validators=[DataRequired("Enter the extension."),
                                                     Length(max=64)])  # fmt: skip
    valid_from = DateField("From", validators=[Optional()])


class ImportForm(FlaskForm):  # type: ignore[misc]
    file = FileField("CSV file")
    text = TextAreaField("or paste it", validators=[Optional(), Length(max=MAX_CSV_BYTES)])


@bp.route("")
@role_required("tenant", "tenant_admin")
def entries() -> ResponseReturnValue:
    _require_whole_tenant()
    tenant = _tenant()
    search = SearchForm(formdata=request.args)
    search.validate()
    entry_filter = EntryFilter(text=search.q.data or "", current_only=bool(search.current.data))
    return render_template(
        "directory/entries.html",
        search=search,
        entries=list_entries(store.connection(), tenant.tenant_id, entry_filter),
        new_form=NewEntryForm(formdata=None),
        can_edit=can_edit_directory(require_viewer().user),
        zone=tenant.zone,
    )


@bp.route("/new", methods=["POST"])
@role_required("tenant", "tenant_admin")
def new_entry() -> ResponseReturnValue:
    tenant = _editable_tenant()
    form = NewEntryForm()
    if not form.validate_on_submit():
        flash("; ".join(e for errors in form.errors.values() for e in errors), "error")
        return redirect(url_for("directory.entries"))
    day = form.valid_from.data
    entry = EntryInput(
        extension=(form.extension.data or "").strip(),
        person=(form.person.data or "").strip(),
        email=(form.email.data or "").strip(),
        department=(form.department.data or "").strip(),
        cost_centre=(form.cost_centre.data or "").strip(),
        site=(form.site.data or "").strip(),
        valid_from=datetime.combine(day, time(), tzinfo=tenant.zone) if day else None,
    )
    with write_transaction(store.engine) as conn:
        report = add_entry(conn, tenant.tenant_id, entry)
    if report.problems:
        flash(report.problems[0].message, "error")
    else:
        flash(f"Extension {entry.extension}: {entry.person} added.", "success")
    return redirect(url_for("directory.entries"))


@bp.route("/<entry_id>", methods=["GET", "POST"])
@role_required("tenant", "tenant_admin")
def edit_entry(entry_id: str) -> ResponseReturnValue:
    _require_whole_tenant()
    tenant = _tenant()
    entry = get_entry(store.connection(), tenant.tenant_id, entry_id)
    if entry is None:
        abort(404)
    can_edit = can_edit_directory(require_viewer().user)
    form = EntryForm(obj=entry)
    if request.method == "POST":
        if not can_edit:
            abort(403)
        if form.validate_on_submit():
            changes = {name: form[name].data or "" for name in
                       ("person", "email", "department", "cost_centre", "site")}  # fmt: skip
            with write_transaction(store.engine) as conn:
                update_entry(conn, tenant.tenant_id, entry_id, changes)
            flash(f"Extension {entry.extension} saved.", "success")
            return redirect(url_for("directory.entries"))
    return render_template(
        "directory/edit.html", form=form, entry=entry, can_edit=can_edit, zone=tenant.zone
    )


@bp.route("/import", methods=["GET", "POST"])
@role_required("tenant", "tenant_admin")
def import_csv() -> ResponseReturnValue:
    tenant = _editable_tenant()
    form = ImportForm()
    preview: CsvPreview | None = None
    text = ""
    if form.validate_on_submit():
        text = _uploaded_text(form)
        preview = parse_directory_csv(text, tenant.zone)
        if request.form.get("action") == "import" and preview.ok:
            try:
                with write_transaction(store.engine) as conn:
                    report = apply_entries(conn, tenant.tenant_id, preview.entries, source="csv")
                    if report.problems:
                        raise _Refused(report)  # rolls the whole file back
            except _Refused as refused:
                preview.problems = refused.report.problems
            else:
                flash(f"Imported: {report.summary()}.", "success")
                return redirect(url_for("directory.entries"))
    return render_template(
        "directory/import.html", form=form, preview=preview, text=text, zone=tenant.zone
    )


class _Refused(Exception):
    def __init__(self, report: ApplyReport) -> None:
        super().__init__(report.summary())
        self.report = report


def _uploaded_text(form: ImportForm) -> str:
    upload = form.file.data
    if isinstance(upload, FileStorage) and upload.filename:
        data: bytes = upload.read(MAX_CSV_BYTES + 1)
        return data.decode("utf-8", errors="replace")
    return str(form.text.data or "")


def _tenant() -> Tenant:
    tenant = require_viewer().tenant
    if tenant is None:  # pragma: no cover - the schema gives every tenant user a tenant
        abort(403)
    return tenant


def _editable_tenant() -> Tenant:
    if not can_edit_directory(require_viewer().user):
        abort(403)
    return _tenant()
