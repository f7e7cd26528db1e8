"""Alarm store functions on SQLite and PostgreSQL: apply, the open-key guard, acknowledge,
silence, history, and technicians' tenants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from datacenter.accounts.technicians import alarm_recipients, assign, tenants_of, unassign
from datacenter.accounts.users import create_user
from datacenter.health.alarms import (
    AlarmKey,
    Condition,
    Notice,
    Step,
    acknowledge,
    apply,
    decide,
    history,
    open_alarms,
    recent_silences,
    record_notified,
    silence,
)
from datacenter.store.engine import write_transaction
from datacenter.store.tables.alarms import alarms
from shared.errors import StoreError, ValidationError
from tests.fixtures.store import gen_tenant

NOW = datetime(2026, 3, 3, 14, 0, tzinfo=UTC)
RENOTIFY = timedelta(minutes=60)


def _pass(
    engine: sa.Engine, seen: list[Condition], now: datetime
) -> list[tuple[Step, Notice | None]]:
    with write_transaction(engine) as conn:
        decisions = decide(open_alarms(conn), seen, now=now, renotify=RENOTIFY,
                           silences=recent_silences(conn, now=now))  # fmt: skip
        apply(conn, decisions, now=now)
    return [(d.step, d.notice) for d in decisions]


def test_a_lifecycle_through_the_store(store: sa.Engine) -> None:
    tenant = gen_tenant(store)
    key = AlarmKey(tenant.tenant_id, "edge-1", "pbx", "source_down")
    seen = [Condition(key, "connection refused")]
    assert _pass(store, seen, NOW) == [(Step.RAISE, Notice.RAISED)]
    with write_transaction(store) as conn:
        [alarm] = open_alarms(conn)
        record_notified(conn, alarm, Notice.RAISED, delivered="email to t@x.example",
                        now=NOW + timedelta(seconds=2))  # fmt: skip
    assert _pass(store, seen, NOW + timedelta(minutes=5)) == [(Step.KEEP, None)]
    with write_transaction(store) as conn:
        acknowledge(conn, tenant.tenant_id, alarm.alarm_id, actor="t@x.example",
                    note="  on it  ", now=NOW + timedelta(minutes=6))  # fmt: skip
    assert _pass(store, seen, NOW + timedelta(hours=3)) == [(Step.KEEP, None)]
    assert _pass(store, [], NOW + timedelta(hours=4)) == [(Step.CLEAR, Notice.CLEARED)]
    with store.connect() as conn:
        assert open_alarms(conn) == []
        events = history(conn, [tenant.tenant_id])
        (row,) = conn.execute(sa.select(alarms.c.notifications, alarms.c.note)).all()
    assert [e.kind for e in events] == ["cleared", "acknowledged", "notified", "raised"]
    assert events[1].note == "on it" and events[1].actor == "t@x.example"
    assert tuple(row) == (1, "on it")
    # the same condition later is a new episode, not the old alarm reopened
    assert _pass(store, seen, NOW + timedelta(hours=5)) == [(Step.RAISE, Notice.RAISED)]
    with store.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(alarms)) == 2


def test_the_store_refuses_a_second_open_alarm_for_one_key(store: sa.Engine) -> None:
    """Two runners deciding at once cannot both raise the same alarm."""
    tenant = gen_tenant(store)
    key = AlarmKey(tenant.tenant_id, "edge-1", "", "agent_down")
    decisions = decide([], [Condition(key, "no heartbeat")], now=NOW, renotify=RENOTIFY)
    with write_transaction(store) as conn:
        apply(conn, decisions, now=NOW)
    with pytest.raises(sa.exc.IntegrityError), write_transaction(store) as conn:
        apply(conn, decisions, now=NOW)  # the second runner's stale decision


def test_silence_is_inherited_by_the_next_episode(store: sa.Engine) -> None:
    tenant = gen_tenant(store)
    seen = [Condition(AlarmKey(tenant.tenant_id, "edge-1", "", "silent"), "no calls")]
    _pass(store, seen, NOW)
    with write_transaction(store) as conn:
        [alarm] = open_alarms(conn)
        silence(conn, tenant.tenant_id, alarm.alarm_id, until=NOW + timedelta(hours=4),
                actor="t@x.example", note="shop closed today", now=NOW)  # fmt: skip
    assert _pass(store, [], NOW + timedelta(hours=1)) == [(Step.CLEAR, None)]
    assert _pass(store, seen, NOW + timedelta(hours=2)) == [(Step.RAISE, None)]
    with store.connect() as conn:
        [again] = open_alarms(conn)
    assert again.silenced_until == NOW + timedelta(hours=4)


@pytest.mark.parametrize(
    ("until", "message"),
    [(NOW - timedelta(minutes=1), "in the past"), (NOW + timedelta(days=31), "more than 30 days")],
)
def test_bad_silences_are_refused(store: sa.Engine, until: datetime, message: str) -> None:
    tenant = gen_tenant(store)
    _pass(store, [Condition(AlarmKey(tenant.tenant_id, "e", "", "silent"), "x")], NOW)
    with write_transaction(store) as conn:
        [alarm] = open_alarms(conn)
        with pytest.raises(ValidationError, match=message):
            silence(conn, tenant.tenant_id, alarm.alarm_id, until=until, actor="t", note="",
                    now=NOW)  # fmt: skip


def test_acknowledging_a_cleared_or_unknown_alarm_says_so(store: sa.Engine) -> None:
    tenant = gen_tenant(store)
    _pass(store, [Condition(AlarmKey(tenant.tenant_id, "e", "", "silent"), "x")], NOW)
    _pass(store, [], NOW + timedelta(minutes=1))
    with write_transaction(store) as conn:
        (alarm_id,) = conn.execute(sa.select(alarms.c.alarm_id)).one()
        with pytest.raises(ValidationError, match="cleared already"):
            acknowledge(conn, tenant.tenant_id, alarm_id, actor="t", note="", now=NOW)
        with pytest.raises(StoreError, match="no alarm"):
            acknowledge(conn, tenant.tenant_id, "f" * 32, actor="t", note="", now=NOW)
    _pass(store, [Condition(AlarmKey(tenant.tenant_id, "e", "", "silent"), "x")], NOW)
    with write_transaction(store) as conn:
        [alarm] = open_alarms(conn)
        with pytest.raises(ValidationError, match="longer than"):
            acknowledge(conn, tenant.tenant_id, alarm.alarm_id, actor="t", note="n" * 2001, now=NOW)


@pytest.mark.usefixtures("cheap_passwords")
def test_technicians_tenants_and_alarm_recipients(store: sa.Engine) -> None:
    acme, globex = gen_tenant(store, "acme"), gen_tenant(store, "globex")
    with write_transaction(store) as conn:
        tess = create_user(conn, "tess@x.example", "long enough password", "technician")
        ada = create_user(conn, "ada@x.example", "long enough password", "admin")
        assert assign(conn, "tess@x.example", "acme", now=NOW) is True
        assert assign(conn, "tess@x.example", "acme", now=NOW) is False
        with pytest.raises(ValidationError, match="only technicians"):
            assign(conn, "ada@x.example", "acme", now=NOW)
        with pytest.raises(StoreError, match="no tenant"):
            assign(conn, "tess@x.example", "nosuch", now=NOW)
    with store.connect() as conn:
        assert [t.slug for t in tenants_of(conn, tess)] == ["acme"]
        assert [t.slug for t in tenants_of(conn, ada)] == ["acme", "globex"]
        assert [u.email for u in alarm_recipients(conn, acme.tenant_id)] == ["tess@x.example"]
        assert [u.email for u in alarm_recipients(conn, globex.tenant_id)] == ["ada@x.example"]
    with write_transaction(store) as conn:
        assert unassign(conn, "tess@x.example", "acme") is True
        assert tenants_of(conn, tess) == []
