"""Tenant admins' pages: their tenant's users, scopes, number masking and audit log.

Contract:

- Every page needs the ``tenant_admin`` role and touches only the admin's own tenant: a user id
  of another tenant answers 404, exactly like one that does not exist.
- Adding a user, changing a role or scope, disabling, enabling, resetting a password and
  unlocking are POSTs with a CSRF token; each is written to the audit log. A role or scope
  change, disabling and a password reset end every session of that user (they sign in again
  under the new rules). An admin cannot disable or demote themselves (a tenant keeps an admin).
- ``/admin/audit`` lists the tenant's audit log, newest first.
- ``/admin/recordings`` shows and changes the tenant's recording policy (days of audio kept,
  whether assigned technicians may play); a tenant user's page grants or takes away playing and
  downloading recordings (tenant admins always may; technicians only by the policy). Both are
  audited like the ``datacenter recordings`` commands.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from datacenter.accounts import audit, throttle
from datacenter.accounts.scopes import mask_settings, scope_of, set_mask_digits, set_scope
from datacenter.accounts.tenants import Tenant
from datacenter.accounts.users import (
    User,
    create_user,
    get_user,
    list_users,
    set_disabled,
    set_password,
    set_role,
)
from datacenter.recordings.access import (
    RecordingPolicy,
    grant,
    permissions_of,
    policy_of,
    revoke,
    set_policy,
)
from datacenter.store.engine import write_transaction
from datacenter.store.tables.directory import directory_entries
from datacenter.web.auth import end_sessions_of, record_audit, require_viewer, role_required
from datacenter.web.database import store
from datacenter.web.forms import (
    ButtonForm,
    EditUserForm,
    MaskingForm,
    NewUserForm,
    RecordingPermissionsForm,
    RecordingPolicyForm,
    ResetPasswordForm,
    form_errors,
)
from shared.errors import CallCollectError

bp = Blueprint("admin", __name__, url_prefix="/admin")
ADMIN = "tenant_admin"


@bp.route("/")
@role_required(ADMIN)
def index() -> ResponseReturnValue:
    return redirect(url_for("admin.users"))


@bp.route("/users")
@role_required(ADMIN)
def users() -> ResponseReturnValue:
    conn = store.connection()
    tenant = _tenant()
    people = list_users(conn, tenant_id=tenant.tenant_id)
    return render_template(
        "admin/users.html",
        tenant=tenant,
        people=[(user, scope_of(conn, user)) for user in people],
    )


@bp.route("/users/new", methods=["GET", "POST"])
@role_required(ADMIN)
def new_user() -> ResponseReturnValue:
    tenant = _tenant()
    form = NewUserForm()
    if form.validate_on_submit():
        try:
            with write_transaction(store.engine) as conn:
                user = create_user(
                    conn, form.email.data or "", form.password.data or "", form.role.data,
                    tenant.tenant_id, display_name=form.display_name.data or "",
                )  # fmt: skip
                scope = form.scope()
                set_scope(conn, user, scope)
                record_audit(conn, "user_added", tenant_id=tenant.tenant_id, subject=user.email,
                             details={"role": user.role, "scope": scope.describe()})  # fmt: skip
        except CallCollectError as exc:
            flash(f"Nothing changed: {exc}", "error")
        else:
            flash(f"Added {user.email} ({scope.describe()}).", "success")
            return redirect(url_for("admin.users"))
    elif request.method == "POST":
        flash(f"Nothing changed: {form_errors(form)}", "error")
    return render_template(
        "admin/new_user.html", tenant=tenant, form=form, known=_known_values(tenant)
    )


@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
@role_required(ADMIN)
def user(user_id: int) -> ResponseReturnValue:
    tenant = _tenant()
    person = _my_user(user_id)
    form = EditUserForm(role=person.role)
    if request.method == "GET":
        form.fill(scope_of(store.connection(), person))
    elif form.validate_on_submit():
        _change_role_and_scope(tenant, person, form)
        return redirect(url_for("admin.user", user_id=user_id))
    else:
        flash(f"Nothing changed: {form_errors(form)}", "error")
    held = permissions_of(store.connection(), person)
    permissions = RecordingPermissionsForm(
        play="recordings" in held, download="recordings_download" in held, formdata=None
    )
    return render_template(
        "admin/user.html", tenant=tenant, person=person, form=form, button=ButtonForm(),
        reset_form=ResetPasswordForm(), known=_known_values(tenant), permissions=permissions,
    )  # fmt: skip


@bp.route("/users/<int:user_id>/disable", methods=["POST"])
@role_required(ADMIN)
def disable(user_id: int) -> ResponseReturnValue:
    return _switch(user_id, disabled=True)


@bp.route("/users/<int:user_id>/enable", methods=["POST"])
@role_required(ADMIN)
def enable(user_id: int) -> ResponseReturnValue:
    return _switch(user_id, disabled=False)


@bp.route("/users/<int:user_id>/password", methods=["POST"])
@role_required(ADMIN)
def reset_password(user_id: int) -> ResponseReturnValue:
    tenant, person = _tenant(), _my_user(user_id)
    form = ResetPasswordForm()
    if not form.validate_on_submit():
        flash(f"Nothing changed: {form_errors(form)}", "error")
        return redirect(url_for("admin.user", user_id=user_id))
    try:
        with write_transaction(store.engine) as conn:
            set_password(conn, person.user_id, form.password.data or "")
            end_sessions_of(conn, person, "password_reset")
            record_audit(conn, "password_reset", tenant_id=tenant.tenant_id, subject=person.email)
    except CallCollectError as exc:
        flash(f"Nothing changed: {exc}", "error")
    else:
        flash(f"New password set for {person.email}; their sessions have ended.", "success")
    return redirect(url_for("admin.user", user_id=user_id))


@bp.route("/users/<int:user_id>/unlock", methods=["POST"])
@role_required(ADMIN)
def unlock(user_id: int) -> ResponseReturnValue:
    tenant, person = _tenant(), _my_user(user_id)
    form = ButtonForm()
    if not form.validate_on_submit():
        form_errors(form)
    with write_transaction(store.engine) as conn:
        if throttle.unlock(conn, person.user_id):
            record_audit(conn, "unlocked", tenant_id=tenant.tenant_id, subject=person.email)
    flash(f"{person.email} can sign in again.", "success")
    return redirect(url_for("admin.user", user_id=user_id))


@bp.route("/masking", methods=["GET", "POST"])
@role_required(ADMIN)
def masking() -> ResponseReturnValue:
    tenant = _tenant()
    form = MaskingForm()
    if form.validate_on_submit():
        with write_transaction(store.engine) as conn:
            for role in ("tenant", "tenant_admin", "technician"):
                set_mask_digits(conn, tenant.tenant_id, role, int(form[role].data))
            record_audit(conn, "masking_changed", tenant_id=tenant.tenant_id,
                         details={r: int(form[r].data) for r in ("tenant", "tenant_admin",
                                                                 "technician")})  # fmt: skip
        flash("Number masking saved.", "success")
        return redirect(url_for("admin.masking"))
    if request.method == "POST":
        flash(f"Nothing changed: {form_errors(form)}", "error")
    for role, digits in mask_settings(store.connection(), tenant.tenant_id).items():
        form[role].data = str(digits)
    return render_template("admin/masking.html", tenant=tenant, form=form)


@bp.route("/recordings", methods=["GET", "POST"])
@role_required(ADMIN)
def recordings() -> ResponseReturnValue:
    tenant = _tenant()
    form = RecordingPolicyForm()
    if form.validate_on_submit():
        policy = RecordingPolicy(form.retention_days.data, bool(form.technicians.data))
        with write_transaction(store.engine) as conn:
            set_policy(conn, tenant.tenant_id, policy)
            record_audit(conn, "recording_policy_changed", tenant_id=tenant.tenant_id,
                         subject=tenant.slug,
                         details={"retention_days": policy.retention_days,
                                  "technicians_may_play": policy.technicians_may_play})  # fmt: skip
        flash("Recording policy saved.", "success")
        return redirect(url_for("admin.recordings"))
    if request.method == "POST":
        flash(f"Nothing changed: {form_errors(form)}", "error")
    else:
        current = policy_of(store.connection(), tenant.tenant_id)
        form.retention_days.data = current.retention_days
        form.technicians.data = current.technicians_may_play
    return render_template("admin/recordings.html", tenant=tenant, form=form)


@bp.route("/users/<int:user_id>/recordings", methods=["POST"])
@role_required(ADMIN)
def recording_permissions(user_id: int) -> ResponseReturnValue:
    tenant, person = _tenant(), _my_user(user_id)
    form = RecordingPermissionsForm()
    if not form.validate_on_submit():
        flash(f"Nothing changed: {form_errors(form)}", "error")
        return redirect(url_for("admin.user", user_id=user_id))
    wanted = {"recordings": bool(form.play.data), "recordings_download": bool(form.download.data)}
    try:
        with write_transaction(store.engine) as conn:
            for permission, granted in wanted.items():
                change = grant if granted else revoke
                if change(conn, person, permission):
                    record_audit(conn, "permission_changed", tenant_id=tenant.tenant_id,
                                 subject=person.email,
                                 details={"permission": permission, "granted": granted})  # fmt: skip
    except CallCollectError as exc:
        flash(f"Nothing changed: {exc}", "error")
    else:
        flash(f"Recording permissions of {person.email} saved.", "success")
    return redirect(url_for("admin.user", user_id=user_id))


@bp.route("/audit")
@role_required(ADMIN)
def audit_log() -> ResponseReturnValue:
    tenant = _tenant()
    entries = audit.events(store.connection(), tenant.tenant_id)
    return render_template("admin/audit.html", tenant=tenant, entries=entries)


# --- helpers ------------------------------------------------------------------------------------


def _tenant() -> Tenant:
    tenant = require_viewer().tenant
    if tenant is None:  # pragma: no cover - the schema gives every tenant admin a tenant
        abort(403)
    return tenant


def _my_user(user_id: int) -> User:
    """A user of the admin's own tenant; 404 for anyone else's (no probing)."""
    person = get_user(store.connection(), user_id)
    if person is None or person.tenant_id != _tenant().tenant_id:
        abort(404)
    return person


def _change_role_and_scope(tenant: Tenant, person: User, form: EditUserForm) -> None:
    me = require_viewer().user
    if person.user_id == me.user_id and form.role.data != me.role:
        flash("Nothing changed: you cannot change your own role.", "error")
        return
    try:
        with write_transaction(store.engine) as conn:
            before = scope_of(conn, person)
            scope = form.scope()
            set_role(conn, person.user_id, form.role.data)
            set_scope(conn, person, scope)
            changed = person.role != form.role.data or before != scope_of(conn, person)
            if changed:
                if person.user_id != me.user_id:
                    end_sessions_of(conn, person, "role_or_scope_changed")
                event = "role_changed" if person.role != form.role.data else "scope_changed"
                record_audit(conn, event, tenant_id=tenant.tenant_id, subject=person.email,
                             details={"role": form.role.data, "scope": scope.describe()})  # fmt: skip
    except CallCollectError as exc:
        flash(f"Nothing changed: {exc}", "error")
        return
    flash(f"Saved {person.email}." if changed else "Nothing to change.", "success")


def _switch(user_id: int, *, disabled: bool) -> ResponseReturnValue:
    tenant, person = _tenant(), _my_user(user_id)
    form = ButtonForm()
    if not form.validate_on_submit():
        form_errors(form)
    if person.user_id == require_viewer().user.user_id:
        flash("Nothing changed: you cannot disable yourself.", "error")
        return redirect(url_for("admin.user", user_id=user_id))
    with write_transaction(store.engine) as conn:
        set_disabled(conn, person.user_id, disabled)
        if disabled:
            end_sessions_of(conn, person, "disabled")
        record_audit(conn, "user_disabled" if disabled else "user_enabled",
                     tenant_id=tenant.tenant_id, subject=person.email)  # fmt: skip
    flash(f"{person.email} is {'disabled' if disabled else 'enabled'}.", "success")
    return redirect(url_for("admin.user", user_id=user_id))


def _known_values(tenant: Tenant) -> dict[str, list[str]]:
    """The sites, departments and cost centres the directory knows, to pick scopes from."""
    conn = store.connection()
    out: dict[str, list[str]] = {}
    for kind in ("site", "department", "cost_centre"):
        column = directory_entries.c[kind]
        out[kind] = list(
            conn.scalars(
                sa.select(column)
                .where(directory_entries.c.tenant_id == tenant.tenant_id, column != "")
                .distinct()
                .order_by(column)
            )
        )
    return out
