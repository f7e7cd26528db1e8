"""The tenant admin's cost alarm pages: list and filter, open, acknowledge (audited), rules.

Alarms are recorded with the store's own ``record_finding`` on calls of the seeded web store
(tests/fixtures/web.py): one for acme's late-evening call, one for globex's call, which no
acme user may reach.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from datacenter.accounts import audit
from datacenter.accounts.scopes import set_mask_digits
from datacenter.accounts.tenants import get_tenant
from datacenter.cost_alarms.evaluate import Finding
from datacenter.cost_alarms.rules import RuleKind
from datacenter.cost_alarms.store import get_alarm, load_rules, record_finding, save_rules
from datacenter.store.engine import open_store, write_transaction
from datacenter.web import create_app
from tests.fixtures.web import (
    ACME_TENANT_ADMIN,
    ACME_USER,
    GLOBEX_CALL,
    LATE_EVENING,
    LENIENT,
    SeededStore,
    csrf_token,
    login,
    seed_store,
)

NOW = datetime(2025, 7, 15, 6, 0, tzinfo=UTC)


def raise_alarm(engine: sa.Engine, slug: str, record_id: str, *, subject: str) -> str:
    """An alarm of rule ``costly`` on ``record_id``; its id."""
    with write_transaction(engine) as conn:
        tenant = get_tenant(conn, slug)
        assert tenant is not None
        if load_rules(conn, tenant.tenant_id) is None:
            save_rules(conn, tenant.tenant_id, '[[rules]]\nid = "costly"\nkind = "call_cost"\n'
                       'over = "1"\n', actor="test", now=NOW)  # fmt: skip
        finding = Finding("costly", RuleKind.CALL_COST, subject, "2025-07-15",
                          "a call costs more than 1.00 GBP", (record_id,))  # fmt: skip
        record_finding(conn, tenant.tenant_id, finding, now=NOW)
        found = conn.execute(
            sa.text("SELECT alarm_id FROM cost_alarms WHERE tenant_id = :t AND subject = :s"),
            {"t": tenant.tenant_id, "s": subject},
        ).scalar_one()
    return str(found)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> SeededStore:
    return seed_store(tmp_path_factory.mktemp("cost-alarm-web"))


@pytest.fixture
def engine(seeded: SeededStore) -> Iterator[sa.Engine]:
    engine = open_store(seeded.settings.store.url)
    yield engine
    engine.dispose()


@pytest.fixture
def app(seeded: SeededStore) -> Iterator[Flask]:
    app = create_app(seeded.settings, test_config={"TESTING": True, "LOGIN_THROTTLE": LENIENT})
    yield app
    app.extensions["callcollect.store"].dispose()


def signed_in(app: Flask, email: str) -> FlaskClient:
    client = app.test_client()
    login(client, email)
    return client


def test_the_admin_lists_filters_opens_and_acknowledges_an_alarm(
    app: Flask, engine: sa.Engine
) -> None:
    acme_id = raise_alarm(engine, "acme", LATE_EVENING.record_id, subject="207")
    globex_id = raise_alarm(engine, "globex", GLOBEX_CALL.record_id, subject="301")
    client = signed_in(app, ACME_TENANT_ADMIN)
    listing = client.get("/cost-alarms").get_data(as_text=True)
    assert acme_id in listing and globex_id not in listing and "extension 207" in listing
    assert acme_id not in client.get("/cost-alarms?status=acknowledged").get_data(as_text=True)
    assert acme_id not in client.get("/cost-alarms?subject=999").get_data(as_text=True)
    assert acme_id in client.get("/cost-alarms?rule=costly&status=open").get_data(as_text=True)
    page = client.get(f"/cost-alarms/{acme_id}").get_data(as_text=True)
    assert f'href="/calls/{LATE_EVENING.record_id}"' in page
    assert "a call costs more than 1.00 GBP" in page and "Acknowledge" in page
    # 23:30 UTC on 14 July is 00:30 BST on the 15th on acme's clock
    assert "2025-07-15 00:30" in page
    token = csrf_token(client, f"/cost-alarms/{acme_id}")
    done = client.post(f"/cost-alarms/{acme_id}/acknowledge", data={"csrf_token": token})
    assert done.status_code == 302
    with engine.connect() as conn:
        acme = get_tenant(conn, "acme")
        assert acme is not None
        alarm = get_alarm(conn, acme.tenant_id, acme_id)
        events = [e for e in audit.events(conn, acme.tenant_id)
                  if e.event == "cost_alarm_acknowledged" and e.subject == acme_id]  # fmt: skip
    assert alarm is not None and alarm.acknowledged_by == ACME_TENANT_ADMIN
    assert len(events) == 1 and events[0].actor == ACME_TENANT_ADMIN
    assert events[0].details == {"rule": "costly", "subject": "207", "period": "2025-07-15"}
    page = client.get(f"/cost-alarms/{acme_id}").get_data(as_text=True)
    assert f"Acknowledged by {ACME_TENANT_ADMIN}" in page
    assert acme_id in client.get("/cost-alarms?status=acknowledged").get_data(as_text=True)


def test_another_tenants_alarm_is_not_found_and_cannot_be_acknowledged(
    app: Flask, engine: sa.Engine
) -> None:
    globex_id = raise_alarm(engine, "globex", GLOBEX_CALL.record_id, subject="301")
    client = signed_in(app, ACME_TENANT_ADMIN)
    assert client.get(f"/cost-alarms/{globex_id}").status_code == 404
    token = csrf_token(client, "/cost-alarms/rules")
    refused = client.post(f"/cost-alarms/{globex_id}/acknowledge", data={"csrf_token": token})
    assert refused.status_code == 404
    with engine.connect() as conn:
        globex = get_tenant(conn, "globex")
        assert globex is not None
        alarm = get_alarm(conn, globex.tenant_id, globex_id)
    assert alarm is not None and alarm.acknowledged_at is None


def test_a_tenant_user_who_is_not_an_admin_is_refused(app: Flask) -> None:
    client = signed_in(app, ACME_USER)
    assert client.get("/cost-alarms").status_code == 403
    assert client.get("/cost-alarms/rules").status_code == 403


def test_the_rules_page_refuses_a_bad_document_and_stores_a_good_one(
    app: Flask, engine: sa.Engine, tmp_path: Path
) -> None:
    client = signed_in(app, ACME_TENANT_ADMIN)
    token = csrf_token(client, "/cost-alarms/rules")
    bad = '[[rules]]\nkind = "call_cost"\nover = "ten"\n'
    page = client.post("/cost-alarms/rules", data={"csrf_token": token, "document": bad})
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and "Nothing saved" in body and "rules[0].over" in body
    good = '[hours]\ndays = "mon-sat"\n[[rules]]\nkind = "long_call"\nminutes = 90\n'
    saved = client.post("/cost-alarms/rules", data={"csrf_token": token, "document": good})
    assert saved.status_code == 302
    with engine.connect() as conn:
        acme = get_tenant(conn, "acme")
        assert acme is not None
        stored = load_rules(conn, acme.tenant_id)
        changes = [e for e in audit.events(conn, acme.tenant_id)
                   if e.event == "cost_alarm_rules_changed"]  # fmt: skip
    assert stored is not None and stored.document.replace("\r\n", "\n") == good
    assert changes and changes[0].details == {"rules": ["long_call"]}
    shown = client.get("/cost-alarms/rules").get_data(as_text=True)
    assert stored.webhook_secret in shown and "minutes = 90" in shown


def test_numbers_are_masked_for_an_admin_whose_role_is_masked(
    app: Flask, engine: sa.Engine
) -> None:
    """A short-calls alarm has a number as its subject and in its why: both are masked too."""
    number = "01632960123"
    with write_transaction(engine) as conn:
        acme = get_tenant(conn, "acme")
        assert acme is not None
        set_mask_digits(conn, acme.tenant_id, "tenant_admin", 3)
        finding = Finding("bursts", RuleKind.SHORT_CALLS, number, "2025-07-15",
                          f"5 or more calls shorter than 10 s to {number} within 60 minutes",
                          (LATE_EVENING.record_id,))  # fmt: skip
        record_finding(conn, acme.tenant_id, finding, now=NOW)
    try:
        client = signed_in(app, ACME_TENANT_ADMIN)
        listing = client.get("/cost-alarms?rule=bursts").get_data(as_text=True)
        assert "number 01632960xxx" in listing and number not in listing
        alarm_id = raise_alarm_id(engine, "acme", "bursts")
        page = client.get(f"/cost-alarms/{alarm_id}").get_data(as_text=True)
        assert "01632960xxx" in page and number not in page
    finally:
        with write_transaction(engine) as conn:
            acme = get_tenant(conn, "acme")
            assert acme is not None
            set_mask_digits(conn, acme.tenant_id, "tenant_admin", 0)


def raise_alarm_id(engine: sa.Engine, slug: str, rule_id: str) -> str:
    with engine.connect() as conn:
        tenant = get_tenant(conn, slug)
        assert tenant is not None
        return str(
            conn.execute(
                sa.text("SELECT alarm_id FROM cost_alarms WHERE tenant_id = :t AND rule_id = :r"),
                {"t": tenant.tenant_id, "r": rule_id},
            ).scalar_one()
        )
