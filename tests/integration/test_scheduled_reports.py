"""Scheduled reports sent for real: an aiosmtpd server receives them, the attachment is opened
and checked against figures computed here from the seeded calls; signed links are fetched,
expire and are tampered with; a scheduler killed at each step of a run never sends twice; a
refusing SMTP server is retried with back-off and the run finally fails with the reason.

Time is passed to the scheduler (``run_due(now)``), so nothing here waits for a clock.
"""

from __future__ import annotations

import csv
import io
import multiprocessing
import os
import signal
import threading
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from flask import Flask

from datacenter.accounts.scopes import scope_from, set_mask_digits, set_scope
from datacenter.accounts.tenants import require_tenant
from datacenter.accounts.users import User, create_user, get_user_by_email
from datacenter.cli import main
from datacenter.health.notify import Mailer
from datacenter.health.runner import AlarmRunner, run_forever
from datacenter.reports.recurrence import recurrence
from datacenter.reports.saved import SavedReport, save_report
from datacenter.reports.scheduler import CLAIM_LEASE, MAX_ATTEMPTS, ReportScheduler
from datacenter.reports.schedules import Run, Schedule, add_schedule, queue_run, runs_of
from datacenter.settings import Settings
from datacenter.store.engine import open_store, write_transaction
from datacenter.store.tables.accounts import audit_log
from datacenter.store.tables.saved_reports import schedule_runs
from datacenter.web import create_app
from shared.errors import NotifyError
from tests.fixtures.smtp import SmtpServer, mailer_for
from tests.fixtures.store import gen_tenant
from tests.fixtures.web import ACME_USER, LENIENT, PASSWORD, SeededStore, seed_store

LONDON = ZoneInfo("Europe/London")
MARCH = (date(2025, 3, 1), date(2025, 3, 31))
SCHEDULED_AT = datetime(2025, 3, 20, 12, 0, tzinfo=UTC)  # when the schedules are made
APRIL_FIRST_DUE = datetime(2025, 4, 1, 6, 0, tzinfo=UTC)  # 07:00 BST
SUMMARY_QUERY = "o.by=extension&from=2025-01-01&to=2025-01-31"  # the dates are replaced
SCOPED_OWNER = "sid@acme.example"


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> SeededStore:
    seeded = seed_store(tmp_path_factory.mktemp("scheduled-reports"))
    engine = open_store(seeded.settings.store.url)
    try:
        with write_transaction(engine) as conn:
            acme = require_tenant(conn, "acme")
            owner = create_user(conn, SCOPED_OWNER, PASSWORD, "tenant", acme.tenant_id)
            set_scope(conn, owner, scope_from({"extension": ["201", "203"]}))
    finally:
        engine.dispose()
    return seeded


@pytest.fixture
def engine(seeded: SeededStore) -> Iterator[sa.Engine]:
    engine = open_store(seeded.settings.store.url)
    with write_transaction(engine) as conn:  # each test starts without runs or schedules
        conn.execute(sa.text("DELETE FROM saved_reports"))
    yield engine
    engine.dispose()


def _user(engine: sa.Engine, email: str) -> User:
    with engine.connect() as conn:
        user = get_user_by_email(conn, email)
    assert user is not None
    return user


def _schedule(
    engine: sa.Engine,
    *,
    owner: str = ACME_USER,
    delivery: str = "attachment",
    link_days: int = 7,
    recipients: tuple[str, ...] = ("finance@acme.example", "cfo@acme.example"),
    columns: tuple[str, ...] = ("extension", "calls", "talk_seconds"),
    now: datetime = SCHEDULED_AT,
    name: str = "summary",
) -> tuple[SavedReport, Schedule]:
    user = _user(engine, owner)
    with write_transaction(engine) as conn:
        saved = save_report(conn, user, name=name, query=SUMMARY_QUERY, columns=columns,
                            title="Calls by extension", shared=False, zone=LONDON, now=now)  # fmt: skip
        schedule = add_schedule(
            conn, saved, user, recurrence=recurrence("monthly", "07:00", month_day=1),
            period="previous_month", recipients=recipients, fmt="csv", delivery=delivery,
            link_days=link_days, zone=LONDON, now=now,
        )  # fmt: skip
    return saved, schedule


def _runs(engine: sa.Engine, schedule: Schedule) -> list[Run]:
    with engine.connect() as conn:
        return runs_of(conn, schedule)


def _scheduler(engine: sa.Engine, settings: Settings, mailer: Mailer) -> ReportScheduler:
    return ReportScheduler(engine, settings, mailer=mailer)


def _attachment_rows(message: EmailMessage) -> list[list[str]]:
    parts = list(message.iter_attachments())
    assert len(parts) == 1
    assert parts[0].get_content_type() == "text/csv"
    content = parts[0].get_content()
    text = content if isinstance(content, str) else content.decode("utf-8")
    return list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))


def _expected_by_extension(
    seeded: SeededStore, days: tuple[date, date], extensions: set[str] | None = None
) -> dict[str, tuple[int, int]]:
    """Calls and talk seconds per extension over ``days`` (London days), from the seed itself."""
    found: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for call in seeded.acme_calls:
        local_day = call.start.astimezone(LONDON).date()
        if days[0] <= local_day <= days[1] and (extensions is None or call.extension in extensions):
            found[call.extension][0] += 1
            found[call.extension][1] += call.talk_seconds
    return {ext: (calls, talk) for ext, (calls, talk) in found.items()}


# --- a scheduled report, received -------------------------------------------------------------


def test_a_due_report_arrives_with_the_figures_of_its_period(
    engine: sa.Engine, seeded: SeededStore, smtp_server: SmtpServer
) -> None:
    _, schedule = _schedule(engine)
    assert schedule.next_due_at == APRIL_FIRST_DUE
    scheduler = _scheduler(engine, seeded.settings, mailer_for(smtp_server))
    assert scheduler.run_due(APRIL_FIRST_DUE - timedelta(minutes=1)).claimed == 0
    report = scheduler.run_due(APRIL_FIRST_DUE + timedelta(minutes=1))
    assert (report.claimed, report.sent, report.failures) == (1, 1, [])

    [message] = smtp_server.inbox.messages
    assert message["Subject"] == "[callcollect] Calls by extension: 2025-03-01 to 2025-03-31"
    assert message["To"] == "finance@acme.example, cfo@acme.example"
    rows = _attachment_rows(message)
    assert rows[0] == ["Extension", "Calls", "Talk time"]
    expected = _expected_by_extension(seeded, MARCH)
    body = {row[0]: (int(row[1]), int(row[2])) for row in rows[1:-1]}
    assert body == expected and len(expected) == 5
    assert rows[-1] == ["Total", str(sum(c for c, _ in expected.values())),
                        str(sum(t for _, t in expected.values()))]  # fmt: skip
    [run] = _runs(engine, schedule)
    assert (run.status, run.attempts, run.first_day, run.last_day, run.rows) == (
        "sent", 1, *MARCH, 5)  # fmt: skip
    assert run.due_at == APRIL_FIRST_DUE and run.sent_at is not None
    # The schedule moved on to the first of May, and the same pass again sends nothing.
    assert scheduler.run_due(APRIL_FIRST_DUE + timedelta(minutes=2)).claimed == 0
    assert len(smtp_server.inbox.messages) == 1


def test_a_schedule_runs_under_its_owners_scope(
    engine: sa.Engine, seeded: SeededStore, smtp_server: SmtpServer
) -> None:
    _schedule(engine, owner=SCOPED_OWNER)
    _scheduler(engine, seeded.settings, mailer_for(smtp_server)).run_due(APRIL_FIRST_DUE)
    [message] = smtp_server.inbox.messages
    rows = _attachment_rows(message)
    body = {row[0]: (int(row[1]), int(row[2])) for row in rows[1:-1]}
    assert body == _expected_by_extension(seeded, MARCH, {"201", "203"})
    assert set(body) == {"201", "203"}


def test_after_downtime_one_run_covers_the_latest_missed_due_time(
    engine: sa.Engine, seeded: SeededStore, smtp_server: SmtpServer
) -> None:
    _, schedule = _schedule(engine)
    late = datetime(2025, 6, 10, 9, 0, tzinfo=UTC)  # April, May and June's runs were missed
    report = _scheduler(engine, seeded.settings, mailer_for(smtp_server)).run_due(late)
    assert report.sent == 1
    [run] = _runs(engine, schedule)
    assert run.due_at == datetime(2025, 6, 1, 6, 0, tzinfo=UTC)
    assert (run.first_day, run.last_day) == (date(2025, 5, 1), date(2025, 5, 31))


def test_two_schedulers_claim_a_due_run_once(
    engine: sa.Engine, seeded: SeededStore, smtp_server: SmtpServer
) -> None:
    _, schedule = _schedule(engine)
    first = _scheduler(engine, seeded.settings, mailer_for(smtp_server))
    second = _scheduler(engine, seeded.settings, mailer_for(smtp_server))
    assert first.claim_due(APRIL_FIRST_DUE) == 1
    assert second.claim_due(APRIL_FIRST_DUE) == 0
    assert list(second.take_over(APRIL_FIRST_DUE)) == []  # not stale: the other owns it
    second.run_due(APRIL_FIRST_DUE)
    first.run_due(APRIL_FIRST_DUE)
    assert len(smtp_server.inbox.messages) == 1
    assert [r.status for r in _runs(engine, schedule)] == ["sent"]


def test_the_store_refuses_a_second_run_for_the_same_due_time(
    engine: sa.Engine, seeded: SeededStore
) -> None:
    _, schedule = _schedule(engine)
    row = {"tenant_id": schedule.tenant_id, "schedule_id": schedule.schedule_id,
           "due_at": APRIL_FIRST_DUE, "trigger": "schedule", "requested_by": "test",
           "first_day": MARCH[0], "last_day": MARCH[1], "status": "claimed", "attempts": 0,
           "claimed_by": "a", "error": ""}  # fmt: skip
    with write_transaction(engine) as conn:
        conn.execute(schedule_runs.insert().values(**row))
    with pytest.raises(sa.exc.IntegrityError), write_transaction(engine) as conn:
        conn.execute(schedule_runs.insert().values(**{**row, "claimed_by": "b"}))


# --- run now --------------------------------------------------------------------------------


def test_run_now_is_sent_on_the_next_pass(
    engine: sa.Engine, seeded: SeededStore, smtp_server: SmtpServer
) -> None:
    saved, schedule = _schedule(engine)
    now = datetime(2025, 3, 20, 15, 0, tzinfo=UTC)
    with write_transaction(engine) as conn:
        queue_run(conn, schedule, saved, zone=LONDON, now=now, requested_by=ACME_USER)
    report = _scheduler(engine, seeded.settings, mailer_for(smtp_server)).run_due(now)
    assert (report.claimed, report.sent) == (0, 1)
    [run] = _runs(engine, schedule)
    assert (run.trigger, run.status, run.first_day, run.last_day) == (
        "manual", "sent", date(2025, 2, 1), date(2025, 2, 28))  # fmt: skip


# --- signed links ---------------------------------------------------------------------------


@pytest.fixture
def link_settings(seeded: SeededStore) -> Settings:
    alarms = replace(seeded.settings.alarms, console_url="https://reports.acme.example")
    return replace(seeded.settings, alarms=alarms)


@pytest.fixture
def web_app(link_settings: Settings) -> Iterator[Flask]:
    app = create_app(link_settings, test_config={"TESTING": True, "LOGIN_THROTTLE": LENIENT})
    yield app
    app.extensions["callcollect.store"].dispose()


def _link(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    text = str(body.get_content())
    [line] = [line for line in text.splitlines() if "/reports/links/" in line]
    url = line.split(": ", 1)[1].strip()
    assert url.startswith("https://reports.acme.example/reports/links/")
    return url.removeprefix("https://reports.acme.example")


def _audit(engine: sa.Engine, event: str) -> list[sa.Row[tuple[str, dict[str, object]]]]:
    with engine.connect() as conn:
        return list(
            conn.execute(sa.select(audit_log.c.subject, audit_log.c.details)
                         .where(audit_log.c.event == event).order_by(audit_log.c.audit_id))
        )  # fmt: skip


def test_a_link_serves_the_report_until_it_expires_and_refuses_a_forgery(
    engine: sa.Engine, link_settings: Settings, web_app: Flask, smtp_server: SmtpServer
) -> None:
    now = datetime.now(UTC)
    saved, schedule = _schedule(engine, delivery="link", link_days=1, now=now - timedelta(days=3))
    scheduler = _scheduler(engine, link_settings, mailer_for(smtp_server))
    with write_transaction(engine) as conn:  # one run two days ago (its link has expired) ...
        queue_run(conn, schedule, saved, zone=LONDON, now=now - timedelta(days=2), requested_by="t")
    scheduler.run_due(now - timedelta(days=2))
    with write_transaction(engine) as conn:  # ... and one now
        queue_run(conn, schedule, saved, zone=LONDON, now=now, requested_by="t")
    scheduler.run_due(now)
    old, new = smtp_server.inbox.messages
    assert not list(new.iter_attachments())
    client = web_app.test_client()

    fresh = client.get(_link(new))
    assert fresh.status_code == 200
    assert fresh.headers["Content-Type"].startswith("text/csv")
    assert fresh.get_data(as_text=True).lstrip("\ufeff").startswith("Extension,Calls,Talk time")
    assert client.get(_link(old)).status_code == 410

    path = _link(new)
    token = path.rsplit("/", 1)[1]
    payload, signature = token.rsplit(".", 1)
    swapped = "A" if signature[0] != "A" else "B"
    for forged in (f"{payload}.{swapped}{signature[1:]}", token[:-3], f"{payload}x.{signature}",
                   "not-a-link"):  # fmt: skip
        answer = client.get(f"/reports/links/{forged}")
        assert answer.status_code == 403, forged
        assert "Traceback" not in answer.get_data(as_text=True)

    fetched = _audit(engine, "report_link_fetched")
    assert [row.subject for row in fetched][-1:] == ["Calls by extension"]
    reasons = [str(row.details["reason"]) for row in _audit(engine, "report_link_refused")]
    assert reasons[-5:-4][0].startswith("the link expired") and reasons[-4:] == ["tampered"] * 4


def test_a_link_needs_the_consoles_address(
    engine: sa.Engine, seeded: SeededStore, smtp_server: SmtpServer
) -> None:
    _, schedule = _schedule(engine, delivery="link")
    report = _scheduler(engine, seeded.settings, mailer_for(smtp_server)).run_due(APRIL_FIRST_DUE)
    assert report.failed == 1 and smtp_server.inbox.messages == []
    [run] = _runs(engine, schedule)
    assert run.status == "failed" and "alarms.console_url" in run.error


# --- failing SMTP ---------------------------------------------------------------------------


def test_a_refusing_server_is_retried_with_backoff_then_the_run_fails(
    engine: sa.Engine, seeded: SeededStore, smtp_server: SmtpServer
) -> None:
    _, schedule = _schedule(engine)
    smtp_server.inbox.refuse_with = "451 4.3.0 Mailbox temporarily unavailable"
    scheduler = _scheduler(engine, seeded.settings, mailer_for(smtp_server))
    now = APRIL_FIRST_DUE
    waits = []
    for attempt in range(1, MAX_ATTEMPTS + 1):
        scheduler.run_due(now)
        [run] = _runs(engine, schedule)
        assert run.attempts == attempt
        if attempt < MAX_ATTEMPTS:
            assert run.status == "retrying" and run.next_attempt_at is not None
            assert "451" in run.error
            # Not before its time: a pass just before the retry leaves it alone.
            scheduler.run_due(run.next_attempt_at - timedelta(seconds=1))
            assert _runs(engine, schedule)[0].attempts == attempt
            waits.append(run.next_attempt_at - now)
            now = run.next_attempt_at
    assert run.status == "failed"
    assert run.error.startswith(f"gave up after {MAX_ATTEMPTS} attempts") and "451" in run.error
    assert waits == sorted(waits) and waits[0] >= timedelta(minutes=1)  # backing off
    assert smtp_server.inbox.refused == MAX_ATTEMPTS and smtp_server.inbox.messages == []
    scheduler.run_due(now + timedelta(days=1))  # failed for good: never tried again
    assert smtp_server.inbox.refused == MAX_ATTEMPTS


def test_a_retry_that_gets_through_is_sent_once(
    engine: sa.Engine, seeded: SeededStore, smtp_server: SmtpServer
) -> None:
    _, schedule = _schedule(engine)
    smtp_server.inbox.refuse_with = "421 4.7.0 Too busy, try later"
    scheduler = _scheduler(engine, seeded.settings, mailer_for(smtp_server))
    scheduler.run_due(APRIL_FIRST_DUE)
    smtp_server.inbox.refuse_with = ""
    [run] = _runs(engine, schedule)
    assert run.next_attempt_at is not None
    scheduler.run_due(run.next_attempt_at)
    [run] = _runs(engine, schedule)
    assert (run.status, run.attempts, run.error) == ("sent", 2, "")
    assert len(smtp_server.inbox.messages) == 1


# --- killed mid-run -------------------------------------------------------------------------


@dataclass(frozen=True)
class Crash:
    """Where the child scheduler kills itself (SIGKILL: no cleanup, no except, no finally)."""

    where: str  # "building": after the claim; "before-smtp": marked sending; "after-smtp"


class _KillingMailer(Mailer):
    def __init__(self, inner: Mailer, *, after_sending: bool) -> None:
        self._inner = inner
        self._after = after_sending

    @property
    def enabled(self) -> bool:
        return True

    @property
    def sender(self) -> str:
        return self._inner.sender

    def send(self, message: EmailMessage) -> None:
        if self._after:
            self._inner.send(message)
        os.kill(os.getpid(), signal.SIGKILL)


class _KilledWhileBuilding(ReportScheduler):
    def build(self, run: Run, *, now: datetime) -> object:  # type: ignore[override]
        os.kill(os.getpid(), signal.SIGKILL)
        raise AssertionError("unreachable")


def _child(url: str, settings: Settings, port: int, where: str) -> None:
    from tests.fixtures.smtp import smtp_settings

    engine = open_store(url)
    inner = Mailer(smtp_settings(port))
    if where == "building":
        _KilledWhileBuilding(engine, settings, mailer=inner).run_due(APRIL_FIRST_DUE)
    else:
        mailer = _KillingMailer(inner, after_sending=where == "after-smtp")
        ReportScheduler(engine, settings, mailer=mailer).run_due(APRIL_FIRST_DUE)


def _run_killed(seeded: SeededStore, port: int, where: str) -> None:
    process = multiprocessing.get_context("fork").Process(
        target=_child, args=(seeded.settings.store.url, seeded.settings, port, where)
    )
    process.start()
    process.join(timeout=60)
    assert process.exitcode == -signal.SIGKILL


@pytest.mark.parametrize(
    ("where", "left", "final", "mails"),
    [
        ("building", "claimed", "sent", 1),  # nothing had gone out: taken over and sent
        ("before-smtp", "sending", "interrupted", 0),  # unknown: never sent twice
        ("after-smtp", "sending", "interrupted", 1),  # it went: not sent again
    ],
)
def test_a_scheduler_killed_mid_run_never_sends_twice(
    engine: sa.Engine, seeded: SeededStore, smtp_server: SmtpServer,
    where: str, left: str, final: str, mails: int,
) -> None:  # fmt: skip
    _, schedule = _schedule(engine)
    _run_killed(seeded, smtp_server.port, where)
    [run] = _runs(engine, schedule)
    assert run.status == left

    restarted = _scheduler(engine, seeded.settings, mailer_for(smtp_server))
    restarted.run_due(APRIL_FIRST_DUE + timedelta(minutes=1))  # within the lease: hands off
    assert [r.status for r in _runs(engine, schedule)] == [left]
    restarted.run_due(APRIL_FIRST_DUE + CLAIM_LEASE + timedelta(minutes=1))
    restarted.run_due(APRIL_FIRST_DUE + 2 * CLAIM_LEASE + timedelta(minutes=1))

    runs = _runs(engine, schedule)
    assert [r.status for r in runs] == [final]  # one row for the due time, whatever happened
    assert len(smtp_server.inbox.messages) == mails
    if final == "interrupted":
        assert "not sent again" in runs[0].error


# --- both backends --------------------------------------------------------------------------


def test_claims_on_both_backends(
    store: sa.Engine, dc_settings: Settings, smtp_server: SmtpServer, cheap_passwords: None
) -> None:
    """Racing schedulers, take-over and interruption on SQLite and on PostgreSQL."""
    tenant = gen_tenant(store, "acme", timezone="Europe/London")
    with write_transaction(store) as conn:
        user = create_user(conn, "owner@acme.example", PASSWORD, "tenant", tenant.tenant_id)
        saved = save_report(conn, user, name="summary", query=SUMMARY_QUERY, columns=(),
                            title="Race", shared=True, zone=LONDON, now=SCHEDULED_AT)  # fmt: skip
        schedule = add_schedule(
            conn, saved, user, recurrence=recurrence("daily", "07:00"), period="previous_day",
            recipients=["a@acme.example"], fmt="csv", delivery="attachment", zone=LONDON,
            now=SCHEDULED_AT,
        )  # fmt: skip
    due = schedule.next_due_at
    assert due == datetime(2025, 3, 21, 7, 0, tzinfo=UTC)  # GMT until the 30th
    schedulers = [ReportScheduler(store, dc_settings, mailer=mailer_for(smtp_server))
                  for _ in range(4)]  # fmt: skip
    barrier = threading.Barrier(len(schedulers))
    claimed: list[int] = []

    def claim(scheduler: ReportScheduler) -> None:
        barrier.wait()
        claimed.append(scheduler.claim_due(due))

    threads = [threading.Thread(target=claim, args=(s,)) for s in schedulers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(claimed) == [0, 0, 0, 1]
    [run] = _runs(store, schedule)
    assert run.status == "claimed"
    # The claimer died before sending: after the lease another scheduler takes it over.
    later = due + CLAIM_LEASE + timedelta(seconds=1)
    survivor = next(s for s in schedulers if s.worker != run.claimed_by)
    assert list(survivor.take_over(due)) == []  # within the lease the claim is respected
    report = survivor.run_due(later)
    assert report.sent == 1 and len(smtp_server.inbox.messages) == 1
    # A run left in "sending" is interrupted, not re-sent.
    with write_transaction(store) as conn:
        conn.execute(schedule_runs.update().values(status="sending", claimed_at=later))
    assert survivor.run_due(later + CLAIM_LEASE + timedelta(seconds=1)).interrupted == 1
    assert [r.status for r in _runs(store, schedule)][-1] == "interrupted"
    assert len(smtp_server.inbox.messages) == 1


# --- the loop and the command ---------------------------------------------------------------


class _OnePass(threading.Event):
    """A stop event that stops the loop after its first pass (the loop waits on it once)."""

    def wait(self, timeout: float | None = None) -> bool:
        self.set()
        return True


def test_the_alarm_loop_sends_due_reports(
    engine: sa.Engine, seeded: SeededStore, smtp_server: SmtpServer
) -> None:
    _, schedule = _schedule(engine, now=datetime.now(UTC) - timedelta(days=40))
    runner = AlarmRunner(engine, seeded.settings, mailer=mailer_for(smtp_server))
    reports = ReportScheduler(engine, seeded.settings, mailer=mailer_for(smtp_server))
    run_forever(runner, interval=60, stop_event=_OnePass(), reports=reports)
    [run] = _runs(engine, schedule)
    assert run.status == "sent"
    assert [
        m["Subject"] for m in smtp_server.inbox.messages if "Calls by extension" in m["Subject"]
    ]


def _config_with_smtp(seeded: SeededStore, folder: Path, port: int) -> Path:
    config = folder / "with-smtp.toml"
    smtp = f'\n[smtp]\nhost = "127.0.0.1"\nport = {port}\ntls = "none"\nfrom = "r@acme.example"\n'
    config.write_text(seeded.config_path.read_text() + smtp)
    return config


def test_run_due_sends_and_exits_0_then_11_when_mail_is_refused(
    engine: sa.Engine, seeded: SeededStore, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    config = _config_with_smtp(seeded, tmp_path, smtp_server.port)
    _schedule(engine, now=datetime.now(UTC) - timedelta(days=40))
    result = CliRunner().invoke(main, ["reports", "run-due", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "1 run(s) due, 1 sent, 0 to retry, 0 failed" in result.output
    assert len(smtp_server.inbox.messages) == 1

    with write_transaction(engine) as conn:
        conn.execute(sa.text("DELETE FROM saved_reports"))
    _schedule(engine, now=datetime.now(UTC) - timedelta(days=40))
    smtp_server.inbox.refuse_with = "554 5.7.1 Relay access denied"
    result = CliRunner().invoke(main, ["reports", "run-due", "--config", str(config)])
    assert result.exit_code == NotifyError.exit_code
    assert "1 to retry" in result.output and "554" in result.output


def test_a_scheduled_report_hides_numbers_as_its_owner_sees_them(
    engine: sa.Engine, seeded: SeededStore, smtp_server: SmtpServer
) -> None:
    with write_transaction(engine) as conn:
        tenant_id = require_tenant(conn, "acme").tenant_id
        set_mask_digits(conn, tenant_id, "tenant", 4)
    try:
        _schedule(engine, columns=("extension", "direction", "called"), name="detail")
        _scheduler(engine, seeded.settings, mailer_for(smtp_server)).run_due(APRIL_FIRST_DUE)
    finally:
        with write_transaction(engine) as conn:
            set_mask_digits(conn, tenant_id, "tenant", 0)
    [message] = smtp_server.inbox.messages
    rows = _attachment_rows(message)[1:]
    outgoing = [row[2] for row in rows if row[1] == "out"]
    march = [c for c in seeded.acme_calls if c.direction.value == "out"
             and MARCH[0] <= c.start.astimezone(LONDON).date() <= MARCH[1]]  # fmt: skip
    assert len(outgoing) == len(march) > 0
    assert all(number.endswith("xxxx") and number[:-4].isdigit() for number in outgoing)


def test_a_run_that_cannot_be_built_fails_at_once_with_its_reason(
    engine: sa.Engine, seeded: SeededStore, smtp_server: SmtpServer
) -> None:
    saved, schedule = _schedule(engine)
    with write_transaction(engine) as conn:  # e.g. a report retired from the catalogue
        conn.execute(sa.text("UPDATE saved_reports SET report = 'retired' WHERE saved_id = :i"),
                     {"i": saved.saved_id})  # fmt: skip
    report = _scheduler(engine, seeded.settings, mailer_for(smtp_server)).run_due(APRIL_FIRST_DUE)
    assert (report.failed, report.sent, report.retrying) == (1, 0, 0)
    [run] = _runs(engine, schedule)
    assert run.status == "failed" and "no report 'retired'" in run.error
    assert smtp_server.inbox.messages == []
