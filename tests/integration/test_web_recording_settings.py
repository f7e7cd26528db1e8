"""Tenant admins set their recording policy and their users' recording permissions in the
browser's forms (Flask's client), audited, and only for their own tenant."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from datacenter.accounts import audit
from datacenter.accounts.tenants import require_tenant
from datacenter.accounts.users import User, get_user_by_email
from datacenter.recordings.access import RecordingPolicy, access_of, policy_of
from tests.fixtures.scopes import ACME_ADMIN, SALES_USER
from tests.fixtures.web import ACME_USER, GLOBEX_USER, csrf_token, login


@pytest.fixture
def engine(scoped_engine: sa.Engine) -> sa.Engine:
    return scoped_engine


def _client(app: Flask, email: str) -> FlaskClient:
    client = app.test_client()
    login(client, email)
    return client


def _user(engine: sa.Engine, email: str) -> User:
    with engine.connect() as conn:
        user = get_user_by_email(conn, email)
    assert user is not None
    return user


def _acme(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return require_tenant(conn, "acme").tenant_id


def _events(engine: sa.Engine, name: str) -> list[audit.AuditEvent]:
    with engine.connect() as conn:
        return [e for e in audit.events(conn, _acme(engine)) if e.event == name]


def _post(client: FlaskClient, path: str, form_page: str, data: dict[str, str]) -> str:
    token = csrf_token(client, form_page)
    response = client.post(path, data={"csrf_token": token, **data}, follow_redirects=True)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_the_policy_is_set_in_the_form_audited_and_shown_again(
    scoped_app: Flask, engine: sa.Engine
) -> None:
    admin = _client(scoped_app, ACME_ADMIN)
    before = len(_events(engine, "recording_policy_changed"))  # the module shares one store
    page = _post(admin, "/admin/recordings", "/admin/recordings",
                 {"retention_days": "90", "technicians": "y"})  # fmt: skip
    assert "Recording policy saved." in page and 'value="90"' in page
    with engine.connect() as conn:
        assert policy_of(conn, _acme(engine)) == RecordingPolicy(90, technicians_may_play=True)
    event = _events(engine, "recording_policy_changed")[0]  # newest first
    assert event.actor == ACME_ADMIN
    assert event.details == {"retention_days": 90, "technicians_may_play": True}
    # empty keeps audio for ever; an unchecked box takes the technicians' right away
    _post(admin, "/admin/recordings", "/admin/recordings", {"retention_days": ""})
    with engine.connect() as conn:
        assert policy_of(conn, _acme(engine)) == RecordingPolicy(None, technicians_may_play=False)
    # out of range: said, nothing changed
    page = _post(admin, "/admin/recordings", "/admin/recordings", {"retention_days": "0"})
    assert "Nothing changed" in page
    assert len(_events(engine, "recording_policy_changed")) == before + 2


def test_a_users_recording_permissions_are_granted_and_taken_on_their_page(
    scoped_app: Flask, engine: sa.Engine
) -> None:
    admin = _client(scoped_app, ACME_ADMIN)
    before = len(_events(engine, "permission_changed"))  # the module shares one store
    user = _user(engine, ACME_USER)
    page_path = f"/admin/users/{user.user_id}"
    assert "Call recordings" in admin.get(page_path).get_data(as_text=True)
    page = _post(admin, f"{page_path}/recordings", page_path, {"play": "y"})
    assert f"Recording permissions of {ACME_USER} saved." in page
    with engine.connect() as conn:
        access = access_of(conn, _user(engine, ACME_USER), _acme(engine))
    assert (access.play, access.download) == (True, False)
    _post(admin, f"{page_path}/recordings", page_path, {"download": "y"})
    with engine.connect() as conn:
        access = access_of(conn, _user(engine, ACME_USER), _acme(engine))
    assert (access.play, access.download) == (False, True)
    changed = _events(engine, "permission_changed")  # newest first
    changes = [(e.details["permission"], e.details["granted"])
               for e in reversed(changed[: len(changed) - before])]  # fmt: skip
    assert changes == [("recordings", True), ("recordings", False),
                       ("recordings_download", True)]  # fmt: skip


def test_permissions_are_only_for_tenant_users_of_the_admins_own_tenant(
    scoped_app: Flask, engine: sa.Engine
) -> None:
    admin = _client(scoped_app, ACME_ADMIN)
    before = len(_events(engine, "permission_changed"))  # the module shares one store
    own = _user(engine, ACME_ADMIN)
    own_page = admin.get(f"/admin/users/{own.user_id}").get_data(as_text=True)
    assert "May play the recordings" not in own_page  # admins always may: no panel
    page = _post(admin, f"/admin/users/{own.user_id}/recordings", "/admin/recordings",
                 {"play": "y"})  # fmt: skip
    assert "Nothing changed" in page and "permissions are for tenant users" in page
    stranger = _user(engine, GLOBEX_USER)
    token = csrf_token(admin, "/admin/recordings")
    response = admin.post(f"/admin/users/{stranger.user_id}/recordings",
                          data={"csrf_token": token, "play": "y"})  # fmt: skip
    assert response.status_code == 404
    assert len(_events(engine, "permission_changed")) == before
    # a tenant user cannot reach the pages at all
    user = _client(scoped_app, SALES_USER)
    assert user.get("/admin/recordings").status_code == 403
