"""Costs, destinations, totals and explanations on the portal pages, against figures worked
out by hand from the demo britline tariff (datacenter/rating/demo/britline-2025-07.csv) for the
fixed calls of ``tests/fixtures/portal.py``. All calls are on Wednesday 16 July 2025, in
britline's day band (08:00-18:00 BST); "billed" follows the increments of each row:

- MOBILE, UK mobile (447), 60/1, talk 125 s: billed 60 + 65 x 1 = 125 s.
  Ingested at 0.0700/min: 0.0700 x 125/60 = 0.14583... -> half up 0.15. Re-rated on
  1 August at 0.0800/min: 0.0800 x 125/60 = 0.16666... -> 0.17 (history: 0.15 -> 0.17).
- LOCAL, London (4420), 60/60, fee 0.0150, talk 200 s: billed 240 s;
  0.0150 + 0.0200 x 240/60 = 0.0950 -> half up 0.10 (minimum 0.0300 not reached).
- PREMIUM, UK premium (449), 60/60, fee 0.1000, talk 30 s: billed 60 s;
  0.1000 + 1.5000 x 60/60 = 1.6000 -> 1.60 (minimum 0.5000 not reached).
- GERMANY (49), 60/1, talk 90 s: billed 90 s; 0.0450 x 90/60 = 0.0675 -> 0.07.
- INCOMING: no charge (britline has no inbound rows); UNANSWERED (a UK mobile): no charge.
- BRAZIL (+55): no destination in the deck -> not rated, NO_PREFIX_MATCH.

Totals of all seven: 0.17 + 0.10 + 1.60 + 0.07 = 1.94 GBP; billed 125 + 240 + 60 + 90 = 515 s
= 8.58 minutes; talk 125 + 200 + 30 + 90 + 42 + 0 + 60 = 547 s = 0:09:07; one not rated.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from datacenter.accounts.users import get_user_by_email
from datacenter.api_tokens import create_token
from datacenter.store.engine import open_store, write_transaction
from datacenter.web import create_app
from shared.icdr import ICDR
from tests.fixtures.portal import (
    BRAZIL,
    GERMANY,
    INCOMING,
    LOCAL,
    MOBILE,
    OTHER_USER,
    PREMIUM,
    UNANSWERED,
    USER,
    RatedStore,
    seed_rated_store,
)
from tests.fixtures.web import login
from tests.integration.test_web_calls import table_rows

_TOTAL_RE = re.compile(r'<dd id="total-(\w[\w-]*)">(.*?)</dd>', re.S)
_TAG_RE = re.compile(r"<[^>]+>")
# Columns: start, direction, from, to, destination, carrier, duration, billed, cost, completion


@pytest.fixture(scope="module")
def rated_store(tmp_path_factory: pytest.TempPathFactory) -> RatedStore:
    return seed_rated_store(tmp_path_factory.mktemp("rated-store"))


@pytest.fixture
def rated_app(rated_store: RatedStore) -> Iterator[Flask]:
    app = create_app(rated_store.settings, test_config={"TESTING": True})
    yield app
    app.extensions["callcollect.store"].dispose()


@pytest.fixture
def carol(rated_app: Flask) -> FlaskClient:
    client = rated_app.test_client()
    login(client, USER)
    return client


def totals(html: str) -> dict[str, str]:
    return {
        name: " ".join(_TAG_RE.sub(" ", value).split()) for name, value in _TOTAL_RE.findall(html)
    }


def rows_by_start(client: FlaskClient, **query: str) -> dict[str, list[str]]:
    html = client.get("/calls", query_string=query).get_data(as_text=True)
    rows = {}
    for row in table_rows(html):
        # person and department (columns 5 and 6): this data set has no directory
        assert row[4:6] == ["", ""], row
        rows[row[0]] = row[:4] + row[6:]
    return rows


def test_each_call_shows_party_destination_carrier_billed_and_cost(carol: FlaskClient) -> None:
    rows = rows_by_start(carol)
    assert rows["2025-07-16 11:00:00 BST"] == [
        "2025-07-16 11:00:00 BST", "Outgoing", "2201", "07700 900123", "UK mobile mobile",
        "britline", "0:02:05", "0:02:05", "0.17 GBP", "Answered",
    ]  # fmt: skip
    assert rows["2025-07-16 15:00:00 BST"][3:9] == [
        "020 7946 0123", "London local", "britline", "0:03:20", "0:04:00", "0.10 GBP",
    ]  # fmt: skip
    assert rows["2025-07-16 16:00:00 BST"][3:9] == [
        "0909 879 0000", "UK premium (09) premium", "britline", "0:00:30", "0:01:00", "1.60 GBP",
    ]  # fmt: skip
    assert rows["2025-07-16 17:00:00 BST"][3:9] == [
        "+49 30 12345678", "Germany international", "britline", "0:01:30", "0:01:30", "0.07 GBP",
    ]  # fmt: skip
    # Incoming: the caller (ANI) is the external party; To is the extension that answered.
    assert rows["2025-07-16 12:00:00 BST"][1:4] == ["Incoming", "07700 900456", "2203"]
    assert rows["2025-07-16 12:00:00 BST"][8] == "no charge"
    assert rows["2025-07-16 13:00:00 BST"][8] == "0.00 GBP"  # unanswered: priced at nothing
    assert rows["2025-07-16 14:00:00 BST"][3] == "+55 11 98765-4321"
    assert rows["2025-07-16 14:00:00 BST"][8] == "not rated"


def test_external_party_carries_its_e164(carol: FlaskClient) -> None:
    html = carol.get("/calls").get_data(as_text=True)
    assert 'title="+447700900123 (recorded: 07700900123)"' in html
    assert 'title="+447700900456 (recorded: 07700900456)"' in html
    assert "T025" not in [row[3] for row in table_rows(html)]


def test_totals_of_the_whole_set(carol: FlaskClient) -> None:
    html = carol.get("/calls").get_data(as_text=True)
    assert totals(html) == {
        "calls": "7", "talk": "0:09:07", "minutes": "8.58", "cost": "1.94 GBP", "not-rated": "1",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("query", "expected_calls", "cost", "minutes"),
    [
        ({"class": "mobile"}, [MOBILE, UNANSWERED], "0.17 GBP", "2.08"),  # 125 s
        ({"cost_min": "0.10"}, [MOBILE, LOCAL, PREMIUM], "1.87 GBP", "7.08"),  # 425 s
        ({"cost_max": "0.10"}, [LOCAL, GERMANY, INCOMING, UNANSWERED], "0.17 GBP", "5.50"),
        ({"answered": "no"}, [UNANSWERED], "0.00 GBP", "0.00"),
        ({"carrier": "britline", "direction": "out", "answered": "yes"},
         [MOBILE, LOCAL, PREMIUM, GERMANY], "1.94 GBP", "8.58"),
        ({"class": "premium", "cost_min": "1"}, [PREMIUM], "1.60 GBP", "1.00"),
        ({"direction": "in"}, [INCOMING], "—", "0.00"),  # a tariff-less zero: no currency
        ({"class": "international"}, [GERMANY], "0.07 GBP", "1.50"),  # Brazil is not rated
    ],
)  # fmt: skip
def test_filters_and_their_totals(
    carol: FlaskClient, query: dict[str, str], expected_calls: list[ICDR], cost: str, minutes: str
) -> None:
    html = carol.get("/calls", query_string=query).get_data(as_text=True)
    ids = set(re.findall(r'href="/calls/([0-9a-f]{32})"', html))
    assert ids == {call.record_id for call in expected_calls}
    found = totals(html)
    assert (found["calls"], found["cost"], found["minutes"]) == (
        str(len(expected_calls)), cost, minutes,
    )  # fmt: skip


@pytest.fixture
def carol_token(rated_store: RatedStore) -> str:
    engine = open_store(rated_store.settings.store.url)
    try:
        with write_transaction(engine) as conn:
            user = get_user_by_email(conn, USER)
            assert user is not None
            return create_token(conn, user.user_id, "costs test")[1]
    finally:
        engine.dispose()


def _api(client: FlaskClient, token: str, path: str, **query: str) -> Any:
    return client.get(path, query_string=query, headers={"Authorization": f"Bearer {token}"})


def test_the_api_lists_each_call_with_its_cost(rated_app: Flask, carol_token: str) -> None:
    client = rated_app.test_client()
    body = _api(client, carol_token, "/api/v1/calls").get_json()
    by_id = {call["record_id"]: call for call in body["calls"]}
    assert by_id[MOBILE.record_id]["cost"] == {
        "amount": "0.17", "currency": "GBP", "destination": "UK mobile",
        "number_class": "mobile", "carrier": "britline", "billed_seconds": 125,
        "e164": "447700900123", "tariff_version": "britline-2025-07", "zero_reason": None,
    }  # fmt: skip
    assert by_id[LOCAL.record_id]["cost"]["amount"] == "0.10"
    assert by_id[INCOMING.record_id]["cost"]["currency"] == ""  # no charge, no tariff
    assert by_id[BRAZIL.record_id]["cost"] is None
    assert by_id[BRAZIL.record_id]["unrated_reason"] == "NO_PREFIX_MATCH"
    one = _api(client, carol_token, f"/api/v1/calls/{PREMIUM.record_id}").get_json()["call"]
    assert (one["cost"]["amount"], one["unrated_reason"]) == ("1.60", None)


@pytest.mark.parametrize(
    ("query", "expected_calls"),
    [({"class": "mobile"}, [MOBILE, UNANSWERED]),
     ({"cost_min": "0.10"}, [MOBILE, LOCAL, PREMIUM]),
     ({"cost_max": "0.10"}, [LOCAL, GERMANY, INCOMING, UNANSWERED]),
     ({"carrier": "britline", "direction": "out", "answered": "true"},
      [MOBILE, LOCAL, PREMIUM, GERMANY]),
     ({"class": "premium", "cost_min": "1"}, [PREMIUM])],
)  # fmt: skip
def test_the_api_takes_the_pages_cost_filters(
    rated_app: Flask, carol_token: str, query: dict[str, str], expected_calls: list[ICDR]
) -> None:
    body = _api(rated_app.test_client(), carol_token, "/api/v1/calls", **query).get_json()
    assert {call["record_id"] for call in body["calls"]} == {c.record_id for c in expected_calls}


@pytest.mark.parametrize(
    ("query", "message"),
    [({"class": "cheap"}, "parameter 'class': is one of"),
     ({"cost_min": "abc"}, "parameter 'cost_min': is an amount"),
     ({"cost_max": "-1"}, "parameter 'cost_max': is an amount"),
     ({"cost_min": "NaN"}, "parameter 'cost_min': is an amount"),
     ({"cost_min": "2", "cost_max": "1"}, "parameter 'cost_max': is below 'cost_min'")],
)  # fmt: skip
def test_the_api_refuses_a_bad_cost_filter(
    rated_app: Flask, carol_token: str, query: dict[str, str], message: str
) -> None:
    response = _api(rated_app.test_client(), carol_token, "/api/v1/calls", **query)
    assert response.status_code == 400
    assert message in response.get_json()["error"]["message"]


def test_totals_are_of_the_filter_not_of_the_page(carol: FlaskClient) -> None:
    """Two pages would show the same totals: they come from the filtered query, not the rows."""
    page_two = carol.get("/calls", query_string={"page": "2"}).get_data(as_text=True)
    assert "past the last call" in page_two  # seven calls fill one page
    assert totals(carol.get("/calls").get_data(as_text=True))["calls"] == "7"


@pytest.mark.parametrize(
    ("query", "message"),
    [({"cost_min": "abc"}, "Not a valid decimal value"),
     ({"cost_min": "2", "cost_max": "1"}, "'Cost to' is below 'Cost from'."),
     ({"cost_max": "-1"}, "Number must be between 0")],
)  # fmt: skip
def test_invalid_cost_filter_lists_nothing(
    carol: FlaskClient, query: dict[str, str], message: str
) -> None:
    html = carol.get("/calls", query_string=query).get_data(as_text=True)
    assert message in html.replace("&#39;", "'")
    assert "Correct the filter above" in html and 'id="calls"' not in html


def test_detail_explains_the_cost(carol: FlaskClient) -> None:
    html = carol.get(f"/calls/{LOCAL.record_id}").get_data(as_text=True)
    text = " ".join(_TAG_RE.sub(" ", html).split())
    assert "0.10 GBP" in text
    assert "London (Local)" in text
    assert 'id="tariff-version">britline-2025-07<' in html
    assert "increments 60/60: first 60 s, then per 60 s" in text
    assert 'id="billed-seconds">240<' in html
    assert "<td>day</td>" in html  # the band
    assert (
        '<p class="arithmetic" id="arithmetic">0.0150 + 0.0200 x 240/60 = 0.0950 -&gt; half_up '
        "to 2 decimals = 0.10</p>"
    ) in html
    assert "prefix +4420 (longest prefix)" in text
    assert "Connection fee 0.0150, minimum charge 0.0300" in text
    assert "cleaned to 02079460123" in text  # the dial plan's steps, as rating recorded them
    # The explanation's times on the tenant's clock: the version's start, the band's from
    # (answered at 14:00:05 UTC).
    assert "in force from 2025-07-15 00:00:00 BST" in text
    assert "<td>2025-07-16 15:00:05 BST</td>" in html


def test_rerated_call_shows_its_current_cost_and_when_it_changed(carol: FlaskClient) -> None:
    html = carol.get(f"/calls/{MOBILE.record_id}").get_data(as_text=True)
    text = " ".join(_TAG_RE.sub(" ", html).split())
    assert "0.17 GBP" in text
    assert (
        "Cost changed on 2025-08-01 13:00:00 BST (re-rated): was 0.15 GBP (britline-2025-07), "
        "now 0.17 GBP (britline-2025-07)."
    ) in text
    assert "0.0800 x 125/60 = 0.1666666666..." in text
    assert text.count("= 0.17") == 1
    assert "Rated 2025-08-01 13:00:00 BST" in text


def test_unrated_call_says_why_and_what_to_fix(carol: FlaskClient) -> None:
    html = carol.get(f"/calls/{BRAZIL.record_id}").get_data(as_text=True)
    text = " ".join(_TAG_RE.sub(" ", html).split()).replace("&#39;", "'")
    assert "Not rated: The carrier's tariff has no destination for this number" in text
    assert (
        "Rating said: no destination of tariff 'britline-2025-07' matches +5511987654321 "
        "(international)"
    ) in text
    assert "To fix: Add a prefix row (or a class row) for this destination" in text
    assert "datacenter tariff import" in text
    assert "NO_PREFIX_MATCH; tried 2 times, last 2025-08-01 13:00:00 BST" in text  # ingest, re-rate


def test_zero_cost_call_says_why(carol: FlaskClient) -> None:
    text = " ".join(
        _TAG_RE.sub(" ", carol.get(f"/calls/{INCOMING.record_id}").get_data(as_text=True)).split()
    )
    assert "No charge · Incoming call: your tariff does not charge it" in text


def test_another_tenant_sees_none_of_it(rated_app: Flask) -> None:
    client = rated_app.test_client()
    login(client, OTHER_USER)
    assert client.get(f"/calls/{MOBILE.record_id}").status_code == 404
    html = client.get("/calls", query_string={"carrier": "britline"}).get_data(as_text=True)
    assert MOBILE.record_id not in html and "1.94" not in html


@pytest.mark.postgres
def test_costs_totals_and_filters_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    """The same figures from PostgreSQL: the totals' GROUP BY and the exact cost bounds."""
    store = seed_rated_store(tmp_path / "pg", store_url=pg_url)
    app = create_app(store.settings, test_config={"TESTING": True})
    try:
        client = app.test_client()
        login(client, USER)
        assert totals(client.get("/calls").get_data(as_text=True))["cost"] == "1.94 GBP"
        html = client.get("/calls", query_string={"cost_min": "0.10"}).get_data(as_text=True)
        found = totals(html)
        assert (found["calls"], found["cost"], found["minutes"]) == ("3", "1.87 GBP", "7.08")
        detail = client.get(f"/calls/{MOBILE.record_id}").get_data(as_text=True)
        assert "Cost changed on 2025-08-01 13:00:00 BST (re-rated)" in detail
    finally:
        app.extensions["callcollect.store"].dispose()
