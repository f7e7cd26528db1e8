"""Cost alarm rows in the store: rules, evaluation marks, the calls to evaluate, alarms.

Contract:

- Every function takes the tenant and reads or writes only that tenant's rows, in the caller's
  connection (and so in the caller's transaction).
- ``save_rules`` stores a document only after ``parse_rules`` accepted it, generates the
  tenant's webhook secret the first time, and starts the evaluation marks at ``now`` when the
  tenant had none: rules apply to calls ingested or rated after they were first saved.
- ``record_finding`` is idempotent: the unique key (tenant, rule, subject, period) holds one
  alarm, the unique key (tenant, alarm, record) holds each call once; it says how many calls
  were new. Concurrent writers are safe (``ON CONFLICT DO NOTHING``, then read back).
- ``acknowledge`` stamps who and when; it does not close the alarm: calls found later for the
  same rule, subject and period still attach (and show), but nothing more is sent.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from datacenter.cost_alarms.evaluate import CallFact, Finding
from datacenter.cost_alarms.rules import RuleSet, parse_rules
from datacenter.store.call_scope import mask_number
from datacenter.store.costs import joined_costs
from datacenter.store.dialect import dialect_insert
from datacenter.store.rollups import micro
from datacenter.store.tables.core import calls
from datacenter.store.tables.cost_alarms import (
    cost_alarm_calls,
    cost_alarm_marks,
    cost_alarm_rules,
    cost_alarms,
)
from datacenter.store.tables.rating import call_costs
from datacenter.store.tables.rollups import rollup_extension_days

ATTACH_LIMIT = 500  # calls attached to one alarm at most (the costliest / first ones)
ID_CHUNK = 500
CHANNELS = ("email", "webhook")


@dataclass(frozen=True, slots=True)
class StoredRules:
    document: str
    rules: RuleSet
    webhook_secret: str
    updated_at: datetime
    updated_by: str


@dataclass(frozen=True, slots=True)
class Marks:
    ingested_through: datetime | None
    rated_through: datetime | None


@dataclass(frozen=True, slots=True)
class CostAlarm:
    tenant_id: int
    alarm_id: str
    rule_id: str
    kind: str
    subject: str
    period: str
    reason: str
    raised_at: datetime
    updated_at: datetime
    calls: int
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    email_calls: int
    email_attempts: int
    email_next_at: datetime | None
    email_error: str
    webhook_calls: int
    webhook_attempts: int
    webhook_next_at: datetime | None
    webhook_error: str


@dataclass(frozen=True, slots=True)
class AlarmFilter:
    rule_id: str = ""
    subject: str = ""
    status: str = ""  # "", "open" (not acknowledged) or "acknowledged"
    since: date | None = None  # raised on or after this UTC day


# --- rules and marks ----------------------------------------------------------------------------


def load_rules(conn: sa.Connection, tenant_id: int) -> StoredRules | None:
    row = conn.execute(
        sa.select(cost_alarm_rules).where(cost_alarm_rules.c.tenant_id == tenant_id)
    ).first()
    if row is None:
        return None
    return StoredRules(
        row.document,
        parse_rules(row.document),
        row.webhook_secret,
        row.updated_at,
        row.updated_by,
    )


def save_rules(
    conn: sa.Connection, tenant_id: int, document: str, *, actor: str, now: datetime
) -> StoredRules:
    """Store ``document`` (``RuleError`` if it does not parse) as the tenant's rules."""
    rules = parse_rules(document)
    old = load_rules_row(conn, tenant_id)
    secret = old.webhook_secret if old is not None else new_webhook_secret()
    values = {
        "document": document,
        "webhook_secret": secret,
        "updated_at": now,
        "updated_by": actor,
    }
    if old is None:
        conn.execute(cost_alarm_rules.insert().values(tenant_id=tenant_id, **values))
    else:
        conn.execute(
            cost_alarm_rules.update()
            .where(cost_alarm_rules.c.tenant_id == tenant_id)
            .values(**values)
        )
    if load_marks(conn, tenant_id) is None:
        conn.execute(
            cost_alarm_marks.insert().values(
                tenant_id=tenant_id, ingested_through=now, rated_through=now, evaluated_at=now
            )
        )
    return StoredRules(document, rules, secret, now, actor)


def load_rules_row(conn: sa.Connection, tenant_id: int) -> Any:
    return conn.execute(
        sa.select(cost_alarm_rules.c.webhook_secret).where(
            cost_alarm_rules.c.tenant_id == tenant_id
        )
    ).first()


def rotate_webhook_secret(conn: sa.Connection, tenant_id: int) -> str:
    secret = new_webhook_secret()
    conn.execute(
        cost_alarm_rules.update()
        .where(cost_alarm_rules.c.tenant_id == tenant_id)
        .values(webhook_secret=secret)
    )
    return secret


def new_webhook_secret() -> str:
    return secrets.token_hex(32)


def tenants_with_rules(conn: sa.Connection) -> list[int]:
    return list(conn.scalars(sa.select(cost_alarm_rules.c.tenant_id).order_by("tenant_id")))


def load_marks(conn: sa.Connection, tenant_id: int) -> Marks | None:
    row = conn.execute(
        sa.select(cost_alarm_marks).where(cost_alarm_marks.c.tenant_id == tenant_id)
    ).first()
    return None if row is None else Marks(row.ingested_through, row.rated_through)


def save_marks(conn: sa.Connection, tenant_id: int, marks: Marks, *, now: datetime) -> None:
    conn.execute(
        cost_alarm_marks.update()
        .where(cost_alarm_marks.c.tenant_id == tenant_id)
        .values(
            ingested_through=marks.ingested_through,
            rated_through=marks.rated_through,
            evaluated_at=now,
        )
    )


# --- calls --------------------------------------------------------------------------------------


def _facts_select(tenant_id: int) -> sa.Select[Any]:
    return (
        sa.select(
            calls.c.record_id,
            calls.c.start_utc,
            calls.c.direction,
            calls.c.extension,
            calls.c.called,
            calls.c.dialled_digits,
            calls.c.talk_seconds,
            calls.c.ingested_at,
            call_costs.c.cost_minor,
            call_costs.c.decimals,
            call_costs.c.currency,
            call_costs.c.number_class,
            call_costs.c.e164,
            call_costs.c.rated_at,
        )
        .select_from(joined_costs())
        .where(calls.c.tenant_id == tenant_id)
    )


def fact_of_row(row: Any, zone: ZoneInfo) -> CallFact:
    rated = row.cost_minor is not None
    number = (row.e164 if rated and row.e164 else "") or row.dialled_digits or row.called
    return CallFact(
        record_id=row.record_id,
        start=row.start_utc,
        local=row.start_utc.astimezone(zone),
        direction=row.direction,
        extension=row.extension,
        number=number,
        talk_seconds=row.talk_seconds,
        cost_micro=micro(row.cost_minor, row.decimals) if rated else None,
        currency=row.currency if rated else "",
        number_class=row.number_class if rated else "",
    )


@dataclass(frozen=True, slots=True)
class Changed:
    facts: list[CallFact]
    marks: Marks  # the marks after these calls


def changed_calls(
    conn: sa.Connection, tenant_id: int, zone: ZoneInfo, marks: Marks, *, overlap: timedelta
) -> Changed:
    """Calls ingested, and costs written, after each mark less ``overlap`` (a call committed
    late by a slow ingest transaction carries an earlier time than one committed before it)."""
    base = _facts_select(tenant_id)
    found: dict[str, Any] = {}
    new_ingested, new_rated = marks.ingested_through, marks.rated_through
    query = base
    if marks.ingested_through is not None:
        query = base.where(calls.c.ingested_at > marks.ingested_through - overlap)
    for row in conn.execute(query):
        found[row.record_id] = row
        new_ingested = _later(new_ingested, row.ingested_at)
    query = base.where(call_costs.c.record_id.is_not(None))
    if marks.rated_through is not None:
        query = query.where(call_costs.c.rated_at > marks.rated_through - overlap)
    for row in conn.execute(query):
        found[row.record_id] = row
        new_rated = _later(new_rated, row.rated_at)
    facts = [fact_of_row(row, zone) for row in found.values()]
    facts.sort(key=lambda f: (f.start, f.record_id))
    return Changed(facts, Marks(new_ingested, new_rated))


def _later(current: datetime | None, value: datetime | None) -> datetime | None:
    if value is None:
        return current
    return value if current is None or value > current else current


def day_costs_micro(
    conn: sa.Connection, tenant_id: int, day: date, currency: str,
    extensions: Collection[str] | None,
) -> dict[str | None, int]:  # fmt: skip
    """The local day's cost in ``currency`` (micro units) from the extension rollup: of each
    of ``extensions`` (keyed by extension; one query per ``ID_CHUNK``), or of the whole tenant
    (keyed ``None``) when ``extensions`` is None."""
    table = rollup_extension_days
    total = sa.func.coalesce(sa.func.sum(table.c.cost_micro), 0)
    base = (table.c.tenant_id == tenant_id, table.c.day == day, table.c.currency == currency)
    if extensions is None:
        return {None: int(conn.scalar(sa.select(total).where(*base)) or 0)}
    found: dict[str | None, int] = {}
    wanted = sorted(extensions)
    for start in range(0, len(wanted), ID_CHUNK):
        query = (
            sa.select(table.c.extension, total)
            .where(*base, table.c.extension.in_(wanted[start : start + ID_CHUNK]))
            .group_by(table.c.extension)
        )
        found.update((row[0], int(row[1])) for row in conn.execute(query))
    return found


def costly_calls(
    conn: sa.Connection,
    tenant_id: int,
    span: tuple[datetime, datetime],
    currency: str,
    *,
    extension: str | None,
) -> list[str]:
    """Record ids of the calls with a cost in ``currency`` starting in ``span``, costliest
    first, at most ``ATTACH_LIMIT``."""
    query = (
        _facts_select(tenant_id)
        .where(
            calls.c.start_utc >= span[0],
            calls.c.start_utc < span[1],
            call_costs.c.currency == currency,
            call_costs.c.cost_minor > 0,
        )
        .order_by(call_costs.c.cost_minor.desc(), calls.c.record_id)
        .limit(ATTACH_LIMIT)
    )
    if extension is not None:
        query = query.where(calls.c.extension == extension)
    return [row.record_id for row in conn.execute(query)]


def count_calls(
    conn: sa.Connection, tenant_id: int, span: tuple[datetime, datetime], *, direction: str
) -> int:
    query = (
        sa.select(sa.func.count())
        .select_from(calls)
        .where(
            calls.c.tenant_id == tenant_id,
            calls.c.start_utc >= span[0],
            calls.c.start_utc < span[1],
        )
    )
    if direction != "any":
        query = query.where(calls.c.direction == direction)
    return int(conn.scalar(query) or 0)


def calls_in(
    conn: sa.Connection,
    tenant_id: int,
    span: tuple[datetime, datetime],
    zone: ZoneInfo,
    *,
    direction: str = "any",
    short_of: int | None = None,
) -> list[CallFact]:
    """The calls starting in ``span`` (of one direction, shorter than ``short_of`` seconds)."""
    query = _facts_select(tenant_id).where(
        calls.c.start_utc >= span[0], calls.c.start_utc < span[1]
    )
    if direction != "any":
        query = query.where(calls.c.direction == direction)
    if short_of is not None:
        query = query.where(calls.c.talk_seconds < short_of)
    query = query.order_by(calls.c.start_utc, calls.c.record_id)
    return [fact_of_row(row, zone) for row in conn.execute(query)]


# --- alarms -------------------------------------------------------------------------------------


def record_finding(conn: sa.Connection, tenant_id: int, finding: Finding, *, now: datetime) -> int:
    """Raise the finding's alarm or attach its calls to the open one; how many calls were new."""
    key = (
        cost_alarms.c.tenant_id == tenant_id,
        cost_alarms.c.rule_id == finding.rule_id,
        cost_alarms.c.subject == finding.subject,
        cost_alarms.c.period == finding.period,
    )
    conn.execute(
        dialect_insert(conn, cost_alarms)
        .values(
            tenant_id=tenant_id,
            alarm_id=uuid.uuid4().hex,
            rule_id=finding.rule_id,
            kind=finding.kind.value,
            subject=finding.subject[:256],
            period=finding.period,
            reason=finding.reason,
            raised_at=now,
            updated_at=now,
            calls=0,
            email_calls=0,
            email_attempts=0,
            email_error="",
            webhook_calls=0,
            webhook_attempts=0,
            webhook_error="",
        )
        .on_conflict_do_nothing(index_elements=["tenant_id", "rule_id", "subject", "period"])
    )
    alarm_id, attached = conn.execute(
        sa.select(cost_alarms.c.alarm_id, cost_alarms.c.calls).where(*key)
    ).one()
    room = max(0, ATTACH_LIMIT - attached)
    ids = list(dict.fromkeys(finding.record_ids))[:room]
    if not ids:
        return 0
    result = conn.execute(
        dialect_insert(conn, cost_alarm_calls).on_conflict_do_nothing(
            index_elements=["tenant_id", "alarm_id", "record_id"]
        ),
        [
            {"tenant_id": tenant_id, "alarm_id": alarm_id, "record_id": rid, "attached_at": now}
            for rid in ids
        ],
    )
    del result  # rowcount of an executemany is not reliable on every driver: count instead
    total = conn.scalar(
        sa.select(sa.func.count())
        .select_from(cost_alarm_calls)
        .where(cost_alarm_calls.c.tenant_id == tenant_id, cost_alarm_calls.c.alarm_id == alarm_id)
    )
    new: int = int(total or 0) - attached
    if new:
        conn.execute(
            cost_alarms.update()
            .where(cost_alarms.c.tenant_id == tenant_id, cost_alarms.c.alarm_id == alarm_id)
            .values(calls=total, updated_at=now, reason=finding.reason)
        )
    return new


def list_alarms(
    conn: sa.Connection,
    tenant_id: int,
    alarm_filter: AlarmFilter = AlarmFilter(),
    *,
    limit: int = 200,
) -> list[CostAlarm]:
    query = sa.select(cost_alarms).where(cost_alarms.c.tenant_id == tenant_id)
    if alarm_filter.rule_id:
        query = query.where(cost_alarms.c.rule_id == alarm_filter.rule_id)
    if alarm_filter.subject:
        query = query.where(cost_alarms.c.subject == alarm_filter.subject)
    if alarm_filter.status == "open":
        query = query.where(cost_alarms.c.acknowledged_at.is_(None))
    elif alarm_filter.status == "acknowledged":
        query = query.where(cost_alarms.c.acknowledged_at.is_not(None))
    if alarm_filter.since is not None:
        since = datetime.combine(alarm_filter.since, time(0), tzinfo=UTC)
        query = query.where(cost_alarms.c.raised_at >= since)
    query = query.order_by(cost_alarms.c.raised_at.desc(), cost_alarms.c.alarm_id).limit(limit)
    return [CostAlarm(**row._asdict()) for row in conn.execute(query)]


def get_alarm(conn: sa.Connection, tenant_id: int, alarm_id: str) -> CostAlarm | None:
    row = conn.execute(
        sa.select(cost_alarms).where(
            cost_alarms.c.tenant_id == tenant_id, cost_alarms.c.alarm_id == alarm_id
        )
    ).first()
    return None if row is None else CostAlarm(**row._asdict())


def alarm_calls(
    conn: sa.Connection, tenant_id: int, alarm_id: str, zone: ZoneInfo
) -> list[CallFact]:
    """The alarm's calls, in the order they started."""
    ids = list(
        conn.scalars(
            sa.select(cost_alarm_calls.c.record_id).where(
                cost_alarm_calls.c.tenant_id == tenant_id, cost_alarm_calls.c.alarm_id == alarm_id
            )
        )
    )
    found: list[CallFact] = []
    for start in range(0, len(ids), ID_CHUNK):
        chunk = ids[start : start + ID_CHUNK]
        query = _facts_select(tenant_id).where(calls.c.record_id.in_(chunk))
        found.extend(fact_of_row(row, zone) for row in conn.execute(query))
    return sorted(found, key=lambda f: (f.start, f.record_id))


def acknowledge(
    conn: sa.Connection, tenant_id: int, alarm_id: str, *, actor: str, now: datetime
) -> bool:
    """Acknowledge an alarm; False when it does not exist or was acknowledged already."""
    result = conn.execute(
        cost_alarms.update()
        .where(
            cost_alarms.c.tenant_id == tenant_id,
            cost_alarms.c.alarm_id == alarm_id,
            cost_alarms.c.acknowledged_at.is_(None),
        )
        .values(acknowledged_at=now, acknowledged_by=actor[:254])
    )
    return bool(result.rowcount)


def pending_deliveries(
    conn: sa.Connection, tenant_id: int, channel: str, *, now: datetime, max_attempts: int
) -> list[CostAlarm]:
    """Alarms with calls ``channel`` has not told about, not acknowledged, due for a try."""
    count = cost_alarms.c[f"{channel}_calls"]
    next_at = cost_alarms.c[f"{channel}_next_at"]
    attempts = cost_alarms.c[f"{channel}_attempts"]
    query = (
        sa.select(cost_alarms)
        .where(
            cost_alarms.c.tenant_id == tenant_id,
            cost_alarms.c.calls > count,
            cost_alarms.c.acknowledged_at.is_(None),
            sa.or_(next_at.is_(None), next_at <= now),
            attempts < max_attempts,
        )
        .order_by(cost_alarms.c.raised_at, cost_alarms.c.alarm_id)
    )
    return [CostAlarm(**row._asdict()) for row in conn.execute(query)]


def claim_delivery(
    conn: sa.Connection, alarm: CostAlarm, channel: str, *, now: datetime, until: datetime
) -> bool:
    """Take ``channel``'s next try of ``alarm`` until ``until``: True for the one caller whose
    update finds the try still due. Two alarm loops that read the same due alarm both call
    this; the second finds ``next_at`` in the future, or the calls told about moved on if the
    first already finished, and sends nothing. A sender that dies
    holding the claim leaves the try due again at ``until``."""
    next_at = cost_alarms.c[f"{channel}_next_at"]
    told = cost_alarms.c[f"{channel}_calls"]
    result = conn.execute(
        cost_alarms.update()
        .where(
            cost_alarms.c.tenant_id == alarm.tenant_id,
            cost_alarms.c.alarm_id == alarm.alarm_id,
            sa.or_(next_at.is_(None), next_at <= now),
            # still as the caller read it: a loop that already sent it and recorded the
            # success has cleared next_at again, but moved this count on
            told == getattr(alarm, f"{channel}_calls"),
        )
        .values({next_at: until})
    )
    return bool(result.rowcount)


def record_delivery(
    conn: sa.Connection,
    alarm: CostAlarm,
    channel: str,
    *,
    delivered_calls: int | None,
    error: str = "",
    next_at: datetime | None = None,
) -> None:
    """A channel's try: delivered (``delivered_calls`` told about, attempts reset) or failed
    (``error``, one more attempt, the next try not before ``next_at``)."""
    if delivered_calls is not None:
        values: dict[str, Any] = {
            f"{channel}_calls": delivered_calls,
            f"{channel}_attempts": 0,
            f"{channel}_next_at": None,
            f"{channel}_error": "",
        }
    else:
        values = {
            f"{channel}_attempts": cost_alarms.c[f"{channel}_attempts"] + 1,
            f"{channel}_next_at": next_at,
            f"{channel}_error": error[:2000],
        }
    conn.execute(
        cost_alarms.update()
        .where(cost_alarms.c.tenant_id == alarm.tenant_id, cost_alarms.c.alarm_id == alarm.alarm_id)
        .values(**values)
    )


def rule_ids(conn: sa.Connection, tenant_id: int) -> list[str]:
    return list(
        conn.scalars(
            sa.select(cost_alarms.c.rule_id)
            .where(cost_alarms.c.tenant_id == tenant_id)
            .distinct()
            .order_by(cost_alarms.c.rule_id)
        )
    )


def alarms_with_calls(
    conn: sa.Connection, tenant_id: int, alarms: Sequence[CostAlarm], zone: ZoneInfo
) -> list[tuple[CostAlarm, list[CallFact]]]:
    return [(alarm, alarm_calls(conn, tenant_id, alarm.alarm_id, zone)) for alarm in alarms]


def masked(
    alarm: CostAlarm, facts: Sequence[CallFact], digits: int
) -> tuple[CostAlarm, list[CallFact]]:
    """The alarm and its calls with the last ``digits`` digits of external numbers hidden
    (number masking, docs/web.md): the calls' numbers, and a number as subject or in the why."""
    if digits <= 0:
        return alarm, list(facts)
    subject = mask_number(alarm.subject, digits)
    reason = alarm.reason.replace(alarm.subject, subject) if alarm.subject else alarm.reason
    return (
        replace(alarm, subject=subject, reason=reason),
        [replace(f, number=mask_number(f.number, digits)) for f in facts],
    )
