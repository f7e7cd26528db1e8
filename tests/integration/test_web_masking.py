"""Number masking leaves no external number whole anywhere a masked user can read it.

On the rated store of ``tests/fixtures/portal.py`` (every kind of call: rated outgoing calls
whose cost explanation names the dialled and the E.164 number at each step, an incoming call
with ANI and DDI, a no-charge call, one the tariff could not rate whose queue detail names the
number), the tenant user's role is set to hide 3 digits. Then every response that user can get
(the call list, every call's detail page, the API's list and every call in it) must not contain
any of the calls' external numbers, in any format (digits, E.164, spaced national or
international): the test looks for each number's national significant digits after removing
spaces and dashes between digits. Before masking, the same search finds them, so the search is
known to work.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from datacenter.accounts.scopes import set_mask_digits
from datacenter.accounts.tenants import get_tenant
from datacenter.accounts.users import get_user_by_email
from datacenter.api_tokens import create_token
from datacenter.store.engine import open_store, write_transaction
from datacenter.web import create_app
from tests.fixtures.portal import MOBILE, RATED_CALLS, USER, RatedStore, seed_rated_store
from tests.fixtures.web import login

# The national significant digits of every external number of RATED_CALLS (dialled, ANI, DDI).
EXTERNAL = ("7700900123", "2079460123", "9098790000", "3012345678", "11987654321",
            "7700900456", "2079460321", "7700900999")  # fmt: skip
_BETWEEN_DIGITS = re.compile(r"(?<=\d)[\s\-\u00a0]+(?=\d)")


@pytest.fixture(scope="module")
def rated_store(tmp_path_factory: pytest.TempPathFactory) -> RatedStore:
    return seed_rated_store(tmp_path_factory.mktemp("masked-store"))


@pytest.fixture(scope="module")
def engine(rated_store: RatedStore) -> Iterator[sa.Engine]:
    engine = open_store(rated_store.settings.store.url)
    yield engine
    engine.dispose()


@pytest.fixture
def app(rated_store: RatedStore) -> Iterator[Flask]:
    app = create_app(rated_store.settings, test_config={"TESTING": True})
    yield app
    app.extensions["callcollect.store"].dispose()


def _mask(engine: sa.Engine, digits: int) -> None:
    with write_transaction(engine) as conn:
        tenant = get_tenant(conn, "acme")
        assert tenant is not None
        set_mask_digits(conn, tenant.tenant_id, "tenant", digits)


def _token(engine: sa.Engine) -> str:
    with write_transaction(engine) as conn:
        user = get_user_by_email(conn, USER)
        assert user is not None
        return create_token(conn, user.user_id, "masking test")[1]


def everything_readable(client: FlaskClient, token: str) -> dict[str, str]:
    """Every page and API response of the user's calls, by path."""
    auth = {"Authorization": f"Bearer {token}"}
    bodies = {"/calls": client.get("/calls").get_data(as_text=True)}
    listed = client.get("/api/v1/calls", headers=auth)
    assert listed.status_code == 200
    bodies["/api/v1/calls"] = listed.get_data(as_text=True)
    for call in RATED_CALLS:
        for path, headers in ((f"/calls/{call.record_id}", {}),
                              (f"/api/v1/calls/{call.record_id}", auth)):  # fmt: skip
            response = client.get(path, headers=headers)
            assert response.status_code == 200, path
            bodies[path] = response.get_data(as_text=True)
    return bodies


def numbers_shown(bodies: dict[str, str]) -> list[tuple[str, str]]:
    found = []
    for path, body in bodies.items():
        joined = _BETWEEN_DIGITS.sub("", body)
        found += [(path, number) for number in EXTERNAL if number in joined]
    return found


def test_a_masked_user_sees_no_external_number_on_any_page_or_api_response(
    app: Flask, engine: sa.Engine
) -> None:
    token = _token(engine)
    client = app.test_client()
    login(client, USER)
    unmasked = numbers_shown(everything_readable(client, token))
    assert {number for _, number in unmasked} == set(EXTERNAL)  # the search finds them
    _mask(engine, 3)
    try:
        bodies = everything_readable(client, token)
        assert numbers_shown(bodies) == []
        detail = bodies[f"/calls/{MOBILE.record_id}"]
        # The explanation is still there, its numbers masked, its amounts and dates whole.
        assert "How the cost was worked out" in detail
        assert "cleaned to 07700900xxx" in detail and "+447700900xxx" in detail
        assert "0.0800 x 125/60" in detail and "2025-07-16" in detail
        assert "07700900xxx" in bodies["/calls"] and "07700900xxx" in bodies["/api/v1/calls"]
    finally:
        _mask(engine, 0)
