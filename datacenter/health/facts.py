"""The facts the health model judges, read from the store.

- ``collect_site_facts(conn, now=..., policy=...)`` reads everything ``assess`` needs from the
  store, for every enrolled agent (or the tenants given). ``site_health(conn, ...)`` does both.
  Nothing here writes.
- Last upload and last sequence are ingest's (``agents.last_seen_at``, ``last_sequence``);
  missing batch numbers come from ``landed_files`` (the last ``GAP_LOOKBACK`` of them).
- Call volume for ``silent`` is counted per source through ``TenantScope`` over the site's
  business hours so far today and the same local window on each of the previous weeks.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from datacenter.health.heartbeats import from_document
from datacenter.health.model import (
    HealthPolicy,
    HeartbeatFacts,
    SequenceGap,
    SiteFacts,
    SiteHealth,
    UplinkTrouble,
    VolumeFacts,
    assess,
    business_window,
)
from datacenter.store.scoped import TenantScope
from datacenter.store.tables.core import agents, landed_files, tenants
from datacenter.store.tables.health import agent_heartbeats
from shared.errors import ValidationError

log = logging.getLogger(__name__)

GAP_LOOKBACK = timedelta(days=7)  # missing batch numbers are looked for among recent landings
LATE_FLOOR_SECONDS = 60.0  # heartbeats this late or less are not worth a row in the evidence


def site_health(
    conn: sa.Connection,
    *,
    now: datetime | None = None,
    policy: HealthPolicy | None = None,
    tenant_ids: Collection[int] | None = None,
) -> list[SiteHealth]:
    """Every enrolled agent's health (of ``tenant_ids`` if given), worst first."""
    when = now or datetime.now(UTC)
    rules = policy or HealthPolicy()
    sites = [
        assess(f, when, rules)
        for f in collect_site_facts(conn, now=when, policy=rules, tenant_ids=tenant_ids)
    ]
    return sorted(sites, key=lambda s: (-s.state.severity, s.tenant_slug, s.agent_id))


def collect_site_facts(
    conn: sa.Connection,
    *,
    now: datetime,
    policy: HealthPolicy,
    tenant_ids: Collection[int] | None = None,
    agent_id: str | None = None,
) -> list[SiteFacts]:
    """The facts ``assess`` needs, per enrolled agent, read in a handful of queries per tenant."""
    query = sa.select(
        agents.c.tenant_id, agents.c.agent_id, agents.c.name, agents.c.enrolled_at,
        agents.c.last_seen_at, agents.c.last_sequence, tenants.c.slug, tenants.c.timezone,
    ).join(tenants, tenants.c.tenant_id == agents.c.tenant_id)  # fmt: skip
    if tenant_ids is not None:
        query = query.where(agents.c.tenant_id.in_(sorted(tenant_ids)))
    if agent_id is not None:
        query = query.where(agents.c.agent_id == agent_id)
    rows = conn.execute(query.order_by(agents.c.tenant_id, agents.c.agent_id)).all()
    by_tenant: dict[int, list[Any]] = defaultdict(list)
    for row in rows:
        by_tenant[row.tenant_id].append(row)
    facts: list[SiteFacts] = []
    for tenant_id, tenant_rows in by_tenant.items():
        wanted = [r.agent_id for r in tenant_rows]
        latest = _latest_heartbeats(conn, tenant_id, wanted)
        trouble = _uplink_trouble(conn, tenant_id, wanted, since=now - policy.transport_hold)
        gaps = _sequence_gaps(conn, tenant_id, wanted, since=now - GAP_LOOKBACK)
        zone = ZoneInfo(tenant_rows[0].timezone)
        window = business_window(now, zone, policy)
        scope = TenantScope(conn, tenant_id) if window else None
        for row in tenant_rows:
            hb = latest.get(row.agent_id)
            volume = (
                _volume(scope, row.agent_id, window, zone, policy, hb) if scope and window else ()
            )
            facts.append(
                SiteFacts(
                    tenant_id=tenant_id,
                    tenant_slug=row.slug,
                    timezone=row.timezone,
                    agent_id=row.agent_id,
                    agent_name=row.name,
                    enrolled_at=row.enrolled_at,
                    latest=hb,
                    trouble=trouble.get(row.agent_id, UplinkTrouble()),
                    last_upload_at=row.last_seen_at,
                    last_sequence=row.last_sequence,
                    gaps=tuple(gaps.get(row.agent_id, ())),
                    volume=volume,
                )
            )
    return facts


def _latest_heartbeats(
    conn: sa.Connection, tenant_id: int, agent_ids: list[str]
) -> dict[str, HeartbeatFacts]:
    t = agent_heartbeats
    newest = (
        sa.select(t.c.agent_id, sa.func.max(t.c.sent_at).label("sent_at"))
        .where(t.c.tenant_id == tenant_id, t.c.agent_id.in_(agent_ids))
        .group_by(t.c.agent_id)
        .subquery()
    )
    query = sa.select(t.c.agent_id, t.c.received_at, t.c.delay_seconds, t.c.document).join(
        newest,
        sa.and_(
            t.c.tenant_id == tenant_id,
            t.c.agent_id == newest.c.agent_id,
            t.c.sent_at == newest.c.sent_at,
        ),
    )
    out: dict[str, HeartbeatFacts] = {}
    for row in conn.execute(query):
        try:
            heartbeat = from_document(row.document)
        except ValidationError as exc:  # pragma: no cover - stored only after validation
            log.error("stored heartbeat of %s no longer parses: %s", row.agent_id, exc)
            continue
        out[row.agent_id] = HeartbeatFacts(heartbeat, row.received_at, row.delay_seconds)
    return out


def _uplink_trouble(
    conn: sa.Connection, tenant_id: int, agent_ids: list[str], *, since: datetime
) -> dict[str, UplinkTrouble]:
    """Per agent, the worst failures and delay among heartbeats landed since ``since``."""
    t = agent_heartbeats
    query = sa.select(
        t.c.agent_id, t.c.sent_at, t.c.uplink_failures, t.c.delay_seconds, t.c.document
    ).where(
        t.c.tenant_id == tenant_id,
        t.c.agent_id.in_(agent_ids),
        t.c.received_at >= since,
        sa.or_(t.c.uplink_failures > 0, t.c.delay_seconds > LATE_FLOOR_SECONDS),
    )
    out: dict[str, UplinkTrouble] = {}
    for row in conn.execute(query.order_by(t.c.sent_at)):
        old = out.get(row.agent_id, UplinkTrouble())
        new = old
        if row.uplink_failures >= old.max_failures and row.uplink_failures > 0:
            uplink = row.document.get("uplink", {}) if isinstance(row.document, dict) else {}
            new = UplinkTrouble(
                max_failures=row.uplink_failures,
                failures_reported_at=row.sent_at,
                last_error=str(uplink.get("last_error", "")),
                max_delay_seconds=new.max_delay_seconds,
                late_sent_at=new.late_sent_at,
            )
        if row.delay_seconds > new.max_delay_seconds:
            new = UplinkTrouble(
                max_failures=new.max_failures,
                failures_reported_at=new.failures_reported_at,
                last_error=new.last_error,
                max_delay_seconds=row.delay_seconds,
                late_sent_at=row.sent_at,
            )
        out[row.agent_id] = new
    return out


def _sequence_gaps(
    conn: sa.Connection, tenant_id: int, agent_ids: list[str], *, since: datetime
) -> dict[str, list[SequenceGap]]:
    """Batch numbers missing between landed ones (LAG over the recent landings of each agent)."""
    lf = landed_files
    previous = sa.func.lag(lf.c.sequence).over(partition_by=lf.c.agent_id, order_by=lf.c.sequence)
    ranked = (
        sa.select(lf.c.agent_id, lf.c.sequence, lf.c.claimed_at, previous.label("previous"))
        .where(
            lf.c.tenant_id == tenant_id,
            lf.c.agent_id.in_(agent_ids),
            lf.c.claimed_at >= since,
        )
        .subquery()
    )
    query = (
        sa.select(ranked)
        .where(ranked.c.sequence - ranked.c.previous > 1)
        .order_by(ranked.c.agent_id, ranked.c.sequence)
    )
    out: dict[str, list[SequenceGap]] = defaultdict(list)
    for row in conn.execute(query):
        out[row.agent_id].append(
            SequenceGap(first=row.previous + 1, last=row.sequence - 1, noticed_at=row.claimed_at)
        )
    return out


def _volume(
    scope: TenantScope,
    agent_id: str,
    window: tuple[datetime, datetime],
    zone: ZoneInfo,
    policy: HealthPolicy,
    latest: HeartbeatFacts | None,
) -> tuple[VolumeFacts, ...]:
    """Calls per source in today's window and the same local window of previous weeks."""
    start_local, end_local = (w.astimezone(zone) for w in window)
    counts: list[dict[str, int]] = []
    for weeks in range(policy.silent_weeks + 1):
        # Shift the local wall-clock times, then convert: a DST change keeps "09:00-15:00".
        start = (start_local.replace(tzinfo=None) - timedelta(weeks=weeks)).replace(tzinfo=zone)
        end = (end_local.replace(tzinfo=None) - timedelta(weeks=weeks)).replace(tzinfo=zone)
        counts.append(
            scope.count_calls_by_source(
                start.astimezone(UTC), end.astimezone(UTC), agent_id=agent_id
            )
        )
    sources = set().union(*counts)
    if latest is not None:
        sources |= {s.source_id for s in latest.heartbeat.sources}
    return tuple(
        VolumeFacts(
            source_id=source_id,
            window_start=window[0],
            window_end=window[1],
            today=counts[0].get(source_id, 0),
            previous=tuple(c.get(source_id, 0) for c in counts[1:]),
        )
        for source_id in sorted(sources)
    )
