"""Sessions that hold: throttled sign-in, lock-out, revocable sessions, TOTP, audit, masking.

Each test adds its own accounts (unique emails) to the scoped store, so they do not disturb one
another or the isolation matrix. Waits are judged from what the store recorded (attempt times
are moved back in the store), never by sleeping.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from datacenter.accounts.tenants import require_tenant
from datacenter.accounts.throttle import ThrottlePolicy
from datacenter.accounts.users import create_user, get_user_by_email
from datacenter.store.engine import write_transaction
from datacenter.store.tables.accounts import login_attempts, user_sessions
from datacenter.web import create_app
from datacenter.web.auth import LOCKED_MESSAGE, LOGIN_FAILED_MESSAGE
from tests.fixtures.scopes import ACME_ADMIN, TECH_ACME, ScopedWorld
from tests.fixtures.web import GLOBEX_USER, PASSWORD, csrf_token, login

COOKIE = "callcollect_session"
NEW_PASSWORD = "violet ferry quantum lamp"
NO_WAIT = ThrottlePolicy(base=timedelta(0), lock_after=3)


@pytest.fixture
def engine(scoped_engine: sa.Engine) -> sa.Engine:
    return scoped_engine


def _app(world: ScopedWorld, policy: ThrottlePolicy) -> Flask:
    return create_app(world.seeded.settings, test_config={"TESTING": True,
                                                          "LOGIN_THROTTLE": policy})  # fmt: skip


def _new_user(engine: sa.Engine, role: str = "tenant", slug: str = "acme") -> str:
    email = f"u{uuid.uuid4().hex[:10]}@{slug}.example"
    with write_transaction(engine) as conn:
        create_user(conn, email, PASSWORD, role, require_tenant(conn, slug).tenant_id)
    return email


def _sign_in(client: FlaskClient, email: str, password: str = PASSWORD, **kw: object) -> int:
    token = csrf_token(client)
    response = client.post(
        "/login", data={"email": email, "password": password, "csrf_token": token}, **kw
    )
    return response.status_code


def _signed_in(client: FlaskClient) -> bool:
    return client.get("/calls").status_code == 200


def _post(client: FlaskClient, path: str, data: dict[str, str] | None = None) -> int:
    token = csrf_token(client, "/account/")
    return client.post(path, data={"csrf_token": token, **(data or {})}).status_code


def _user_id(engine: sa.Engine, email: str) -> int:
    with engine.connect() as conn:
        user = get_user_by_email(conn, email)
    assert user is not None
    return user.user_id


def test_wrong_passwords_then_the_right_one_is_refused_until_the_wait_is_over(
    scoped_world: ScopedWorld, engine: sa.Engine
) -> None:
    email = _new_user(engine)
    policy = ThrottlePolicy(free_per_account=3, base=timedelta(seconds=60))
    app, other_worker = _app(scoped_world, policy), _app(scoped_world, policy)
    client = app.test_client()
    for _ in range(3):
        assert _sign_in(client, email, "wrong wrong wrong") == 200
    token = csrf_token(client)
    refused = client.post("/login", data={"email": email, "password": PASSWORD,
                                          "csrf_token": token})  # fmt: skip
    assert refused.status_code == 429
    wait = int(refused.headers["Retry-After"])
    assert 0 < wait <= 60
    assert re.search(r"try again in \d+ s", refused.get_data(as_text=True))
    assert not _signed_in(client)
    # The throttle is in the store: another gunicorn worker refuses too.
    assert _sign_in(other_worker.test_client(), email) == 429
    with write_transaction(engine) as conn:  # the wait passes
        conn.execute(login_attempts.update().where(login_attempts.c.email == email)
                     .values(at=datetime.now(UTC) - timedelta(seconds=61)))  # fmt: skip
    assert _sign_in(client, email) == 302 and _signed_in(client)


def test_sign_in_is_throttled_per_source_address(
    scoped_world: ScopedWorld, engine: sa.Engine
) -> None:
    email = _new_user(engine)
    app = _app(scoped_world, ThrottlePolicy(free_per_address=3, base=timedelta(minutes=5)))
    guesser = {"REMOTE_ADDR": "198.18.0.7"}
    client = app.test_client()
    for i in range(3):
        assert _sign_in(client, f"nobody{i}@acme.example", environ_base=guesser) == 200
    assert _sign_in(client, email, environ_base=guesser) == 429
    assert _sign_in(app.test_client(), email, environ_base={"REMOTE_ADDR": "198.18.0.8"}) == 302


def test_lock_out_after_failures_until_a_tenant_admin_unlocks(
    scoped_world: ScopedWorld, engine: sa.Engine
) -> None:
    email = _new_user(engine)
    app = _app(scoped_world, NO_WAIT)
    client = app.test_client()
    for _ in range(3):
        _sign_in(client, email, "wrong wrong wrong")
    token = csrf_token(client)
    page = client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token})
    assert LOCKED_MESSAGE in page.get_data(as_text=True) and not _signed_in(client)
    admin = app.test_client()
    login(admin, ACME_ADMIN)
    assert _post(admin, f"/admin/users/{_user_id(engine, email)}/unlock") == 302
    assert _sign_in(client, email) == 302 and _signed_in(client)
    audit = admin.get("/admin/audit").get_data(as_text=True)
    for event in ("sign_in_failed", "locked_out", "unlocked", "sign_in"):
        assert re.search(rf"<td>{event}</td>.*?{re.escape(email)}", audit, re.S), event


def test_an_assigned_technician_can_lift_a_lock_out(
    scoped_world: ScopedWorld, engine: sa.Engine
) -> None:
    email = _new_user(engine)
    app = _app(scoped_world, NO_WAIT)
    client = app.test_client()
    for _ in range(3):
        _sign_in(client, email, "wrong wrong wrong")
    assert LOCKED_MESSAGE in client.post("/login", data={
        "email": email, "password": PASSWORD, "csrf_token": csrf_token(client)}).get_data(as_text=True)  # fmt: skip
    tech = app.test_client()
    login(tech, TECH_ACME)
    assert _post(tech, f"/tech/tenants/acme/users/{_user_id(engine, email)}/unlock") == 302
    assert _sign_in(client, email) == 302


def test_a_copied_cookie_stops_working_after_sign_out(scoped_app: Flask, engine: sa.Engine) -> None:
    email = _new_user(engine)
    client, thief = scoped_app.test_client(), scoped_app.test_client()
    login(client, email)
    cookie = client.get_cookie(COOKIE)
    assert cookie is not None
    thief.set_cookie(COOKIE, cookie.value)
    assert _signed_in(thief)
    assert _post(client, "/logout") == 302
    response = thief.get("/calls")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_a_password_change_ends_every_other_session(scoped_app: Flask, engine: sa.Engine) -> None:
    email = _new_user(engine)
    phone, laptop = scoped_app.test_client(), scoped_app.test_client()
    login(phone, email)
    login(laptop, email)
    data = {"current": PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    assert _post(laptop, "/account/password", data) == 302
    assert _signed_in(laptop)
    assert not _signed_in(phone)
    assert _sign_in(scoped_app.test_client(), email, NEW_PASSWORD) == 302


def test_a_scope_change_and_disabling_end_the_users_sessions(
    scoped_app: Flask, engine: sa.Engine
) -> None:
    email = _new_user(engine)
    user_id = _user_id(engine, email)
    user, admin = scoped_app.test_client(), scoped_app.test_client()
    login(user, email)
    login(admin, ACME_ADMIN)
    assert (
        _post(admin, f"/admin/users/{user_id}", {"role": "tenant", "departments": "Sales"}) == 302
    )
    assert not _signed_in(user)
    login(user, email)
    assert "01632960703" not in user.get("/calls").get_data(as_text=True)  # Support's call
    assert _post(admin, f"/admin/users/{user_id}/disable") == 302
    assert not _signed_in(user)


def test_sessions_end_after_the_idle_timeout_and_the_absolute_lifetime(
    scoped_app: Flask, engine: sa.Engine
) -> None:
    email = _new_user(engine)
    user_id = _user_id(engine, email)
    for column, age in (
        ("last_seen_at", timedelta(minutes=61)),
        ("created_at", timedelta(hours=12)),
    ):
        client = scoped_app.test_client()
        login(client, email)
        with write_transaction(engine) as conn:
            conn.execute(user_sessions.update()
                         .where(user_sessions.c.user_id == user_id, user_sessions.c.ended_at.is_(None))
                         .values({column: datetime.now(UTC) - age}))  # fmt: skip
        assert not _signed_in(client), column


def test_totp_enrolment_sign_in_and_one_use_recovery_codes(
    scoped_app: Flask, engine: sa.Engine
) -> None:
    email = _new_user(engine)
    client = scoped_app.test_client()
    login(client, email)
    page = client.get("/account/totp").get_data(as_text=True)  # a new secret each time
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    assert secret and token
    totp = pyotp.TOTP(secret.group(1))
    wrong_code = "000000" if totp.now() != "000000" else "111111"
    refused = client.post("/account/totp", data={"code": wrong_code, "csrf_token": token.group(1)})
    assert "not right" in refused.get_data(as_text=True)
    enrolled_with = totp.now()
    done = client.post("/account/totp", data={"code": enrolled_with, "csrf_token": token.group(1)})
    codes = re.findall(r"<code>([a-z2-9]{5}-[a-z2-9]{5})</code>", done.get_data(as_text=True))
    assert len(codes) == 10
    assert _post(client, "/logout") == 302

    fresh = scoped_app.test_client()
    response = fresh.post("/login", data={"email": email, "password": PASSWORD,
                                          "csrf_token": csrf_token(fresh)})  # fmt: skip
    assert response.headers["Location"].startswith("/login/code")
    assert not _signed_in(fresh)  # the password alone signs nobody in
    wrong = fresh.post(
        "/login/code", data={"code": "12345x", "csrf_token": csrf_token(fresh, "/login/code")}
    )
    assert "not right" in wrong.get_data(as_text=True) and not _signed_in(fresh)
    # The enrolment's code counts as used: sign in with the next step's (within the drift).
    used = totp.at(datetime.now(UTC) + timedelta(seconds=30))
    enrol_replay = fresh.post(
        "/login/code", data={"code": enrolled_with, "csrf_token": csrf_token(fresh, "/login/code")}
    )
    assert "not right" in enrol_replay.get_data(as_text=True) and not _signed_in(fresh)
    ok = fresh.post(
        "/login/code", data={"code": used, "csrf_token": csrf_token(fresh, "/login/code")}
    )
    assert ok.status_code == 302 and _signed_in(fresh)
    replay = scoped_app.test_client()  # the same code, seen over a shoulder: refused
    replay.post("/login", data={"email": email, "password": PASSWORD,
                                "csrf_token": csrf_token(replay)})  # fmt: skip
    replay.post("/login/code", data={"code": used, "csrf_token": csrf_token(replay, "/login/code")})
    assert not _signed_in(replay)

    for attempt, expected in ((1, True), (2, False)):  # a recovery code works once
        other = scoped_app.test_client()
        other.post("/login", data={"email": email, "password": PASSWORD,
                                   "csrf_token": csrf_token(other)})  # fmt: skip
        other.post("/login/code", data={"code": codes[0],
                                        "csrf_token": csrf_token(other, "/login/code")})  # fmt: skip
        assert _signed_in(other) is expected, attempt


def test_the_audit_log_shows_a_tenant_admin_only_their_tenant(
    scoped_app: Flask, engine: sa.Engine
) -> None:
    email = _new_user(engine)
    _sign_in(scoped_app.test_client(), email, "wrong wrong wrong")
    _sign_in(scoped_app.test_client(), GLOBEX_USER, "wrong wrong wrong")
    admin = scoped_app.test_client()
    login(admin, ACME_ADMIN)
    audit = admin.get("/admin/audit").get_data(as_text=True)
    assert email in audit and "sign_in_failed" in audit
    assert GLOBEX_USER not in audit
    assert LOGIN_FAILED_MESSAGE not in audit


def test_number_masking_hides_the_last_digits_for_a_role(
    scoped_app: Flask, scoped_world: ScopedWorld, engine: sa.Engine
) -> None:
    email = _new_user(engine)
    admin, user = scoped_app.test_client(), scoped_app.test_client()
    login(admin, ACME_ADMIN)
    login(user, email)
    party = scoped_world.parties["support"]
    try:
        data = {"tenant": "3", "tenant_admin": "0", "technician": "0"}
        assert _post(admin, "/admin/masking", data) == 302
        listing = user.get("/calls").get_data(as_text=True)
        detail = user.get(f"/calls/{party.record_id}").get_data(as_text=True)
        masked = party.number[:-3] + "xxx"
        assert masked in listing and masked in detail
        assert party.number not in listing and party.number not in detail
        assert party.number in admin.get("/calls").get_data(as_text=True)  # admins: not masked
        searched = user.get("/calls", query_string={"number": party.number[-4:]})
        assert masked not in searched.get_data(as_text=True)  # no probing the hidden digits
    finally:
        _post(admin, "/admin/masking", {"tenant": "0", "tenant_admin": "0", "technician": "0"})
