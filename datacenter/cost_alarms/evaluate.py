"""What the rules make of calls: pure functions from call facts (and counts) to findings.

Contract: nothing here reads the store or the clock; ``datacenter.cost_alarms.store`` loads the
facts and ``datacenter.cost_alarms.runner`` writes the findings. A ``Finding`` names the rule,
the subject (an extension, a dialled number, or "" for the whole tenant), the period (a
tenant-local day ``YYYY-MM-DD`` or hour ``YYYY-MM-DDTHH``), why, and the calls behind it. The
same calls always give the same findings, which is what makes evaluating a call twice harmless.

"Usual" volume (docs/cost-alarms.md): for a tenant-local hour H (a wall-clock hour on a given
date), the counts of the same wall-clock hour on the same weekday in each of the previous
``weeks`` weeks (a week with no calls counts 0). With m their median and MAD the median of
``|count - m|``, the spread is ``s = max(1.4826 * MAD, 1)`` (1.4826 makes the MAD estimate a
standard deviation for normal data; the floor of 1 keeps a perfectly steady history from making
one extra call an alarm) and the limit ``m + factor * s``. The hour alarms when its count is
above the limit *and* at least ``min_calls``, so a quiet tenant does not alarm on three calls.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from datacenter.cost_alarms.rules import BusinessHours, Rule, RuleKind, format_micro

MAD_TO_SD = Decimal("1.4826")
MIN_SPREAD = Decimal(1)


@dataclass(frozen=True, slots=True)
class CallFact:
    """What the rules need of one call (a row of ``calls`` joined to its ``call_costs``)."""

    record_id: str
    start: datetime  # UTC
    local: datetime  # the same instant on the tenant's clock
    direction: str
    extension: str
    number: str  # the number called: E.164 when rated, else the dialled or called digits
    talk_seconds: int
    cost_micro: int | None  # None: not rated
    currency: str
    number_class: str  # "" when not rated

    @property
    def day(self) -> str:
        return self.local.date().isoformat()


@dataclass(frozen=True, slots=True)
class Finding:
    rule_id: str
    kind: RuleKind
    subject: str
    period: str
    reason: str
    record_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Usual:
    """The usual count of an hour of the week, and the limit above which it alarms."""

    history: tuple[int, ...]
    median: Decimal
    mad: Decimal
    limit: Decimal

    def describe(self) -> str:
        weeks = ", ".join(str(c) for c in self.history)
        return (
            f"usual {self.median} (median of the same hour in the previous {len(self.history)} "
            f"weeks: {weeks}; MAD {self.mad}), limit {self.limit.quantize(Decimal('0.1'))}"
        )


def usual_volume(history: Sequence[int], factor: Decimal) -> Usual:
    """The usual count and the limit for ``history`` (module doc)."""
    median = Decimal(str(statistics.median(history))) if history else Decimal(0)
    deviations = [abs(Decimal(c) - median) for c in history]
    mad = Decimal(str(statistics.median(deviations))) if deviations else Decimal(0)
    spread = max(MAD_TO_SD * mad, MIN_SPREAD)
    return Usual(tuple(history), median, mad, median + factor * spread)


def volume_alarms(count: int, usual: Usual, rule: Rule) -> bool:
    return count >= rule.min_calls and Decimal(count) > usual.limit


def per_call_findings(
    rules: Iterable[Rule], hours: BusinessHours, facts: Iterable[CallFact]
) -> list[Finding]:
    """Findings of the rules that look at one call at a time (cost, long call, off hours).

    Each call is its own finding (subject: its extension, period: its local day); the store
    merges findings with the same rule, subject and period into one alarm."""
    found: list[Finding] = []
    facts = list(facts)
    for rule in rules:
        for fact in facts:
            reason = _per_call_reason(rule, hours, fact)
            if reason:
                found.append(
                    Finding(
                        rule.rule_id, rule.kind, fact.extension, fact.day, reason, (fact.record_id,)
                    )
                )
    return found


def merge_findings(findings: Iterable[Finding]) -> list[Finding]:
    """One finding per (rule, subject, period), with the calls of all of them in order (the
    last reason wins, as it would in the store): one write per alarm instead of one per call."""
    merged: dict[tuple[str, str, str], Finding] = {}
    for finding in findings:
        key = (finding.rule_id, finding.subject, finding.period)
        before = merged.get(key)
        if before is not None:
            ids = tuple(dict.fromkeys(before.record_ids + finding.record_ids))
            finding = Finding(finding.rule_id, finding.kind, finding.subject, finding.period,
                              finding.reason, ids)  # fmt: skip
        merged[key] = finding
    return list(merged.values())


def _per_call_reason(rule: Rule, hours: BusinessHours, fact: CallFact) -> str:
    if rule.kind is RuleKind.CALL_COST:
        if (
            fact.cost_micro is not None
            and _currency_matches(rule, fact.currency)
            and fact.cost_micro > rule.over_micro
        ):
            return (
                f"a call costs more than {format_micro(rule.over_micro)} "
                f"{rule.currency or fact.currency}".rstrip()
            )
        return ""
    if rule.kind is RuleKind.LONG_CALL:
        if fact.talk_seconds > rule.minutes * 60:
            return f"a call lasts longer than {rule.minutes} minutes"
        return ""
    if rule.kind is RuleKind.OFF_HOURS:
        # Outgoing only: an incoming call's class is the caller's, and costs the tenant nothing.
        outgoing = fact.direction == "out"
        if outgoing and fact.number_class in rule.classes and not hours.contains(fact.local):
            classes = " or ".join(sorted(rule.classes))
            return f"a call to a {classes} number outside business hours"
        return ""
    return ""


def _currency_matches(rule: Rule, currency: str) -> bool:
    return not rule.currency or rule.currency == currency


def day_cost_reason(rule: Rule, total_micro: int, currency: str, *, extension: str) -> str:
    who = f"extension {extension}" if rule.kind is RuleKind.EXTENSION_DAY_COST else "the tenant"
    return (
        f"{who} spent {format_micro(total_micro)} {currency} in one day, more than "
        f"{format_micro(rule.over_micro)}"
    )


def short_call_bursts(
    calls: Sequence[tuple[datetime, str]], *, count: int, window: timedelta
) -> set[str]:
    """The record ids of ``calls`` ((start, record id), one number) that lie in some window of
    length ``window`` holding at least ``count`` calls (a window includes both ends)."""
    ordered = sorted(calls)
    hits: set[str] = set()
    first = 0
    for last in range(len(ordered)):
        while ordered[last][0] - ordered[first][0] > window:
            first += 1
        if last - first + 1 >= count:
            hits.update(record_id for _, record_id in ordered[first : last + 1])
    return hits


def local_hour_span(day: date, hour: int, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC instants where wall-clock hour ``hour`` of ``day`` begins and ends on ``zone``'s
    clock. On the autumn change the repeated hour spans two real hours; on the spring change a
    skipped hour spans none (no call can start in it)."""
    start = datetime.combine(day, time(hour), tzinfo=zone)
    end = start + timedelta(hours=1)  # wall-clock arithmetic: the next hour on the clock
    return _utc(start), _utc(end)


def local_day_span(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC instants of ``day``'s local midnight and the next (23, 24 or 25 hours apart)."""
    start = datetime.combine(day, time(0), tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    return _utc(start), _utc(end)


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)
