"""Signing in and out, the second factor, and who may see which page.

Contract:

- The session cookie (Flask's signed cookie; HttpOnly, SameSite=Lax, Secure in production)
  holds only a random session id (``sid``); the session itself is a row in ``user_sessions``
  (``datacenter.accounts.sessions``). Every request resumes it from the store: an ended, idle or
  too old session, or a deleted, disabled or locked account, is signed out at its next click.
  Sign-out, a password change or reset, disabling, and a role or scope change end every
  session of that user, so a copied cookie stops working at once.
- Sign-in is throttled per account and per source address (``datacenter.accounts.throttle``):
  an attempt that comes too early is refused with "try again in N s" (HTTP 429) without
  checking the password, and nothing sleeps. ``web.login_lock_after`` consecutive failures lock
  the account until a tenant admin, technician or admin unlocks it. Every attempt is recorded in
  ``login_attempts`` and the outcome in the audit log.
- A failed sign-in, whatever the reason (unknown email, wrong password, disabled account), gets
  the same message; ``sign_in`` spends the same argon2 work on every path. A locked account says
  so only to someone who typed its right password.
- An account with TOTP enrolled signs in in two steps: the password (which leaves only a
  ``pending`` user id in the cookie, valid ``PENDING_SECONDS``) and then a code or a recovery
  code at ``/login/code``.
- ``login_required`` sends an anonymous visitor to the login form (and back afterwards, to a
  local path only); ``role_required(...)`` answers 403 to a signed-in user of another role.
- Logout is a POST with a CSRF token, so another site cannot sign a user out with a link.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address
from typing import Any, ParamSpec
from urllib.parse import urlsplit

import sqlalchemy as sa
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

from datacenter.accounts import audit, sessions, throttle, totp
from datacenter.accounts.passwords import MAX_PASSWORD_LENGTH
from datacenter.accounts.scopes import WHOLE, UserScope, mask_digits, scope_of
from datacenter.accounts.tenants import Tenant, get_tenant_by_id
from datacenter.accounts.users import User, get_user, get_user_by_email, sign_in
from datacenter.settings import Settings
from datacenter.store.engine import write_transaction
from datacenter.web.database import store

LOGIN_FAILED_MESSAGE = "That email and password do not match an active account."
LOCKED_MESSAGE = (
    "This account is locked after too many failed sign-ins: ask your administrator to unlock it."
)
CODE_FAILED_MESSAGE = "That code is not right (or has been used): try the next one."
PENDING_SECONDS = 300  # time to type the second factor after the password
# Where each role lands after signing in; roles without pages yet see the start page.
ROLE_HOME = {"tenant": "reports.dashboard", "tenant_admin": "reports.dashboard",
             "technician": "tech.sites", "admin": "tech.sites"}  # fmt: skip
TENANT_ROLES = ("tenant", "tenant_admin")

bp = Blueprint("auth", __name__)
P = ParamSpec("P")


@dataclass(frozen=True, slots=True)
class Viewer:
    """The signed-in user of this request: their tenant (None for staff), scope and masking."""

    user: User
    tenant: Tenant | None
    scope: UserScope = WHOLE
    mask_digits: int = 0
    session_id: str = ""

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


class CodeForm(FlaskForm):  # type: ignore[misc]
    code = StringField(
        "Code from your app, or a recovery code",
        validators=[DataRequired("Enter the code."), Length(max=32)],
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
    """Allow only users with one of ``roles`` (tables.ROLES)."""

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


def utc_now() -> datetime:
    return datetime.now(UTC)


def client_address() -> str:
    """The browser's address: behind a proxy on loopback, the last X-Forwarded-For hop."""
    remote = request.remote_addr or ""
    forwarded = request.headers.get("X-Forwarded-For", "")
    try:
        behind_local_proxy = bool(remote) and ip_address(remote).is_loopback
    except ValueError:
        behind_local_proxy = False
    if behind_local_proxy and forwarded:
        return forwarded.split(",")[-1].strip()[:64]
    return remote[:64]


def record_audit(
    conn: sa.Connection,
    event: str,
    *,
    tenant_id: int | None,
    subject: str = "",
    details: Mapping[str, Any] | None = None,
    actor: str | None = None,
) -> None:
    """An audit row for this request (actor: the signed-in user unless given)."""
    viewer = current_viewer()
    audit.record(
        conn, event, at=utc_now(), tenant_id=tenant_id,
        actor=actor if actor is not None else (viewer.email if viewer else ""),
        subject=subject, address=client_address(), details=details,
    )  # fmt: skip


def session_limits() -> sessions.SessionLimits:
    settings: Settings = current_app.config["CALLCOLLECT_SETTINGS"]
    return sessions.SessionLimits(
        idle=timedelta(minutes=settings.web.session_idle_minutes),
        lifetime=timedelta(hours=settings.web.session_lifetime_hours),
    )


def throttle_policy() -> throttle.ThrottlePolicy:
    policy: throttle.ThrottlePolicy | None = current_app.config.get("LOGIN_THROTTLE")
    if policy is not None:
        return policy
    settings: Settings = current_app.config["CALLCOLLECT_SETTINGS"]
    return throttle.ThrottlePolicy(lock_after=settings.web.login_lock_after)


@bp.before_app_request
def load_viewer() -> None:
    """Turn the session into ``g.viewer``, checking session and account against the store."""
    g.viewer = None
    if request.endpoint == "static":  # the stylesheet needs no account lookup
        return
    session_id = session.get("sid")
    if not isinstance(session_id, str):
        return
    conn, now = store.connection(), utc_now()
    lookup = sessions.look_up(conn, session_id, now=now, limits=session_limits())
    if lookup.write is not None:  # at most once a minute per session, or when it ends
        with write_transaction(store.engine) as write:
            sessions.write_back(write, session_id, lookup, now=now)
    user = get_user(conn, lookup.user_id) if lookup.user_id is not None else None
    if user is None or user.disabled or user.locked_at is not None:
        session.clear()
        return
    tenant = get_tenant_by_id(conn, user.tenant_id) if user.tenant_id is not None else None
    masked = mask_digits(conn, tenant.tenant_id, user.role) if tenant is not None else 0
    g.viewer = Viewer(user, tenant, scope_of(conn, user), masked, session_id)


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
    if not form.validate_on_submit():
        return render_template("auth/login.html", form=form, failed="", next_url=next_url)
    email = (form.email.data or "").strip().lower()
    address, now = client_address(), utc_now()
    with write_transaction(store.engine) as conn:
        wait = throttle.wait_seconds(conn, email, address, now=now, policy=throttle_policy())
        if wait:
            return _refused(form, next_url, wait)
        result = sign_in(conn, email, form.password.data or "")
        # With a second factor still to come, the password alone is no success to reset on.
        second = result.user is not None and result.user.totp_enabled
        throttle.record_attempt(conn, email, address, ok=result.outcome == "ok" and not second,
                                now=now)  # fmt: skip
        if result.outcome == "failed":
            _failed(conn, email)
        elif result.outcome == "locked":
            record_audit(conn, "sign_in_refused", tenant_id=_tenant_of(result.user),
                         actor=email, subject=email, details={"reason": "locked"})  # fmt: skip
        elif result.user is not None and second:
            session.clear()
            session["pending_user_id"] = result.user.user_id
            session["pending_at"] = now.timestamp()
            return redirect(url_for("auth.login_code", next=next_url))
        elif result.user is not None:
            _complete_sign_in(conn, result.user, now)
            return redirect(next_url or url_for("auth.index"))
    message = LOCKED_MESSAGE if result.outcome == "locked" else LOGIN_FAILED_MESSAGE
    return render_template("auth/login.html", form=form, failed=message, next_url=next_url)


@bp.route("/login/code", methods=["GET", "POST"])
def login_code() -> ResponseReturnValue:
    """The second step for an account with TOTP: a code from the app or a recovery code."""
    next_url = _safe_next(request.args.get("next"))
    user_id, started = session.get("pending_user_id"), session.get("pending_at")
    now = utc_now()
    if not isinstance(user_id, int) or not isinstance(started, float):
        return redirect(url_for("auth.login"))
    if now.timestamp() - started > PENDING_SECONDS:
        session.clear()
        return redirect(url_for("auth.login"))
    form = CodeForm()
    failed = ""
    if form.validate_on_submit():
        with write_transaction(store.engine) as conn:
            user = get_user(conn, user_id)
            if user is None or user.disabled or user.locked_at is not None:
                session.clear()
                return redirect(url_for("auth.login"))
            wait = throttle.wait_seconds(
                conn, user.email, client_address(), now=now, policy=throttle_policy()
            )
            if wait:
                return _refused_code(form, next_url, wait)
            if _second_factor_ok(conn, user, form.code.data or "", now):
                throttle.record_attempt(conn, user.email, client_address(), ok=True, now=now)
                _complete_sign_in(conn, user, now)
                return redirect(next_url or url_for("auth.index"))
            throttle.record_attempt(conn, user.email, client_address(), ok=False, now=now)
            _failed(conn, user.email, factor="totp")
        failed = CODE_FAILED_MESSAGE
    return render_template("auth/code.html", form=form, failed=failed, next_url=next_url)


@bp.route("/logout", methods=["POST"])
def logout() -> Response:
    viewer = current_viewer()
    if viewer is not None:
        with write_transaction(store.engine) as conn:
            sessions.end(conn, viewer.session_id, now=utc_now(), reason="sign_out")
            record_audit(conn, "sign_out", tenant_id=viewer.user.tenant_id, subject=viewer.email)
    session.clear()
    return redirect(url_for("auth.login"))


def end_sessions_of(conn: sa.Connection, user: User, reason: str) -> None:
    """End every session of ``user`` (an admin's change; or the user's own, keeping none)."""
    sessions.end_all(conn, user.user_id, now=utc_now(), reason=reason)


def _second_factor_ok(conn: sa.Connection, user: User, code: str, now: datetime) -> bool:
    if totp.accept(conn, user.user_id, code, now=now):
        return True
    if totp.use_recovery_code(conn, user.user_id, code, now=now):
        record_audit(conn, "recovery_code_used", tenant_id=user.tenant_id, actor=user.email,
                     subject=user.email, details={"left": totp.unused_codes(conn, user.user_id)})  # fmt: skip
        return True
    return False


def _failed(conn: sa.Connection, email: str, *, factor: str = "password") -> None:
    policy = throttle_policy()
    locked = throttle.register_failure(conn, email, now=utc_now(), policy=policy)
    user_tenant = _tenant_of_email(conn, email)
    record_audit(conn, "sign_in_failed", tenant_id=user_tenant, actor=email, subject=email,
                 details={"factor": factor})  # fmt: skip
    if locked:
        record_audit(conn, "locked_out", tenant_id=user_tenant, actor=email, subject=email,
                     details={"after": policy.lock_after})  # fmt: skip
    current_app.logger.info("failed sign-in for %r from %s", email, client_address())


def _refused(form: LoginForm, next_url: str | None, wait: int) -> ResponseReturnValue:
    message = f"Too many failed sign-ins: try again in {wait} s."
    page = render_template("auth/login.html", form=form, failed=message, next_url=next_url)
    return page, 429, {"Retry-After": str(wait)}


def _refused_code(form: CodeForm, next_url: str | None, wait: int) -> ResponseReturnValue:
    message = f"Too many wrong codes: try again in {wait} s."
    page = render_template("auth/code.html", form=form, failed=message, next_url=next_url)
    return page, 429, {"Retry-After": str(wait)}


def _complete_sign_in(conn: sa.Connection, user: User, now: datetime) -> None:
    throttle.register_success(conn, user.user_id)
    session_id = sessions.start(conn, user.user_id, now=now, address=client_address())
    record_audit(conn, "sign_in", tenant_id=user.tenant_id, actor=user.email, subject=user.email)
    # A fresh session: nothing from before the sign-in survives into the signed-in one.
    session.clear()
    session.permanent = True
    session["sid"] = session_id


def _tenant_of(user: User | None) -> int | None:
    return user.tenant_id if user is not None else None


def _tenant_of_email(conn: sa.Connection, email: str) -> int | None:
    return _tenant_of(get_user_by_email(conn, email))


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
