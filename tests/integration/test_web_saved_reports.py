"""The saved-report and schedule pages: save through the form, share, open under the viewer's
own scope, rename and delete by the owner or a tenant admin only, schedule with validated
recipients, run now and the run history, downloads, and the audit log."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from datacenter.reports.scheduler import ReportScheduler
from datacenter.store.engine import open_store, write_transaction
from datacenter.store.tables.accounts import audit_log
from datacenter.store.tables.saved_reports import saved_reports, schedule_runs
from tests.fixtures.scopes import ACME_ADMIN, EXT_USER, SALES_USER, ScopedWorld
from tests.fixtures.smtp import SmtpServer, mailer_for
from tests.fixtures.web import ACME_USER, GLOBEX_USER, csrf_token, login

TITLE_PREFIX = "Web test"
DAY = {"from": "2025-09-01", "to": "2025-09-01"}


@pytest.fixture
def engine(scoped_world: ScopedWorld) -> Iterator[sa.Engine]:
    engine = open_store(scoped_world.seeded.settings.store.url)
    yield engine
    with write_transaction(engine) as conn:  # the matrix's own reports stay
        conn.execute(saved_reports.delete().where(saved_reports.c.title.like(f"{TITLE_PREFIX}%")))
    engine.dispose()


def _client(app: Flask, email: str) -> FlaskClient:
    client = app.test_client()
    login(client, email)
    return client


def _save(client: FlaskClient, title: str, *, shared: bool, report: str = "detail",
          columns: tuple[str, ...] = ()) -> int:  # fmt: skip
    query = "&".join(f"{k}={v}" for k, v in DAY.items())
    token = csrf_token(client, f"/saved/new?report={report}&{query}")
    data: dict[str, object] = {"csrf_token": token, "report": report,
                               "query": query, "title": title, "columns": list(columns)}  # fmt: skip
    if shared:
        data["shared"] = "y"
    response = client.post("/saved/new", data=data)
    assert response.status_code == 302, response.get_data(as_text=True)
    match = re.fullmatch(r"/saved/(\d+)", response.headers["Location"])
    assert match, response.headers["Location"]
    return int(match.group(1))


def test_a_shared_report_shows_each_viewer_only_their_own_scope(
    scoped_app: Flask, scoped_world: ScopedWorld, engine: sa.Engine
) -> None:
    admin = _client(scoped_app, ACME_ADMIN)
    saved_id = _save(admin, f"{TITLE_PREFIX} every call of the day", shared=True)
    numbers = {name: party.number for name, party in scoped_world.parties.items()}
    admin_view = admin.get(f"/saved/{saved_id}").get_data(as_text=True)
    assert all(numbers[n] in admin_view for n in ("sales", "ext203", "support"))
    assert numbers["globex"] not in admin_view

    sales_view = _client(scoped_app, SALES_USER).get(f"/saved/{saved_id}").get_data(as_text=True)
    assert numbers["sales"] in sales_view
    assert numbers["support"] not in sales_view and numbers["ext203"] not in sales_view
    ext = _client(scoped_app, EXT_USER)
    ext_view = ext.get(f"/saved/{saved_id}").get_data(as_text=True)
    assert numbers["ext203"] in ext_view and numbers["sales"] not in ext_view
    download = ext.get(f"/saved/{saved_id}/download?format=csv")
    assert download.status_code == 200
    body = download.get_data(as_text=True)
    assert numbers["ext203"] in body and numbers["sales"] not in body
    assert f"{TITLE_PREFIX} every call of the day" in ext.get("/saved").get_data(as_text=True)
    # The other tenant never sees it, not even that it exists.
    assert _client(scoped_app, GLOBEX_USER).get(f"/saved/{saved_id}").status_code == 404


def test_a_private_report_is_its_owners_and_the_admins(
    scoped_app: Flask, engine: sa.Engine
) -> None:
    owner = _client(scoped_app, SALES_USER)
    saved_id = _save(owner, f"{TITLE_PREFIX} private", shared=False,
                     columns=("start_utc", "extension", "called"))  # fmt: skip
    page = owner.get(f"/saved/{saved_id}").get_data(as_text=True)
    assert (
        '<th scope="col">Start</th><th scope="col">Extension</th><th scope="col">Called</th></tr>'
        in page
    )
    assert _client(scoped_app, ACME_USER).get(f"/saved/{saved_id}").status_code == 404
    assert f"{TITLE_PREFIX} private" not in _client(scoped_app, ACME_USER).get("/saved").get_data(
        as_text=True
    )
    admin = _client(scoped_app, ACME_ADMIN)
    assert admin.get(f"/saved/{saved_id}").status_code == 200
    token = csrf_token(admin, f"/saved/{saved_id}")
    renamed = admin.post(f"/saved/{saved_id}/rename",
                         data={"csrf_token": token, "title": f"{TITLE_PREFIX} renamed"})  # fmt: skip
    assert renamed.status_code == 302
    assert f"{TITLE_PREFIX} renamed" in owner.get("/saved").get_data(as_text=True)


def test_a_colleague_may_open_a_shared_report_but_not_change_it(
    scoped_app: Flask, engine: sa.Engine
) -> None:
    saved_id = _save(_client(scoped_app, SALES_USER), f"{TITLE_PREFIX} shared", shared=True)
    colleague = _client(scoped_app, ACME_USER)
    assert colleague.get(f"/saved/{saved_id}").status_code == 200
    token = csrf_token(colleague, f"/saved/{saved_id}/download?format=csv".replace(
        "/download?format=csv", ""))  # fmt: skip
    for action, data in (("rename", {"title": "mine now"}), ("share", {"shared": "0"}),
                         ("delete", {})):  # fmt: skip
        answer = colleague.post(f"/saved/{saved_id}/{action}", data={"csrf_token": token, **data})
        assert answer.status_code == 404, action
    assert colleague.get(f"/saved/{saved_id}/schedule").status_code == 404
    with engine.connect() as conn:
        title = conn.scalar(sa.select(saved_reports.c.title).where(
            saved_reports.c.saved_id == saved_id))  # fmt: skip
    assert title == f"{TITLE_PREFIX} shared"


def test_a_bad_report_query_is_refused_with_its_reason(scoped_app: Flask) -> None:
    client = _client(scoped_app, ACME_USER)
    answer = client.get("/saved/new?report=summary&from=2025-13-01")
    assert answer.status_code == 400
    assert "is not a date" in answer.get_data(as_text=True)
    assert client.get("/saved/new?report=nonesuch").status_code == 400


def test_schedule_through_the_form_then_run_now_and_see_the_history(
    scoped_app: Flask, scoped_world: ScopedWorld, engine: sa.Engine, smtp_server: SmtpServer
) -> None:
    owner = _client(scoped_app, SALES_USER)
    saved_id = _save(owner, f"{TITLE_PREFIX} scheduled", shared=False, report="summary")
    token = csrf_token(owner, f"/saved/{saved_id}/schedule")
    form = {"csrf_token": token, "frequency": "monthly", "at": "07:30", "monthly": "weekday",
            "month_day": "1", "nth": "1", "nth_weekday": "0", "period": "previous_month",
            "format": "csv", "delivery": "attachment", "link_days": "7"}  # fmt: skip
    bad = owner.post(f"/saved/{saved_id}/schedule",
                     data={**form, "recipients": "ops@acme.example, not an address"})  # fmt: skip
    assert bad.status_code == 200
    assert "&#39;not an address&#39; is not an email address" in bad.get_data(as_text=True)
    made = owner.post(f"/saved/{saved_id}/schedule",
                      data={**form, "recipients": "ops@acme.example\nSam@Acme.example"})  # fmt: skip
    assert made.status_code == 302
    schedule_url = made.headers["Location"]
    page = owner.get(schedule_url).get_data(as_text=True)
    assert "Monthly on the first Monday at 07:30" in page
    assert "ops@acme.example, sam@acme.example" in page and "No runs yet." in page

    ran = owner.post(f"{schedule_url}/run", data={"csrf_token": csrf_token(owner, schedule_url)})
    assert ran.status_code == 302
    assert "queued" in owner.get(schedule_url).get_data(as_text=True)
    scheduler = ReportScheduler(engine, scoped_world.seeded.settings,
                                mailer=mailer_for(smtp_server))  # fmt: skip
    assert scheduler.run_due(datetime.now(UTC) + timedelta(seconds=1)).sent == 1
    history = owner.get(schedule_url).get_data(as_text=True)
    assert 'class="run-sent"' in history and f"run now by {SALES_USER}" in history
    [message] = smtp_server.inbox.messages
    assert message["To"] == "ops@acme.example, sam@acme.example"

    with engine.connect() as conn:
        events = [row.event for row in conn.execute(
            sa.select(audit_log.c.event).where(audit_log.c.actor == SALES_USER)
            .order_by(audit_log.c.audit_id))]  # fmt: skip
        runs = conn.execute(sa.select(sa.func.count()).select_from(schedule_runs)).scalar_one()
    assert events[-3:] == ["report_saved", "schedule_added", "schedule_run_requested"]
    assert runs >= 1
    deleted = owner.post(f"/saved/{saved_id}/delete",
                         data={"csrf_token": csrf_token(owner, f"/saved/{saved_id}")})  # fmt: skip
    assert deleted.status_code == 302
    assert owner.get(schedule_url).status_code == 404  # the schedule went with its report
