"""The alarm loop: assess polling health, raise and clear alarms, notify, send digests.

Contract:

- ``AlarmRunner.run_once(now)`` is one pass: assess every site (``datacenter.health.facts``), turn
  each finding into an alarm condition keyed (tenant, site, source, state), apply
  ``alarms.decide`` in one transaction, then send the notices (email to the tenant's
  technicians, else the admins; the webhook) and record each delivery. Then, once a day at
  ``digest.time`` (in ``digest.timezone``), every technician and admin who looks after at least
  one tenant gets a digest: every site not ok, and what changed since their previous digest.
  Last, the tenants' cost and fraud alarms (``datacenter.cost_alarms.runner``) are evaluated
  and delivered; their notices and failures count in the same report.
- A failed delivery is logged and retried on the next pass (the alarm stays un-notified); a
  store or health error ends the pass with the error logged and the next pass tries again.
  Several runners may run (each decision is one transaction and the store refuses a second
  open alarm per key), but one is enough.
- Without ``smtp.host`` and ``alarms.webhook_url`` alarms are still raised, cleared and shown on
  the console; nothing is sent.

The loop (``run_forever``) also applies recordings retention once an hour
(``purge_recordings_if_due``: ``datacenter.recordings.retention``), makes the next months'
partitions of calls once a day on PostgreSQL (``make_partitions_if_due``:
``datacenter.store.partitions``) and sends the scheduled reports
(``datacenter.reports.scheduler``) after each pass.

The command that runs it is ``datacenter.commands.alarms`` (`datacenter alarms run`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from email.message import EmailMessage
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from datacenter.accounts.technicians import alarm_recipients, digest_recipients, tenants_of
from datacenter.accounts.tenants import list_tenants
from datacenter.accounts.users import User
from datacenter.cost_alarms.runner import CostAlarmRunner
from datacenter.health.alarms import (
    Alarm,
    AlarmKey,
    Condition,
    Notice,
    Pending,
    apply,
    decide,
    history,
    open_alarms,
    recent_silences,
    record_notified,
)
from datacenter.health.facts import site_health
from datacenter.health.model import SiteHealth, State, policy_from_settings
from datacenter.health.notify import (
    AlarmNotice,
    DigestChange,
    DigestSite,
    Mailer,
    Webhook,
    alarm_email,
    digest_email,
)
from datacenter.recordings.retention import PURGE_EVERY, purge_expired
from datacenter.reports.scheduler import ReportScheduler
from datacenter.settings import Settings
from datacenter.store.engine import write_transaction
from datacenter.store.partitions import PARTITIONS_AHEAD, PARTITIONS_EVERY, create_ahead
from datacenter.store.tables.alarms import technician_digests
from shared.errors import NotifyError

log = logging.getLogger(__name__)

FIRST_DIGEST_LOOKBACK = timedelta(days=1)  # a technician's first digest covers the last day
DIGEST_CHANGE_KINDS = ("raised", "cleared", "acknowledged", "silenced", "unsilenced")


@dataclass(slots=True)
class RunReport:
    """What one pass did."""

    sites: int = 0
    raised: int = 0
    cleared: int = 0
    notices_sent: int = 0
    digests_sent: int = 0
    failures: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.sites} site(s) assessed, {self.raised} alarm(s) raised, {self.cleared} "
            f"cleared, {self.notices_sent} notice(s) sent, {self.digests_sent} digest(s) sent, "
            f"{len(self.failures)} delivery failure(s)"
        )


def conditions(sites: Iterable[SiteHealth]) -> list[Condition]:
    """One alarm condition per finding of every site."""
    return [
        Condition(AlarmKey(s.tenant_id, s.agent_id, f.source_id, f.state.value), f.reason)
        for s in sites
        for f in s.findings
    ]


def state_label(state: str) -> str:
    """ "source_down" -> "Source down" (unknown codes are shown the same way)."""
    try:
        label = State(state).label
    except ValueError:
        label = state.replace("_", " ")
    return "OK" if label == "ok" else label[:1].upper() + label[1:]


def site_url(console_url: str, tenant_slug: str, agent_id: str) -> str:
    """The console page of a site, or "" when ``alarms.console_url`` is not set."""
    return f"{console_url}/tech/sites/{tenant_slug}/{agent_id}" if console_url else ""


class AlarmRunner:
    """One data centre's alarm scheduler (settings, store, channels)."""

    def __init__(
        self,
        engine: sa.Engine,
        settings: Settings,
        *,
        mailer: Mailer | None = None,
        webhook: Webhook | None = None,
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._policy = policy_from_settings(settings.health)
        self._mailer = mailer if mailer is not None else Mailer(settings.smtp)
        self._webhook = webhook if webhook is not None else Webhook(settings.alarms.webhook_url)
        self._renotify = timedelta(minutes=settings.alarms.renotify_minutes)
        self._purged_at: datetime | None = None
        self._partitioned_at: datetime | None = None
        self._cost_alarms = CostAlarmRunner(
            engine,
            mailer=self._mailer,
            portal_url=settings.alarms.console_url,
            allow_private_webhooks=settings.alarms.tenant_webhooks_private,
        )

    @property
    def _channels(self) -> bool:
        return self._mailer.enabled or self._webhook.enabled

    def run_once(self, now: datetime) -> RunReport:
        report = RunReport()
        with self._engine.connect() as conn:
            sites = site_health(conn, now=now, policy=self._policy)
        report.sites = len(sites)
        with write_transaction(self._engine) as conn:
            decisions = decide(
                open_alarms(conn),
                conditions(sites),
                now=now,
                renotify=self._renotify,
                silences=recent_silences(conn, now=now),
            )
            pending = apply(conn, decisions, now=now)
        report.raised = sum(1 for d in decisions if d.step == "raise")
        report.cleared = sum(1 for d in decisions if d.step == "clear")
        if self._channels:
            for item in pending:
                self._deliver(item, now=now, report=report)
        report.digests_sent = self.send_digests(now, sites=sites, report=report)
        cost = self._cost_alarms.run_once(now)  # tenants' cost and fraud alarms (cost_alarms)
        report.notices_sent += cost.sent
        report.failures += cost.failures
        return report

    def make_partitions_if_due(self, now: datetime) -> list[str]:
        """The next months' partitions of calls (PostgreSQL), once per ``PARTITIONS_EVERY``.

        Ingest never makes partitions (no DDL in its transactions); this keeps
        ``PARTITIONS_AHEAD`` months ready (``datacenter.store.partitions``).
        """
        if self._engine.dialect.name != "postgresql":
            return []
        if self._partitioned_at is not None and now - self._partitioned_at < PARTITIONS_EVERY:
            return []
        self._partitioned_at = now
        made = create_ahead(self._engine, PARTITIONS_AHEAD, today=now.date())
        if made:
            log.info("partitions made ahead: %s", ", ".join(made))
        return made

    def purge_recordings_if_due(self, now: datetime) -> int:
        """Recordings retention (``datacenter.recordings.retention``) once per ``PURGE_EVERY``."""
        if self._purged_at is not None and now - self._purged_at < PURGE_EVERY:
            return 0
        self._purged_at = now
        return sum(p.recordings for p in purge_expired(self._engine, self._settings, now=now))

    # --- notices ---------------------------------------------------------------------------

    def _deliver(self, item: Pending, *, now: datetime, report: RunReport) -> None:
        alarm, notice = item.alarm, item.notice
        with self._engine.connect() as conn:
            names = {t.tenant_id: t for t in list_tenants(conn)}
            recipients = [u.email for u in alarm_recipients(conn, alarm.tenant_id)]
        tenant = names.get(alarm.tenant_id)
        message = self._notice(alarm, notice, slug=tenant.slug if tenant else "?",
                               name=tenant.name if tenant else "?")  # fmt: skip
        delivered: list[str] = []
        if self._mailer.enabled and recipients:
            email = alarm_email(message, sender=self._mailer.sender, to=recipients, now=now)
            self._attempt(lambda: self._mailer.send(email), f"email to {', '.join(recipients)}",
                          delivered, report)  # fmt: skip
        elif self._mailer.enabled:
            report.failures.append(f"alarm {alarm.alarm_id}: no technician or admin to email")
        if self._webhook.enabled:
            self._attempt(lambda: self._webhook.send(message, now=now), "webhook",
                          delivered, report)  # fmt: skip
        if delivered:
            with write_transaction(self._engine) as conn:
                record_notified(conn, alarm, notice, delivered="; ".join(delivered), now=now)
            report.notices_sent += 1

    @staticmethod
    def _attempt(
        send: Callable[[], None], what: str, delivered: list[str], report: RunReport
    ) -> None:
        try:
            send()
        except NotifyError as exc:
            log.warning("%s failed: %s", what, exc)
            report.failures.append(str(exc))
        else:
            delivered.append(what)

    def _notice(self, alarm: Alarm, notice: Notice, *, slug: str, name: str) -> AlarmNotice:
        return AlarmNotice(
            event=notice.value,
            alarm_id=alarm.alarm_id,
            tenant_slug=slug,
            tenant_name=name,
            agent_id=alarm.agent_id,
            source_id=alarm.source_id,
            state=alarm.state,
            state_label=state_label(alarm.state),
            reason=alarm.reason,
            raised_at=alarm.raised_at,
            cleared_at=alarm.cleared_at,
            notice_number=alarm.notifications + 1,
            url=site_url(self._settings.alarms.console_url, slug, alarm.agent_id),
        )

    # --- digests ---------------------------------------------------------------------------

    def digest_due(self, now: datetime) -> date | None:
        """Today's date in ``digest.timezone`` if the digest time has passed, else None."""
        alarms_settings = self._settings.alarms
        if not alarms_settings.digest_time or not self._mailer.enabled:
            return None
        local = now.astimezone(ZoneInfo(alarms_settings.digest_timezone))
        hours, minutes = (int(part) for part in alarms_settings.digest_time.split(":"))
        return local.date() if local.time() >= time(hours, minutes) else None

    def send_digests(self, now: datetime, *, sites: Sequence[SiteHealth], report: RunReport) -> int:
        """Each technician's digest, once per day after ``digest.time``; how many went out."""
        today = self.digest_due(now)
        if today is None:
            return 0
        sent = 0
        with self._engine.connect() as conn:
            last = {row.user_id: row for row in conn.execute(technician_digests.select())}
            users = digest_recipients(conn)
            plans = [(u, tenants_of(conn, u)) for u in users]
        for user, tenants in plans:
            previous = last.get(user.user_id)
            if not tenants or (previous is not None and previous.last_day >= today):
                continue
            since = previous.last_sent_at if previous is not None else now - FIRST_DIGEST_LOOKBACK
            message = self._digest(user, {t.tenant_id: t.name for t in tenants}, sites,
                                   since=since, now=now)  # fmt: skip
            try:
                self._mailer.send(message)
            except NotifyError as exc:
                log.warning("digest to %s failed: %s", user.email, exc)
                report.failures.append(str(exc))
                continue
            with write_transaction(self._engine) as conn:
                conn.execute(technician_digests.delete().where(
                    technician_digests.c.user_id == user.user_id))  # fmt: skip
                conn.execute(technician_digests.insert().values(
                    user_id=user.user_id, last_sent_at=now, last_day=today))  # fmt: skip
            sent += 1
        return sent

    def _digest(
        self,
        user: User,
        tenant_names: dict[int, str],
        sites: Sequence[SiteHealth],
        *,
        since: datetime,
        now: datetime,
    ) -> EmailMessage:
        console = self._settings.alarms.console_url
        with self._engine.connect() as conn:
            # The open alarm of each site's worst state says since when, and who took it on.
            alarm_of = {
                (a.tenant_id, a.agent_id, a.state): a
                for a in open_alarms(conn, tenant_ids=tenant_names)
            }
            changes = history(conn, tenant_names, since=since, kinds=DIGEST_CHANGE_KINDS)
        not_ok = []
        for site in sites:
            if site.tenant_id not in tenant_names or site.state is State.OK:
                continue
            alarm = alarm_of.get((site.tenant_id, site.agent_id, site.state.value))
            not_ok.append(
                DigestSite(
                    tenant_name=tenant_names[site.tenant_id],
                    agent_id=site.agent_id,
                    state_label=state_label(site.state.value),
                    reason=site.reason,
                    since=alarm.raised_at if alarm else None,
                    acknowledged_by=alarm.acknowledged_by if alarm else None,
                    url=site_url(console, site.tenant_slug, site.agent_id),
                )
            )
        return digest_email(
            sites=not_ok,
            changes=[
                DigestChange(
                    at=c.at,
                    tenant_name=c.tenant_name,
                    agent_id=c.alarm.agent_id,
                    state_label=state_label(c.alarm.state),
                    kind=c.kind,
                    actor=c.actor,
                    note=c.note,
                )
                for c in reversed(changes)  # oldest first reads like a log
            ],
            since=since,
            sender=self._mailer.sender,
            to=user.email,
            now=now,
            console_url=console,
        )


def run_forever(
    runner: AlarmRunner,
    *,
    interval: float,
    stop_event: threading.Event,
    reports: ReportScheduler | None = None,
) -> None:
    """A pass every ``interval`` seconds until ``stop_event`` is set; errors are logged.

    With ``reports``, each pass also sends the scheduled reports that are due (one loop and
    one service for everything the data centre sends on its own)."""
    while not stop_event.is_set():
        try:
            report = runner.run_once(datetime.now(UTC))
            runner.purge_recordings_if_due(datetime.now(UTC))
            runner.make_partitions_if_due(datetime.now(UTC))
        except (sa.exc.SQLAlchemyError, OSError) as exc:
            log.error("alarm pass failed, trying again in %.0f s: %s", interval, exc)
        else:
            if report.raised or report.cleared or report.notices_sent or report.failures:
                log.info("%s", report.summary())
        if reports is not None:
            _send_reports(reports)
        stop_event.wait(interval)


def _send_reports(reports: ReportScheduler) -> None:
    try:
        sent = reports.run_due(datetime.now(UTC))
    except (sa.exc.SQLAlchemyError, OSError) as exc:
        log.error("scheduled reports pass failed, trying again next pass: %s", exc)
        return
    if sent.claimed or sent.sent or sent.failures or sent.interrupted:
        log.info("scheduled reports: %s", sent.summary())
