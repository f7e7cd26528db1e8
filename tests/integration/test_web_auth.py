"""Logging in and out of the web console, and what each user may see (Flask test client).

Runs on the seeded SQLite store (tests/fixtures/web.py) with CSRF protection switched on, as in
production: every POST first reads its form to get a token.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from datacenter.accounts.users import create_user, get_user_by_email, set_disabled
from datacenter.settings import load_settings
from datacenter.store.engine import current_revision, open_store, write_transaction
from datacenter.web import create_app
from datacenter.web.auth import LOGIN_FAILED_MESSAGE
from tests.fixtures.web import (
    ACME_USER,
    GLOBEX_CALL,
    GLOBEX_USER,
    LATE_EVENING,
    PASSWORD,
    TECH_USER,
    SeededStore,
    csrf_token,
    login,
)

COOKIE = "callcollect_session"


def session_cookie_header(response_headers: list[str]) -> str:
    matches = [h for h in response_headers if h.startswith(f"{COOKIE}=")]
    assert len(matches) == 1, response_headers
    return matches[0]


def test_login_redirects_to_calls_and_records_last_login(
    client: FlaskClient, seeded_store: SeededStore
) -> None:
    engine = open_store(seeded_store.settings.store.url)
    try:
        with engine.connect() as conn:
            before = get_user_by_email(conn, ACME_USER)
        token = csrf_token(client)
        response = client.post(
            "/login",
            data={"email": "  Alice@ACME.example ", "password": PASSWORD, "csrf_token": token},
        )
        assert response.status_code == 302
        assert response.headers["Location"] == "/"
        assert client.get("/").headers["Location"] == "/dashboard"
        assert client.get("/calls").status_code == 200
        with engine.connect() as conn:
            after = get_user_by_email(conn, ACME_USER)
    finally:
        engine.dispose()
    assert before is not None and after is not None and after.last_login_at is not None
    assert before.last_login_at is None or after.last_login_at > before.last_login_at


def test_session_cookie_is_httponly_samesite_lax_and_secure(client: FlaskClient) -> None:
    token = csrf_token(client)
    response = client.post(
        "/login", data={"email": ACME_USER, "password": PASSWORD, "csrf_token": token}
    )
    cookie = session_cookie_header(response.headers.getlist("Set-Cookie"))
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "secure", "samesite", "expires"} <= attributes
    assert "SameSite=Lax" in cookie


def test_secure_flag_can_be_turned_off_for_a_plain_http_demo(seeded_store: SeededStore) -> None:
    app = create_app(
        seeded_store.settings, test_config={"TESTING": True, "SESSION_COOKIE_SECURE": False}
    )
    try:
        client = app.test_client()
        token = csrf_token(client)
        response = client.post(
            "/login", data={"email": ACME_USER, "password": PASSWORD, "csrf_token": token}
        )
        cookie = session_cookie_header(response.headers.getlist("Set-Cookie"))
        assert "Secure" not in cookie and "HttpOnly" in cookie
    finally:
        app.extensions["callcollect.store"].dispose()


@pytest.mark.parametrize(
    ("email", "password"),
    [
        (ACME_USER, "wrong password entirely"),
        ("nobody@acme.example", PASSWORD),
        ("not an email", PASSWORD),
        (ACME_USER, PASSWORD.upper()),
    ],
    ids=["bad-password", "unknown-user", "malformed-email", "wrong-case-password"],
)
def test_failed_login_gives_one_generic_message(
    client: FlaskClient, email: str, password: str
) -> None:
    token = csrf_token(client)
    response = client.post(
        "/login", data={"email": email, "password": password, "csrf_token": token}
    )
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert LOGIN_FAILED_MESSAGE in page
    assert client.get("/calls").status_code == 302  # still logged out


def test_disabled_user_cannot_log_in_and_is_logged_out_mid_session(
    app: Flask, client: FlaskClient, seeded_store: SeededStore
) -> None:
    engine = open_store(seeded_store.settings.store.url)
    try:
        with write_transaction(engine) as conn:
            user = create_user(conn, "carol@acme.example", PASSWORD, "tenant", 1)
        login(client, "carol@acme.example")
        assert client.get("/calls").status_code == 200
        with write_transaction(engine) as conn:
            set_disabled(conn, user.user_id, True)
        response = client.get("/calls")
        assert response.status_code == 302 and response.headers["Location"].startswith("/login")
        token = csrf_token(client)
        again = client.post(
            "/login",
            data={"email": "carol@acme.example", "password": PASSWORD, "csrf_token": token},
        )
        assert LOGIN_FAILED_MESSAGE in again.get_data(as_text=True)
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/login", {"email": ACME_USER, "password": PASSWORD}),
        ("/login", {"email": ACME_USER, "password": PASSWORD, "csrf_token": "forged"}),
        ("/logout", {}),
    ],
    ids=["login-without-token", "login-forged-token", "logout-without-token"],
)
def test_post_without_valid_csrf_token_is_refused(
    client: FlaskClient, path: str, data: dict[str, str]
) -> None:
    login(client)
    response = client.post(path, data=data)
    assert response.status_code == 400
    assert "did not come from this site" in response.get_data(as_text=True)
    assert client.get("/calls").status_code == 200  # the forged logout did not log out


def test_logout_ends_the_session(client: FlaskClient) -> None:
    login(client)
    token = csrf_token(client, "/calls")
    response = client.post("/logout", data={"csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    response = client.get("/calls")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/calls"


def test_logout_is_post_only(client: FlaskClient) -> None:
    login(client)
    assert client.get("/logout").status_code == 405
    assert client.get("/calls").status_code == 200


def test_tenant_cannot_open_another_tenants_call(client: FlaskClient) -> None:
    login(client, GLOBEX_USER)
    assert client.get(f"/calls/{GLOBEX_CALL.record_id}").status_code == 200
    assert client.get(f"/calls/{LATE_EVENING.record_id}").status_code == 404

    token = csrf_token(client, "/calls")
    client.post("/logout", data={"csrf_token": token})
    login(client, ACME_USER)
    response = client.get(f"/calls/{GLOBEX_CALL.record_id}")
    assert response.status_code == 404
    assert GLOBEX_CALL.called not in response.get_data(as_text=True)
    listing = client.get("/calls", query_string={"number": GLOBEX_CALL.called})
    assert "No calls match these filters." in listing.get_data(as_text=True)


def test_staff_role_is_refused_the_tenant_portal(client: FlaskClient) -> None:
    login(client, TECH_USER)
    assert client.get("/").headers["Location"] == "/tech/sites"  # the console, not the portal
    response = client.get("/calls")
    assert response.status_code == 403
    assert "does not have access" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("next_url", "landing"),
    [
        ("/calls?extension=203", "/calls?extension=203"),
        ("https://evil.example/", "/"),
        ("//evil.example/calls", "/"),
        ("/\\evil.example", "/"),
        ("calls", "/"),
    ],
)
def test_login_returns_only_to_local_paths(
    client: FlaskClient, next_url: str, landing: str
) -> None:
    token = csrf_token(client)
    response = client.post(
        "/login",
        query_string={"next": next_url},
        data={"email": ACME_USER, "password": PASSWORD, "csrf_token": token},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == landing


def test_anonymous_visitor_is_sent_to_login_with_next(client: FlaskClient) -> None:
    response = client.get("/calls", query_string={"extension": "201"})
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/calls?extension%3D201"


@pytest.fixture
def failing_app(seeded_store: SeededStore) -> Iterator[Flask]:
    app = create_app(seeded_store.settings, test_config={"PROPAGATE_EXCEPTIONS": False})

    def explode() -> str:
        raise RuntimeError("SELECT secret FROM calls WHERE tenant_id = 2")

    app.add_url_rule("/boom", view_func=explode)
    app.add_url_rule("/api/boom", "api_boom", view_func=explode)
    yield app
    app.extensions["callcollect.store"].dispose()


def test_500_page_shows_no_traceback(failing_app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    response = failing_app.test_client().get("/boom")
    assert response.status_code == 500
    body = response.get_data(as_text=True)
    assert "Something went wrong on our side" in body
    assert "Traceback" not in body and "SELECT secret" not in body and "RuntimeError" not in body
    assert "SELECT secret" in caplog.text  # it is logged for the operator instead


def test_api_errors_are_json(failing_app: Flask) -> None:
    client = failing_app.test_client()
    response = client.get("/api/boom")
    assert response.status_code == 500
    assert response.is_json
    assert response.get_json()["error"]["status"] == 500
    assert "SELECT" not in response.get_data(as_text=True)
    missing = client.get("/api/no-such-thing")
    assert missing.status_code == 404 and missing.get_json()["error"]["title"] == "Not Found"


def test_html_404_page(client: FlaskClient) -> None:
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert "There is nothing at this address" in response.get_data(as_text=True)


def test_security_headers(client: FlaskClient) -> None:
    response = client.get("/login")
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"


def test_pages_load_nothing_from_other_hosts(client: FlaskClient) -> None:
    login(client)
    for path in ("/calls", f"/calls/{LATE_EVENING.record_id}", "/static/app.css"):
        with client.get(path) as response:
            body = response.get_data(as_text=True)
        assert "http://" not in body and "https://" not in body and "//cdn" not in body, path


def test_factory_neither_migrates_nor_connects(tmp_path: Path) -> None:
    # A "database" that only listens: any connection attempt would wait in its backlog.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(0.3)
        port = listener.getsockname()[1]
        config = tmp_path / "dc.toml"
        config.write_text(
            f'data_dir = "{tmp_path}"\n[store]\nurl = "postgresql+psycopg://cc@127.0.0.1:{port}/cc"\n'
        )
        app = create_app(load_settings(config, env={}))
        try:
            assert app.config["SECRET_KEY"]
            with pytest.raises(TimeoutError):
                listener.accept()
        finally:
            app.extensions["callcollect.store"].dispose()
    # An empty SQLite data dir stays un-migrated.
    (tmp_path / "d").mkdir()
    sqlite_settings = load_settings(env={"CALLCOLLECT_DC_DATA_DIR": str(tmp_path / "d")})
    sqlite_app = create_app(sqlite_settings)
    engine = open_store(sqlite_settings.store.url)
    try:
        assert current_revision(engine) is None
    finally:
        engine.dispose()
        sqlite_app.extensions["callcollect.store"].dispose()


def test_secret_is_generated_once_and_persisted(tmp_path: Path) -> None:
    settings = load_settings(env={"CALLCOLLECT_DC_DATA_DIR": str(tmp_path)})
    first = create_app(settings)
    second = create_app(settings)
    try:
        assert len(first.config["SECRET_KEY"]) >= 32
        assert first.config["SECRET_KEY"] == second.config["SECRET_KEY"]
        assert settings.web.secret_key_file.stat().st_mode & 0o777 == 0o600
    finally:
        first.extensions["callcollect.store"].dispose()
        second.extensions["callcollect.store"].dispose()
