"""Alarm lifecycle: raised when a site leaves ok, repeated while open, cleared when ok again.

Contract:

- An alarm is keyed by (tenant, site = agent, source, state); ``source`` is "" for a state of
  the whole site. At most one alarm per key is open at a time (the store's unique
  ``(tenant_id, open_key)`` enforces it), so a condition seen on every assessment raises one
  alarm, not one per assessment.
- ``decide`` is pure: given the open alarms and the conditions seen now, it says which alarms to
  raise, keep and clear, and which need a notice: ``raised`` for a new alarm (or one never
  notified yet, e.g. after a failed send), ``reminder`` every ``alarms.renotify_minutes`` while
  open, ``cleared`` when it closes (only if a notice had gone out). An acknowledged alarm gets
  no more reminders. A silenced alarm gets no notice at all until its ``silenced_until``;
  a new alarm for the same key raised within a silence inherits it, so a flapping site stays
  quiet for as long as the technician asked.
- Store changes happen in one transaction per assessment; notices are sent after it commits
  (never a network call inside a transaction), and ``notified_at`` is written only after a
  channel delivered. A notice that failed on every channel is tried again on the next run.
- Every change is also an ``alarm_events`` row (raised, notified, acknowledged, silenced,
  unsilenced, cleared) with who and a note: the alarm history.

`datacenter alarms run` (datacenter/health/runner.py) drives this module with the health
assessment and the notification channels.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from datacenter.store.tables.alarms import alarm_events, alarms
from datacenter.store.tables.core import tenants
from shared.errors import StoreError, ValidationError

SCHEDULER = "scheduler"  # the actor of events the scheduler records
MAX_NOTE_LENGTH = 2000
MAX_SILENCE = timedelta(days=30)
HISTORY_LIMIT = 200


class Step(StrEnum):
    RAISE = "raise"
    KEEP = "keep"
    CLEAR = "clear"


class Notice(StrEnum):
    RAISED = "raised"
    REMINDER = "reminder"
    CLEARED = "cleared"


@dataclass(frozen=True, slots=True, order=True)
class AlarmKey:
    tenant_id: int
    agent_id: str
    source_id: str  # "" = the whole site
    state: str

    @property
    def open_key(self) -> str:
        return f"{self.agent_id}/{self.source_id}/{self.state}"


@dataclass(frozen=True, slots=True)
class Condition:
    """A non-ok state seen by the health assessment now."""

    key: AlarmKey
    reason: str


@dataclass(frozen=True, slots=True)
class Alarm:
    """One alarm episode (a row of ``alarms``)."""

    tenant_id: int
    alarm_id: str
    agent_id: str
    source_id: str
    state: str
    reason: str
    raised_at: datetime
    last_seen_at: datetime
    cleared_at: datetime | None
    notified_at: datetime | None
    notifications: int
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    silenced_until: datetime | None
    note: str

    @property
    def key(self) -> AlarmKey:
        return AlarmKey(self.tenant_id, self.agent_id, self.source_id, self.state)

    @property
    def is_open(self) -> bool:
        return self.cleared_at is None

    def silenced(self, now: datetime) -> bool:
        return self.silenced_until is not None and now < self.silenced_until


@dataclass(frozen=True, slots=True)
class Decision:
    step: Step
    key: AlarmKey
    reason: str
    alarm: Alarm | None  # None for RAISE
    notice: Notice | None
    silenced_until: datetime | None = None  # RAISE: a silence inherited from the previous episode


@dataclass(frozen=True, slots=True)
class Pending:
    """A notice to send for ``alarm`` once the transaction has committed."""

    alarm: Alarm
    notice: Notice


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One ``alarm_events`` row with what it is about."""

    at: datetime
    kind: str
    actor: str
    note: str
    alarm: Alarm
    tenant_slug: str
    tenant_name: str


# --- deciding (pure) ----------------------------------------------------------------------------


def decide(
    open_alarms: Iterable[Alarm],
    conditions: Iterable[Condition],
    *,
    now: datetime,
    renotify: timedelta,
    silences: Mapping[AlarmKey, datetime] | None = None,
) -> list[Decision]:
    """What to do with each open alarm and each condition, in key order.

    ``silences`` are the ``silenced_until`` of recently cleared alarms, by key: a condition that
    comes back while its silence lasts is raised silenced.
    """
    by_key = {alarm.key: alarm for alarm in open_alarms}
    seen: dict[AlarmKey, Condition] = {}
    for condition in conditions:
        seen.setdefault(condition.key, condition)  # the first reason wins for a repeated key
    decisions = []
    for key in sorted(by_key.keys() | seen.keys()):
        alarm, current = by_key.get(key), seen.get(key)
        if alarm is None:
            assert current is not None
            until = (silences or {}).get(key)
            until = until if until is not None and until > now else None
            notice = None if until else Notice.RAISED
            decisions.append(Decision(Step.RAISE, key, current.reason, None, notice, until))
        elif current is None:
            notice = Notice.CLEARED if alarm.notified_at and not alarm.silenced(now) else None
            decisions.append(Decision(Step.CLEAR, key, alarm.reason, alarm, notice))
        else:
            notice = notice_due(alarm, now=now, renotify=renotify)
            decisions.append(Decision(Step.KEEP, key, current.reason, alarm, notice))
    return decisions


def notice_due(alarm: Alarm, *, now: datetime, renotify: timedelta) -> Notice | None:
    """The notice an open alarm needs now, if any."""
    if alarm.acknowledged_at is not None or alarm.silenced(now):
        return None
    if alarm.notified_at is None:
        return Notice.RAISED
    if now - alarm.notified_at >= renotify:
        return Notice.REMINDER
    return None


# --- the store ----------------------------------------------------------------------------------


def open_alarms(conn: sa.Connection, *, tenant_ids: Iterable[int] | None = None) -> list[Alarm]:
    """Every open alarm (of ``tenant_ids`` if given), oldest first."""
    query = alarms.select().where(alarms.c.cleared_at.is_(None))
    if tenant_ids is not None:
        query = query.where(alarms.c.tenant_id.in_(list(tenant_ids)))
    return [_alarm(row) for row in conn.execute(query.order_by(alarms.c.raised_at))]


def get_alarm(conn: sa.Connection, tenant_id: int, alarm_id: str) -> Alarm | None:
    row = conn.execute(
        alarms.select().where(alarms.c.tenant_id == tenant_id, alarms.c.alarm_id == alarm_id)
    ).one_or_none()
    return None if row is None else _alarm(row)


def recent_silences(conn: sa.Connection, *, now: datetime) -> dict[AlarmKey, datetime]:
    """Silences still running on cleared alarms, latest per key (see ``decide``)."""
    rows = conn.execute(
        alarms.select()
        .where(alarms.c.cleared_at.is_not(None), alarms.c.silenced_until > now)
        .order_by(alarms.c.silenced_until)
    )
    return {_alarm(row).key: row.silenced_until for row in rows}


def apply(conn: sa.Connection, decisions: Sequence[Decision], *, now: datetime) -> list[Pending]:
    """Write ``decisions`` in the caller's transaction; return the notices to send after it."""
    pending = []
    for decision in decisions:
        if decision.step is Step.RAISE:
            alarm = _raise(conn, decision, now=now)
        elif decision.step is Step.CLEAR:
            assert decision.alarm is not None
            alarm = _clear(conn, decision.alarm, now=now)
        else:
            assert decision.alarm is not None
            alarm = _keep(conn, decision.alarm, decision.reason, now=now)
        if decision.notice is not None:
            pending.append(Pending(alarm, decision.notice))
    return pending


def _raise(conn: sa.Connection, decision: Decision, *, now: datetime) -> Alarm:
    key = decision.key
    values: dict[str, Any] = {
        "tenant_id": key.tenant_id,
        "alarm_id": uuid.uuid4().hex,
        "agent_id": key.agent_id,
        "source_id": key.source_id,
        "state": key.state,
        "reason": decision.reason,
        "open_key": key.open_key,
        "raised_at": now,
        "last_seen_at": now,
        "cleared_at": None,
        "notified_at": None,
        "notifications": 0,
        "acknowledged_at": None,
        "acknowledged_by": None,
        "silenced_until": decision.silenced_until,
        "note": "",
    }
    conn.execute(alarms.insert().values(values))
    note = decision.reason
    if decision.silenced_until is not None:
        note += f" (silenced until {decision.silenced_until.isoformat()}, as the previous one)"
    _event(conn, key.tenant_id, values["alarm_id"], "raised", SCHEDULER, note, now=now)
    values.pop("open_key")
    return Alarm(**values)


def _clear(conn: sa.Connection, alarm: Alarm, *, now: datetime) -> Alarm:
    conn.execute(
        alarms.update()
        .where(alarms.c.tenant_id == alarm.tenant_id, alarms.c.alarm_id == alarm.alarm_id)
        .values(cleared_at=now, open_key=None)
    )
    _event(conn, alarm.tenant_id, alarm.alarm_id, "cleared", SCHEDULER, "state is ok", now=now)
    return _replace(alarm, cleared_at=now)


def _keep(conn: sa.Connection, alarm: Alarm, reason: str, *, now: datetime) -> Alarm:
    conn.execute(
        alarms.update()
        .where(alarms.c.tenant_id == alarm.tenant_id, alarms.c.alarm_id == alarm.alarm_id)
        .values(last_seen_at=now, reason=reason)
    )
    return _replace(alarm, last_seen_at=now, reason=reason)


def record_notified(
    conn: sa.Connection, alarm: Alarm, notice: Notice, *, delivered: str, now: datetime
) -> None:
    """Note that ``notice`` went out (``delivered`` says where) on at least one channel."""
    conn.execute(
        alarms.update()
        .where(alarms.c.tenant_id == alarm.tenant_id, alarms.c.alarm_id == alarm.alarm_id)
        .values(notified_at=now, notifications=alarms.c.notifications + 1)
    )
    _event(conn, alarm.tenant_id, alarm.alarm_id, "notified", SCHEDULER,
           f"{notice.value}: {delivered}", now=now)  # fmt: skip


def acknowledge(
    conn: sa.Connection, tenant_id: int, alarm_id: str, *, actor: str, note: str, now: datetime
) -> Alarm:
    """A technician has taken the alarm on: no more reminders while it stays open."""
    alarm = _require_open(conn, tenant_id, alarm_id)
    note = _check_note(note)
    conn.execute(
        alarms.update()
        .where(alarms.c.tenant_id == tenant_id, alarms.c.alarm_id == alarm_id)
        .values(acknowledged_at=now, acknowledged_by=actor, note=note)
    )
    _event(conn, tenant_id, alarm_id, "acknowledged", actor, note, now=now)
    return _replace(alarm, acknowledged_at=now, acknowledged_by=actor, note=note)


def silence(
    conn: sa.Connection,
    tenant_id: int,
    alarm_id: str,
    *,
    until: datetime,
    actor: str,
    note: str,
    now: datetime,
) -> Alarm:
    """No notices about this alarm (or its next episodes) until ``until``."""
    alarm = _require_open(conn, tenant_id, alarm_id)
    note = _check_note(note)
    if until <= now:
        raise ValidationError("until", "is in the past: pick a later time")
    if until - now > MAX_SILENCE:
        raise ValidationError(
            "until", f"is more than {MAX_SILENCE.days} days away: acknowledge the alarm instead"
        )
    conn.execute(
        alarms.update()
        .where(alarms.c.tenant_id == tenant_id, alarms.c.alarm_id == alarm_id)
        .values(silenced_until=until, note=note)
    )
    _event(conn, tenant_id, alarm_id, "silenced", actor,
           f"until {until.isoformat()}" + (f": {note}" if note else ""), now=now)  # fmt: skip
    return _replace(alarm, silenced_until=until, note=note)


def unsilence(
    conn: sa.Connection, tenant_id: int, alarm_id: str, *, actor: str, now: datetime
) -> Alarm:
    """End a silence early; reminders resume on the usual interval."""
    alarm = _require_open(conn, tenant_id, alarm_id)
    conn.execute(
        alarms.update()
        .where(alarms.c.tenant_id == tenant_id, alarms.c.alarm_id == alarm_id)
        .values(silenced_until=None)
    )
    _event(conn, tenant_id, alarm_id, "unsilenced", actor, "", now=now)
    return _replace(alarm, silenced_until=None)


def history(
    conn: sa.Connection,
    tenant_ids: Iterable[int],
    *,
    agent_id: str | None = None,
    since: datetime | None = None,
    kinds: Iterable[str] | None = None,
    limit: int = HISTORY_LIMIT,
) -> list[HistoryEntry]:
    """Alarm events of ``tenant_ids`` (one site's if ``agent_id``), newest first."""
    e, a, t = alarm_events, alarms, tenants
    query = (
        sa.select(e.c.at, e.c.kind, e.c.actor, e.c.note, t.c.slug, t.c.name, *a.c)
        .select_from(
            e.join(a, sa.and_(a.c.tenant_id == e.c.tenant_id, a.c.alarm_id == e.c.alarm_id)).join(
                t, t.c.tenant_id == e.c.tenant_id
            )
        )
        .where(e.c.tenant_id.in_(list(tenant_ids)))
        .order_by(e.c.at.desc(), e.c.event_id)
        .limit(limit)
    )
    if agent_id is not None:
        query = query.where(a.c.agent_id == agent_id)
    if since is not None:
        query = query.where(e.c.at > since)
    if kinds is not None:
        query = query.where(e.c.kind.in_(list(kinds)))
    return [
        HistoryEntry(
            at=row.at,
            kind=row.kind,
            actor=row.actor,
            note=row.note,
            alarm=_alarm(row),
            tenant_slug=row.slug,
            tenant_name=row.name,
        )
        for row in conn.execute(query)
    ]


def _require_open(conn: sa.Connection, tenant_id: int, alarm_id: str) -> Alarm:
    alarm = get_alarm(conn, tenant_id, alarm_id)
    if alarm is None:
        raise StoreError(f"no alarm {alarm_id!r}: reload the page, it may have been removed")
    if not alarm.is_open:
        raise ValidationError("alarm", "has cleared already: the site is ok again")
    return alarm


def _check_note(note: str) -> str:
    note = note.strip()
    if len(note) > MAX_NOTE_LENGTH:
        raise ValidationError("note", f"is longer than {MAX_NOTE_LENGTH} characters: shorten it")
    return note


def _event(
    conn: sa.Connection,
    tenant_id: int,
    alarm_id: str,
    kind: str,
    actor: str,
    note: str,
    *,
    now: datetime,
) -> None:
    conn.execute(
        alarm_events.insert().values(
            tenant_id=tenant_id,
            event_id=uuid.uuid4().hex,
            alarm_id=alarm_id,
            at=now,
            kind=kind,
            actor=actor,
            note=note,
        )
    )


_ALARM_FIELDS = tuple(c.name for c in alarms.columns if c.name != "open_key")


def _alarm(row: sa.Row[Any]) -> Alarm:
    mapping = row._mapping
    return Alarm(**{name: mapping[alarms.c[name]] for name in _ALARM_FIELDS})


def _replace(alarm: Alarm, **changes: Any) -> Alarm:
    values = {name: getattr(alarm, name) for name in _ALARM_FIELDS}
    values.update(changes)
    return Alarm(**values)
