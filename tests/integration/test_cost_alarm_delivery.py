"""Cost alarms delivered for real: an aiosmtpd server and an HTTP receiver on 127.0.0.1.

The email must list the alarm's calls with links to their pages; the webhook body must carry
them and verify against the tenant's secret; a receiver that fails is tried again after the
back-off the alarm records, and a later call sends the alarm again with every call.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from datacenter.accounts.users import create_user
from datacenter.cost_alarms import store as cost_store
from datacenter.cost_alarms.deliver import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature
from datacenter.cost_alarms.runner import CLAIM, CostAlarmRunner, CostRunReport
from datacenter.cost_alarms.store import acknowledge, load_rules
from datacenter.health.notify import Mailer
from datacenter.settings import Settings, SmtpSettings
from datacenter.store.engine import write_transaction
from tests.fixtures.cost_alarms import CostWorld, gen_call, rid, seed_cost_world
from tests.fixtures.ports import free_port
from tests.fixtures.smtp import Inbox, running_smtp

DAY = datetime(2025, 7, 16, tzinfo=UTC)
PREMIUM = "09098790000"
PORTAL = "https://callcollect.example"
ADMIN = "admin@acme.example"
TIMEOUT = 5.0


@pytest.fixture
def smtp() -> Iterator[tuple[int, Inbox]]:
    with running_smtp() as server:
        yield server.port, server.inbox


@dataclass
class Receiver:
    url: str = ""
    bodies: list[bytes] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)  # answers to give, in order; then 204


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    got = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            got.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
            got.headers.append(dict(self.headers))
            self.send_response(got.statuses.pop(0) if got.statuses else 204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    got.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/cost"
    try:
        yield got
    finally:
        server.shutdown()
        server.server_close()
        thread.join(TIMEOUT)


@pytest.fixture
def world(store: sa.Engine, dc_settings: Settings, cheap_passwords: None) -> CostWorld:
    found = seed_cost_world(store, dc_settings)
    with write_transaction(store) as conn:
        create_user(conn, ADMIN, "a long enough password", "tenant_admin", found.tenant.tenant_id)
    return found


def runner(world: CostWorld, port: int | None) -> CostAlarmRunner:
    smtp = SmtpSettings(host="127.0.0.1" if port else "", port=port or 25, tls="none",
                        ca_file=None, username="", password_file=None,
                        sender="callcollect@dc.example")  # fmt: skip
    settings = replace(world.settings, smtp=smtp)
    return CostAlarmRunner(world.engine, mailer=Mailer(settings.smtp), portal_url=PORTAL,
                           webhook_timeout=TIMEOUT, allow_private_webhooks=True)  # fmt: skip


RULES = '[[rules]]\nkind = "call_cost"\nover = "1.00"\n'


def test_the_email_lists_the_calls_with_links_and_goes_to_the_tenant_admins(
    world: CostWorld, smtp: tuple[int, Inbox]
) -> None:
    port, inbox = smtp
    world.save(RULES)
    world.ingest(
        gen_call("late", start=DAY.replace(hour=20), talk=600, dialled=PREMIUM),
        gen_call("day", start=DAY.replace(hour=9), talk=60, dialled=PREMIUM),
    )
    report = runner(world, port).run_once(datetime.now(UTC))
    assert report.failures == [] and report.sent == 1
    [message] = inbox.messages
    assert message["To"] == ADMIN
    assert message["Subject"] == "[callcollect] Costly call: extension 2201, 2025-07-16"
    body = message.get_content()
    assert "Why:     a call costs more than 1.00 GBP" in body
    assert "Calls (2):" in body
    # 10:00 and 21:00 on the London clock (BST), oldest first, with each call's page
    first = body.index("- 2025-07-16 10:00:00 ext 2201 to 449098790000 1:00 1.60 GBP")
    second = body.index("- 2025-07-16 21:00:00 ext 2201 to 449098790000 10:00 15.10 GBP")
    assert first < second
    assert f"{PORTAL}/calls/{rid('day')}" in body and f"{PORTAL}/calls/{rid('late')}" in body
    [alarm] = world.alarms()
    assert f"{PORTAL}/cost-alarms/{alarm.alarm_id}" in body
    # Nothing new: nothing sent. A new call: the alarm again, with all three calls.
    runner(world, port).run_once(datetime.now(UTC))
    assert len(inbox.messages) == 1
    world.ingest(gen_call("third", start=DAY.replace(hour=11), talk=120, dialled=PREMIUM))
    runner(world, port).run_once(datetime.now(UTC))
    assert len(inbox.messages) == 2 and "Calls (3):" in inbox.messages[1].get_content()
    # Acknowledged: a fourth call attaches but is not sent.
    with write_transaction(world.engine) as conn:
        assert acknowledge(conn, world.tenant.tenant_id, alarm.alarm_id, actor=ADMIN,
                           now=datetime.now(UTC))  # fmt: skip
    world.ingest(gen_call("fourth", start=DAY.replace(hour=12), talk=120, dialled=PREMIUM))
    runner(world, port).run_once(datetime.now(UTC))
    assert len(inbox.messages) == 2 and world.alarms()[0].calls == 4


def test_the_webhook_is_signed_with_the_tenant_secret_and_carries_the_calls(
    world: CostWorld, receiver: Receiver
) -> None:
    world.save(RULES + f'[delivery]\nwebhook_url = "{receiver.url}"\n')
    world.ingest(gen_call("late", start=DAY.replace(hour=20), talk=600, dialled=PREMIUM))
    report = runner(world, None).run_once(datetime.now(UTC))
    assert report.failures == [] and report.sent == 1
    [body], [headers] = receiver.bodies, receiver.headers
    with world.engine.connect() as conn:
        stored = load_rules(conn, world.tenant.tenant_id)
    assert stored is not None and len(stored.webhook_secret) == 64
    assert verify_signature(stored.webhook_secret, headers[TIMESTAMP_HEADER], body,
                            headers[SIGNATURE_HEADER])  # fmt: skip
    assert not verify_signature("0" * 64, headers[TIMESTAMP_HEADER], body,
                                headers[SIGNATURE_HEADER])  # fmt: skip
    assert not verify_signature(stored.webhook_secret, headers[TIMESTAMP_HEADER], body + b" ",
                                headers[SIGNATURE_HEADER])  # fmt: skip
    document = orjson.loads(body)
    assert document["format"] == "callcollect-cost-alarm" and document["rule"] == "call_cost"
    assert document["tenant"] == {"slug": "acme", "name": "Acme"}
    assert [(c["record_id"], c["cost"], c["currency"], c["class"], c["url"])
            for c in document["calls"]] == [
        (rid("late"), "15.10", "GBP", "premium", f"{PORTAL}/calls/{rid('late')}")
    ]  # fmt: skip


def test_a_failed_webhook_is_tried_again_after_the_backoff(
    world: CostWorld, receiver: Receiver
) -> None:
    world.save(RULES + f'[delivery]\nwebhook_url = "{receiver.url}"\n')
    world.ingest(gen_call("late", start=DAY.replace(hour=20), talk=600, dialled=PREMIUM))
    receiver.statuses = [500, 503]
    now = datetime.now(UTC)
    first = runner(world, None).run_once(now)
    assert first.sent == 0 and "answered 500" in first.failures[0]
    [alarm] = world.alarms()
    assert alarm.webhook_attempts == 1 and alarm.webhook_calls == 0
    assert alarm.webhook_next_at == now + timedelta(minutes=1)
    # Not due yet: nothing is sent.
    runner(world, None).run_once(now + timedelta(seconds=30))
    assert len(receiver.bodies) == 1
    second = runner(world, None).run_once(now + timedelta(minutes=1))
    assert "answered 503" in second.failures[0]
    [alarm] = world.alarms()
    assert alarm.webhook_attempts == 2
    assert alarm.webhook_next_at == now + timedelta(minutes=1) + timedelta(minutes=2)
    third = runner(world, None).run_once(now + timedelta(minutes=3))
    assert third.failures == [] and third.sent == 1
    [alarm] = world.alarms()
    assert (alarm.webhook_attempts, alarm.webhook_calls, alarm.webhook_error) == (0, 1, "")
    assert len(receiver.bodies) == 3 and receiver.bodies[0] != b""
    # A receiver that is not there at all fails the same way, with the address in the error.
    closed = f"http://127.0.0.1:{free_port()}/hooks"
    world.save(RULES.replace("1.00", "2.00") + f'[delivery]\nwebhook_url = "{closed}"\n')
    world.ingest(gen_call("again", start=DAY.replace(hour=21), talk=600, dialled=PREMIUM))
    failed = runner(world, None).run_once(now + timedelta(minutes=4))
    assert any(closed in f for f in failed.failures)


def test_a_webhook_to_a_private_address_is_refused_unless_allowed(
    world: CostWorld, receiver: Receiver
) -> None:
    world.save(RULES + f'[delivery]\nwebhook_url = "{receiver.url}"\n')
    world.ingest(gen_call("late", start=DAY.replace(hour=20), talk=600, dialled=PREMIUM))
    strict = CostAlarmRunner(world.engine, mailer=Mailer(world.settings.smtp),
                             webhook_timeout=TIMEOUT)  # fmt: skip
    refused = strict.run_once(datetime.now(UTC))
    assert receiver.bodies == [] and "not a public address" in refused.failures[0]
    [alarm] = world.alarms()
    assert "alarms.tenant_webhooks_private" in alarm.webhook_error


def _both_read_before_either_sends(monkeypatch: pytest.MonkeyPatch) -> threading.Barrier:
    """Make two delivering loops read the same due alarms before either goes on: the moment
    a double send needs, made certain instead of hoped for."""
    barrier = threading.Barrier(2, timeout=60)
    read = cost_store.pending_deliveries

    def pending_then_wait(*args: Any, **kwargs: Any) -> list[cost_store.CostAlarm]:
        due = read(*args, **kwargs)
        barrier.wait()
        return due

    monkeypatch.setattr(cost_store, "pending_deliveries", pending_then_wait)
    return barrier


def test_two_alarm_loops_reading_the_same_alarm_send_it_once(
    world: CostWorld, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.save(RULES + f'[delivery]\nwebhook_url = "{receiver.url}"\n')
    world.ingest(gen_call("late", start=DAY.replace(hour=20), talk=600, dialled=PREMIUM))
    now, tenant_id = datetime.now(UTC), world.tenant.tenant_id
    runner(world, None).evaluate(tenant_id, now=now, report=CostRunReport())
    _both_read_before_either_sends(monkeypatch)
    reports = [CostRunReport(), CostRunReport()]
    loops = [
        threading.Thread(
            target=runner(world, None).deliver,
            args=(tenant_id,),
            kwargs={"now": now, "report": report},
        )
        for report in reports
    ]
    for loop in loops:
        loop.start()
    for loop in loops:
        loop.join(TIMEOUT * 12)
    assert sorted(r.sent for r in reports) == [0, 1] and len(receiver.bodies) == 1
    [alarm] = world.alarms()
    assert (alarm.webhook_calls, alarm.webhook_attempts, alarm.webhook_next_at) == (1, 0, None)


def test_a_try_claimed_by_a_loop_that_died_is_made_after_the_claim_lapses(
    world: CostWorld, receiver: Receiver
) -> None:
    world.save(RULES + f'[delivery]\nwebhook_url = "{receiver.url}"\n')
    world.ingest(gen_call("late", start=DAY.replace(hour=20), talk=600, dialled=PREMIUM))
    now, tenant_id = datetime.now(UTC), world.tenant.tenant_id
    runner(world, None).evaluate(tenant_id, now=now, report=CostRunReport())
    [alarm] = world.alarms()
    with write_transaction(world.engine) as conn:  # a loop claims the try, then is killed
        assert cost_store.claim_delivery(conn, alarm, "webhook", now=now, until=now + CLAIM)
        assert not cost_store.claim_delivery(conn, alarm, "webhook", now=now, until=now + CLAIM)
    early = runner(world, None).run_once(now + CLAIM - timedelta(seconds=1))
    assert early.sent == 0 and receiver.bodies == []
    late = runner(world, None).run_once(now + CLAIM)
    assert late.sent == 1 and len(receiver.bodies) == 1
