"""One pass of the cost and fraud alarms: evaluate new and re-rated calls, then deliver.

Contract:

- ``CostAlarmRunner.run_once(now)`` handles every tenant with rules. Per tenant, in one
  transaction: read the marks, load the calls ingested or (re-)rated since (less ``OVERLAP``),
  evaluate every rule on them, record the findings (``store.record_finding``: one alarm per
  rule, subject and period; a call attaches once) and move the marks. A crash before the commit
  leaves everything as it was; the next pass does the same work again. Evaluating a call twice
  (the overlap, a re-rate that did not change its cost, two runners) finds the same alarms and
  calls and so changes nothing: no second alarm, no second notice.
- Then, per channel (email to ``delivery.emails`` or else the tenant's admins; the webhook at
  ``delivery.webhook_url``), each alarm with calls the channel has not told about, not
  acknowledged, and due is sent with all its calls, once claimed (``store.claim_delivery``
  moves the try's due time ``CLAIM`` ahead, so a second loop reading the same alarm sends
  nothing; a loop killed while sending leaves it due again after ``CLAIM``). A failure is recorded on the alarm with the
  next try after ``deliver.backoff`` (1, 2, 4... minutes, at most an hour), up to
  ``deliver.MAX_ATTEMPTS`` tries; success records how many calls were told about.
- A tenant whose evaluation or delivery fails (store error, a stored document that no longer
  parses) is logged and counted as a failure; the other tenants go on.
- The polling-health alarm loop (`datacenter alarms run`) calls this after its own pass;
  `datacenter cost-alarms run --once` runs it alone.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import partial
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from datacenter.accounts.scopes import mask_digits
from datacenter.accounts.tenants import Tenant, get_tenant_by_id
from datacenter.accounts.users import list_users
from datacenter.cost_alarms import store
from datacenter.cost_alarms.deliver import (
    MAX_ATTEMPTS,
    SignedWebhook,
    alarm_email,
    backoff,
    payload,
)
from datacenter.cost_alarms.evaluate import (
    CallFact,
    Finding,
    day_cost_reason,
    local_day_span,
    local_hour_span,
    merge_findings,
    per_call_findings,
    short_call_bursts,
    usual_volume,
    volume_alarms,
)
from datacenter.cost_alarms.rules import Rule, RuleKind, RuleSet
from datacenter.health.notify import Mailer
from datacenter.store.engine import write_transaction
from shared.errors import CallCollectError, NotifyError

log = logging.getLogger(__name__)

OVERLAP = timedelta(minutes=15)  # longer than any ingest or re-rate transaction
# A try claimed by one loop is not due for the others for this long: far more than a send
# takes (SMTP and webhook time out in seconds), short enough that a killed loop's try is
# soon made by another.
CLAIM = timedelta(minutes=10)
PER_CALL_KINDS = frozenset({RuleKind.CALL_COST, RuleKind.LONG_CALL, RuleKind.OFF_HOURS})
DAY_COST_KINDS = frozenset({RuleKind.EXTENSION_DAY_COST, RuleKind.TENANT_DAY_COST})


@dataclass(slots=True)
class CostRunReport:
    tenants: int = 0
    calls: int = 0
    new_calls: int = 0  # calls attached to an alarm for the first time
    sent: int = 0
    failures: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"cost alarms: {self.tenants} tenant(s), {self.calls} call(s) evaluated, "
            f"{self.new_calls} call(s) newly in an alarm, {self.sent} notice(s) sent, "
            f"{len(self.failures)} delivery failure(s)"
        )


def findings(
    conn: sa.Connection, tenant: Tenant, rules: RuleSet, facts: list[CallFact]
) -> list[Finding]:
    """Every rule's findings for the changed calls ``facts``."""
    zone = tenant.zone
    found = per_call_findings(
        [r for r in rules.rules if r.kind in PER_CALL_KINDS], rules.hours, facts
    )
    for rule in rules.rules:
        if rule.kind in DAY_COST_KINDS:
            found += _day_cost(conn, tenant.tenant_id, zone, rule, facts)
        elif rule.kind is RuleKind.VOLUME:
            found += _volume(conn, tenant.tenant_id, zone, rule, facts)
        elif rule.kind is RuleKind.SHORT_CALLS:
            found += _short_calls(conn, tenant.tenant_id, zone, rule, facts)
    return found


def _day_cost(
    conn: sa.Connection, tenant_id: int, zone: ZoneInfo, rule: Rule, facts: list[CallFact]
) -> list[Finding]:
    per_extension = rule.kind is RuleKind.EXTENSION_DAY_COST
    touched: dict[tuple[date, str], set[str]] = defaultdict(set)
    for f in facts:
        if f.cost_micro is not None and (not rule.currency or f.currency == rule.currency):
            touched[(f.local.date(), f.currency)].add(f.extension)
    found = []
    for (day, currency), extensions in sorted(touched.items()):
        totals = store.day_costs_micro(
            conn, tenant_id, day, currency, extensions if per_extension else None
        )
        for extension, total in sorted(totals.items(), key=lambda item: item[0] or ""):
            if total <= rule.over_micro:
                continue
            ids = store.costly_calls(
                conn, tenant_id, local_day_span(day, zone), currency, extension=extension
            )
            reason = day_cost_reason(rule, total, currency, extension=extension or "")
            found.append(
                Finding(rule.rule_id, rule.kind, extension or "", day.isoformat(), reason,
                        tuple(ids))
            )  # fmt: skip
    return found


def _volume(
    conn: sa.Connection, tenant_id: int, zone: ZoneInfo, rule: Rule, facts: list[CallFact]
) -> list[Finding]:
    hours = {
        (f.local.date(), f.local.hour)
        for f in facts
        if rule.direction == "any" or f.direction == rule.direction
    }
    found = []
    for day, hour in sorted(hours):
        span = local_hour_span(day, hour, zone)
        count = store.count_calls(conn, tenant_id, span, direction=rule.direction)
        if count < rule.min_calls:
            continue  # no need to read the history
        history = [
            store.count_calls(
                conn,
                tenant_id,
                local_hour_span(day - timedelta(weeks=w), hour, zone),
                direction=rule.direction,
            )
            for w in range(1, rule.weeks + 1)
        ]
        usual = usual_volume(history, rule.factor)
        if not volume_alarms(count, usual, rule):
            continue
        hour_calls = store.calls_in(conn, tenant_id, span, zone, direction=rule.direction)
        reason = f"{count} calls between {hour:02d}:00 and {hour + 1:02d}:00; {usual.describe()}"
        found.append(
            Finding(
                rule.rule_id,
                rule.kind,
                "",
                f"{day.isoformat()}T{hour:02d}",
                reason,
                tuple(f.record_id for f in hour_calls[: store.ATTACH_LIMIT]),
            )
        )
    return found


def _short_calls(
    conn: sa.Connection, tenant_id: int, zone: ZoneInfo, rule: Rule, facts: list[CallFact]
) -> list[Finding]:
    short = [
        f for f in facts if f.direction == "out" and f.talk_seconds < rule.seconds and f.number
    ]
    if not short:
        return []
    window = timedelta(minutes=rule.window_minutes)
    span = (min(f.start for f in short) - window, max(f.start for f in short) + window)
    numbers = {f.number for f in short}
    by_number: dict[str, list[CallFact]] = defaultdict(list)
    for fact in store.calls_in(
        conn,
        tenant_id,
        (span[0], span[1] + timedelta(seconds=1)),
        zone,
        direction="out",
        short_of=rule.seconds,
    ):
        if fact.number in numbers:
            by_number[fact.number].append(fact)
    found = []
    for number in sorted(by_number):
        group = by_number[number]
        hits = short_call_bursts(
            [(f.start, f.record_id) for f in group], count=rule.calls, window=window
        )
        per_day: dict[date, list[str]] = defaultdict(list)
        for fact in group:
            if fact.record_id in hits:
                per_day[fact.local.date()].append(fact.record_id)
        for day, ids in sorted(per_day.items()):
            reason = (
                f"{rule.calls} or more calls shorter than {rule.seconds} s to {number} within "
                f"{rule.window_minutes} minutes"
            )
            found.append(
                Finding(rule.rule_id, rule.kind, number, day.isoformat(), reason, tuple(ids))
            )
    return found


class CostAlarmRunner:
    """Evaluates and delivers every tenant's cost alarms (module doc)."""

    def __init__(
        self,
        engine: sa.Engine,
        *,
        mailer: Mailer,
        portal_url: str = "",
        overlap: timedelta = OVERLAP,
        webhook_timeout: float | None = None,
        allow_private_webhooks: bool = False,
    ) -> None:
        self._engine = engine
        self._mailer = mailer
        self._portal_url = portal_url.rstrip("/")
        self._overlap = overlap
        self._webhook_timeout = webhook_timeout
        self._allow_private = allow_private_webhooks

    def run_once(self, now: datetime) -> CostRunReport:
        report = CostRunReport()
        with self._engine.connect() as conn:
            tenant_ids = store.tenants_with_rules(conn)
        for tenant_id in tenant_ids:
            report.tenants += 1
            try:
                self.evaluate(tenant_id, now=now, report=report)
                self.deliver(tenant_id, now=now, report=report)
            except (sa.exc.SQLAlchemyError, CallCollectError) as exc:
                # One tenant's trouble (a rules document an older version accepted, a lost
                # connection) must not stop the others; its transaction rolled back whole.
                log.error("cost alarms of tenant %d failed: %s", tenant_id, exc)
                report.failures.append(f"tenant {tenant_id}: {exc}")
        return report

    def evaluate(self, tenant_id: int, *, now: datetime, report: CostRunReport) -> None:
        with write_transaction(self._engine) as conn:
            tenant = get_tenant_by_id(conn, tenant_id)
            stored = store.load_rules(conn, tenant_id)
            marks = store.load_marks(conn, tenant_id)
            if tenant is None or stored is None or marks is None:
                return
            changed = store.changed_calls(
                conn, tenant_id, tenant.zone, marks, overlap=self._overlap
            )
            report.calls += len(changed.facts)
            for finding in merge_findings(findings(conn, tenant, stored.rules, changed.facts)):
                report.new_calls += store.record_finding(conn, tenant_id, finding, now=now)
            store.save_marks(conn, tenant_id, changed.marks, now=now)

    def deliver(self, tenant_id: int, *, now: datetime, report: CostRunReport) -> None:
        with self._engine.connect() as conn:
            tenant = get_tenant_by_id(conn, tenant_id)
            stored = store.load_rules(conn, tenant_id)
            if tenant is None or stored is None:
                return
            recipients = list(stored.rules.emails) or [
                u.email
                for u in list_users(conn)
                if u.tenant_id == tenant_id and u.role == "tenant_admin" and not u.disabled
            ]
            email_due = (
                store.pending_deliveries(
                    conn, tenant_id, "email", now=now, max_attempts=MAX_ATTEMPTS
                )
                if self._mailer.enabled and recipients
                else []
            )
            hook_due = (
                store.pending_deliveries(
                    conn, tenant_id, "webhook", now=now, max_attempts=MAX_ATTEMPTS
                )
                if stored.rules.webhook_url
                else []
            )
            # Emails go to people: the tenant admins' number masking applies (docs/web.md).
            digits = mask_digits(conn, tenant_id, "tenant_admin")
            email_work = [
                store.masked(alarm, facts, digits)
                for alarm, facts in store.alarms_with_calls(conn, tenant_id, email_due, tenant.zone)
            ]
            hook_work = store.alarms_with_calls(conn, tenant_id, hook_due, tenant.zone)
        for alarm, facts in email_work:
            message = alarm_email(
                alarm,
                facts,
                tenant_name=tenant.name,
                portal_url=self._portal_url,
                sender=self._mailer.sender,
                to=recipients,
                now=now,
            )
            self._attempt(
                alarm, "email", len(facts), partial(self._mailer.send, message), now, report
            )
        hook = SignedWebhook(
            stored.rules.webhook_url,
            stored.webhook_secret,
            allow_private=self._allow_private,
            **self._timeout_args(),
        )
        for alarm, facts in hook_work:
            document = payload(
                alarm,
                facts,
                tenant_slug=tenant.slug,
                tenant_name=tenant.name,
                portal_url=self._portal_url,
                sent_at=now,
            )
            self._attempt(
                alarm, "webhook", len(facts), partial(hook.send, document, now=now), now, report
            )

    def _timeout_args(self) -> dict[str, float]:
        return {} if self._webhook_timeout is None else {"timeout": self._webhook_timeout}

    def _attempt(
        self,
        alarm: store.CostAlarm,
        channel: str,
        calls: int,
        send: Callable[[], None],
        now: datetime,
        report: CostRunReport,
    ) -> None:
        with write_transaction(self._engine) as conn:
            if not store.claim_delivery(conn, alarm, channel, now=now, until=now + CLAIM):
                log.info("cost alarm %s: %s taken by another loop", alarm.alarm_id, channel)
                return
        try:
            send()
        except NotifyError as exc:
            log.warning("cost alarm %s: %s failed: %s", alarm.alarm_id, channel, exc)
            report.failures.append(str(exc))
            attempt = int(getattr(alarm, f"{channel}_attempts")) + 1
            with write_transaction(self._engine) as conn:
                store.record_delivery(
                    conn,
                    alarm,
                    channel,
                    delivered_calls=None,
                    error=str(exc),
                    next_at=now + backoff(attempt),
                )
            return
        with write_transaction(self._engine) as conn:
            store.record_delivery(conn, alarm, channel, delivered_calls=calls)
        report.sent += 1
