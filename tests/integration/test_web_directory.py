"""The directory page: list, add, edit, CSV preview with errors by line, import; calls show the
person who had the extension then. On a seeded store of its own (this module writes entries)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from datacenter.web import create_app
from tests.fixtures.web import (
    ACME_TENANT_ADMIN,
    GLOBEX_TENANT_ADMIN,
    LATE_EVENING,
    WINTER_INCOMING,
    SeededStore,
    csrf_token,
    login,
    seed_store,
)

_ENTRY_LINK = re.compile(r'href="/directory/([0-9a-f]{32})">([^<]+)</a>')


@pytest.fixture(scope="module")
def directory_store(tmp_path_factory: pytest.TempPathFactory) -> SeededStore:
    return seed_store(tmp_path_factory.mktemp("directory-store"))


@pytest.fixture
def app(directory_store: SeededStore) -> Iterator[Flask]:
    app = create_app(
        directory_store.settings, test_config={"TESTING": True, "LOGIN_FAILURE_DELAY": 0}
    )
    yield app
    app.extensions["callcollect.store"].dispose()


def _import(client: FlaskClient, text: str, action: str) -> tuple[int, str]:
    response = client.post("/directory/import", data={
        "text": text, "action": action, "csrf_token": csrf_token(client, "/directory/import")})  # fmt: skip
    return response.status_code, response.get_data(as_text=True)


def test_preview_lists_bad_lines_and_writes_nothing(client: FlaskClient) -> None:
    login(client, ACME_TENANT_ADMIN)
    text = "extension,person,department\n301,Pat,Sales\n,Nobody,Sales\n302,,Sales\n"
    status, page = _import(client, text, "import")  # import is refused while lines are bad
    assert status == 200
    assert "Line 3: extension is empty" in page and "Line 4: person is empty" in page
    listing = client.get("/directory?q=Pat").get_data(as_text=True)
    assert "No directory entries match" in listing
    assert not [name for _id, name in _ENTRY_LINK.findall(listing) if name == "Pat"]


def test_import_then_calls_show_who_had_the_extension_then(client: FlaskClient) -> None:
    login(client, ACME_TENANT_ADMIN)
    # LATE_EVENING (ext 207, July 2025) was Quinn's; Rosa has had 207 since 2026.
    text = (
        "extension,person,department,valid_from,valid_to\n"
        "207,Quinn Ray,Logistics,2025-01-01,2026-01-01\n"
        "207,Rosa Sky,Sales,2026-01-01,\n"
    )
    status, page = _import(client, text, "preview")
    assert status == 200 and "Import 2 entries" in page
    status, _page = _import(client, text, "import")
    assert status == 302
    detail = client.get(f"/calls/{LATE_EVENING.record_id}").get_data(as_text=True)
    assert "Quinn Ray" in detail and "Logistics" in detail and "Rosa Sky" not in detail
    listing = client.get("/calls?extension=207").get_data(as_text=True)
    assert "Quinn Ray" in listing and "Logistics" in listing


def test_add_and_edit_an_entry(client: FlaskClient) -> None:
    login(client, ACME_TENANT_ADMIN)
    add = client.post("/directory/new", data={
        "extension": "202", "person": "Winnie Todd", "department": "Support",
        "valid_from": "2024-06-01", "csrf_token": csrf_token(client, "/directory")})  # fmt: skip
    assert add.status_code == 302
    listing = client.get("/directory?q=Winnie").get_data(as_text=True)
    (entry_id,) = [i for i, name in _ENTRY_LINK.findall(listing) if name == "Winnie Todd"]
    edit = client.post(f"/directory/{entry_id}", data={
        "person": "Winnie Todd", "department": "Billing", "email": "", "cost_centre": "CC-7",
        "site": "HQ", "csrf_token": csrf_token(client, f"/directory/{entry_id}")})  # fmt: skip
    assert edit.status_code == 302
    detail = client.get(f"/calls/{WINTER_INCOMING.record_id}").get_data(as_text=True)
    assert "Winnie Todd" in detail and "Billing" in detail and "CC-7" in detail


def test_another_tenants_entry_is_not_found(app: Flask) -> None:
    acme = app.test_client()
    login(acme, ACME_TENANT_ADMIN)
    acme.post("/directory/new", data={"extension": "555", "person": "Only Acme",
                                      "csrf_token": csrf_token(acme, "/directory")})  # fmt: skip
    listing = acme.get("/directory?q=Only").get_data(as_text=True)
    (entry_id,) = [i for i, name in _ENTRY_LINK.findall(listing) if name == "Only Acme"]
    globex = app.test_client()
    login(globex, GLOBEX_TENANT_ADMIN)
    assert globex.get(f"/directory/{entry_id}").status_code == 404
    token = csrf_token(globex, "/directory")
    changed = globex.post(f"/directory/{entry_id}", data={"person": "Pwned", "csrf_token": token})
    assert changed.status_code == 404
    assert "Only Acme" in acme.get(f"/directory/{entry_id}").get_data(as_text=True)
    assert "Only Acme" not in globex.get("/directory").get_data(as_text=True)


def test_signed_out_visitors_are_sent_to_login(client: FlaskClient) -> None:
    for path in ("/directory", "/directory/import", "/account/tokens"):
        response = client.get(path)
        assert response.status_code == 302 and "/login" in response.headers["Location"], path
