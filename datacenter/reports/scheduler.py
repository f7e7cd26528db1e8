"""The report scheduler: claims due runs in the store, sends them, records what happened.

Contract (docs/reports.md, "Running"):

- ``ReportScheduler.run_due(now)`` is one pass. First every active schedule whose
  ``next_due_at`` has passed gets a run row for its latest due time, inserted as ``claimed``
  in the same transaction that moves ``next_due_at`` on: the unique key
  ``(tenant_id, schedule_id, due_at)`` is the claim, so of two schedulers only one inserts it.
  After downtime a schedule gets one run, for its latest missed due time, not one per miss.
  Then the pass takes over, with a conditional UPDATE that only one scheduler can win, every
  run that is ``queued`` ("Run now"), ``retrying`` and due again, or ``claimed`` by a scheduler
  that died before it began sending (older than ``CLAIM_LEASE``), and sends each.
- Sending a run: run the saved report as its owner (the owner's scope *now*: a narrowed or
  disabled owner narrows or stops the schedule), build the file or the signed link, mark the
  run ``sending`` (committed), hand the message to SMTP, mark it ``sent``.
- At most once: a run found in ``sending`` older than ``CLAIM_LEASE`` belonged to a scheduler
  that died while talking to the SMTP server, after which nobody can know whether the mail
  went. It is marked ``interrupted`` and *not* sent again (a user can press "Run now"). A
  report arriving twice is worse than one that is shown on the history page as interrupted;
  the window is one SMTP conversation. Everywhere else a run is retried: a run that died
  before ``sending`` is taken over (nothing had gone out), and an SMTP failure (refused,
  unreachable) is retried with back-off up to ``MAX_ATTEMPTS`` times, then ``failed`` with the
  reason. A run that cannot be built (bad parameters, owner gone: ``ValidationError``) fails
  at once.
"""

from __future__ import annotations

import logging
import random
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

import sqlalchemy as sa

from datacenter.accounts.scopes import mask_digits, scope_of
from datacenter.accounts.tenants import Tenant, get_tenant_by_id
from datacenter.accounts.users import get_user
from datacenter.exports.stream import MEDIA_TYPES, export_stream
from datacenter.health.notify import Mailer
from datacenter.reports.catalog import ReportTable
from datacenter.reports.links import LinkSigner, LinkTarget, link_url
from datacenter.reports.recurrence import covered_days, latest_due, next_due
from datacenter.reports.saved import SavedReport, get_saved_for_owner, run_saved, saved_days
from datacenter.reports.schedules import Run, Schedule, run_by_id, schedule_by_id
from datacenter.settings import Settings, load_secret_key
from datacenter.store.call_scope import UserScope
from datacenter.store.engine import write_transaction
from datacenter.store.tables.saved_reports import report_schedules, schedule_runs
from shared.backoff import Backoff
from shared.errors import CallCollectError, NotifyError, ValidationError

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
RETRY_BACKOFF = Backoff(min_seconds=120.0, max_seconds=3600.0, factor=4.0, jitter=0.2)
CLAIM_LEASE = timedelta(minutes=15)  # far longer than building a report and one SMTP session
MAX_ATTACHMENT_BYTES = 20 * 1024 * 1024  # what mail servers commonly accept; bigger: a link
SUBJECT_PREFIX = "[callcollect]"


@dataclass(slots=True)
class SchedulerReport:
    """What one pass did."""

    claimed: int = 0
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    interrupted: int = 0
    failures: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.claimed} run(s) due, {self.sent} sent, {self.retrying} to retry, "
            f"{self.failed} failed, {self.interrupted} interrupted"
        )


@dataclass(frozen=True)
class Delivery:
    """A run's email, and how many rows its report had."""

    message: EmailMessage
    rows: int


class ReportScheduler:
    """Sends the scheduled reports of every tenant (settings, store, mailer)."""

    def __init__(
        self,
        engine: sa.Engine,
        settings: Settings,
        *,
        mailer: Mailer | None = None,
        secret_key: str | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._mailer = mailer if mailer is not None else Mailer(settings.smtp)
        self._secret_key = secret_key
        self._rng = rng or random.Random()
        self.worker = f"scheduler-{uuid.uuid4().hex[:12]}"

    def run_due(self, now: datetime) -> SchedulerReport:
        report = SchedulerReport()
        report.claimed = self.claim_due(now)
        report.interrupted = self.interrupt_stale(now)
        if not self._mailer.enabled:
            if report.claimed:
                report.failures.append("smtp.host is not set: scheduled reports wait unsent")
            return report
        for run_id in self.take_over(now):
            self.send(run_id, now=now, report=report)
        return report

    # --- claiming ------------------------------------------------------------------------

    def claim_due(self, now: datetime) -> int:
        """Insert a claimed run for every schedule that is due; how many this pass claimed."""
        with self._engine.connect() as conn:
            due = conn.execute(
                sa.select(report_schedules.c.schedule_id).where(
                    report_schedules.c.active.is_(True), report_schedules.c.next_due_at <= now
                )
            ).scalars().all()  # fmt: skip
        return sum(1 for schedule_id in due if self._claim_one(schedule_id, now))

    def _claim_one(self, schedule_id: int, now: datetime) -> bool:
        try:
            with write_transaction(self._engine) as conn:
                schedule = schedule_by_id(conn, schedule_id)
                tenant = get_tenant_by_id(conn, schedule.tenant_id) if schedule else None
                if schedule is None or tenant is None or schedule.next_due_at is None:
                    return False
                zone = tenant.zone
                due = latest_due(schedule.recurrence, zone, at=now) or schedule.next_due_at
                moved = conn.execute(
                    report_schedules.update()
                    .where(report_schedules.c.schedule_id == schedule_id,
                           report_schedules.c.next_due_at == schedule.next_due_at)
                    .values(next_due_at=next_due(schedule.recurrence, zone, after=now))
                )  # fmt: skip
                if moved.rowcount != 1:
                    return False  # another scheduler moved it on first
                saved = get_saved_for_owner(conn, schedule.saved_id)
                if saved is None:
                    return False
                day = due.astimezone(zone).date()
                first, last = covered_days(schedule.period, day,
                                           saved=saved_days(saved, zone=zone, today=day))  # fmt: skip
                conn.execute(
                    schedule_runs.insert().values(
                        tenant_id=schedule.tenant_id, schedule_id=schedule_id, due_at=due,
                        trigger="schedule", requested_by="scheduler", first_day=first,
                        last_day=last, status="claimed", attempts=0, next_attempt_at=None,
                        claimed_at=now, claimed_by=self.worker, error="",
                    )
                )  # fmt: skip
        except sa.exc.IntegrityError:
            return False  # the run for this due time exists: claimed by another scheduler
        return True

    def interrupt_stale(self, now: datetime) -> int:
        """Runs left in ``sending`` by a scheduler that died: ``interrupted``, never re-sent."""
        with write_transaction(self._engine) as conn:
            result = conn.execute(
                schedule_runs.update()
                .where(schedule_runs.c.status == "sending",
                       schedule_runs.c.claimed_at < now - CLAIM_LEASE)
                .values(status="interrupted",
                        error="the scheduler stopped while handing this run to the SMTP server; "
                              "it is not sent again, so nobody gets it twice: check the "
                              "recipients' mail, and use Run now if it did not arrive")
            )  # fmt: skip
        return int(result.rowcount)

    def take_over(self, now: datetime) -> Iterator[int]:
        """The runs this scheduler now owns: its own claims, then the ones it wins."""
        stale = now - CLAIM_LEASE
        c = schedule_runs.c
        waiting = sa.or_(
            sa.and_(c.status == "claimed", c.claimed_by == self.worker),
            sa.and_(c.status.in_(("queued", "retrying")), c.next_attempt_at <= now),
            sa.and_(c.status == "claimed", c.claimed_at < stale),
        )
        with self._engine.connect() as conn:
            candidates = conn.execute(
                sa.select(c.run_id, c.status, c.claimed_by).where(waiting).order_by(c.due_at)
            ).all()
        for run_id, status, claimed_by in candidates:
            if status == "claimed" and claimed_by == self.worker:
                yield run_id
                continue
            with write_transaction(self._engine) as conn:
                won = conn.execute(
                    schedule_runs.update()
                    .where(c.run_id == run_id, c.status == status, c.claimed_by == claimed_by,
                           waiting)
                    .values(status="claimed", claimed_by=self.worker, claimed_at=now)
                ).rowcount  # fmt: skip
            if won == 1:
                yield run_id

    # --- sending -------------------------------------------------------------------------

    def send(self, run_id: int, *, now: datetime, report: SchedulerReport) -> None:
        """Build, mark ``sending``, hand to SMTP, mark the outcome."""
        with self._engine.connect() as conn:
            run = run_by_id(conn, run_id)
        if run is None:
            return
        try:
            delivery = self.build(run, now=now)
        except (CallCollectError, sa.exc.SQLAlchemyError) as exc:
            self._build_failed(run, str(exc), now=now, report=report)
            return
        except Exception as exc:
            # A bug in one tenant's report must not stop the loop that also raises alarms.
            log.exception("report run %d could not be built", run.run_id)
            self._build_failed(run, f"internal error ({type(exc).__name__}): please report it",
                               now=now, report=report)  # fmt: skip
            return
        self._mark(run, status="sending", now=now, rows=delivery.rows)
        try:
            self._mailer.send(delivery.message)
        except NotifyError as exc:
            self._failed_attempt(run, exc, now=now, report=report)
            return
        self._finish(run, status="sent", error="", now=now, sent=True)
        report.sent += 1

    def _build_failed(
        self, run: Run, error: str, *, now: datetime, report: SchedulerReport
    ) -> None:
        self._finish(run, status="failed", error=error, now=now)
        report.failed += 1
        report.failures.append(f"run {run.run_id}: {error}")

    def _failed_attempt(
        self, run: Run, exc: NotifyError, *, now: datetime, report: SchedulerReport
    ) -> None:
        attempts = run.attempts + 1
        log.warning("report run %d, attempt %d: %s", run.run_id, attempts, exc)
        report.failures.append(f"run {run.run_id}: {exc}")
        if attempts >= MAX_ATTEMPTS:
            error = f"gave up after {attempts} attempts: {exc}"
            self._finish(run, status="failed", error=error, now=now, attempts=attempts)
            report.failed += 1
            return
        wait = timedelta(seconds=RETRY_BACKOFF.delay(attempts - 1, self._rng))
        with write_transaction(self._engine) as conn:
            conn.execute(
                schedule_runs.update().where(schedule_runs.c.run_id == run.run_id).values(
                    status="retrying", attempts=attempts, next_attempt_at=now + wait,
                    error=str(exc), claimed_by="")
            )  # fmt: skip
        report.retrying += 1

    def _mark(self, run: Run, *, status: str, now: datetime, rows: int) -> None:
        with write_transaction(self._engine) as conn:
            conn.execute(
                schedule_runs.update()
                .where(schedule_runs.c.run_id == run.run_id)
                .values(status=status, claimed_at=now, rows=rows)
            )

    def _finish(
        self,
        run: Run,
        *,
        status: str,
        error: str,
        now: datetime,
        sent: bool = False,
        attempts: int | None = None,
    ) -> None:
        values: dict[str, Any] = {"status": status, "error": error[:2000],
                                  "attempts": attempts if attempts is not None else run.attempts + 1}  # fmt: skip
        if sent:
            values["sent_at"] = now
        with write_transaction(self._engine) as conn:
            conn.execute(
                schedule_runs.update().where(schedule_runs.c.run_id == run.run_id).values(**values)
            )

    # --- building ------------------------------------------------------------------------

    def build(self, run: Run, *, now: datetime) -> Delivery:
        """The email of ``run``: the report run as its owner, attached or linked."""
        with self._engine.connect() as conn:
            schedule = schedule_by_id(conn, run.schedule_id)
            if schedule is None:
                raise ValidationError("schedule", "the schedule was deleted")
            saved, tenant = owned_report(conn, schedule)
            if schedule.delivery == "link":
                return self._link_email(run, schedule, saved, tenant, now=now)
            table = report_as_owner(conn, saved, tenant, run, now=now)
            counted = _Counted(table)
            data = b""
            for chunk in export_stream(counted.table, schedule.format, tenant.zone):
                data += chunk
                if len(data) > MAX_ATTACHMENT_BYTES:
                    raise ValidationError(
                        "format",
                        f"the {schedule.format.upper()} file is over "
                        f"{MAX_ATTACHMENT_BYTES // (1024 * 1024)} MB: send this schedule as a "
                        "link, or narrow the report",
                    )
        message = self._email(run, schedule, saved, tenant, now=now,
                              body=_summary_lines(counted, schedule.format))  # fmt: skip
        message.add_attachment(
            data, **_mime(MEDIA_TYPES[schedule.format]),
            filename=attachment_name(saved, run, schedule.format),
        )  # fmt: skip
        return Delivery(message, counted.count)

    def _link_email(
        self, run: Run, schedule: Schedule, saved: SavedReport, tenant: Tenant, *, now: datetime
    ) -> Delivery:
        base = self._settings.alarms.console_url
        if not base:
            raise ValidationError(
                "delivery",
                "a link needs the web console's address: set alarms.console_url (e.g. "
                "https://callcollect.example.com), or send this schedule as an attachment",
            )
        expires = now + timedelta(days=schedule.link_days)
        secret = self._secret_key or load_secret_key(self._settings.web.secret_key_file)
        token = LinkSigner(secret).token(LinkTarget(run.run_id, run.tenant_id, expires))
        lines = [
            f"Download ({schedule.format.upper()}): {link_url(base, token)}",
            f"The link works until {expires:%Y-%m-%d %H:%M} UTC.",
        ]
        return Delivery(self._email(run, schedule, saved, tenant, now=now, body=lines), 0)

    def _email(
        self,
        run: Run,
        schedule: Schedule,
        saved: SavedReport,
        tenant: Tenant,
        *,
        now: datetime,
        body: list[str],
    ) -> EmailMessage:
        period = f"{run.first_day:%Y-%m-%d} to {run.last_day:%Y-%m-%d}"
        message = EmailMessage()
        message["Subject"] = f"{SUBJECT_PREFIX} {saved.title}: {period}"
        message["From"] = self._mailer.sender
        message["To"] = ", ".join(schedule.recipients)
        message["Date"] = format_datetime(now.astimezone(UTC))
        message["Message-ID"] = make_msgid(domain=self._mailer.sender.rpartition("@")[2] or None)
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office replies
        text = [
            f"{saved.title} ({tenant.name})",
            f"Period: {period} ({tenant.timezone})",
            f"Schedule: {schedule.recurrence.describe()}",
            "",
            *body,
            "",
            f"Sent for {saved.owner_email}, whose view of the calls it shows.",
        ]
        message.set_content("\n".join(text) + "\n")
        return message


class _Counted:
    """A table whose rows are counted as the export reads them."""

    def __init__(self, table: ReportTable) -> None:
        self.count = 0
        self.totals = table.totals
        self.table = ReportTable(table.title, table.columns, self._rows(table), table.totals)

    def _rows(self, table: ReportTable) -> Iterator[tuple[Any, ...]]:
        for row in table.rows:
            self.count += 1
            yield row


def _summary_lines(counted: _Counted, fmt: str) -> list[str]:
    return [f"The report is attached as {fmt.upper()} ({counted.count} rows)."]


def _mime(media_type: str) -> dict[str, Any]:
    """ "text/csv; charset=utf-8" as ``add_attachment`` arguments (the charset kept, so a mail
    client decodes the file as what it is)."""
    kind, *params = (part.strip() for part in media_type.split(";"))
    maintype, _, subtype = kind.partition("/")
    extra = dict(p.split("=", 1) for p in params if "=" in p)
    return {"maintype": maintype, "subtype": subtype, "params": extra}


def owned_report(conn: sa.Connection, schedule: Schedule) -> tuple[SavedReport, Tenant]:
    saved = get_saved_for_owner(conn, schedule.saved_id)
    tenant = get_tenant_by_id(conn, schedule.tenant_id)
    if saved is None or tenant is None:
        raise ValidationError("saved_report", "the saved report was deleted")
    return saved, tenant


def owner_view(conn: sa.Connection, saved: SavedReport) -> tuple[UserScope, int]:
    """The owner's scope and number masking as they are now; a disabled or departed owner
    stops the report."""
    owner = get_user(conn, saved.owner_id)
    if owner is None or owner.disabled or owner.tenant_id != saved.tenant_id:
        raise ValidationError("owner", f"{saved.owner_email} is disabled or gone")
    return scope_of(conn, owner), mask_digits(conn, saved.tenant_id, owner.role)


def report_as_owner(
    conn: sa.Connection, saved: SavedReport, tenant: Tenant, run: Run, *, now: datetime
) -> ReportTable:
    """``saved`` over the run's days, as its owner would see it now (scope and masking)."""
    scope, masked = owner_view(conn, saved)
    return run_saved(conn, saved, zone=tenant.zone, scope=scope,
                     today=now.astimezone(tenant.zone).date(),
                     days=(run.first_day, run.last_day), mask_digits=masked)  # fmt: skip


def attachment_name(saved: SavedReport, run: Run, fmt: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9]+", "-", saved.title).strip("-").lower() or "report"
    return f"{stem[:60]}-{run.first_day:%Y%m%d}-{run.last_day:%Y%m%d}.{fmt}"
