"""Technicians' tenant pages: list and add tenants, assign tenant admins, lift lock-outs.

Contract:

- Every page needs the ``technician`` or ``admin`` role. A technician sees and changes only the
  tenants assigned to them (another tenant's slug answers 404); a tenant a technician adds is
  assigned to them. An admin sees every tenant.
- A tenant admin is assigned by email: an existing user of that tenant is promoted (their
  sessions end), otherwise a new ``tenant_admin`` account is made with the password given.
- Every change is a POST with a CSRF token and is written to the audit log of the tenant.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue

from datacenter.accounts import throttle
from datacenter.accounts.technicians import assign, tenants_of
from datacenter.accounts.tenants import Tenant, create_tenant
from datacenter.accounts.users import (
    create_user,
    get_user,
    get_user_by_email,
    list_users,
    normalise_email,
    set_role,
)
from datacenter.store.engine import write_transaction
from datacenter.web.auth import (
    end_sessions_of,
    record_audit,
    require_viewer,
    role_required,
    utc_now,
)
from datacenter.web.database import store
from datacenter.web.forms import ButtonForm, NewTenantForm, TenantAdminForm, form_errors
from shared.errors import CallCollectError, ValidationError

bp = Blueprint("tenants", __name__, url_prefix="/tech/tenants")
STAFF = ("technician", "admin")


@bp.route("/", methods=["GET", "POST"])
@role_required(*STAFF)
def tenant_list() -> ResponseReturnValue:
    form = NewTenantForm()
    if form.validate_on_submit():
        viewer = require_viewer()
        try:
            with write_transaction(store.engine) as conn:
                tenant = create_tenant(conn, form.slug.data or "", form.name.data or "",
                                       form.timezone.data or "")  # fmt: skip
                if viewer.role == "technician":
                    assign(conn, viewer.email, tenant.slug, now=utc_now())
                record_audit(conn, "tenant_added", tenant_id=tenant.tenant_id,
                             subject=tenant.slug)  # fmt: skip
        except CallCollectError as exc:
            flash(f"Nothing changed: {exc}", "error")
        else:
            flash(f"Added tenant {tenant.name} ({tenant.slug}).", "success")
            return redirect(url_for("tenants.tenant", tenant_slug=tenant.slug))
    elif form.is_submitted():
        flash(f"Nothing changed: {form_errors(form)}", "error")
    tenants = tenants_of(store.connection(), require_viewer().user)
    return render_template("tech/tenants.html", tenants=tenants, form=form)


@bp.route("/<tenant_slug>")
@role_required(*STAFF)
def tenant(tenant_slug: str) -> ResponseReturnValue:
    tenant = _my_tenant(tenant_slug)
    people = list_users(store.connection(), tenant_id=tenant.tenant_id)
    return render_template(
        "tech/tenant.html", tenant=tenant, people=people, form=TenantAdminForm(),
        button=ButtonForm(),
    )  # fmt: skip


@bp.route("/<tenant_slug>/admins", methods=["POST"])
@role_required(*STAFF)
def add_admin(tenant_slug: str) -> ResponseReturnValue:
    tenant = _my_tenant(tenant_slug)
    form = TenantAdminForm()
    if not form.validate_on_submit():
        flash(f"Nothing changed: {form_errors(form)}", "error")
        return redirect(url_for("tenants.tenant", tenant_slug=tenant.slug))
    try:
        with write_transaction(store.engine) as conn:
            email = normalise_email(form.email.data or "")
            existing = get_user_by_email(conn, email)
            if existing is not None and existing.tenant_id != tenant.tenant_id:
                raise ValidationError("email", f"{email} is not a user of {tenant.name}")
            if existing is not None:
                set_role(conn, existing.user_id, "tenant_admin")
                end_sessions_of(conn, existing, "role_or_scope_changed")
            else:
                create_user(conn, email, form.password.data or "", "tenant_admin",
                            tenant.tenant_id, display_name=form.display_name.data or "")  # fmt: skip
            record_audit(conn, "tenant_admin_assigned", tenant_id=tenant.tenant_id, subject=email)
    except CallCollectError as exc:
        flash(f"Nothing changed: {exc}", "error")
    else:
        flash(f"{email} is a tenant admin of {tenant.name}.", "success")
    return redirect(url_for("tenants.tenant", tenant_slug=tenant.slug))


@bp.route("/<tenant_slug>/users/<int:user_id>/unlock", methods=["POST"])
@role_required(*STAFF)
def unlock(tenant_slug: str, user_id: int) -> ResponseReturnValue:
    tenant = _my_tenant(tenant_slug)
    form = ButtonForm()
    if not form.validate_on_submit():
        form_errors(form)
    person = get_user(store.connection(), user_id)
    if person is None or person.tenant_id != tenant.tenant_id:
        abort(404)
    with write_transaction(store.engine) as conn:
        if throttle.unlock(conn, person.user_id):
            record_audit(conn, "unlocked", tenant_id=tenant.tenant_id, subject=person.email)
    flash(f"{person.email} can sign in again.", "success")
    return redirect(url_for("tenants.tenant", tenant_slug=tenant.slug))


def _my_tenant(slug: str) -> Tenant:
    """The tenant ``slug`` if this technician looks after it; 404 otherwise (no probing)."""
    found = next(
        (t for t in tenants_of(store.connection(), require_viewer().user) if t.slug == slug), None
    )
    if found is None:
        abort(404)
    return found
