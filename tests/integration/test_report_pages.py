"""The report pages and the dashboard on the rated data set of ``tests/fixtures/portal.py``.

Figures are the hand-worked ones of tests/integration/test_web_costs.py (all seven calls on
Wednesday 16 July 2025: 1.94 GBP in all, MOBILE re-rated from 0.15 to 0.17 GBP). What is checked
here is the page: totals and sub-totals shown, each cost a link to its explanation or to the
calls behind it, export links with the same query string, clear 400s, and the landing page.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from datacenter.reports.catalog import REPORTS
from datacenter.web import create_app
from tests.fixtures.portal import MOBILE, OTHER_USER, UNANSWERED, USER, RatedStore, seed_rated_store
from tests.fixtures.web import login
from tests.integration.test_web_calls import table_rows

JULY = {"from": "2025-07-01", "to": "2025-07-31"}
_LINK_RE = re.compile(r'<a class="cost-link" href="([^"]+)"[^>]*>([^<]+)</a>')
_TOTALS_RE = re.compile(r'<tr id="totals">(.*?)</tr>', re.S)
_TAG_RE = re.compile(r"<[^>]+>")


@pytest.fixture(scope="module")
def rated_store(tmp_path_factory: pytest.TempPathFactory) -> RatedStore:
    return seed_rated_store(tmp_path_factory.mktemp("report-pages"))


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


def _cells(html: str) -> list[str]:
    found = _TOTALS_RE.search(html)
    assert found is not None, "no totals row"
    return [unescape(_TAG_RE.sub("", cell)).strip() for cell in found.group(1).split("</td>")][:-1]


def test_the_dashboard_is_the_landing_page_with_charts(carol: FlaskClient) -> None:
    assert carol.get("/").headers["Location"] == "/dashboard"
    html = carol.get("/dashboard", query_string={"day": "2025-07-16"}).get_data(as_text=True)
    text = " ".join(unescape(_TAG_RE.sub(" ", html)).split())
    assert "Today: 7" in text and "1.94 GBP" in text
    assert "(0 yesterday)" in text
    assert html.count("<svg") == 8 and "<script" not in html
    assert 'id="chart-class_month"' in html and "premium" in html  # cost by class, this month
    page = carol.get("/dashboard", query_string={"day": "16/07/2025"})
    assert page.status_code == 400 and "write YYYY-MM-DD" in unescape(page.get_data(as_text=True))


def test_the_index_lists_every_report(carol: FlaskClient) -> None:
    html = carol.get("/reports").get_data(as_text=True)
    for name, spec in REPORTS.items():
        assert f'href="/reports/{name}"' in html and spec.title in html


def test_a_summary_with_totals_drills_down_to_calls_and_their_explanations(
    carol: FlaskClient,
) -> None:
    html = carol.get("/reports/summary", query_string={**JULY, "o.by": "destination_class"}).text
    assert _cells(html) == ["Total", "GBP", "7", "6", "0:09:07", "0:08:35", "1.94"]
    links = {unescape(text): unescape(href) for href, text in _LINK_RE.findall(html)}
    mobile = urlsplit(links["0.17"])
    assert mobile.path == "/reports/detail"
    assert parse_qs(mobile.query) == {
        "from": ["2025-07-01"], "to": ["2025-07-31"], "f.destination_class": ["mobile"],
        "f.currency": ["GBP"],
    }  # fmt: skip
    # The incoming call has no charge and no currency: its row drills down with "!_%".
    unknown = parse_qs(urlsplit(links["0.00"]).query)
    assert unknown["f.destination_class"] == ["unknown"] and unknown["f.currency"] == ["!_%"]
    assert len(_LINK_RE.findall(carol.get(links["0.00"]).text)) == 1
    detail = carol.get(links["0.17"]).text
    ids = {href for href, _ in _LINK_RE.findall(detail)}
    assert ids == {f"/calls/{MOBILE.record_id}", f"/calls/{UNANSWERED.record_id}"}
    explanation = carol.get(f"/calls/{MOBILE.record_id}").text
    assert 'id="cost-changed"' in explanation  # the re-rated call shows its cost history
    for fmt in ("csv", "xlsx", "pdf"):
        href = re.search(rf'id="export-{fmt}" href="([^"]+)"', html)
        assert href is not None
        export = urlsplit(unescape(href.group(1)))
        assert export.path == f"/reports/summary/export.{fmt}"
        assert parse_qs(export.query)["o.by"] == ["destination_class"]


def test_a_filter_and_a_sort_shape_the_table(carol: FlaskClient) -> None:
    query = {**JULY, "o.by": "destination_class", "f.destination_class": "m%,p%",
             "sort": "cost", "order": "desc"}  # fmt: skip
    rows = table_rows(carol.get("/reports/summary", query_string=query).text)
    assert [(row[0], row[-1]) for row in rows] == [("premium", "1.60"), ("mobile", "0.17")]


def test_sub_totals_per_group(carol: FlaskClient) -> None:
    html = carol.get("/reports/chargeback", query_string={**JULY, "o.markup": "10"}).text
    assert 'class="subtotal"' in html and "Sub-total (none)" in html
    assert _cells(html)[-3:] == ["1.94", "10.0 %", "2.134"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"from": "2025-13-01"}, "from: '2025-13-01' is not a date"),
        ({**JULY, "to": "2025-06-01"}, "the last day is before the first"),
        ({**JULY, "f.extension": "20%-21"}, "extension"),
        ({**JULY, "f.cost": "cheap"}, "cost"),
        ({**JULY, "f.nonsense": "1"}, "no such filter"),
        ({**JULY, "o.by": "colour"}, "o.by: 'colour' is not one of"),
        ({**JULY, "sort": "colour"}, "sort: 'colour' is not a column"),
    ],
)
def test_bad_parameters_are_a_clear_400(
    carol: FlaskClient, query: dict[str, str], message: str
) -> None:
    response = carol.get("/reports/summary", query_string=query)
    html = unescape(response.get_data(as_text=True))
    assert response.status_code == 400
    error = re.search(r'id="report-error">(.*?)</div>', html, re.S)
    assert error is not None and message in _TAG_RE.sub("", error.group(1))
    assert "Traceback" not in html


def test_every_report_answers_for_the_month(carol: FlaskClient) -> None:
    for name in REPORTS:
        response = carol.get(f"/reports/{name}", query_string=JULY)
        assert response.status_code == 200, name
    assert carol.get("/reports/no-such-report").status_code == 404


def test_another_tenant_sees_none_of_it(rated_app: Flask) -> None:
    client = rated_app.test_client()
    login(client, OTHER_USER)
    html = client.get("/reports/detail", query_string=JULY).text
    assert MOBILE.record_id not in html and "No calls match." in html
    summary = client.get("/reports/summary", query_string=JULY).text
    assert _cells(summary)[2] == "0"


def test_a_report_page_offers_to_save_itself_with_its_parameters(carol: FlaskClient) -> None:
    query = {**JULY, "o.by": "destination_class", "f.destination_class": "m%"}
    html = carol.get("/reports/summary", query_string=query).text
    save = urlsplit(unescape(re.search(r'id="save-report" href="([^"]+)"', html)[1]))  # type: ignore[index]
    assert save.path == "/saved/new"
    asked = parse_qs(save.query)
    assert asked["report"] == ["summary"] and asked["f.destination_class"] == ["m%"]
    form = carol.get(f"{save.path}?{save.query}")
    assert form.status_code == 200
    # the form carries the page's parameters (less the report's name) to store with the report
    stored = re.search(r'name="query"[^>]*value="([^"]*)"', form.text)
    assert stored is not None and parse_qs(unescape(stored[1]))["o.by"] == ["destination_class"]
