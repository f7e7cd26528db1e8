"""The tenant's call list and call detail pages (Flask test client on the seeded store).

Expected results are computed here from the seeded ICDRs with their own, simple logic (local
days through zoneinfo, substring matches), not by calling the store, so a wrong query in the
scope or a wrong translation of the form shows up as a difference.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from html.parser import HTMLParser
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from flask.testing import FlaskClient

from datacenter.web import create_app
from datacenter.web.portal import PER_PAGE
from shared.icdr import ICDR, Direction
from tests.fixtures.web import (
    ACME_CALLS,
    LATE_EVENING,
    WINTER_INCOMING,
    SeededStore,
    login,
    seed_store,
)

LONDON = ZoneInfo("Europe/London")
_ID_RE = re.compile(r'href="/calls/([0-9a-f]{32})"')


class _Rows(HTMLParser):
    """The text of each body cell of the calls table, row by row."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._in_body = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tbody":
            self._in_body = True
        elif self._in_body and tag == "tr":
            self.rows.append([])
        elif self._in_body and tag == "td":
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "tbody":
            self._in_body = False
        elif tag == "td" and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def table_rows(html: str) -> list[list[str]]:
    parser = _Rows()
    parser.feed(html)
    return parser.rows


def listed_ids(client: FlaskClient, query: dict[str, str]) -> list[str]:
    """Record ids on every page of the list for ``query``, in page order."""
    ids: list[str] = []
    for page in range(1, 10):
        html = client.get("/calls", query_string={**query, "page": str(page)}).get_data(
            as_text=True
        )
        found = _ID_RE.findall(html)
        ids.extend(found)
        if 'rel="next"' not in html:
            return ids
    raise AssertionError("more pages than the seeded store can fill")


def newest_first(calls: list[ICDR]) -> list[str]:
    return [c.record_id for c in sorted(calls, key=lambda c: (c.start, c.record_id), reverse=True)]


def local_day(call: ICDR) -> date:
    return call.start.astimezone(LONDON).date()


@pytest.fixture
def tenant_client(client: FlaskClient) -> FlaskClient:
    login(client)
    return client


def test_first_page_newest_first_with_total(
    tenant_client: FlaskClient, seeded_store: SeededStore
) -> None:
    html = tenant_client.get("/calls").get_data(as_text=True)
    assert _ID_RE.findall(html) == newest_first(list(seeded_store.acme_calls))[:PER_PAGE]
    assert f"{ACME_CALLS} calls" in html and "page 1 of 3" in html
    assert 'rel="next" href="/calls?page=2"' in html and 'rel="prev"' not in html


def test_row_shows_local_time_with_zone_and_every_column(tenant_client: FlaskClient) -> None:
    rows = table_rows(tenant_client.get("/calls").get_data(as_text=True))
    # 23:30 UTC on 14 July is 00:30 British Summer Time on the 15th.
    # This store has no dial plan: the call is not rated, and its number shows as recorded.
    assert rows[0] == [
        "2025-07-15 00:30:00 BST", "Outgoing", "207", "01632960123", "", "", "", "", "1:02:05",
        "", "not rated", "Answered",  # no directory here: no person, department
    ]  # fmt: skip


def test_winter_call_is_shown_in_gmt(tenant_client: FlaskClient) -> None:
    html = tenant_client.get("/calls", query_string={"number": "07700900456"}).get_data(
        as_text=True
    )
    assert table_rows(html) == [
        ["2025-01-15 09:00:00 GMT", "Incoming", "07700900456", "202", "", "", "", "", "0:00:42",
         "", "not rated", "Answered"],
    ]  # fmt: skip


def test_pages_cover_every_call_once(tenant_client: FlaskClient, seeded_store: SeededStore) -> None:
    ids = listed_ids(tenant_client, {})
    assert ids == newest_first(list(seeded_store.acme_calls))
    last = tenant_client.get("/calls", query_string={"page": "3"}).get_data(as_text=True)
    assert len(_ID_RE.findall(last)) == ACME_CALLS - 2 * PER_PAGE
    assert 'rel="prev" href="/calls?page=2"' in last and 'rel="next"' not in last


def test_paging_keeps_the_filters(tenant_client: FlaskClient) -> None:
    html = tenant_client.get("/calls", query_string={"direction": "in"}).get_data(as_text=True)
    assert "page 1 of 1" in html  # 40 incoming calls: one page
    html = tenant_client.get("/calls", query_string={"from": "2025-03-01"}).get_data(as_text=True)
    assert 'rel="next" href="/calls?from=2025-03-01&amp;page=2"' in html


def test_page_past_the_end_says_so(tenant_client: FlaskClient) -> None:
    html = tenant_client.get("/calls", query_string={"page": "99"}).get_data(as_text=True)
    assert "This page is past the last call" in html and not _ID_RE.findall(html)


Select = Callable[[ICDR], bool]

FILTERS: list[tuple[dict[str, str], Select]] = [
    ({"from": "2025-07-15", "to": "2025-07-15"}, lambda c: local_day(c) == date(2025, 7, 15)),
    # The 14th in UTC, but the 15th in London: not in a filter for the 14th.
    ({"from": "2025-07-14", "to": "2025-07-14"}, lambda c: local_day(c) == date(2025, 7, 14)),
    ({"from": "2025-03-05", "to": "2025-03-06"},
     lambda c: date(2025, 3, 5) <= local_day(c) <= date(2025, 3, 6)),
    ({"from": "2025-03-10"}, lambda c: local_day(c) >= date(2025, 3, 10)),
    ({"to": "2025-02-28"}, lambda c: local_day(c) <= date(2025, 2, 28)),
    ({"extension": "203"}, lambda c: c.extension == "203"),
    ({"extension": " 207 "}, lambda c: c.extension == "207"),
    ({"number": "01632 960123"}, lambda c: "01632960123" in (c.calling + c.called + c.dialled_digits)),
    ({"number": "9460011"},
     lambda c: any("9460011" in n for n in (c.calling, c.called, c.dialled_digits))),
    ({"number": "555-0142"}, lambda c: False),  # globex's number: never in acme's list
    ({"direction": "in"}, lambda c: c.direction is Direction.IN),
    ({"direction": "internal", "extension": "202"},
     lambda c: c.direction is Direction.INTERNAL and c.extension == "202"),
    ({"direction": "tandem"}, lambda c: False),
]  # fmt: skip


@pytest.mark.parametrize(("query", "select"), FILTERS, ids=[str(q) for q, _ in FILTERS])
def test_filters(
    tenant_client: FlaskClient, seeded_store: SeededStore, query: dict[str, str], select: Select
) -> None:
    expected = newest_first([c for c in seeded_store.acme_calls if select(c)])
    assert listed_ids(tenant_client, query) == expected


def test_filter_form_keeps_what_was_typed(tenant_client: FlaskClient) -> None:
    html = tenant_client.get(
        "/calls", query_string={"from": "2025-03-05", "extension": "203", "direction": "out"}
    ).get_data(as_text=True)
    assert 'name="from" type="date" value="2025-03-05"' in html
    assert 'name="extension" type="text" value="203"' in html
    assert '<option selected value="out">Outgoing</option>' in html
    assert "matching the filters" in html and ">Clear</a>" in html


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"from": "2025-13-01"}, "Not a valid date value."),
        ({"from": "2025-03-10", "to": "2025-03-01"}, "'To' is before 'From'."),
        ({"direction": "sideways"}, "Not a valid choice."),
        ({"extension": "1" * 65}, "Field cannot be longer than 64 characters."),
    ],
)
def test_invalid_filter_lists_nothing_and_says_why(
    tenant_client: FlaskClient, query: dict[str, str], message: str
) -> None:
    response = tenant_client.get("/calls", query_string=query)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert message in html.replace("&#39;", "'")
    assert "Correct the filter above" in html and not _ID_RE.findall(html)


def test_detail_shows_every_field_and_the_raw_line(tenant_client: FlaskClient) -> None:
    response = tenant_client.get(f"/calls/{LATE_EVENING.record_id}")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    for text in (
        "Outgoing call, 2025-07-15 00:30:00 BST",
        "<dt>Answered at</dt><dd>2025-07-15 00:30:07 BST</dd>",
        "<dt>End</dt><dd>2025-07-15 01:32:12 BST</dd>",
        "<dt>Start (UTC)</dt><dd>2025-07-14 23:30:00 UTC</dd>",
        "<dt>Site clock</dt><dd>UTC+01:00</dd>",
        "<dt>Talk</dt><dd>1:02:05</dd>",
        "<dt>Ring</dt><dd>0:00:07</dd>",
        '<dt>Dialled digits</dt><dd class="number">01632960123</dd>',
        "<dt>Trunk</dt><dd>T009</dd>",
        "<dt>Account code</dt><dd>4711</dd>",
        "<dt>PBX completion code</dt><dd>A</dd>",
        "<dt>Agent</dt><dd>acme-pbx1</dd>",
        "<dt>Source</dt><dd>smdr-main (mitel_smdr)</dd>",
        "<dt>Parser version</dt><dd>mitel-smdr/1</dd>",
        "<dt>Batch file</dt><dd>acme-pbx1-0000000001.ccb</dd>",
        f'<dd class="number">{LATE_EVENING.record_id}</dd>',
        f'<pre class="raw" aria-labelledby="raw-heading">{LATE_EVENING.raw}</pre>',
    ):
        assert text in html, text


def test_unanswered_detail(tenant_client: FlaskClient, seeded_store: SeededStore) -> None:
    busy = next(c for c in seeded_store.acme_calls if not c.answered)
    html = tenant_client.get(f"/calls/{busy.record_id}").get_data(as_text=True)
    assert "<dt>Answered at</dt><dd>not answered</dd>" in html
    assert "<dt>Answered</dt><dd>No</dd>" in html


def test_detail_back_link_returns_to_the_filtered_list(tenant_client: FlaskClient) -> None:
    list_url = "http://localhost/calls?extension=202&page=1"
    html = tenant_client.get(
        f"/calls/{WINTER_INCOMING.record_id}", headers={"Referer": list_url}
    ).get_data(as_text=True)
    assert 'href="/calls?extension=202&amp;page=1">← Back to calls' in html
    other = tenant_client.get(
        f"/calls/{WINTER_INCOMING.record_id}", headers={"Referer": "https://evil.example/calls"}
    ).get_data(as_text=True)
    assert 'href="/calls">← Back to calls' in other


def test_unknown_record_is_404(tenant_client: FlaskClient) -> None:
    assert tenant_client.get("/calls/" + "0" * 32).status_code == 404


@pytest.mark.postgres
def test_list_and_local_day_filter_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    seeded = seed_store(tmp_path / "pg", store_url=pg_url)
    app = create_app(seeded.settings, test_config={"TESTING": True})
    try:
        client = app.test_client()
        login(client)
        assert listed_ids(client, {}) == newest_first(list(seeded.acme_calls))
        late = {"from": "2025-07-15", "to": "2025-07-15"}
        assert listed_ids(client, late) == [LATE_EVENING.record_id]
        assert listed_ids(client, {"from": "2025-07-14", "to": "2025-07-14"}) == []
        rows = table_rows(client.get("/calls", query_string=late).get_data(as_text=True))
        assert rows[0][0] == "2025-07-15 00:30:00 BST"
    finally:
        app.extensions["callcollect.store"].dispose()
