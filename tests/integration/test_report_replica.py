"""Report pages read through ``store.report_connection()``: with ``store.read_url`` set, the
dashboard, the report pages, exports and saved reports read the replica's calls.

The "replica" is a copy of the rated store's database (``CREATE DATABASE ... TEMPLATE``); the
primary's calls, costs and rollups are then emptied, so a report that shows the seven calls of
``tests/fixtures/portal.py`` read them from the replica, and one that shows none read the
primary. Accounts, sessions and saved reports stay on the primary (they are written).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from html import unescape
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from datacenter.accounts.users import get_user_by_email
from datacenter.reports.saved import save_report
from datacenter.settings import StoreSettings
from datacenter.store.engine import open_store, write_transaction
from datacenter.web import create_app
from tests.fixtures.portal import LONDON, MOBILE, USER, seed_rated_store
from tests.fixtures.postgres import PgCluster, pg_available
from tests.fixtures.web import login

pytestmark = pytest.mark.skipif(not pg_available(), reason="needs PostgreSQL 15 and root")

JULY = {"from": "2025-07-01", "to": "2025-07-31"}
CALLS = 7  # the rated data set's calls, all on 16 July 2025
_TAG_RE = re.compile(r"<[^>]+>")


@pytest.fixture
def replica_app(pg_cluster: PgCluster, tmp_path: Path) -> Iterator[Flask]:
    primary = pg_cluster.create_database("primary")
    rated = seed_rated_store(tmp_path / "data", store_url=pg_cluster.url(primary))
    replica = pg_cluster.create_database("replica")
    pg_cluster.psql(f'DROP DATABASE "{replica}"')
    pg_cluster.psql(f'CREATE DATABASE "{replica}" TEMPLATE "{primary}"')
    pg_cluster.psql(
        "TRUNCATE calls, call_costs, rollup_extension_days, rollup_route_days CASCADE", primary
    )
    settings = replace(
        rated.settings, store=StoreSettings(pg_cluster.url(primary), pg_cluster.url(replica))
    )
    app = create_app(settings, test_config={"TESTING": True})
    yield app
    app.extensions["callcollect.store"].dispose()
    app.extensions["callcollect.store.reports"].dispose()


@pytest.fixture
def carol(replica_app: Flask) -> FlaskClient:
    client = replica_app.test_client()
    login(client, USER)
    return client


def test_the_dashboard_and_report_pages_read_the_replica(carol: FlaskClient) -> None:
    board = carol.get("/dashboard", query_string={"day": "2025-07-16"}).text
    assert f"Today: {CALLS}" in " ".join(unescape(_TAG_RE.sub(" ", board)).split())
    page = carol.get("/reports/summary", query_string={**JULY, "o.by": "direction"})
    assert page.status_code == 200 and f'<td class="num">{CALLS}</td>' in page.text


def test_exports_read_the_replica(carol: FlaskClient) -> None:
    download = carol.get("/reports/detail/export.csv", query_string=JULY)
    assert download.status_code == 200
    rows = list(csv.reader(io.StringIO(download.get_data(as_text=True))))
    assert sum(1 for row in rows if MOBILE.record_id in row) == 1


def test_saved_reports_read_the_replica(replica_app: Flask, carol: FlaskClient) -> None:
    engine = open_store(replica_app.config["CALLCOLLECT_SETTINGS"].store.url)
    try:
        with write_transaction(engine) as conn:
            user = get_user_by_email(conn, USER)
            assert user is not None
            saved = save_report(
                conn, user, name="detail", query="from=2025-07-01&to=2025-07-31", columns=(),
                title="July", shared=False, zone=LONDON, now=datetime.now(UTC),
            )  # fmt: skip
    finally:
        engine.dispose()
    assert MOBILE.record_id in carol.get(f"/saved/{saved.saved_id}").text
    download = carol.get(f"/saved/{saved.saved_id}/download", query_string={"format": "csv"})
    assert MOBILE.record_id in download.get_data(as_text=True)
