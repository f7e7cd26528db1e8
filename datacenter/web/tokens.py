"""``/account/tokens``: a user makes and revokes their own API tokens.

A new token is shown once, on the page that made it (never stored, never shown again); the list
shows each token's name, first characters, when it was made and last used, and a revoke button.
Only tenant users have tokens: the API serves a tenant's data. Forms carry CSRF tokens.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from datacenter.api_tokens import MAX_NAME, create_token, list_tokens, revoke_token
from datacenter.store.engine import write_transaction
from datacenter.web.auth import require_viewer, role_required
from datacenter.web.database import store

bp = Blueprint("tokens", __name__, url_prefix="/account/tokens")


class NewTokenForm(FlaskForm):  # type: ignore[misc]
    name = StringField(
        "Name", validators=[DataRequired("Name the token (what uses it)."), Length(max=MAX_NAME)]
    )


class RevokeForm(FlaskForm):  # type: ignore[misc]
    """Only the CSRF token."""


@bp.route("", methods=["GET", "POST"])
@role_required("tenant", "tenant_admin")
def tokens() -> ResponseReturnValue:
    user = require_viewer().user
    form = NewTokenForm()
    new_token = None
    if form.validate_on_submit():
        with write_transaction(store.engine) as conn:
            _row, new_token = create_token(conn, user.user_id, form.name.data or "")
        form = NewTokenForm(formdata=None)
    return render_template(
        "account/tokens.html",
        form=form,
        revoke_form=RevokeForm(),
        new_token=new_token,
        tokens=list_tokens(store.connection(), user.user_id),
    )


@bp.route("/<int:token_id>/revoke", methods=["POST"])
@role_required("tenant", "tenant_admin")
def revoke(token_id: int) -> ResponseReturnValue:
    if not RevokeForm().validate_on_submit():
        abort(400)
    with write_transaction(store.engine) as conn:
        revoked = revoke_token(conn, require_viewer().user.user_id, token_id)
    if not revoked:
        abort(404)
    flash("Token revoked: it no longer works.", "success")
    return redirect(url_for("tokens.tokens"))
