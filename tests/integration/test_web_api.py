"""The JSON API and its tokens, through the real app on a seeded store of its own (this module
adds calls, tokens and directory entries, so it does not share the web tests' store).

Tokens are made on /account/tokens as a user would; the API is read with them."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import jsonschema
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from datacenter.accounts.tenants import get_tenant
from datacenter.accounts.users import create_user, set_disabled
from datacenter.cli import main
from datacenter.ingest.worker import ingest_once
from datacenter.store.engine import open_store, write_transaction
from datacenter.store.tables.api_tokens import api_tokens
from datacenter.web import create_app
from datacenter.web.api_spec import openapi_document
from shared.envelope import batch_file_name, seal
from shared.icdr import ICDR, Direction
from tests.factories import gen_smdr_call
from tests.fixtures.web import (
    ACME_AGENT,
    ACME_TENANT_ADMIN,
    ACME_USER,
    GLOBEX_USER,
    TECH_USER,
    SeededStore,
    csrf_token,
    login,
    seed_store,
)

_TOKEN_RE = re.compile(r'<code class="token">(cc_[A-Za-z0-9_-]+)</code>')


@pytest.fixture(scope="module")
def api_store(tmp_path_factory: pytest.TempPathFactory) -> SeededStore:
    return seed_store(tmp_path_factory.mktemp("api-store"))


@pytest.fixture
def app(api_store: SeededStore) -> Iterator[Flask]:
    app = create_app(api_store.settings, test_config={"TESTING": True, "LOGIN_FAILURE_DELAY": 0})
    yield app
    app.extensions["callcollect.store"].dispose()


def make_token(client: FlaskClient, email: str = ACME_USER, name: str = "tests") -> str:
    login(client, email)
    page = client.post("/account/tokens",
                       data={"name": name, "csrf_token": csrf_token(client, "/account/tokens")})  # fmt: skip
    assert page.status_code == 200
    match = _TOKEN_RE.search(page.get_data(as_text=True))
    assert match, "the new token is not on the page"
    return match.group(1)


def api(client: FlaskClient, path: str, token: str, **params: Any) -> Any:
    return client.get(path, query_string=params, headers={"Authorization": f"Bearer {token}"})


def validate(document: Any, schema_name: str) -> None:
    spec = openapi_document()
    schema = {"$ref": f"#/components/schemas/{schema_name}", "components": spec["components"]}
    jsonschema.Draft202012Validator(schema).validate(document)


def all_pages(client: FlaskClient, token: str, **params: Any) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    cursor = None
    while True:
        response = api(
            client, "/api/v1/calls", token, **params, **({"cursor": cursor} if cursor else {})
        )
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        validate(body, "CallPage")
        calls += body["calls"]
        cursor = body["next_cursor"]
        if cursor is None:
            return calls


def newest_first(records: tuple[ICDR, ...] | list[ICDR]) -> list[str]:
    return [
        r.record_id for r in sorted(records, key=lambda r: (r.start, r.record_id), reverse=True)
    ]


def test_a_token_is_shown_once_and_stored_only_as_its_hash(
    client: FlaskClient, api_store: SeededStore
) -> None:
    token = make_token(client)
    assert len(token) == 46  # cc_ + 43 characters: 32 random bytes
    again = client.get("/account/tokens").get_data(as_text=True)
    assert token not in again and token[:12] in again
    engine = open_store(api_store.settings.store.url)
    try:
        with engine.connect() as conn:
            hashes = conn.execute(sa.select(api_tokens.c.token_hash)).scalars().all()
    finally:
        engine.dispose()
    assert hashlib.sha256(token.encode()).hexdigest() in hashes
    assert not any(token in h for h in hashes)


def test_requests_without_a_live_token_are_refused_with_json(client: FlaskClient) -> None:
    assert client.get("/api/v1/calls").status_code == 401
    response = api(client, "/api/v1/calls", "cc_" + "x" * 43)
    assert response.status_code == 401
    assert response.get_json()["error"]["status"] == 401
    validate(response.get_json(), "Error")
    token = make_token(client)
    assert api(client, "/api/v1/calls", token).status_code == 200
    # Revoked on the page: refused from then on.
    page = client.get("/account/tokens").get_data(as_text=True)
    token_id = re.findall(r"/account/tokens/(\d+)/revoke", page)[0]
    revoke = client.post(f"/account/tokens/{token_id}/revoke",
                         data={"csrf_token": csrf_token(client, "/account/tokens")})  # fmt: skip
    assert revoke.status_code == 302
    assert api(client, "/api/v1/calls", token).status_code == 401
    # A session cookie alone does not open the API (tokens only: no CSRF exposure).
    assert client.get("/api/v1/calls").status_code == 401


def test_staff_have_no_tokens(client: FlaskClient) -> None:
    login(client, TECH_USER)
    assert client.get("/account/tokens").status_code == 403


def test_a_token_reads_only_its_owners_tenant(app: Flask, api_store: SeededStore) -> None:
    acme = make_token(app.test_client())
    globex = make_token(app.test_client(), GLOBEX_USER)
    client = app.test_client()
    globex_call = api_store.globex_calls[0].record_id
    acme_call = api_store.acme_calls[0].record_id
    assert api(client, f"/api/v1/calls/{globex_call}", acme).status_code == 404
    assert api(client, f"/api/v1/calls/{acme_call}", globex).status_code == 404
    own = api(client, f"/api/v1/calls/{globex_call}", globex)
    assert own.status_code == 200
    validate(own.get_json(), "CallResponse")
    assert own.get_json()["call"]["record_id"] == globex_call
    listed = {c["record_id"] for c in all_pages(client, globex)}
    assert listed == {c.record_id for c in api_store.globex_calls}


def test_cursor_pages_are_stable_when_calls_arrive(app: Flask, api_store: SeededStore) -> None:
    client = app.test_client()
    token = make_token(app.test_client())
    expected = newest_first(api_store.acme_calls)
    first = api(client, "/api/v1/calls", token, limit=7).get_json()
    assert [c["record_id"] for c in first["calls"]] == expected[:7]
    # New calls arrive, newer than everything and at exactly the cursor's start time.
    last = next(r for r in api_store.acme_calls if r.record_id == expected[6])
    arrivals = [
        gen_smdr_call(f"late-{n}", agent_id=ACME_AGENT, start=datetime(2026, 1, 1, tzinfo=UTC)
                      + timedelta(minutes=n), extension="201") for n in range(5)
    ] + [gen_smdr_call("same-instant", agent_id=ACME_AGENT, start=last.start, extension="201")]  # fmt: skip
    _ingest(api_store, arrivals, sequence=2)
    rest: list[str] = []
    cursor = first["next_cursor"]
    while cursor:
        body = api(client, "/api/v1/calls", token, limit=7, cursor=cursor).get_json()
        rest += [c["record_id"] for c in body["calls"]]
        cursor = body["next_cursor"]
    # Every call after the cursor, once, in order; the late arrivals are not pushed in.
    same = arrivals[-1].record_id
    after_cursor = [r for r in newest_first([*api_store.acme_calls, arrivals[-1]])
                    if r not in expected[:7]]  # fmt: skip
    assert rest == [r for r in after_cursor if r != same or same < expected[6]]
    assert len(rest) == len(set(rest))
    # And a fresh walk sees everything, arrivals included.
    every = [c["record_id"] for c in all_pages(client, token, limit=50)]
    assert every == newest_first([*api_store.acme_calls, *arrivals])


def test_filters_match_the_pages(app: Flask, api_store: SeededStore) -> None:
    client = app.test_client()
    token = make_token(app.test_client())
    calls = list(api_store.acme_calls)  # the seeded calls (another test may add more)
    known = {r.record_id for r in calls}
    cases: list[tuple[dict[str, Any], list[ICDR]]] = [
        ({"direction": "in"}, [r for r in calls if r.direction is Direction.IN]),
        ({"extension": "203"}, [r for r in calls if r.extension == "203"]),
        ({"answered": "false"}, [r for r in calls if not r.answered]),
        ({"number": "0207 946 0010"}, [r for r in calls if "02079460010" in r.calling + "|" + r.called]),
        ({"from": "2025-03-05", "to": "2025-03-06"},
         [r for r in calls if datetime(2025, 3, 5, tzinfo=UTC) <= r.start < datetime(2025, 3, 7, tzinfo=UTC)]),
    ]  # fmt: skip
    for params, wanted in cases:
        assert wanted, params  # each case must select something to mean anything
        got = [c["record_id"] for c in all_pages(client, token, **params, limit=20)]
        assert len(got) == len(set(got)), params
        assert {g for g in got if g in known} == {r.record_id for r in wanted}, params


@pytest.mark.parametrize(
    ("params", "name"),
    [({"from": "2025-13-01"}, "from"), ({"direction": "up"}, "direction"),
     ({"answered": "yes"}, "answered"), ({"limit": "0"}, "limit"), ({"limit": "501"}, "limit"),
     ({"cursor": "not-a-cursor"}, "cursor"), ({"from": "2025-03-02", "to": "2025-03-01"}, "to")],
)  # fmt: skip
def test_a_bad_parameter_is_named_in_a_400(app: Flask, params: dict[str, str], name: str) -> None:
    token = make_token(app.test_client())
    response = api(app.test_client(), "/api/v1/calls", token, **params)
    assert response.status_code == 400
    body = response.get_json()
    validate(body, "Error")
    assert f"parameter '{name}'" in body["error"]["message"]


def test_last_use_is_recorded(app: Flask, api_store: SeededStore) -> None:
    token = make_token(app.test_client(), name="last-use")
    digest = hashlib.sha256(token.encode()).hexdigest()
    engine = open_store(api_store.settings.store.url)
    try:
        with engine.connect() as conn:
            query = sa.select(api_tokens.c.last_used_at).where(api_tokens.c.token_hash == digest)
            assert conn.execute(query).scalar_one() is None
        before = datetime.now(UTC)
        assert api(app.test_client(), "/api/v1/directory", token).status_code == 200
        with engine.connect() as conn:
            used = conn.execute(query).scalar_one()
    finally:
        engine.dispose()
    assert used is not None and used >= before - timedelta(seconds=1)


def test_every_route_is_in_the_document_and_every_path_is_a_route(app: Flask) -> None:
    def openapi_path(rule: str) -> str:
        return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)

    routes = {
        openapi_path(r.rule) for r in app.url_map.iter_rules() if r.rule.startswith("/api/v1")
    }
    document = app.test_client().get("/api/v1/openapi.json").get_json()
    assert document["openapi"].startswith("3.1")
    assert routes == set(document["paths"])
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1"):
            methods = {m.lower() for m in rule.methods or ()} - {"head", "options"}
            assert methods == set(document["paths"][openapi_path(rule.rule)]), rule.rule
    jsonschema.Draft202012Validator.check_schema({"$defs": document["components"]["schemas"]})


def test_the_directory_api_lists_and_filters(app: Flask, api_store: SeededStore) -> None:
    user = app.test_client()
    login(user, ACME_TENANT_ADMIN)  # tenant admins change the directory
    csv = "extension,person,department\n601,Api Ann,Sales\n602,Api Bob,Support\n"
    response = user.post("/directory/import", data={
        "text": csv, "action": "import", "csrf_token": csrf_token(user, "/directory/import")})  # fmt: skip
    assert response.status_code == 302, response.get_data(as_text=True)
    token = make_token(app.test_client())
    body = api(app.test_client(), "/api/v1/directory", token, search="Api ").get_json()
    validate(body, "DirectoryList")
    assert sorted(e["person"] for e in body["entries"]) == ["Api Ann", "Api Bob"]
    sales = api(app.test_client(), "/api/v1/directory", token, department="Support").get_json()
    assert [e["person"] for e in sales["entries"] if e["person"].startswith("Api")] == ["Api Bob"]
    globex = make_token(app.test_client(), GLOBEX_USER)
    other = api(app.test_client(), "/api/v1/directory", globex, search="Api ").get_json()
    assert other["entries"] == []


def _ingest(seeded: SeededStore, records: list[ICDR], *, sequence: int) -> None:
    incoming = seeded.settings.landing.tenant_dir("acme", "incoming")
    data = seal(records, agent_id=ACME_AGENT, tenant="acme", sequence=sequence)
    (incoming / batch_file_name(ACME_AGENT, sequence)).write_bytes(data)
    engine = open_store(seeded.settings.store.url)
    try:
        assert ingest_once(engine, seeded.settings).inserted == len(records)
    finally:
        engine.dispose()


def test_the_token_command_makes_lists_and_revokes(app: Flask, api_store: SeededStore) -> None:
    runner = CliRunner()
    config = ["--config", str(api_store.config_path)]
    made = runner.invoke(main, ["token", "create", "--user", GLOBEX_USER, "--name", "cli", *config])
    assert made.exit_code == 0, made.output
    token = made.stdout.strip()
    assert token.startswith("cc_") and len(token) == 46
    client = app.test_client()
    assert api(client, "/api/v1/calls", token).status_code == 200
    listed = runner.invoke(main, ["token", "list", "--user", GLOBEX_USER, *config]).stdout
    row = next(line.split("\t") for line in listed.splitlines() if "\tcli\t" in line)
    assert row[2] == token[:12] + "..." and row[5] == "active" and row[4] != "never"
    revoked = runner.invoke(main, ["token", "revoke", "--user", GLOBEX_USER, row[0], *config])
    assert revoked.exit_code == 0, revoked.output
    assert api(client, "/api/v1/calls", token).status_code == 401
    again = runner.invoke(main, ["token", "revoke", "--user", GLOBEX_USER, row[0], *config])
    assert again.exit_code == 8 and "no active token" in again.output
    staff = runner.invoke(main, ["token", "create", "--user", TECH_USER, "--name", "x", *config])
    assert staff.exit_code == 3 and "technician" in staff.output


def test_a_disabled_owners_token_stops_working(app: Flask, api_store: SeededStore) -> None:
    engine = open_store(api_store.settings.store.url)
    try:
        with write_transaction(engine) as conn:
            owner = create_user(conn, "carol@acme.example", "correct horse battery staple",
                                "tenant", get_tenant(conn, "acme").tenant_id)  # type: ignore[union-attr]  # fmt: skip
        token = make_token(app.test_client(), "carol@acme.example")
        assert api(app.test_client(), "/api/v1/calls", token).status_code == 200
        with write_transaction(engine) as conn:
            set_disabled(conn, owner.user_id, True)
        assert api(app.test_client(), "/api/v1/calls", token).status_code == 401
    finally:
        engine.dispose()
