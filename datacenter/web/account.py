"""A signed-in user's own account: password change and the optional TOTP second factor.

Contract:

- ``/account`` shows the user's role, scope and second-factor state.
- Changing the password needs the current one; it ends every session of the user and starts a
  fresh one for this browser, so a copied cookie stops working.
- Enrolling TOTP shows a new secret (and its otpauth:// URI) kept only in this browser's signed
  session until the user types a valid code from it; then the secret is stored and ten recovery
  codes are shown once; the code typed counts as used (it cannot sign in). Disabling needs
  the current password. Both are audited.
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue

from datacenter.accounts import sessions, totp
from datacenter.accounts.users import check_current_password, set_password
from datacenter.store.engine import write_transaction
from datacenter.web.auth import login_required, record_audit, require_viewer, utc_now
from datacenter.web.database import store
from datacenter.web.forms import ChangePasswordForm, ConfirmPasswordForm, TotpEnrolForm, form_errors
from shared.errors import CallCollectError

bp = Blueprint("account", __name__, url_prefix="/account")
NOT_CURRENT = "Nothing changed: the current password is not right."


@bp.route("/")
@login_required
def index() -> ResponseReturnValue:
    viewer = require_viewer()
    return render_template(
        "account/index.html",
        viewer=viewer,
        password_form=ChangePasswordForm(),
        disable_form=ConfirmPasswordForm(),
        codes_left=totp.unused_codes(store.connection(), viewer.user.user_id),
    )


@bp.route("/password", methods=["POST"])
@login_required
def change_password() -> ResponseReturnValue:
    viewer = require_viewer()
    form = ChangePasswordForm()
    if not form.validate_on_submit():
        flash(f"Nothing changed: {form_errors(form)}", "error")
        return redirect(url_for("account.index"))
    if not check_current_password(store.connection(), viewer.user.user_id, form.current.data):
        flash(NOT_CURRENT, "error")
        return redirect(url_for("account.index"))
    try:
        with write_transaction(store.engine) as conn:
            set_password(conn, viewer.user.user_id, form.password.data or "")
            now = utc_now()
            sessions.end_all(conn, viewer.user.user_id, now=now, reason="password_changed")
            session["sid"] = sessions.start(conn, viewer.user.user_id, now=now)
            record_audit(conn, "password_changed", tenant_id=viewer.user.tenant_id,
                         subject=viewer.email)  # fmt: skip
    except CallCollectError as exc:
        flash(f"Nothing changed: {exc}", "error")
    else:
        flash("Password changed; every other session of yours has ended.", "success")
    return redirect(url_for("account.index"))


@bp.route("/totp", methods=["GET", "POST"])
@login_required
def enrol_totp() -> ResponseReturnValue:
    viewer = require_viewer()
    if viewer.user.totp_enabled:
        return redirect(url_for("account.index"))
    secret = session.get("totp_secret")
    if not isinstance(secret, str) or request.method == "GET":
        secret = totp.new_secret()
        session["totp_secret"] = secret
    form = TotpEnrolForm()
    if form.validate_on_submit():
        if totp.verify(secret, form.code.data or "", now=utc_now()):
            with write_transaction(store.engine) as conn:
                codes = totp.enable(conn, viewer.user.user_id, secret)
                totp.accept(conn, viewer.user.user_id, form.code.data or "", now=utc_now())
                record_audit(conn, "totp_enabled", tenant_id=viewer.user.tenant_id,
                             subject=viewer.email)  # fmt: skip
            session.pop("totp_secret", None)
            return render_template("account/recovery_codes.html", codes=codes)
        flash("That code is not right: check the app's clock and type the current code.", "error")
    return render_template(
        "account/totp.html",
        form=form,
        secret=secret,
        uri=totp.provisioning_uri(secret, viewer.email),
    )


@bp.route("/totp/disable", methods=["POST"])
@login_required
def disable_totp() -> ResponseReturnValue:
    viewer = require_viewer()
    form = ConfirmPasswordForm()
    if not form.validate_on_submit():
        flash(f"Nothing changed: {form_errors(form)}", "error")
    elif not check_current_password(store.connection(), viewer.user.user_id, form.current.data):
        flash(NOT_CURRENT, "error")
    else:
        with write_transaction(store.engine) as conn:
            totp.disable(conn, viewer.user.user_id)
            record_audit(conn, "totp_disabled", tenant_id=viewer.user.tenant_id,
                         subject=viewer.email)  # fmt: skip
        flash("Second factor turned off.", "success")
    return redirect(url_for("account.index"))
