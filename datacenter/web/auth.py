"""Logging in and out, and who may see which page.

Contract:

- The session cookie (Flask's signed cookie; HttpOnly, SameSite=Lax, Secure in production)
  holds only ``user_id``, ``role`` and ``tenant_id``. Every request reloads the user from the
  store: a deleted or disabled account, or one whose role or tenant changed, is logged out at
  its next click.
- A failed login, whatever the reason (unknown email, wrong password, disabled account), gets
  the same message after the same small delay; ``accounts.authenticate`` spends the same argon2
  work on every path, so neither wording nor timing tells which emails exist. A successful login
  records ``last_login_at`` in the same transaction.
- ``login_required`` sends an anonymous visitor to the login form (and back afterwards, to a
  local path only); ``role_required(...)`` answers 403 to a logged-in user of another role.
- Logout is a POST with a CSRF token, so another site cannot log a user out with a link.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import ParamSpec
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from datacenter.accounts.passwords import MAX_PASSWORD_LENGTH
from datacenter.accounts.tenants import Tenant, get_tenant_by_id
from datacenter.accounts.users import User, authenticate, get_user
from datacenter.store.engine import write_transaction
from datacenter.web.database import store

LOGIN_FAILURE_DELAY_SECONDS = 0.5
LOGIN_FAILED_MESSAGE = "That email and password do not match an active account."
# Where each role lands after logging in; roles without pages yet see the start page.
ROLE_HOME = {"tenant": "portal.calls", "technician": "tech.sites", "admin": "tech.sites"}

bp = Blueprint("auth", __name__)
P = ParamSpec("P")


@dataclass(frozen=True, slots=True)
class Viewer:
    """The logged-in user of this request, with their tenant (None for staff)."""

    user: User
    tenant: Tenant | None

    @property
    def email(self) -> str:
        return self.user.email

    @property
    def role(self) -> str:
        return self.user.role

    @property
    def tenant_name(self) -> str:
        return self.tenant.name if self.tenant else ""


class LoginForm(FlaskForm):  # type: ignore[misc]
    email = StringField("Email", validators=[DataRequired("Enter your email."), Length(max=254)])
    password = PasswordField(
        "Password",
        validators=[DataRequired("Enter your password."), Length(max=MAX_PASSWORD_LENGTH)],
    )


def current_viewer() -> Viewer | None:
    viewer: Viewer | None = g.get("viewer")
    return viewer


def require_viewer() -> Viewer:
    """The viewer of a view behind ``login_required``/``role_required``."""
    viewer = current_viewer()
    if viewer is None:  # pragma: no cover - the decorators guarantee one
        abort(401)
    return viewer


def login_required(view: Callable[P, ResponseReturnValue]) -> Callable[P, ResponseReturnValue]:
    @functools.wraps(view)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> ResponseReturnValue:
        if current_viewer() is None:
            return redirect(url_for("auth.login", next=_requested_path()))
        return view(*args, **kwargs)

    return wrapped


def role_required(
    *roles: str,
) -> Callable[[Callable[P, ResponseReturnValue]], Callable[P, ResponseReturnValue]]:
    """Allow only users with one of ``roles`` ('tenant', 'technician', 'admin')."""

    def decorate(view: Callable[P, ResponseReturnValue]) -> Callable[P, ResponseReturnValue]:
        @functools.wraps(view)
        def wrapped(*args: P.args, **kwargs: P.kwargs) -> ResponseReturnValue:
            viewer = current_viewer()
            if viewer is None:
                return redirect(url_for("auth.login", next=_requested_path()))
            if viewer.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorate


@bp.before_app_request
def load_viewer() -> None:
    """Turn the session into ``g.viewer``, checking the account against the store."""
    g.viewer = None
    if request.endpoint == "static":  # the stylesheet needs no account lookup
        return
    user_id = session.get("user_id")
    if not isinstance(user_id, int):
        return
    conn = store.connection()
    user = get_user(conn, user_id)
    if (
        user is None
        or user.disabled
        or user.role != session.get("role")
        or user.tenant_id != session.get("tenant_id")
    ):
        session.clear()
        return
    tenant = get_tenant_by_id(conn, user.tenant_id) if user.tenant_id is not None else None
    g.viewer = Viewer(user=user, tenant=tenant)


@bp.app_context_processor
def inject_viewer() -> dict[str, Viewer | None]:
    return {"current_user": current_viewer()}


@bp.route("/")
def index() -> ResponseReturnValue:
    viewer = current_viewer()
    if viewer is None:
        return redirect(url_for("auth.login"))
    home = ROLE_HOME.get(viewer.role)
    if home is not None:
        return redirect(url_for(home))
    return render_template("home.html")


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    next_url = _safe_next(request.args.get("next"))
    if current_viewer() is not None and request.method == "GET":
        return redirect(next_url or url_for("auth.index"))
    form = LoginForm()
    failed = ""
    if form.validate_on_submit():
        with write_transaction(store.engine) as conn:
            user = authenticate(conn, form.email.data or "", form.password.data or "")
        if user is not None:
            _start_session(user)
            return redirect(next_url or url_for("auth.index"))
        time.sleep(current_app.config["LOGIN_FAILURE_DELAY"])
        current_app.logger.info("failed login for %r from %s", form.email.data, request.remote_addr)
        failed = LOGIN_FAILED_MESSAGE
    return render_template("auth/login.html", form=form, failed=failed, next_url=next_url)


@bp.route("/logout", methods=["POST"])
def logout() -> Response:
    session.clear()
    return redirect(url_for("auth.login"))


def _start_session(user: User) -> None:
    # A fresh session: nothing from before the login survives into the logged-in one.
    session.clear()
    session.permanent = True
    session["user_id"] = user.user_id
    session["role"] = user.role
    session["tenant_id"] = user.tenant_id


def _requested_path() -> str:
    query = request.query_string.decode("latin-1")
    return f"{request.path}?{query}" if query else request.path


def _safe_next(target: str | None) -> str | None:
    """A local path to return to after login; anything pointing off-site is ignored."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    if "\\" in target:  # browsers read "/\evil.example" as another host
        return None
    return target
