"""Rating in the store: configuration rows <-> engine inputs, results -> rows, the ingest hook.

Contract:

- ``load_rating_config(conn, tenant_id)`` reads the tenant's tariff versions, dial plans and
  route maps. Parsed objects are cached in the process by content (a version by its SHA-256,
  a dial plan or route map by its JSON), so a 50,000-prefix tariff is parsed once per worker,
  not once per batch, and the engines' memo caches stay warm; a change in the store is seen on
  the next load because the key is the content.
- Ingest rates each batch with ``rate_batch`` *before* it takes the write lock (rating and
  encoding the rows is most of its CPU time, so concurrent workers overlap it), then, in its
  transaction, ``write_batch_rating`` appends a ``call_costs`` or an ``unrated_calls`` row for
  each call it actually inserted: never both, never neither. ``rate_calls_for_ingest`` does both
  steps in the caller's transaction.
- ``import_tariff_plan`` merges a validated plan into the stored versions in one transaction:
  same-id versions are replaced, others kept, overlaps refused (``StoreError``), open-ended
  versions closed at the next version's start. Nothing is written if anything is wrong.
- Re-rating lives in ``rerate``; it uses ``write_results`` here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from datacenter.rating.bands import SINGLE, SINGLE_BAND, calendar_from_dict, calendar_to_dict
from datacenter.rating.carriers import CarrierRules, carrier_rules_from_dict, carrier_rules_to_dict
from datacenter.rating.engine import (
    ENGINE_VERSION,
    Explanation,
    RatedCall,
    RatingResult,
    Unrated,
    UnratedReason,
    rate_call,
)
from datacenter.rating.money import RoundingMode
from datacenter.rating.numbering import DialPlan, dial_plan_from_dict, dial_plan_to_dict
from datacenter.rating.tariffs import (
    BandRule,
    TariffPlan,
    TariffVersion,
    parse_rates_csv,
    rates_to_csv,
)
from datacenter.store.bulk import Row, append_rows, encoded_rows
from datacenter.store.tables.core import tenants
from datacenter.store.tables.partitioning import result_key
from datacenter.store.tables.rating import (
    TENANT_DEFAULT_SITE,
    call_costs,
    dial_plans,
    route_maps,
    tariff_versions,
    unrated_calls,
)
from shared.errors import StoreError
from shared.icdr import ICDR, format_time

CACHE_LIMIT = 64  # parsed versions / plans kept per worker process


# --- configuration ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RatingConfig:
    """Everything rating a tenant's calls needs, as of one read of the store."""

    tenant_id: int
    tariffs: Mapping[str, TariffPlan]
    dial_plans: Mapping[str, DialPlan]  # agent id (or '*') -> plan
    route_maps: Mapping[str, CarrierRules]
    fingerprint: str = field(default="", compare=False)
    timezone: str = field(default="UTC", compare=False)  # the tenant's: its rollups' local days

    def site(self, agent_id: str) -> tuple[DialPlan | None, CarrierRules]:
        plan = self.dial_plans.get(agent_id) or self.dial_plans.get(TENANT_DEFAULT_SITE)
        routes = self.route_maps.get(agent_id) or self.route_maps.get(TENANT_DEFAULT_SITE)
        return plan, routes if routes is not None else CarrierRules()

    def rate(self, icdr: ICDR) -> RatingResult:
        plan, routes = self.site(icdr.agent_id)
        if plan is None:
            detail = (
                f"agent {icdr.agent_id!r} has no dial plan: set one with "
                "`datacenter tariff set-site`"
            )
            return Unrated(
                icdr.record_id, UnratedReason.NO_DIAL_PLAN, detail,
                Explanation(icdr.direction, detail=detail),
            )  # fmt: skip
        return rate_call(icdr, dial_plan=plan, tariffs=self.tariffs, carriers=routes)


_versions: dict[tuple[str, ...], TariffVersion] = {}
_documents: dict[tuple[str, str], Any] = {}


def load_rating_config(conn: sa.Connection, tenant_id: int) -> RatingConfig:
    """The tenant's rating configuration (parsed objects cached by content)."""
    zone = conn.execute(
        sa.select(tenants.c.timezone).where(tenants.c.tenant_id == tenant_id)
    ).scalar_one_or_none()
    if zone is None:
        raise StoreError(f"no tenant with id {tenant_id}")
    settings_columns = [c for c in tariff_versions.c if c.name != "rates_csv"]
    by_carrier: dict[str, list[TariffVersion]] = {}
    keys: list[str] = []
    rows = conn.execute(
        sa.select(*settings_columns)
        .where(tariff_versions.c.tenant_id == tenant_id)
        .order_by(tariff_versions.c.carrier, tariff_versions.c.valid_from)
    ).all()
    for row in rows:
        key = _version_key(row)
        keys.append("|".join(key))
        version = _versions.get(key)
        if version is None:
            version = _load_version(conn, tenant_id, row)
            _remember(_versions, key, version)
        by_carrier.setdefault(row.carrier, []).append(version)
    plans = {carrier: TariffPlan(carrier, tuple(vs)) for carrier, vs in by_carrier.items()}
    sites = _documents_of(conn, dial_plans, "plan", tenant_id, keys, default_zone=zone)
    routes = _documents_of(conn, route_maps, "rules", tenant_id, keys)
    fingerprint = hashlib.sha256("\n".join(keys).encode()).hexdigest()
    return RatingConfig(tenant_id, plans, sites, routes, fingerprint, zone)


def _version_key(row: Any) -> tuple[str, ...]:
    valid_to = "" if row.valid_to is None else row.valid_to.isoformat()
    return (
        str(row.tenant_id), row.carrier, row.version, row.content_sha256,
        row.valid_from.isoformat(), valid_to, row.rounding, row.band_rule,
        str(row.decimals), str(row.max_band_spans), json.dumps(row.calendar, sort_keys=True),
    )  # fmt: skip


def _load_version(conn: sa.Connection, tenant_id: int, row: Any) -> TariffVersion:
    text = conn.execute(
        sa.select(tariff_versions.c.rates_csv).where(
            tariff_versions.c.tenant_id == tenant_id,
            tariff_versions.c.carrier == row.carrier,
            tariff_versions.c.version == row.version,
        )
    ).scalar_one()
    calendar = SINGLE if row.calendar is None else calendar_from_dict(row.calendar)
    bands = calendar.bands if row.calendar is not None else frozenset({SINGLE_BAND})
    destinations = parse_rates_csv(
        text, file=f"{row.carrier}/{row.version}", currency=row.currency, bands=bands
    )
    return TariffVersion(
        carrier=row.carrier, version=row.version, valid_from=row.valid_from,
        valid_to=row.valid_to, currency=row.currency, decimals=row.decimals,
        rounding=RoundingMode(row.rounding), destinations=destinations, calendar=calendar,
        band_rule=BandRule(row.band_rule), max_band_spans=row.max_band_spans,
    )  # fmt: skip


def _documents_of(
    conn: sa.Connection,
    table: sa.Table,
    column: str,
    tenant_id: int,
    keys: list[str],
    *,
    default_zone: str | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for agent_id, document in conn.execute(
        sa.select(table.c.agent_id, table.c[column]).where(table.c.tenant_id == tenant_id)
    ):
        text = json.dumps(document, sort_keys=True)
        keys.append(f"{table.name}|{agent_id}|{text}")
        cache_key = (table.name, text)
        parsed = _documents.get(cache_key)
        if parsed is None:
            if table is dial_plans:
                data = dict(document)
                # A site without its own zone takes the tenant's.
                data.setdefault("timezone", default_zone)
                parsed = dial_plan_from_dict(data)
            else:
                parsed = carrier_rules_from_dict(document)
            _remember(_documents, cache_key, parsed)
        out[agent_id] = parsed
    return out


def _remember(cache: dict[Any, Any], key: Any, value: Any) -> None:
    if len(cache) >= CACHE_LIMIT:
        cache.clear()
    cache[key] = value


# --- writing configuration ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ImportReport:
    carrier: str
    added: tuple[str, ...]
    replaced: tuple[str, ...]  # same id, different content: calls may need re-rating
    unchanged: tuple[str, ...]
    earliest_change: datetime | None  # where a re-rate should start


def import_tariff_plan(
    conn: sa.Connection, tenant_id: int, plan: TariffPlan, *, now: datetime
) -> ImportReport:
    """Merge ``plan`` into the tenant's stored versions (see module docstring)."""
    stored = {
        row.version: row
        for row in conn.execute(
            sa.select(
                tariff_versions.c.version, tariff_versions.c.valid_from,
                tariff_versions.c.valid_to, tariff_versions.c.content_sha256,
                tariff_versions.c.currency,
            ).where(
                tariff_versions.c.tenant_id == tenant_id,
                tariff_versions.c.carrier == plan.carrier,
            )
        )
    }  # fmt: skip
    rows = [_version_row(tenant_id, v, now) for v in plan.versions]
    bounds = {v: (r.valid_from, r.valid_to) for v, r in stored.items()}
    bounds.update({r["version"]: (r["valid_from"], r["valid_to"]) for r in rows})
    closed = _close_open_versions(plan.carrier, bounds)
    incoming = {v.version for v in plan.versions}
    currencies = {r.currency for r in stored.values() if r.version not in incoming}
    currencies |= {v.currency for v in plan.versions}
    if len(currencies) > 1:
        raise StoreError(
            f"carrier {plan.carrier!r} would mix currencies {', '.join(sorted(currencies))}: "
            "a carrier's versions must all be in one currency"
        )
    added, replaced, unchanged = [], [], []
    affected: list[datetime] = []  # starts of periods whose calls were rated differently
    for row in rows:
        held = stored.get(row["version"])
        row["valid_to"] = closed[row["version"]]
        if held is None:
            added.append(row["version"])
            if row["valid_from"] < now:  # back-dated: calls since then used the previous one
                affected.append(row["valid_from"])
        elif (held.content_sha256, held.valid_from, held.valid_to) == (
            row["content_sha256"], row["valid_from"], row["valid_to"],
        ):  # fmt: skip
            unchanged.append(row["version"])
            continue
        else:
            replaced.append(row["version"])
            affected.append(min(row["valid_from"], held.valid_from))
        _upsert(conn, tariff_versions, [row], ("tenant_id", "carrier", "version"))
    for version, end in closed.items():  # stored versions the merge closed
        if version in stored and version not in incoming and end != stored[version].valid_to:
            conn.execute(
                tariff_versions.update()
                .where(
                    tariff_versions.c.tenant_id == tenant_id,
                    tariff_versions.c.carrier == plan.carrier,
                    tariff_versions.c.version == version,
                )
                .values(valid_to=end)
            )
    earliest = min(affected) if affected else None
    return ImportReport(plan.carrier, tuple(added), tuple(replaced), tuple(unchanged), earliest)


def _version_row(tenant_id: int, version: TariffVersion, now: datetime) -> dict[str, Any]:
    text = rates_to_csv(version)
    calendar = None if version.calendar is SINGLE else calendar_to_dict(version.calendar)
    return {
        "tenant_id": tenant_id, "carrier": version.carrier, "version": version.version,
        "valid_from": version.valid_from, "valid_to": version.valid_to,
        "currency": version.currency, "decimals": version.decimals,
        "rounding": version.rounding.value, "band_rule": version.band_rule.value,
        "max_band_spans": version.max_band_spans, "calendar": calendar, "rates_csv": text,
        "content_sha256": hashlib.sha256(text.encode()).hexdigest(),
        "destinations": len(version.destinations), "imported_at": now,
    }  # fmt: skip


def _close_open_versions(
    carrier: str, bounds: Mapping[str, tuple[datetime, datetime | None]]
) -> dict[str, datetime | None]:
    """Sorted by start: an open version ends where the next starts; overlaps are refused."""
    ordered = sorted(bounds.items(), key=lambda item: item[1][0])
    closed: dict[str, datetime | None] = {}
    for position, (version, (start, end)) in enumerate(ordered):
        following = ordered[position + 1] if position + 1 < len(ordered) else None
        if following is not None:
            next_id, (next_start, _) = following
            if next_start == start:
                raise StoreError(
                    f"carrier {carrier!r}: versions {version!r} and {next_id!r} start together"
                )
            if end is None or end > next_start:
                if end is not None:
                    raise StoreError(
                        f"carrier {carrier!r}: version {version!r} (to {format_time(end)}) "
                        f"overlaps {next_id!r} (from {format_time(next_start)})"
                    )
                end = next_start
        closed[version] = end
    return closed


def set_site(
    conn: sa.Connection,
    tenant_id: int,
    agent_id: str,
    *,
    dial_plan: DialPlan | None,
    carriers: CarrierRules | None,
    now: datetime,
) -> None:
    """Store a site's dial plan and/or route map (agent ``*``: the tenant default)."""
    if dial_plan is not None:
        _upsert(conn, dial_plans, [{
            "tenant_id": tenant_id, "agent_id": agent_id,
            "plan": dial_plan_to_dict(dial_plan), "updated_at": now,
        }], ("tenant_id", "agent_id"))  # fmt: skip
    if carriers is not None:
        _upsert(conn, route_maps, [{
            "tenant_id": tenant_id, "agent_id": agent_id,
            "rules": carrier_rules_to_dict(carriers), "updated_at": now,
        }], ("tenant_id", "agent_id"))  # fmt: skip


# --- results --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchRating:
    """A batch's rating, worked out before ingest takes the write lock: rows ready to append."""

    results: dict[str, RatingResult]  # by record id
    cost_rows: dict[str, Row]
    queue_rows: dict[str, Row]
    starts: dict[str, datetime]  # each call's start (its cost row's ``start_utc``), by record id


def rate_batch(
    conn: sa.Connection, tenant_id: int, icdrs: Sequence[ICDR], *, now: datetime
) -> BatchRating:
    """Rate a batch's calls (record ids unique) and encode their result rows; writes nothing."""
    config = load_rating_config(conn, tenant_id)
    results = {icdr.record_id: config.rate(icdr) for icdr in icdrs}
    starts = {icdr.record_id: icdr.start for icdr in icdrs}
    costs = {
        rid: cost_row(tenant_id, r, starts[rid], now)
        for rid, r in results.items()
        if isinstance(r, RatedCall)
    }
    queued = {
        rid: unrated_row(tenant_id, r, now, starts[rid])
        for rid, r in results.items()
        if isinstance(r, Unrated)
    }
    return BatchRating(
        results,
        dict(zip(costs, encoded_rows(conn, call_costs, costs.values()), strict=True)),
        dict(zip(queued, encoded_rows(conn, unrated_calls, queued.values()), strict=True)),
        starts,
    )


def write_batch_rating(conn: sa.Connection, rating: BatchRating, stored: Collection[str]) -> None:
    """Append the cost or queue row of each call ingest has just stored (``stored``: their record
    ids; the batch's other calls were duplicates). The calls are new, so neither kind of row can
    exist for them: no delete or upsert (``write_results`` is for re-rating)."""
    append_rows(conn, call_costs, [row for rid, row in rating.cost_rows.items() if rid in stored])
    append_rows(
        conn, unrated_calls, [row for rid, row in rating.queue_rows.items() if rid in stored]
    )


def rate_calls_for_ingest(
    conn: sa.Connection, tenant_id: int, icdrs: Sequence[ICDR]
) -> list[RatingResult]:
    """Rate freshly stored calls and write their rows, both in the caller's transaction."""
    rating = rate_batch(conn, tenant_id, icdrs, now=datetime.now(UTC))
    write_batch_rating(conn, rating, rating.results.keys())
    return list(rating.results.values())


def cost_row(
    tenant_id: int, result: RatedCall, start_utc: datetime, now: datetime
) -> dict[str, Any]:
    """The ``call_costs`` row of a rated call (``start_utc``: the call's ``calls.start_utc``)."""
    return {
        "tenant_id": tenant_id, "record_id": result.record_id, "cost_minor": result.cost,
        "currency": result.currency, "decimals": result.decimals,
        "number_class": result.number_class.value, "e164": result.e164,
        "carrier": result.carrier, "destination": result.destination[:200],
        "prefix": result.prefix, "tariff_version": result.tariff_version,
        "billed_seconds": result.billed_seconds, "bands": list(result.bands),
        "zero_reason": result.zero_reason or None,
        "explanation": result.explanation.to_dict(),
        "engine_version": ENGINE_VERSION, "rated_at": now, "start_utc": start_utc,
    }  # fmt: skip


def unrated_row(tenant_id: int, result: Unrated, now: datetime, start: datetime) -> dict[str, Any]:
    """An ``unrated_calls`` row; ``start``: the call's own start (the partition key)."""
    return {
        "tenant_id": tenant_id, "record_id": result.record_id, "reason": result.reason.value,
        "detail": result.detail, "explanation": result.explanation.to_dict(),
        "first_attempt_at": now, "last_attempt_at": now, "attempts": 1, "start_utc": start,
    }  # fmt: skip


def write_results(
    conn: sa.Connection,
    tenant_id: int,
    results: Iterable[RatingResult],
    *,
    starts: Mapping[str, datetime],
    now: datetime,
) -> None:
    """Insert or replace each call's cost row or queue row (removing the other kind).

    ``starts``: each call's ``calls.start_utc`` by record id (a result row carries it; on
    PostgreSQL it is part of the key).
    """
    rated = [r for r in results if isinstance(r, RatedCall)]
    queued = [r for r in results if isinstance(r, Unrated)]
    key = result_key(conn.dialect.name)
    if rated:
        _delete(conn, unrated_calls, tenant_id, [r.record_id for r in rated])
        _upsert(conn, call_costs,
                [cost_row(tenant_id, r, starts[r.record_id], now) for r in rated],
                key)  # fmt: skip
    if queued:
        _delete(conn, call_costs, tenant_id, [r.record_id for r in queued])
        _upsert(conn, unrated_calls, [unrated_row(tenant_id, r, now, starts[r.record_id])
                                      for r in queued], key, keep=("first_attempt_at",),
                increment="attempts")  # fmt: skip


def _delete(conn: sa.Connection, table: sa.Table, tenant_id: int, ids: list[str]) -> None:
    for start in range(0, len(ids), 500):
        conn.execute(
            table.delete().where(
                table.c.tenant_id == tenant_id, table.c.record_id.in_(ids[start : start + 500])
            )
        )


def _upsert(
    conn: sa.Connection,
    table: sa.Table,
    rows: list[dict[str, Any]],
    keys: tuple[str, ...],
    *,
    keep: tuple[str, ...] = (),
    increment: str = "",
) -> None:
    """Insert rows, or update the existing ones with the same key (both dialects)."""
    if not rows:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    insert = dialect.insert(table)
    updates: dict[str, Any] = {
        name: insert.excluded[name] for name in rows[0] if name not in keys and name not in keep
    }
    if increment:
        updates[increment] = table.c[increment] + 1
    conn.execute(insert.on_conflict_do_update(index_elements=list(keys), set_=updates), rows)
