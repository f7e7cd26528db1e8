"""The pure polling-health model: heartbeats, batch sequence and call volume -> one state per site.

Contract (what the technician console, alarms and /metrics build on):

- ``State`` is the closed list of states, worst first by ``State.severity``: ``agent_down``,
  ``transport_down``, ``source_down``, ``silent``, ``spool_filling``, ``clock_skew``,
  ``version_outdated``, ``ok``. docs/health.md gives each state's exact rule.
- ``assess(facts, now, policy) -> SiteHealth`` is PURE: no I/O, no clock, no store; the same
  facts, time and policy always give the same answer. A ``SiteHealth`` holds the site's (agent's)
  state, the reason in words and a ``Finding`` per problem, each with its evidence (JSON-ready
  values) and ``source_id`` ("" for the site itself). At most one finding per
  ``(source_id, state)``, so ``AGENT/SOURCE/STATE`` identifies an alarm. ``sources`` gives each
  source's own state.
- The facts (``SiteFacts``) are read from the store by ``datacenter.health.facts``; heartbeats
  get into the store through ``datacenter.health.heartbeats``.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from datacenter import __version__ as DATACENTER_VERSION
from datacenter.settings import HealthSettings
from shared.heartbeat import (
    AgentState,
    Heartbeat,
)

MAX_GAPS_SHOWN = 10


class State(StrEnum):
    OK = "ok"
    SOURCE_DOWN = "source_down"  # the agent is alive, a source is failing
    AGENT_DOWN = "agent_down"  # no heartbeat for long, or the agent said it stopped
    TRANSPORT_DOWN = "transport_down"  # heartbeats late, uplink failing, batches missing
    SILENT = "silent"  # no calls in business hours where the same weekday usually has them
    CLOCK_SKEW = "clock_skew"
    SPOOL_FILLING = "spool_filling"
    VERSION_OUTDATED = "version_outdated"

    @property
    def severity(self) -> int:
        """Higher is worse; a site shows its worst finding."""
        return _SEVERITY[self]

    @property
    def label(self) -> str:
        """For people: "source down"."""
        return self.value.replace("_", " ")


_SEVERITY = {
    State.OK: 0,
    State.VERSION_OUTDATED: 10,
    State.CLOCK_SKEW: 20,
    State.SPOOL_FILLING: 30,
    State.SILENT: 40,
    State.SOURCE_DOWN: 50,
    State.TRANSPORT_DOWN: 60,
    State.AGENT_DOWN: 70,
}
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True, slots=True)
class HealthPolicy:
    """The thresholds (``[health]`` settings; docs/health.md). Defaults suit a 60 s uplink."""

    heartbeat_late_intervals: float = 3.0  # late after this many of the agent's intervals...
    heartbeat_late_min: timedelta = timedelta(minutes=2)  # ...and never sooner than this
    agent_down_after: timedelta = timedelta(minutes=30)  # at least twice the lateness limit
    uplink_failures: int = 3  # failed sessions in a row that make the transport down
    transport_hold: timedelta = timedelta(minutes=30)  # reported trouble shows this long
    missing_batch_grace: timedelta = timedelta(minutes=10)
    source_down_after: timedelta = timedelta(minutes=2)
    clock_skew_seconds: float = 120.0
    spool_filling_percent: float = 70.0
    minimum_agent_version: str = DATACENTER_VERSION
    business_start: time = time(8, 0)
    business_end: time = time(18, 0)
    business_days: frozenset[int] = frozenset(range(5))  # Monday = 0
    silent_after: timedelta = timedelta(minutes=60)  # of business hours before judging
    silent_weeks: int = 4
    silent_min_usual_calls: int = 5

    def late_after(self, interval_seconds: int) -> timedelta:
        return max(
            self.heartbeat_late_min,
            timedelta(seconds=interval_seconds * self.heartbeat_late_intervals),
        )

    def down_after(self, interval_seconds: int) -> timedelta:
        return max(self.agent_down_after, 2 * self.late_after(interval_seconds))


def policy_from_settings(health: HealthSettings) -> HealthPolicy:
    """The policy the ``[health]`` section describes."""
    return HealthPolicy(
        heartbeat_late_intervals=health.heartbeat_late_intervals,
        agent_down_after=timedelta(minutes=health.agent_down_minutes),
        uplink_failures=health.uplink_failures,
        transport_hold=timedelta(minutes=health.transport_hold_minutes),
        missing_batch_grace=timedelta(minutes=health.missing_batch_grace_minutes),
        source_down_after=timedelta(minutes=health.source_down_minutes),
        clock_skew_seconds=health.clock_skew_seconds,
        spool_filling_percent=health.spool_filling_percent,
        minimum_agent_version=health.minimum_agent_version or DATACENTER_VERSION,
        business_start=health.business_start,
        business_end=health.business_end,
        business_days=frozenset(health.business_days),
        silent_after=timedelta(minutes=health.silent_after_minutes),
        silent_weeks=health.silent_weeks,
        silent_min_usual_calls=health.silent_min_usual_calls,
    )


# --- facts: what the store knows about one site -------------------------------------------------


@dataclass(frozen=True, slots=True)
class HeartbeatFacts:
    """The agent's newest heartbeat (by the agent's ``sent_at``) and when it landed."""

    heartbeat: Heartbeat
    received_at: datetime  # the landing area's clock
    delay_seconds: float  # received - sent, corrected by the measured clock offset


@dataclass(frozen=True, slots=True)
class UplinkTrouble:
    """The worst the heartbeats received within ``policy.transport_hold`` reported."""

    max_failures: int = 0
    failures_reported_at: datetime | None = None  # sent_at of the heartbeat reporting them
    last_error: str = ""
    max_delay_seconds: float = 0.0
    late_sent_at: datetime | None = None  # sent_at of the latest-arriving heartbeat


@dataclass(frozen=True, slots=True)
class SequenceGap:
    """Batch numbers ``first``..``last`` never landed; batch ``last + 1`` landed at ``noticed_at``."""

    first: int
    last: int
    noticed_at: datetime

    @property
    def count(self) -> int:
        return self.last - self.first + 1


@dataclass(frozen=True, slots=True)
class VolumeFacts:
    """Calls from one source in today's business window so far, and in the same window before.

    ``previous[k]`` is the count in the same local window ``k + 1`` weeks ago.
    """

    source_id: str
    window_start: datetime
    window_end: datetime
    today: int
    previous: tuple[int, ...]

    @property
    def usual(self) -> float:
        return statistics.median(self.previous) if self.previous else 0.0


@dataclass(frozen=True, slots=True)
class SiteFacts:
    tenant_id: int
    tenant_slug: str
    timezone: str
    agent_id: str
    agent_name: str = ""
    enrolled_at: datetime | None = None
    latest: HeartbeatFacts | None = None
    trouble: UplinkTrouble = UplinkTrouble()
    last_upload_at: datetime | None = None  # newest batch stored (agents.last_seen_at)
    last_sequence: int | None = None  # highest batch number stored
    gaps: tuple[SequenceGap, ...] = ()
    volume: tuple[VolumeFacts, ...] = ()


# --- the answer ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Finding:
    state: State
    reason: str  # one or more sentences for a technician
    evidence: Mapping[str, Any] = field(default_factory=dict)  # JSON-ready values
    source_id: str = ""  # "" for the site (agent) itself


@dataclass(frozen=True, slots=True)
class SourceHealth:
    source_id: str
    kind: str
    state: State
    reason: str
    ok: bool | None = None  # the last poll/connection outcome; None: no heartbeat names it
    message: str = ""
    last_poll_at: datetime | None = None
    last_ok_at: datetime | None = None
    last_record_at: datetime | None = None
    records: int = 0
    failures_in_a_row: int = 0
    reconnects: int = 0
    calls_today: int | None = None  # in today's business window so far
    usual_calls: float | None = None


@dataclass(frozen=True, slots=True)
class SiteHealth:
    tenant_id: int
    tenant_slug: str
    agent_id: str
    agent_name: str
    state: State
    reason: str
    assessed_at: datetime
    findings: tuple[Finding, ...] = ()  # worst first
    sources: tuple[SourceHealth, ...] = ()
    last_heartbeat_at: datetime | None = None  # when the newest heartbeat landed
    last_poll_at: datetime | None = None  # newest source outcome
    last_record_at: datetime | None = None
    last_upload_at: datetime | None = None
    last_sequence: int | None = None
    unbatched_records: int | None = None
    unsent_batches: int | None = None
    agent_version: str = ""
    clock_offset_seconds: float | None = None
    spool_percent: float | None = None

    @property
    def key(self) -> str:
        return f"{self.tenant_slug}/{self.agent_id}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (times as ISO 8601 strings), for the API, webhooks and the console."""
        doc = _jsonable(
            {
                "tenant_id": self.tenant_id,
                "tenant": self.tenant_slug,
                "agent_id": self.agent_id,
                "agent_name": self.agent_name,
                "state": self.state.value,
                "reason": self.reason,
                "assessed_at": self.assessed_at,
                "findings": [
                    {
                        "state": f.state.value,
                        "source_id": f.source_id,
                        "reason": f.reason,
                        "evidence": dict(f.evidence),
                    }
                    for f in self.findings
                ],
                "sources": [
                    {name: getattr(s, name) for name in SourceHealth.__dataclass_fields__}
                    for s in self.sources
                ],
                **{name: getattr(self, name) for name in _SITE_SUMMARY},
            }
        )
        assert isinstance(doc, dict)
        return doc


_SITE_SUMMARY = (
    "last_heartbeat_at", "last_poll_at", "last_record_at", "last_upload_at", "last_sequence",
    "unbatched_records", "unsent_batches", "agent_version", "clock_offset_seconds",
    "spool_percent",
)  # fmt: skip


# --- assess: pure -------------------------------------------------------------------------------


def assess(facts: SiteFacts, now: datetime, policy: HealthPolicy) -> SiteHealth:
    """The site's state from its facts at ``now``. Pure; docs/health.md states every rule."""
    findings = _Findings()
    latest = facts.latest
    agent_down = _check_agent(findings, facts, now, policy)
    if latest is not None and not agent_down:
        transport_down = _check_transport(findings, facts, now, policy)
        down_sources = _check_sources(findings, latest.heartbeat, policy)
        if not transport_down:
            _check_silence(findings, facts, now, policy, skip=down_sources)
        _check_agent_details(findings, latest.heartbeat, policy)
    ordered = findings.ordered()
    sources = _source_health(facts, ordered)
    hb = latest.heartbeat if latest else None
    polls = [s.at for s in hb.sources if s.at] if hb else []
    records = [s.last_record_at for s in hb.sources if s.last_record_at] if hb else []
    worst = ordered[0] if ordered else None
    return SiteHealth(
        tenant_id=facts.tenant_id,
        tenant_slug=facts.tenant_slug,
        agent_id=facts.agent_id,
        agent_name=facts.agent_name,
        state=worst.state if worst else State.OK,
        reason=worst.reason if worst else _all_well(facts, now),
        assessed_at=now,
        findings=ordered,
        sources=sources,
        last_heartbeat_at=latest.received_at if latest else None,
        last_poll_at=max(polls, default=None),
        last_record_at=max(records, default=None),
        last_upload_at=facts.last_upload_at,
        last_sequence=facts.last_sequence,
        unbatched_records=hb.unbatched_records if hb else None,
        unsent_batches=hb.unsent_batches if hb else None,
        agent_version=hb.agent_version if hb else "",
        clock_offset_seconds=hb.clock_offset_seconds if hb else None,
        spool_percent=round(hb.spool.percent, 1) if hb else None,
    )


class _Findings:
    """Collects findings, merging two of the same (source, state) into one."""

    def __init__(self) -> None:
        self._by_key: dict[tuple[str, State], Finding] = {}

    def add(
        self, state: State, reason: str, evidence: Mapping[str, Any], *, source_id: str = ""
    ) -> None:
        key = (source_id, state)
        old = self._by_key.get(key)
        if old is not None:
            reason = f"{old.reason} {reason}"
            evidence = {**old.evidence, **evidence}
        self._by_key[key] = Finding(
            state=state, reason=reason, evidence=_jsonable(evidence), source_id=source_id
        )

    def ordered(self) -> tuple[Finding, ...]:
        return tuple(sorted(self._by_key.values(), key=lambda f: (-f.state.severity, f.source_id)))


def _check_agent(
    findings: _Findings, facts: SiteFacts, now: datetime, policy: HealthPolicy
) -> bool:
    """agent_down (True) or late heartbeats (transport_down); False when the agent is alive."""
    latest = facts.latest
    if latest is None:
        since = f" since enrolment at {_when(facts.enrolled_at)}" if facts.enrolled_at else ""
        findings.add(
            State.AGENT_DOWN,
            f"No heartbeat ever received{since}: the agent was never started, or cannot reach "
            "the data centre.",
            {"enrolled_at": facts.enrolled_at},
        )
        return True
    hb = latest.heartbeat
    if hb.state is AgentState.STOPPING:
        findings.add(
            State.AGENT_DOWN,
            f"The agent shut down at {_when(hb.sent_at)} (its last heartbeat said so) and has "
            "not started again: check the appliance's service (systemctl status edge-agent).",
            {"stopped_at": hb.sent_at, "received_at": latest.received_at},
        )
        return True
    age = now - latest.received_at
    evidence = {
        "last_heartbeat_at": latest.received_at,
        "age_seconds": round(age.total_seconds()),
        "interval_seconds": hb.interval_seconds,
    }
    down_after = policy.down_after(hb.interval_seconds)
    if age >= down_after:
        findings.add(
            State.AGENT_DOWN,
            f"No heartbeat for {_span(age)} (expected every {_span_s(hb.interval_seconds)}; "
            f"down after {_span(down_after)}): the agent or its host is down, or the site has "
            "lost its network.",
            {**evidence, "down_after_seconds": round(down_after.total_seconds())},
        )
        return True
    late_after = policy.late_after(hb.interval_seconds)
    if age >= late_after:
        findings.add(
            State.TRANSPORT_DOWN,
            f"Heartbeats late: the last one landed {_span(age)} ago (expected every "
            f"{_span_s(hb.interval_seconds)}): the agent cannot reach the landing host.",
            {**evidence, "late_after_seconds": round(late_after.total_seconds())},
        )
    return False


def _check_transport(
    findings: _Findings, facts: SiteFacts, now: datetime, policy: HealthPolicy
) -> bool:
    """The uplink problems heartbeats report; True if any (including late heartbeats)."""
    assert facts.latest is not None
    hb, trouble = facts.latest.heartbeat, facts.trouble
    late_after = policy.late_after(hb.interval_seconds)
    before = len(findings.ordered())
    if trouble.max_failures >= policy.uplink_failures:
        error = f" (last error: {trouble.last_error})" if trouble.last_error else ""
        findings.add(
            State.TRANSPORT_DOWN,
            f"The uplink failed {trouble.max_failures} sessions in a row before "
            f"{_when(trouble.failures_reported_at)}{error}.",
            {
                "uplink_failures": trouble.max_failures,
                "reported_at": trouble.failures_reported_at,
                "last_error": trouble.last_error,
            },
        )
    if trouble.max_delay_seconds >= late_after.total_seconds():
        findings.add(
            State.TRANSPORT_DOWN,
            f"A heartbeat written at {_when(trouble.late_sent_at)} arrived "
            f"{_span_s(trouble.max_delay_seconds)} late.",
            {
                "max_delay_seconds": round(trouble.max_delay_seconds),
                "late_sent_at": trouble.late_sent_at,
            },
        )
    missing = [gap for gap in facts.gaps if now - gap.noticed_at >= policy.missing_batch_grace]
    if missing:
        numbers = ", ".join(
            str(g.first) if g.count == 1 else f"{g.first}-{g.last}"
            for g in missing[:MAX_GAPS_SHOWN]
        )
        total = sum(g.count for g in missing)
        findings.add(
            State.TRANSPORT_DOWN,
            f"{total} batch(es) never arrived: number(s) {numbers}; ask the agent to re-send them.",
            {"missing_batches": total, "missing": numbers},
        )
    if hb.unsent_batches and hb.oldest_unsent_at and hb.sent_at - hb.oldest_unsent_at >= late_after:
        findings.add(
            State.TRANSPORT_DOWN,
            f"{hb.unsent_batches} sealed batch(es) waiting to be sent since "
            f"{_when(hb.oldest_unsent_at)}: uploads fail while heartbeats get through.",
            {"unsent_batches": hb.unsent_batches, "oldest_unsent_at": hb.oldest_unsent_at},
        )
    sent = hb.uplink.last_sequence_sent
    if (
        sent is not None
        and sent > (facts.last_sequence or 0)
        and now - facts.latest.received_at >= policy.missing_batch_grace
    ):
        findings.add(
            State.TRANSPORT_DOWN,
            f"The agent sent batches up to number {sent} but the newest stored is "
            f"{facts.last_sequence or 'none'}: uploaded files are not reaching ingest.",
            {"last_sequence_sent": sent, "last_sequence_stored": facts.last_sequence},
        )
    return len(findings.ordered()) > before


def _check_sources(findings: _Findings, hb: Heartbeat, policy: HealthPolicy) -> set[str]:
    """source_down for each source failing longer than the policy allows; their ids."""
    down: set[str] = set()
    for source in hb.sources:
        if source.ok:
            continue
        since = source.last_ok_at or hb.started_at
        failing = hb.sent_at - since
        if failing < policy.source_down_after:
            continue
        down.add(source.source_id)
        never = "never worked since the agent started" if source.last_ok_at is None else ""
        findings.add(
            State.SOURCE_DOWN,
            f"Source {source.source_id} ({source.kind}) failing for {_span(failing)}"
            f"{', ' + never if never else ''} ({source.failures_in_a_row} attempt(s) in a row): "
            f"{source.message or 'no message'}.",
            {
                "failing_since": since,
                "failures_in_a_row": source.failures_in_a_row,
                "message": source.message,
                "last_ok_at": source.last_ok_at,
            },
            source_id=source.source_id,
        )
    return down


def business_window(
    now: datetime, zone: ZoneInfo, policy: HealthPolicy
) -> tuple[datetime, datetime] | None:
    """[start, end) of today's business hours so far (UTC), or None outside them."""
    local = now.astimezone(zone)
    if local.weekday() not in policy.business_days:
        return None
    start = datetime.combine(local.date(), policy.business_start, tzinfo=zone)
    end = datetime.combine(local.date(), policy.business_end, tzinfo=zone)
    if local <= start:
        return None
    return start.astimezone(UTC), min(local, end).astimezone(UTC)


def _check_silence(
    findings: _Findings,
    facts: SiteFacts,
    now: datetime,
    policy: HealthPolicy,
    *,
    skip: Collection[str],
) -> None:
    window = business_window(now, ZoneInfo(facts.timezone), policy)
    if window is None or window[1] - window[0] < policy.silent_after:
        return
    for volume in facts.volume:
        if volume.source_id in skip or volume.today > 0:
            continue
        if volume.usual < policy.silent_min_usual_calls:
            continue
        local_start = volume.window_start.astimezone(ZoneInfo(facts.timezone))
        findings.add(
            State.SILENT,
            f"No calls from source {volume.source_id} since {local_start:%H:%M} "
            f"({facts.timezone}) today, though this weekday usually has "
            f"{volume.usual:g} by now (median of the last {len(volume.previous)} weeks).",
            {
                "window_start": volume.window_start,
                "window_end": volume.window_end,
                "calls_today": volume.today,
                "previous_weeks": list(volume.previous),
                "usual": volume.usual,
            },
            source_id=volume.source_id,
        )


def _check_agent_details(findings: _Findings, hb: Heartbeat, policy: HealthPolicy) -> None:
    offset = hb.clock_offset_seconds
    if offset is not None and abs(offset) >= policy.clock_skew_seconds:
        direction = "behind" if offset > 0 else "ahead of"
        findings.add(
            State.CLOCK_SKEW,
            f"The agent's clock is {_span_s(abs(offset))} {direction} the landing host's: "
            "call times are off; check NTP on the appliance.",
            {"clock_offset_seconds": offset},
        )
    percent = hb.spool.percent
    if percent >= policy.spool_filling_percent or hb.spool.level != "ok":
        findings.add(
            State.SPOOL_FILLING,
            f"The spool is {percent:.0f} % full ({hb.spool.level}); {hb.unbatched_records} "
            f"record(s) and {hb.unsent_batches} batch(es) wait to be sent.",
            {
                "spool_percent": round(percent, 1),
                "spool_level": hb.spool.level,
                "unbatched_records": hb.unbatched_records,
                "unsent_batches": hb.unsent_batches,
                "disk_free_bytes": hb.disk_free_bytes,
            },
        )
    if version_key(hb.agent_version) < version_key(policy.minimum_agent_version):
        findings.add(
            State.VERSION_OUTDATED,
            f"The agent runs version {hb.agent_version}; {policy.minimum_agent_version} or "
            "newer is expected: upgrade the appliance's package.",
            {"agent_version": hb.agent_version, "minimum": policy.minimum_agent_version},
        )


def version_key(version: str) -> tuple[int, ...]:
    """``"1.10.2rc1"`` -> ``(1, 10, 2)``: the leading dotted numbers, compared numerically."""
    numbers: list[int] = []
    for part in version.strip().split("."):
        match = re.match(r"\d+", part)
        if match is None:
            break
        numbers.append(int(match.group()))
        if match.end() != len(part):
            break
    return tuple(numbers)


def _source_health(facts: SiteFacts, findings: tuple[Finding, ...]) -> tuple[SourceHealth, ...]:
    hb = facts.latest.heartbeat if facts.latest else None
    volumes = {v.source_id: v for v in facts.volume}
    by_source: dict[str, Finding] = {}
    for finding in findings:  # worst first: keep each source's worst
        if finding.source_id:
            by_source.setdefault(finding.source_id, finding)
    site = next((f for f in findings if not f.source_id and f.state.severity >= 60), None)
    ids = [s.source_id for s in hb.sources] if hb else []
    ids += sorted(set(volumes) - set(ids))
    out: list[SourceHealth] = []
    for source_id in ids:
        status = hb.source(source_id) if hb else None
        volume = volumes.get(source_id)
        own = by_source.get(source_id) or site  # an agent or transport problem covers all
        out.append(
            SourceHealth(
                source_id=source_id,
                kind=status.kind if status else "",
                state=own.state if own else State.OK,
                reason=own.reason if own else "polling normally",
                ok=status.ok if status else None,
                message=status.message if status else "",
                last_poll_at=status.at if status else None,
                last_ok_at=status.last_ok_at if status else None,
                last_record_at=status.last_record_at if status else None,
                records=status.records if status else 0,
                failures_in_a_row=status.failures_in_a_row if status else 0,
                reconnects=status.reconnects if status else 0,
                calls_today=volume.today if volume else None,
                usual_calls=volume.usual if volume else None,
            )
        )
    return tuple(out)


def _all_well(facts: SiteFacts, now: datetime) -> str:
    assert facts.latest is not None
    age = now - facts.latest.received_at
    count = len(facts.latest.heartbeat.sources)
    return f"All well: last heartbeat {_span(age)} ago, {count} source(s) polling."


def _when(value: datetime | None) -> str:
    return (
        "an unknown time" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    )


def _span(delta: timedelta) -> str:
    return _span_s(delta.total_seconds())


def _span_s(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def iter_states() -> Iterable[State]:
    """Every state, worst first (for legends, per-state counts and metrics)."""
    return sorted(State, key=lambda s: -s.severity)
