"""The technicians' console through the Flask test client: grid, filters, sort, site page,
acknowledge and silence with CSRF, alarm history, and who may see what."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from datacenter.health.alarms import Alarm, history, open_alarms
from datacenter.health.runner import AlarmRunner
from datacenter.store.engine import open_store
from datacenter.web import SESSION_COOKIE_NAME, create_app
from tests.fixtures.console import (
    ACME_DOWN,
    ACME_TRANSPORT,
    ADMIN_USER,
    SITE_STATES,
    TECH2_USER,
    ConsoleStore,
    seed_console_store,
)
from tests.fixtures.web import ACME_AGENT, ACME_USER, GLOBEX_AGENT, TECH_USER, csrf_token
from tests.fixtures.web import login as real_login

ROW_RE = re.compile(r'<tr class="site-row state-(\w+)" data-href="/tech/sites/([\w-]+)/([\w.-]+)"')


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> ConsoleStore:
    """A store of its own (this module acknowledges alarms), with the alarms raised."""
    store = seed_console_store(tmp_path_factory.mktemp("tech-console"))
    engine = open_store(store.settings.store.url)
    try:
        AlarmRunner(engine, store.settings).run_once(datetime.now(UTC))
    finally:
        engine.dispose()
    return store


@pytest.fixture
def engine(console: ConsoleStore) -> Iterator[sa.Engine]:
    engine = open_store(console.settings.store.url)
    yield engine
    engine.dispose()


@pytest.fixture
def app(console: ConsoleStore) -> Iterator[Flask]:
    app = create_app(console.settings, test_config={"TESTING": True, "LOGIN_FAILURE_DELAY": 0.01})
    yield app
    app.extensions["callcollect.store"].dispose()


_SESSIONS: dict[str, str] = {}


def login(client: FlaskClient, email: str) -> None:
    """Log in once per user and module (argon2 is slow on purpose), then reuse the cookie."""
    if email not in _SESSIONS:
        real_login(client, email)
        cookie = client.get_cookie(SESSION_COOKIE_NAME)
        assert cookie is not None
        _SESSIONS[email] = cookie.value
    else:
        client.set_cookie(SESSION_COOKIE_NAME, _SESSIONS[email])


def rows(client: FlaskClient, query: str = "") -> list[tuple[str, str, str]]:
    """(state, tenant, site) of each grid row, in page order."""
    response = client.get(f"/tech/sites{query}")
    assert response.status_code == 200, response.get_data(as_text=True)
    return ROW_RE.findall(response.get_data(as_text=True))


def alarm_of(engine: sa.Engine, agent_id: str) -> Alarm:
    with engine.connect() as conn:
        return next(a for a in open_alarms(conn) if a.agent_id == agent_id)


# --- the grid -----------------------------------------------------------------------------------


def test_a_technician_sees_the_states_of_their_tenants_sites_only(client: FlaskClient) -> None:
    login(client, TECH_USER)
    found = rows(client)
    assert {(tenant, site): state for state, tenant, site in found} == {
        key: state for key, state in SITE_STATES.items() if key[0] == "acme"
    }
    # worst first: nothing delivered at all, then transport trouble, then the healthy site
    assert [site for _, _, site in found] == [ACME_DOWN, ACME_TRANSPORT, ACME_AGENT]


def test_an_admin_sees_every_site(client: FlaskClient) -> None:
    login(client, ADMIN_USER)
    assert {(t, s): state for state, t, s in rows(client)} == SITE_STATES


def test_the_grid_says_why_in_words_and_shows_backlog_and_alarm(client: FlaskClient) -> None:
    login(client, TECH_USER)
    page = client.get("/tech/sites").get_data(as_text=True)
    assert "No heartbeat ever received" in page
    assert "The uplink failed 5 sessions in a row" in page
    assert "All well" in page
    assert ">12<" in page  # acme-pbx1's unbatched records
    assert page.count('class="unacked"') == 2  # two open alarms nobody has taken on
    assert "Leeds office" in page


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("?state=agent_down", [ACME_DOWN]),
        ("?state=problems", [ACME_DOWN, ACME_TRANSPORT]),
        ("?state=ok", [ACME_AGENT]),
        ("?state=silent", []),
        ("?q=leeds", [ACME_DOWN]),
        ("?q=uplink", [ACME_TRANSPORT]),
        ("?tenant=acme&state=transport_down", [ACME_TRANSPORT]),
    ],
)
def test_filters(client: FlaskClient, query: str, expected: list[str]) -> None:
    login(client, TECH_USER)
    assert [site for _, _, site in rows(client, query)] == expected


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("?state=on_fire", "There is no state &#39;on_fire&#39;"),
        ("?tenant=globex", "You do not look after a tenant &#39;globex&#39;"),
        ("?sort=colour", "Cannot sort by &#39;colour&#39;"),
    ],
)
def test_a_bad_filter_is_named_and_ignored(client: FlaskClient, query: str, message: str) -> None:
    """A technician cannot widen their view with a tenant they do not look after."""
    login(client, TECH_USER)
    page = client.get(f"/tech/sites{query}").get_data(as_text=True)
    assert message in page
    assert {s for _, _, s in ROW_RE.findall(page)} == {ACME_AGENT, ACME_DOWN, ACME_TRANSPORT}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("?sort=site", [ACME_AGENT, ACME_DOWN, ACME_TRANSPORT]),
        ("?sort=site&dir=desc", [ACME_TRANSPORT, ACME_DOWN, ACME_AGENT]),
        ("?sort=backlog", [ACME_AGENT, ACME_TRANSPORT, ACME_DOWN]),  # 12, 0, unknown
        ("?sort=last_upload&dir=desc", [ACME_AGENT, ACME_TRANSPORT, ACME_DOWN]),
        ("?sort=state&dir=desc", [ACME_AGENT, ACME_TRANSPORT, ACME_DOWN]),
    ],
)
def test_sort(client: FlaskClient, query: str, expected: list[str]) -> None:
    login(client, TECH_USER)
    assert [site for _, _, site in rows(client, query)] == expected


def test_sort_links_keep_the_filters_and_flip_direction(client: FlaskClient) -> None:
    login(client, TECH_USER)
    page = client.get("/tech/sites?state=problems&sort=site").get_data(as_text=True)
    assert 'href="/tech/sites?state=problems&amp;sort=site&amp;dir=desc"' in page
    assert 'aria-sort="ascending"' in page


# --- the site page ------------------------------------------------------------------------------


def test_site_page_shows_sources_chart_and_timeline(client: FlaskClient) -> None:
    login(client, TECH2_USER)
    response = client.get(f"/tech/sites/globex/{GLOBEX_AGENT}")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Source down" in page
    assert "connection refused by 127.0.0.1:1752" in page  # the source's last message
    assert "<code>smdr-main</code>" in page and "mivb_smdr" in page  # as the heartbeat reports
    assert '<svg class="chart"' in page and page.count('<rect class="bar') == 24
    assert "smdr-main failing" in page  # the timeline saw the source go from ok to failing
    assert "Alarm source down raised" in page
    assert 'name="csrf_token"' in page  # the acknowledge and silence forms


def test_unknown_site_and_other_tenants_site_are_404(client: FlaskClient) -> None:
    login(client, TECH2_USER)
    assert client.get("/tech/sites/globex/nope").status_code == 404
    assert client.get(f"/tech/sites/acme/{ACME_AGENT}").status_code == 404  # not theirs
    assert client.get("/tech/sites/nosuch/x").status_code == 404


# --- acknowledge and silence --------------------------------------------------------------------


def test_acknowledge_with_a_note(client: FlaskClient, engine: sa.Engine) -> None:
    login(client, TECH_USER)
    alarm = alarm_of(engine, ACME_DOWN)
    site = f"/tech/sites/acme/{ACME_DOWN}"
    response = client.post(
        f"/tech/alarms/acme/{alarm.alarm_id}/acknowledge",
        data={
            "note": "Site closed for refit, agent unplugged",
            "csrf_token": csrf_token(client, site),
        },
    )
    assert response.status_code == 302 and response.headers["Location"] == site
    acked = alarm_of(engine, ACME_DOWN)
    assert acked.acknowledged_by == TECH_USER
    assert acked.note == "Site closed for refit, agent unplugged"
    page = client.get(site).get_data(as_text=True)
    assert f"Acknowledged by {TECH_USER}" in page
    with engine.connect() as conn:
        events = history(conn, [alarm.tenant_id], agent_id=ACME_DOWN, kinds=["acknowledged"])
    assert [(e.actor, e.note) for e in events] == [(TECH_USER, acked.note)]


def test_silence_and_end_it(client: FlaskClient, engine: sa.Engine) -> None:
    login(client, TECH_USER)
    alarm = alarm_of(engine, ACME_TRANSPORT)
    site = f"/tech/sites/acme/{ACME_TRANSPORT}"
    before = datetime.now(UTC)
    response = client.post(
        f"/tech/alarms/acme/{alarm.alarm_id}/silence",
        data={"hours": "4", "note": "ISP works tonight", "csrf_token": csrf_token(client, site)},
    )
    assert response.status_code == 302
    silenced = alarm_of(engine, ACME_TRANSPORT)
    assert silenced.silenced_until is not None
    assert 4 * 3600 - 5 < (silenced.silenced_until - before).total_seconds() < 4 * 3600 + 60
    assert "Silenced until" in client.get(site).get_data(as_text=True)
    response = client.post(
        f"/tech/alarms/acme/{alarm.alarm_id}/unsilence",
        data={"csrf_token": csrf_token(client, site)},
    )
    assert response.status_code == 302
    assert alarm_of(engine, ACME_TRANSPORT).silenced_until is None


def test_a_silence_choice_not_offered_is_refused(client: FlaskClient, engine: sa.Engine) -> None:
    login(client, TECH_USER)
    alarm = alarm_of(engine, ACME_TRANSPORT)
    site = f"/tech/sites/acme/{ACME_TRANSPORT}"
    response = client.post(
        f"/tech/alarms/acme/{alarm.alarm_id}/silence",
        data={"hours": "9999", "note": "", "csrf_token": csrf_token(client, site)},
        follow_redirects=True,
    )
    assert "Nothing changed" in response.get_data(as_text=True)
    assert alarm_of(engine, ACME_TRANSPORT).silenced_until is None


def test_posts_without_a_csrf_token_are_refused(client: FlaskClient, engine: sa.Engine) -> None:
    login(client, TECH_USER)
    alarm = alarm_of(engine, ACME_TRANSPORT)
    for action in ("acknowledge", "silence", "unsilence"):
        response = client.post(f"/tech/alarms/acme/{alarm.alarm_id}/{action}", data={"hours": "1"})
        assert response.status_code == 400, action
    assert alarm_of(engine, ACME_TRANSPORT).acknowledged_at is None


def test_another_tenants_alarm_cannot_be_acknowledged(
    client: FlaskClient, engine: sa.Engine
) -> None:
    login(client, TECH2_USER)  # looks after globex only
    alarm = alarm_of(engine, ACME_TRANSPORT)
    token = csrf_token(client, f"/tech/sites/globex/{GLOBEX_AGENT}")
    for slug in ("acme", "globex"):  # the real tenant, and their own tenant with acme's id
        response = client.post(
            f"/tech/alarms/{slug}/{alarm.alarm_id}/acknowledge",
            data={"note": "mine now", "csrf_token": token},
        )
        assert response.status_code == 404
    assert alarm_of(engine, ACME_TRANSPORT).acknowledged_at is None


def test_alarm_history_page(client: FlaskClient) -> None:
    login(client, ADMIN_USER)
    page = client.get("/tech/alarms").get_data(as_text=True)
    assert page.count('class="event event-raised"') == 3  # one per site not ok
    only_globex = client.get("/tech/alarms?tenant=globex&kind=raised").get_data(as_text=True)
    assert only_globex.count('class="event event-raised"') == 1
    assert GLOBEX_AGENT in only_globex and ACME_DOWN not in only_globex


# --- who may see what ---------------------------------------------------------------------------

TECH_PAGES = [
    ("GET", "/tech/"),
    ("GET", "/tech/sites"),
    ("GET", "/tech/sites?state=problems"),
    ("GET", f"/tech/sites/acme/{ACME_AGENT}"),
    ("GET", "/tech/alarms"),
    ("POST", "/tech/alarms/acme/0123456789abcdef0123456789abcdef/acknowledge"),
    ("POST", "/tech/alarms/acme/0123456789abcdef0123456789abcdef/silence"),
    ("POST", "/tech/alarms/acme/0123456789abcdef0123456789abcdef/unsilence"),
]


@pytest.mark.parametrize(("method", "path"), TECH_PAGES)
def test_a_tenant_user_gets_403_on_every_technician_page(
    client: FlaskClient, method: str, path: str
) -> None:
    login(client, ACME_USER)
    token = csrf_token(client, "/calls")
    response = client.open(path, method=method, data={"csrf_token": token, "note": "x"})
    assert response.status_code == 403


@pytest.mark.parametrize(("method", "path"), TECH_PAGES)
def test_anonymous_visitors_are_sent_to_login(client: FlaskClient, method: str, path: str) -> None:
    if method == "POST":
        assert client.post(path).status_code == 400  # no session, so no valid CSRF token
    else:
        response = client.get(path)
        assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_technicians_land_on_the_grid_and_see_the_nav(client: FlaskClient) -> None:
    login(client, TECH_USER)
    response = client.get("/")
    assert response.headers["Location"] == "/tech/sites"
    page = client.get("/tech/sites").get_data(as_text=True)
    assert 'href="/tech/alarms"' in page and "/calls" not in page


def test_a_technician_without_tenants_is_told_how_to_get_some(
    client: FlaskClient, console: ConsoleStore, engine: sa.Engine
) -> None:
    from datacenter.accounts.users import create_user
    from datacenter.store.engine import write_transaction
    from tests.fixtures.web import PASSWORD

    with write_transaction(engine) as conn:
        create_user(conn, "newbie@callcollect.example", PASSWORD, "technician")
    login(client, "newbie@callcollect.example")
    page = client.get("/tech/sites").get_data(as_text=True)
    assert "datacenter technician assign newbie@callcollect.example TENANT" in page
    assert ROW_RE.findall(page) == []


def test_console_pages_carry_no_inline_script(client: FlaskClient) -> None:
    """The CSP forbids inline script: the console's JS is a static file."""
    login(client, ADMIN_USER)
    for path in ("/tech/sites", f"/tech/sites/acme/{ACME_AGENT}", "/tech/alarms"):
        page = client.get(path).get_data(as_text=True)
        assert not re.search(r"<script(?![^>]*\bsrc=)", page), path
        assert " style=" not in page and " onclick=" not in page, path
