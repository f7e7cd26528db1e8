"""Schedules of saved reports and their runs: what is stored, added, listed and queued.

Contract:

- A schedule sends one saved report on a ``Recurrence`` (tenant-local time), covering a period
  (``recurrence.PERIODS``), to up to ``MAX_RECIPIENTS`` addresses, as an attachment in a format
  of ``datacenter.exports.stream.MEDIA_TYPES`` or as a signed link valid ``link_days``.
  ``next_due_at`` is set when it is added and moved on by the scheduler.
- A run is one row of ``schedule_runs``; ``queue_run`` adds a manual one ("Run now") for the
  scheduler's next pass. The scheduler (``datacenter.reports.scheduler``) does the sending.
- Only those who may manage the saved report (its owner, a tenant admin) add, pause, delete or
  run its schedules; everyone else gets None from the getters, as for an id that does not exist.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from datacenter.accounts.users import User, normalise_email
from datacenter.exports.stream import MEDIA_TYPES
from datacenter.reports.recurrence import PERIODS, Recurrence, covered_days, from_json, next_due
from datacenter.reports.saved import SavedReport, can_manage, get_saved, saved_days
from datacenter.store.tables.saved_reports import report_schedules, schedule_runs
from shared.errors import ValidationError

MAX_RECIPIENTS = 50
DELIVERIES = {
    "attachment": "Attached to the email",
    "link": "A link in the email (signed, expiring)",
}
DEFAULT_LINK_DAYS = 7
MAX_LINK_DAYS = 90
RUN_HISTORY = 50


@dataclass(frozen=True)
class Schedule:
    schedule_id: int
    tenant_id: int
    saved_id: int
    recurrence: Recurrence
    period: str
    recipients: tuple[str, ...]
    format: str
    delivery: str
    link_days: int
    active: bool
    next_due_at: datetime | None
    created_at: datetime


@dataclass(frozen=True)
class Run:
    run_id: int
    tenant_id: int
    schedule_id: int
    due_at: datetime
    trigger: str
    requested_by: str
    first_day: date
    last_day: date
    status: str
    attempts: int
    next_attempt_at: datetime | None
    claimed_at: datetime | None
    claimed_by: str
    sent_at: datetime | None
    rows: int | None
    error: str


def parse_recipients(text: str | Sequence[str]) -> tuple[str, ...]:
    """Addresses separated by commas, semicolons or lines; each checked, none twice."""
    parts = text.replace(";", ",").replace("\n", ",").split(",") if isinstance(text, str) else text
    found: dict[str, None] = {}
    for part in parts:
        if part.strip():
            try:
                found[normalise_email(part)] = None
            except ValidationError:
                raise ValidationError(
                    "recipients", f"{part.strip()!r} is not an email address"
                ) from None
    if not found:
        raise ValidationError("recipients", "give at least one address")
    if len(found) > MAX_RECIPIENTS:
        raise ValidationError("recipients", f"at most {MAX_RECIPIENTS} addresses")
    return tuple(found)


def check_delivery(fmt: str, delivery: str, link_days: int) -> None:
    if fmt not in MEDIA_TYPES:
        raise ValidationError("format", f"{fmt!r} is not one of {', '.join(MEDIA_TYPES)}")
    if delivery not in DELIVERIES:
        raise ValidationError("delivery", f"{delivery!r} is not one of {', '.join(DELIVERIES)}")
    if not 1 <= link_days <= MAX_LINK_DAYS:
        raise ValidationError("link_days", f"a link is valid 1 to {MAX_LINK_DAYS} days")


def add_schedule(
    conn: sa.Connection,
    saved: SavedReport,
    user: User,
    *,
    recurrence: Recurrence,
    period: str,
    recipients: Sequence[str],
    fmt: str,
    delivery: str,
    link_days: int = DEFAULT_LINK_DAYS,
    zone: ZoneInfo,
    now: datetime,
) -> Schedule:
    if not can_manage(saved, user):
        raise ValidationError("schedule", "only the report's owner or a tenant admin schedules it")
    if period not in PERIODS:
        raise ValidationError("period", f"{period!r} is not one of {', '.join(PERIODS)}")
    check_delivery(fmt, delivery, link_days)
    schedule_id = conn.execute(
        report_schedules.insert()
        .values(
            tenant_id=saved.tenant_id, saved_id=saved.saved_id, recurrence=recurrence.to_json(),
            period=period, recipients=list(parse_recipients(recipients)), format=fmt,
            delivery=delivery, link_days=link_days, active=True,
            next_due_at=next_due(recurrence, zone, after=now), created_at=now,
        )
        .returning(report_schedules.c.schedule_id)
    ).scalar_one()  # fmt: skip
    found = schedule_by_id(conn, schedule_id)
    assert found is not None
    return found


def _schedule(row: sa.Row[Any]) -> Schedule:
    values = row._asdict()
    values["recurrence"] = from_json(values["recurrence"])
    values["recipients"] = tuple(values["recipients"])
    return Schedule(**values)


def schedule_by_id(conn: sa.Connection, schedule_id: int) -> Schedule | None:
    """Any schedule, whoever asks: for the scheduler and for code that checked access."""
    row = conn.execute(
        report_schedules.select().where(report_schedules.c.schedule_id == schedule_id)
    ).one_or_none()
    return None if row is None else _schedule(row)


def get_schedule(
    conn: sa.Connection, schedule_id: int, user: User
) -> tuple[Schedule, SavedReport] | None:
    """The schedule and its report if ``user`` may manage them, else None."""
    schedule = schedule_by_id(conn, schedule_id)
    if schedule is None or schedule.tenant_id != user.tenant_id:
        return None
    saved = get_saved(conn, schedule.saved_id, user)
    if saved is None or not can_manage(saved, user):
        return None
    return schedule, saved


def schedules_of(conn: sa.Connection, saved: SavedReport) -> list[Schedule]:
    rows = conn.execute(
        report_schedules.select()
        .where(report_schedules.c.tenant_id == saved.tenant_id,
               report_schedules.c.saved_id == saved.saved_id)
        .order_by(report_schedules.c.schedule_id)
    )  # fmt: skip
    return [_schedule(row) for row in rows]


def set_active(
    conn: sa.Connection, schedule: Schedule, active: bool, *, zone: ZoneInfo, now: datetime
) -> None:
    """Pause or resume; a resumed schedule is next due after ``now`` (no catch-up of the pause)."""
    conn.execute(
        report_schedules.update()
        .where(report_schedules.c.schedule_id == schedule.schedule_id)
        .values(active=active,
                next_due_at=next_due(schedule.recurrence, zone, after=now) if active else None)
    )  # fmt: skip


def delete_schedule(conn: sa.Connection, schedule: Schedule) -> None:
    conn.execute(
        report_schedules.delete().where(report_schedules.c.schedule_id == schedule.schedule_id)
    )


def queue_run(
    conn: sa.Connection,
    schedule: Schedule,
    saved: SavedReport,
    *,
    zone: ZoneInfo,
    now: datetime,
    requested_by: str,
) -> int:
    """A manual run for the scheduler's next pass, covering the schedule's period as of today."""
    today = now.astimezone(zone).date()
    first, last = covered_days(schedule.period, today,
                               saved=saved_days(saved, zone=zone, today=today))  # fmt: skip
    return int(
        conn.execute(
            schedule_runs.insert()
            .values(
                tenant_id=schedule.tenant_id, schedule_id=schedule.schedule_id, due_at=now,
                trigger="manual", requested_by=requested_by[:254], first_day=first,
                last_day=last, status="queued", attempts=0, next_attempt_at=now,
                claimed_by="", error="",
            )
            .returning(schedule_runs.c.run_id)
        ).scalar_one()
    )  # fmt: skip


def run_by_id(conn: sa.Connection, run_id: int) -> Run | None:
    row = conn.execute(schedule_runs.select().where(schedule_runs.c.run_id == run_id)).one_or_none()
    return None if row is None else Run(**row._asdict())


def runs_of(conn: sa.Connection, schedule: Schedule, *, limit: int = RUN_HISTORY) -> list[Run]:
    rows = conn.execute(
        schedule_runs.select()
        .where(schedule_runs.c.tenant_id == schedule.tenant_id,
               schedule_runs.c.schedule_id == schedule.schedule_id)
        .order_by(schedule_runs.c.due_at.desc(), schedule_runs.c.run_id.desc())
        .limit(limit)
    )  # fmt: skip
    return [Run(**row._asdict()) for row in rows]
