"""The isolation matrix: every endpoint of the app x every role x every party's real ids.

The rules come from ``app.url_map``, so a new endpoint is covered without touching this file;
an endpoint with a URL parameter the matrix cannot fill (``FILLERS``) fails the test until one
is added. For each viewer (tenant admin, org-wide user, user limited to one department, user
limited to their own extension, technician assigned to acme, technician of globex only, signed
out) and each party (its call carries a recording, so the audio endpoints answer real audio) (a call and user in the viewer's scope, in another scope of the same tenant,
in the other tenant), every GET is fetched with the party's ids, and every POST to an object
the viewer must not reach is sent with a valid CSRF token. A leak is a body showing a party's
distinctive number or email that the viewer may not see, or a refused POST that was not
refused. POSTs to objects the viewer may change are not sent (they would change the store the
other cases read).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.routing import Rule
from werkzeug.test import TestResponse

from datacenter.accounts.tenants import get_tenant
from datacenter.cost_alarms.evaluate import Finding
from datacenter.cost_alarms.rules import RuleKind
from datacenter.cost_alarms.store import record_finding
from datacenter.store.engine import open_store, write_transaction
from datacenter.store.tables.core import tenants
from datacenter.store.tables.cost_alarms import cost_alarms
from datacenter.store.tables.directory import directory_entries
from tests.fixtures.saved_reports import party_report
from tests.fixtures.scopes import (
    ACME_ADMIN,
    EXT_USER,
    PARTY_CALLS,
    SALES_USER,
    TECH_ACME,
    TECH_GLOBEX,
    Party,
    ScopedWorld,
)
from tests.fixtures.web import ACME_USER, GLOBEX_USER, csrf_token, login

Filler = Callable[[ScopedWorld, Party], str | int]
FILLERS: dict[str, Filler] = {
    "record_id": lambda world, party: party.record_id,
    "recording_id": lambda world, party: party.recording_id,
    "tenant_slug": lambda world, party: party.tenant_slug,
    "agent_id": lambda world, party: party.agent_id,
    "alarm_id": lambda world, party: f"{party.name}-alarm",
    "user_id": lambda world, party: world.user_ids[party.user_email],
    "filename": lambda world, party: "app.css",
    "entry_id": lambda world, party: _entry_id(world, party),
    "cost_alarm_id": lambda world, party: _cost_alarm_id(world, party),
    # no party holds an API token: any id is someone else's, and revoking it must be refused
    "token_id": lambda world, party: 999_000 + sorted(world.parties).index(party.name),
    # each party's private saved report and its schedule (tests/fixtures/saved_reports.py)
    "saved_id": lambda world, party: party_report(world, party)[0],
    "schedule_id": lambda world, party: party_report(world, party)[1],
    # a signed report link: any forged one must be refused (403) to everyone
    "token": lambda world, party: f"forged-{party.name}.not-a-signature",
}


def _entry_id(world: ScopedWorld, party: Party) -> str:
    """The directory entry of the party's extension (another tenant's has none: any id)."""
    engine = open_store(world.seeded.settings.store.url)
    try:
        with engine.connect() as conn:
            found = conn.scalar(
                sa.select(directory_entries.c.entry_id)
                .join(tenants, tenants.c.tenant_id == directory_entries.c.tenant_id)
                .where(
                    tenants.c.slug == party.tenant_slug,
                    directory_entries.c.extension == PARTY_CALLS[party.name][2],
                )
            )
    finally:
        engine.dispose()
    return str(found) if found is not None else "0" * 32


def _cost_alarm_id(world: ScopedWorld, party: Party) -> str:
    """A cost alarm of the party's tenant holding the party's call (made once, then found)."""
    engine = open_store(world.seeded.settings.store.url)
    try:
        with write_transaction(engine) as conn:
            tenant = get_tenant(conn, party.tenant_slug)
            assert tenant is not None
            finding = Finding("matrix", RuleKind.CALL_COST, party.name, "2026-01-01",
                              "matrix", (party.record_id,))  # fmt: skip
            record_finding(conn, tenant.tenant_id, finding, now=datetime.now(UTC))
            found = conn.scalar(
                sa.select(cost_alarms.c.alarm_id).where(
                    cost_alarms.c.tenant_id == tenant.tenant_id,
                    cost_alarms.c.rule_id == "matrix",
                    cost_alarms.c.subject == party.name,
                )
            )
    finally:
        engine.dispose()
    return str(found)


ACME_PARTIES = ("sales", "ext203", "support")
ACME_EMAILS = (ACME_ADMIN, ACME_USER, SALES_USER, EXT_USER)
# viewer -> (email to sign in with, parties whose calls it sees, emails it may see)
VIEWERS: dict[str, tuple[str | None, tuple[str, ...], tuple[str, ...]]] = {
    "tenant-admin": (ACME_ADMIN, ACME_PARTIES, ACME_EMAILS),
    "org-user": (ACME_USER, ACME_PARTIES, (ACME_USER,)),
    "department-user": (SALES_USER, ("sales",), (SALES_USER,)),
    "extension-user": (EXT_USER, ("ext203",), (EXT_USER,)),
    "technician-assigned": (TECH_ACME, (), (TECH_ACME, *ACME_EMAILS)),
    "technician-unassigned": (TECH_GLOBEX, (), (TECH_GLOBEX, GLOBEX_USER)),
    "signed-out": (None, (), ()),
}
REFUSED = (403, 404)


def _url(rule: Rule, world: ScopedWorld, party: Party) -> str:
    values = {}
    for name in sorted(rule.arguments):
        if name not in FILLERS:
            pytest.fail(
                f"endpoint {rule.endpoint} ({rule.rule}) has a parameter {name!r} the isolation "
                "matrix cannot fill: add it to FILLERS in tests/integration/test_isolation_matrix.py"
            )
        values[name] = FILLERS[name](world, party)
    url = rule.rule
    for name, value in values.items():
        url = url.replace(f"<int:{name}>", str(value)).replace(f"<{name}>", str(value))
        url = url.replace(f"<path:{name}>", str(value))
    assert "<" not in url, f"unfilled converter in {rule.rule}"
    return url


def _secrets(party: Party) -> tuple[str, str]:
    return party.number, party.user_email


def _leaks(
    body: str, world: ScopedWorld, sees_calls: tuple[str, ...], sees_emails: tuple[str, ...]
) -> list[str]:
    found = []
    for name, party in world.parties.items():
        if name not in sees_calls and party.number in body:
            found.append(f"{name}'s number {party.number}")
        if party.user_email not in sees_emails and party.user_email in body:
            found.append(f"{name}'s user {party.user_email}")
    return found


def _client(app: Flask, email: str | None) -> FlaskClient:
    client = app.test_client()
    if email is not None:
        login(client, email)
    return client


@pytest.mark.parametrize("viewer", list(VIEWERS))
def test_no_endpoint_shows_a_viewer_what_is_outside_its_scope(
    scoped_app: Flask, scoped_world: ScopedWorld, viewer: str
) -> None:
    email, sees_calls, sees_emails = VIEWERS[viewer]
    client = _client(scoped_app, email)
    token = csrf_token(client, "/account/" if email else "/login")
    problems: list[str] = []
    checked = 0
    for rule in scoped_app.url_map.iter_rules():
        parties = list(scoped_world.parties.values()) if rule.arguments else [None]
        for party in parties:
            url = _url(rule, scoped_world, party) if party is not None else rule.rule
            methods = rule.methods or set()
            if "GET" in methods:
                response = client.get(url)
                checked += 1
                body = response.get_data().decode(errors="replace")  # audio is binary
                response.close()  # static files are streamed from an open file
                if response.status_code >= 500:
                    problems.append(f"GET {url}: {response.status_code}")
                for leak in _leaks(body, scoped_world, sees_calls, sees_emails):
                    problems.append(f"GET {url} ({rule.endpoint}) shows {leak}")
                if _audio(response) and party is not None and party.name not in sees_calls:
                    problems.append(f"GET {url} ({rule.endpoint}) plays {party.name}'s recording")
            if "POST" in methods and party is not None and not _may_change(viewer, party, rule):
                response = client.post(url, data={"csrf_token": token})
                checked += 1
                if not _refused(response.status_code, response.headers.get("Location", "")):
                    problems.append(
                        f"POST {url} ({rule.endpoint}) by {viewer} answered "
                        f"{response.status_code}, not refused"
                    )
    assert checked >= 40  # every GET rule at least once
    assert problems == []


def _audio(response: TestResponse) -> bool:
    """A body that is a party's data without showing its number: a recording's audio."""
    return response.status_code in (200, 206) and (response.mimetype or "").startswith("audio/")


def _may_change(viewer: str, party: Party, rule: Rule) -> bool:
    """Whether ``viewer`` may act on ``party``'s objects (then the POST is not sent)."""
    owned = {"saved_id", "schedule_id"}  # a user's own saved reports and schedules
    if owned & set(rule.arguments) and VIEWERS[viewer][0] == party.user_email:
        return True
    if viewer in ("tenant-admin", "technician-assigned"):
        return party.tenant_slug == "acme"
    if viewer == "technician-unassigned":
        return party.tenant_slug == "globex"
    return False


def _refused(status: int, location: str) -> bool:
    return status in REFUSED or (status == 302 and location.startswith("/login"))


def test_the_matrix_fails_on_an_endpoint_it_cannot_fill(
    scoped_app: Flask, scoped_world: ScopedWorld
) -> None:
    scoped_app.add_url_rule("/new/<widget_id>", "new_widget", lambda widget_id: widget_id)
    rule = next(r for r in scoped_app.url_map.iter_rules() if r.endpoint == "new_widget")
    with pytest.raises(pytest.fail.Exception, match="widget_id"):
        _url(rule, scoped_world, scoped_world.parties["sales"])


def test_every_viewer_sees_its_own_party(scoped_app: Flask, scoped_world: ScopedWorld) -> None:
    """The matrix's other half: a scope that showed nothing would pass it trivially."""
    for viewer, (email, sees_calls, _) in VIEWERS.items():
        if not sees_calls:
            continue
        client = _client(scoped_app, email)
        listing = client.get("/calls").get_data(as_text=True)
        for name in sees_calls:
            party = scoped_world.parties[name]
            assert party.number in listing, f"{viewer} does not see {name} in /calls"
            detail = client.get(f"/calls/{party.record_id}")
            assert detail.status_code == 200 and party.number in detail.get_data(as_text=True)


@pytest.mark.parametrize("viewer", ["tenant-admin", "technician-assigned"])
def test_every_post_endpoint_refuses_a_missing_csrf_token(
    scoped_app: Flask, scoped_world: ScopedWorld, viewer: str
) -> None:
    """Every form of the app, found from the URL map: without its token, nothing happens."""
    client = _client(scoped_app, VIEWERS[viewer][0])
    posts = [r for r in scoped_app.url_map.iter_rules() if "POST" in (r.methods or set())]
    assert len(posts) >= 15
    for rule in posts:
        url = _url(rule, scoped_world, scoped_world.parties["sales"])
        response = client.post(url, data={"password": "x", "role": "tenant_admin"})
        assert response.status_code == 400, f"POST {url} without a CSRF token"


def test_the_tenant_admin_sees_its_own_parties_cost_alarms(
    scoped_app: Flask, scoped_world: ScopedWorld
) -> None:
    """The cost alarm pages' other half: the admin's own alarms do show their calls."""
    client = _client(scoped_app, ACME_ADMIN)
    for name in ACME_PARTIES:
        party = scoped_world.parties[name]
        page = client.get(f"/cost-alarms/{_cost_alarm_id(scoped_world, party)}")
        assert page.status_code == 200
        assert party.number in page.get_data(as_text=True) or party.number.lstrip("0") in (
            page.get_data(as_text=True)
        )
