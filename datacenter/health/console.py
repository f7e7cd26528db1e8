"""What the technicians' console shows: the site grid, and one site's timeline and volume.

Contract:

- ``GridQuery.from_args`` reads the grid's filters and sort from a query string; a value it
  does not know is dropped with a message in ``problems`` (shown on the page), never guessed.
- ``grid_rows`` filters and sorts ``SiteHealth`` rows (from ``datacenter.health.model``) with their
  open alarms; it never widens the set it is given, so the caller's tenant restriction holds.
- ``site_timeline`` merges a site's heartbeats (source outcome changes, restarts, uplink
  failures), its landed batch files and its alarm events into one list, newest first.
- ``hourly_volume`` counts the site's calls per hour through ``TenantScope`` (the only way to
  read calls), with empty hours filled in.
- ``heartbeat_history`` reads an agent's stored heartbeats (``StoredHeartbeat``) for the timeline.
Everything except the three store readers is pure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from datacenter.accounts.tenants import Tenant
from datacenter.health.alarms import Alarm, HistoryEntry
from datacenter.health.heartbeats import from_document
from datacenter.health.model import SiteHealth, State, iter_states
from datacenter.store.scoped import LandedFile, TenantScope
from datacenter.store.tables.health import agent_heartbeats
from shared.heartbeat import Heartbeat

PROBLEMS = "problems"  # the state filter meaning "anything but ok"
SORTS = ("state", "tenant", "site", "last_poll", "last_record", "last_upload", "backlog")
DEFAULT_SORT = "state"
MAX_QUERY_TEXT = 64
TIMELINE_LIMIT = 300
VOLUME_HOURS = 24


@dataclass(frozen=True, slots=True)
class GridQuery:
    state: str = ""  # "", PROBLEMS, or a State value
    tenant: str = ""  # a tenant slug
    text: str = ""  # part of the site's id or name, or of the reason
    sort: str = DEFAULT_SORT
    descending: bool = False
    problems: tuple[str, ...] = ()

    @classmethod
    def from_args(cls, args: Mapping[str, str], *, tenant_slugs: Iterable[str]) -> GridQuery:
        problems = []
        state = args.get("state", "").strip()
        if state and state != PROBLEMS and state not in {s.value for s in State}:
            problems.append(f"There is no state {state!r}; showing every state.")
            state = ""
        tenant = args.get("tenant", "").strip()
        if tenant and tenant not in set(tenant_slugs):
            problems.append(f"You do not look after a tenant {tenant!r}; showing all yours.")
            tenant = ""
        sort = args.get("sort", DEFAULT_SORT).strip() or DEFAULT_SORT
        if sort not in SORTS:
            problems.append(f"Cannot sort by {sort!r}; sorted by state.")
            sort = DEFAULT_SORT
        text = args.get("q", "").strip()[:MAX_QUERY_TEXT]
        return cls(state, tenant, text, sort, args.get("dir") == "desc", tuple(problems))

    @property
    def filtered(self) -> bool:
        return bool(self.state or self.tenant or self.text)

    def args(self, **changes: str | None) -> dict[str, str]:
        """Query-string arguments for a link from this view (``None`` drops one)."""
        values: dict[str, str | None] = {
            "state": self.state, "tenant": self.tenant, "q": self.text,
            "sort": self.sort if self.sort != DEFAULT_SORT else "",
            "dir": "desc" if self.descending else "",
        }  # fmt: skip
        values.update(changes)
        return {k: v for k, v in values.items() if v}

    def sort_args(self, column: str) -> dict[str, str]:
        """Link arguments for a column header: sort by it, or flip the direction if it is on."""
        if column == self.sort:
            return self.args(dir=None if self.descending else "desc")
        return self.args(sort=column if column != DEFAULT_SORT else None, dir=None)


@dataclass(frozen=True, slots=True)
class GridRow:
    site: SiteHealth
    tenant: Tenant
    alarm: Alarm | None  # the open alarm of the site's state, if any

    @property
    def backlog(self) -> int | None:
        """Records waiting on the appliance: unbatched records (batches shown beside)."""
        return self.site.unbatched_records

    @property
    def acknowledged(self) -> bool:
        return self.alarm is not None and self.alarm.acknowledged_at is not None


def grid_rows(
    sites: Iterable[SiteHealth],
    tenants: Mapping[int, Tenant],
    open_alarms: Iterable[Alarm],
    query: GridQuery,
) -> list[GridRow]:
    """The rows ``query`` selects, in its order; sites of tenants not in ``tenants`` are dropped."""
    alarm_of = {(a.tenant_id, a.agent_id, a.state): a for a in open_alarms}
    rows = []
    needle = query.text.lower()
    for site in sites:
        tenant = tenants.get(site.tenant_id)
        if tenant is None:
            continue
        if query.state == PROBLEMS and site.state is State.OK:
            continue
        if query.state not in ("", PROBLEMS) and site.state.value != query.state:
            continue
        if query.tenant and tenant.slug != query.tenant:
            continue
        haystack = f"{site.agent_id} {site.agent_name} {site.reason} {tenant.name}".lower()
        if needle and needle not in haystack:
            continue
        alarm = alarm_of.get((site.tenant_id, site.agent_id, site.state.value))
        rows.append(GridRow(site, tenant, alarm))
    return sorted(rows, key=_sort_key(query.sort), reverse=query.descending)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _sort_key(sort: str) -> Callable[[GridRow], tuple[Any, ...]]:
    """Ascending keys; 'never' sorts first for times (the oldest), so trouble rises."""

    def key(row: GridRow) -> tuple[Any, ...]:
        site = row.site
        name = (row.tenant.name.lower(), site.agent_id)
        match sort:
            case "tenant":
                return name
            case "site":
                return (site.agent_id, row.tenant.name.lower())
            case "last_poll":
                return (site.last_poll_at or _EPOCH, *name)
            case "last_record":
                return (site.last_record_at or _EPOCH, *name)
            case "last_upload":
                return (site.last_upload_at or _EPOCH, *name)
            case "backlog":
                # largest first; "unknown" (no heartbeat) after a known empty backlog
                backlog = site.unbatched_records
                return (backlog is None, -(backlog or 0), *name)
        # state: worst first, acknowledged ones after the ones nobody has taken on
        return (-site.state.severity, row.acknowledged, *name)

    return key


def state_counts(sites: Iterable[SiteHealth]) -> list[tuple[State, int]]:
    """Sites per state, worst first, every state listed (for the summary bar)."""
    counts = dict.fromkeys(iter_states(), 0)
    for site in sites:
        counts[site.state] += 1
    return list(counts.items())


# --- one site -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredHeartbeat:
    """A heartbeat as stored: the document, when it landed and how late."""

    heartbeat: Heartbeat
    received_at: datetime
    delay_seconds: float


def heartbeat_history(
    conn: sa.Connection,
    *,
    tenant_id: int,
    agent_id: str,
    since: datetime,
    until: datetime | None = None,
    limit: int = 1000,
) -> list[StoredHeartbeat]:
    """An agent's heartbeats written in [since, until), oldest first (at most ``limit``)."""
    t = agent_heartbeats
    query = sa.select(t.c.received_at, t.c.delay_seconds, t.c.document).where(
        t.c.tenant_id == tenant_id, t.c.agent_id == agent_id, t.c.sent_at >= since
    )
    if until is not None:
        query = query.where(t.c.sent_at < until)
    rows = conn.execute(query.order_by(t.c.sent_at.desc()).limit(limit)).all()
    return [
        StoredHeartbeat(from_document(r.document), r.received_at, r.delay_seconds)
        for r in reversed(rows)
    ]


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    at: datetime
    kind: str  # poll-error, poll-ok, restart, uplink, upload, quarantine, alarm
    title: str
    detail: str = ""
    severity: str = "info"  # info, good, warn, bad (the marker's colour)


def site_timeline(
    heartbeats: Sequence[StoredHeartbeat],
    files: Iterable[LandedFile],
    events: Iterable[HistoryEntry],
    *,
    limit: int = TIMELINE_LIMIT,
) -> list[TimelineEntry]:
    """Changes worth a line, newest first: not one line per heartbeat."""
    entries = _heartbeat_entries(heartbeats)
    for f in files:
        if f.status == "quarantined":
            entries.append(
                TimelineEntry(
                    f.claimed_at,
                    "quarantine",
                    f"Batch {f.sequence} quarantined",
                    f.reason or "",
                    "bad",
                )
            )
        else:
            detail = f"{f.inserted or 0} new call(s), {f.duplicates or 0} duplicate(s)"
            entries.append(
                TimelineEntry(
                    f.claimed_at,
                    "upload",
                    f"Batch {f.sequence} {f.status}",
                    detail,
                    "good" if f.status == "stored" else "info",
                )
            )
    for e in events:
        label = e.alarm.state.replace("_", " ")
        severity = "good" if e.kind == "cleared" else "bad" if e.kind == "raised" else "info"
        who = "" if e.actor == "scheduler" else f" by {e.actor}"
        entries.append(
            TimelineEntry(e.at, "alarm", f"Alarm {label} {e.kind}{who}", e.note, severity)
        )
    entries.sort(key=lambda entry: entry.at, reverse=True)
    return entries[:limit]


def _heartbeat_entries(heartbeats: Sequence[StoredHeartbeat]) -> list[TimelineEntry]:
    entries: list[TimelineEntry] = []
    outcome: dict[str, tuple[bool, str]] = {}
    started: datetime | None = None
    failures = 0
    for stored in heartbeats:  # oldest first
        hb = stored.heartbeat
        if started is not None and hb.started_at != started:
            entries.append(
                TimelineEntry(
                    hb.started_at,
                    "restart",
                    "Agent restarted",
                    f"version {hb.agent_version}",
                    "warn",
                )
            )
        started = hb.started_at
        if hb.uplink.failures_in_a_row > failures:
            entries.append(
                TimelineEntry(
                    stored.received_at,
                    "uplink",
                    f"Uplink failed {hb.uplink.failures_in_a_row} time(s) in a row",
                    hb.uplink.last_error,
                    "bad",
                )
            )
        failures = hb.uplink.failures_in_a_row
        for source in hb.sources:
            now = (source.ok, source.message)
            before = outcome.get(source.source_id)
            outcome[source.source_id] = now
            if before == now or (before is None and source.ok):
                continue
            at = source.at or stored.received_at
            if source.ok:
                entries.append(
                    TimelineEntry(
                        at,
                        "poll-ok",
                        f"{source.source_id} polling again",
                        f"{source.records} record(s) since start",
                        "good",
                    )
                )
            else:
                entries.append(
                    TimelineEntry(
                        at, "poll-error", f"{source.source_id} failing", source.message, "bad"
                    )
                )
    return entries


@dataclass(frozen=True, slots=True)
class HourBar:
    start: datetime  # UTC
    calls: int


@dataclass(frozen=True, slots=True)
class Volume:
    bars: tuple[HourBar, ...] = field(default_factory=tuple)

    @property
    def total(self) -> int:
        return sum(b.calls for b in self.bars)

    @property
    def peak(self) -> int:
        return max((b.calls for b in self.bars), default=0)


def hourly_volume(
    conn: sa.Connection, tenant_id: int, agent_id: str, *, now: datetime, hours: int = VOLUME_HOURS
) -> Volume:
    """Calls per hour over the last ``hours`` whole hours up to ``now``'s (empty hours at 0)."""
    end = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    start = end - timedelta(hours=hours)
    counts = dict(TenantScope(conn, tenant_id).hourly_counts(start, end, agent_id=agent_id))
    return Volume(
        tuple(
            HourBar(start + timedelta(hours=i), counts.get(start + timedelta(hours=i), 0))
            for i in range(hours)
        )
    )
