"""Re-rating stored calls with the store's current configuration (`datacenter rerate` runs it).

Contract:

- ``rerate(engine, tenant_id, since=..., until=...)`` rates again every call of the tenant that
  started in ``[since, until)``, one tenant-local day per transaction (a day is the unit of
  work, so a long run can be interrupted and resumed, and store jobs run it by day:
  ``rerate_day_in`` in a job's transaction, ``datacenter.rating.rerate_jobs``).
- Idempotent: a call whose new result equals its stored one (cost, currency, version,
  destination, bands, explanation...) is not written. A call whose result changed gets its
  new row and a ``call_cost_history`` row with old -> new cost; so a second run with the same
  configuration changes nothing and writes no history. Queued calls only have their attempt
  count and time updated.
- The report rollups (``datacenter.store.rollups``) move each changed call's contribution from
  its old cost to its new one in the same transaction as the new cost row.
- A day whose transaction fails because the store went away (``OperationalError``: a restart,
  a failover to the replica) is rolled back and tried again on a new connection, for up to
  ``STORE_OUTAGE_SECONDS``: with a multi-host URL (``target_session_attrs=read-write``) that
  connection is to the new primary, so a re-rate goes on through a failover by itself. Days
  already committed are not redone; the day's figures count once, when it commits.
- ``retry_unrated(engine, tenant_id)`` does the same for every call on the unrated queue, of any
  date: what runs after a configuration change (tariff import, dial plan) so fixed calls leave
  the queue on their own.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from functools import partial
from time import monotonic, sleep
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from datacenter.rating.engine import RatedCall, RatingResult, Unrated
from datacenter.rating.money import format_minor
from datacenter.rating.store import (
    RatingConfig,
    cost_row,
    load_rating_config,
    write_results,
)
from datacenter.store.call_rows import icdr_from_row
from datacenter.store.engine import write_transaction
from datacenter.store.rollups import Deltas, cost_of_result, cost_of_row, facts_of_row
from datacenter.store.tables.core import calls
from datacenter.store.tables.rating import call_cost_history, call_costs, unrated_calls
from shared.backoff import Backoff, Retries

log = logging.getLogger(__name__)

CHUNK = 1_000  # calls read, rated and written at a time within a day's transaction
STORE_OUTAGE_SECONDS = 120.0  # a day is retried this long while the store is unreachable
OUTAGE_BACKOFF = Backoff(min_seconds=0.5, max_seconds=5.0)
_COMPARED = (
    "cost_minor", "currency", "decimals", "number_class", "e164", "carrier", "destination",
    "prefix", "tariff_version", "billed_seconds", "bands", "zero_reason", "explanation",
)  # fmt: skip

Progress = Callable[[int], None]
_COUNTS = ("examined", "unchanged", "changed", "first_rated", "now_unrated", "queued")


@dataclass
class RerateReport:
    """What a re-rate did; totals are minor units per (currency, decimals) of changed calls."""

    examined: int = 0
    unchanged: int = 0
    changed: int = 0
    first_rated: int = 0  # calls that had no result at all (stored before rating was set up)
    now_unrated: int = 0
    queued: int = 0  # calls still (or newly) on the unrated queue
    old_totals: Counter[tuple[str, int]] = field(default_factory=Counter)
    new_totals: Counter[tuple[str, int]] = field(default_factory=Counter)

    def add(self, other: RerateReport) -> None:
        """Count another (committed) day's figures in."""
        for name in _COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.old_totals.update(other.old_totals)
        self.new_totals.update(other.new_totals)

    def to_json(self) -> dict[str, Any]:
        """A JSON document of the figures (a store job's ``result``)."""
        counts = {name: getattr(self, name) for name in _COUNTS}
        money = {
            name: [[code, places, amount] for (code, places), amount in sorted(totals.items())]
            for name, totals in (("old_totals", self.old_totals), ("new_totals", self.new_totals))
        }
        return counts | money

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> RerateReport:
        report = cls()
        for name in _COUNTS:
            setattr(report, name, int(document[name]))
        for name in ("old_totals", "new_totals"):
            totals: Counter[tuple[str, int]] = getattr(report, name)
            for code, places, amount in document[name]:
                totals[(str(code), int(places))] += int(amount)
        return report

    def summary(self) -> str:
        parts = [
            f"{self.examined} call(s) examined", f"{self.changed} changed",
            f"{self.unchanged} unchanged", f"{self.first_rated} rated for the first time",
            f"{self.queued} on the unrated queue",
        ]  # fmt: skip
        money = [
            f"{code}: {format_minor(self.old_totals[(code, places)], places)} -> "
            f"{format_minor(self.new_totals[(code, places)], places)}"
            for code, places in sorted(set(self.old_totals) | set(self.new_totals))
        ]
        return ", ".join(parts) + (f"; changed calls {'; '.join(money)}" if money else "")


def count_calls(engine: sa.Engine, tenant_id: int, since: datetime, until: datetime) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count())
                .select_from(calls)
                .where(*_window(tenant_id, since, until))
            ).scalar_one()
        )


def rerate(
    engine: sa.Engine,
    tenant_id: int,
    *,
    since: datetime,
    until: datetime,
    zone: ZoneInfo,
    progress: Progress | None = None,
    now: datetime | None = None,
) -> RerateReport:
    """Re-rate the tenant's calls that started in ``[since, until)``, day by local day."""
    report = RerateReport()
    with engine.connect() as conn:
        config = load_rating_config(conn, tenant_id)
    stamp = now or datetime.now(UTC)
    for day_start, day_end in local_days(since, until, zone):
        day = rerate_day(engine, config, tenant_id, (day_start, day_end), stamp)
        report.add(day)
        if progress is not None:
            progress(day.examined)
    return report


def rerate_day(
    engine: sa.Engine,
    config: RatingConfig,
    tenant_id: int,
    day: tuple[datetime, datetime],
    stamp: datetime,
) -> RerateReport:
    """One (tenant, local day) job: its own transaction, tried again through a store outage.

    Days share no rows (calls, costs, history, rollup rows are all per local day), so jobs of
    different days may run at once (``datacenter.rating.rerate_jobs``).
    """
    query = _select(tenant_id).where(*_window(tenant_id, *day))
    return _through_outages(partial(_rerate_day, engine, config, query, stamp))


def _rerate_day(
    engine: sa.Engine, config: RatingConfig, query: sa.Select[Any], stamp: datetime
) -> RerateReport:
    with write_transaction(engine) as conn:
        return _rerate_query(conn, config, query, stamp)


def rerate_day_in(
    conn: sa.Connection,
    config: RatingConfig,
    day: tuple[datetime, datetime],
    stamp: datetime,
) -> RerateReport:
    """One (tenant, local day) in the caller's transaction (a store job's: ``datacenter.jobs``)."""
    query = _select(config.tenant_id).where(*_window(config.tenant_id, *day))
    return _rerate_query(conn, config, query, stamp)


def _rerate_query(
    conn: sa.Connection, config: RatingConfig, query: sa.Select[Any], stamp: datetime
) -> RerateReport:
    day = RerateReport()
    for chunk in _chunks(conn, query):
        _rerate_chunk(conn, config, chunk, day, stamp, cause="rerate")
    return day


def _through_outages(work: Callable[[], RerateReport]) -> RerateReport:
    """``work()``, tried again while the store is unreachable, for up to STORE_OUTAGE_SECONDS."""
    retries = Retries(OUTAGE_BACKOFF)
    give_up = monotonic() + STORE_OUTAGE_SECONDS
    while True:
        try:
            return work()
        except sa.exc.OperationalError as exc:
            if monotonic() >= give_up:
                raise
            wait = retries.next_delay()
            log.warning("store unreachable while re-rating (%s): trying the day again in %.1f s",
                        exc.orig, wait)  # fmt: skip
            sleep(wait)


def retry_unrated(
    engine: sa.Engine, tenant_id: int, *, now: datetime | None = None
) -> RerateReport:
    """Rate every queued call of the tenant again (after a configuration change)."""
    report = RerateReport()
    stamp = now or datetime.now(UTC)
    with write_transaction(engine) as conn:
        config = load_rating_config(conn, tenant_id)
        query = _select(tenant_id).where(
            calls.c.tenant_id == tenant_id, unrated_calls.c.reason.is_not(None)
        )
        for chunk in _chunks(conn, query):
            _rerate_chunk(conn, config, chunk, report, stamp, cause="retry")
    return report


def _select(tenant_id: int) -> sa.Select[Any]:
    """Calls with their stored cost and queue rows (either may be missing)."""
    cost_columns = [call_costs.c[name].label(f"old_{name}") for name in _COMPARED]
    return (
        sa.select(*calls.c, *cost_columns, unrated_calls.c.reason)
        .select_from(
            calls.outerjoin(
                call_costs,
                sa.and_(
                    call_costs.c.tenant_id == calls.c.tenant_id,
                    call_costs.c.record_id == calls.c.record_id,
                    call_costs.c.start_utc == calls.c.start_utc,  # the partition key (0018)
                ),
            ).outerjoin(
                unrated_calls,
                sa.and_(
                    unrated_calls.c.tenant_id == calls.c.tenant_id,
                    unrated_calls.c.record_id == calls.c.record_id,
                    unrated_calls.c.start_utc == calls.c.start_utc,  # the partition key (0018)
                ),
            )
        )
        .order_by(calls.c.start_utc, calls.c.record_id)
    )


def _window(tenant_id: int, since: datetime, until: datetime) -> tuple[sa.ColumnElement[bool], ...]:
    return (calls.c.tenant_id == tenant_id, calls.c.start_utc >= since, calls.c.start_utc < until)


def _chunks(conn: sa.Connection, query: sa.Select[Any]) -> Iterator[list[sa.Row[Any]]]:
    rows = list(conn.execute(query).all())  # one day (or the queue) at a time: bounded
    for start in range(0, len(rows), CHUNK):
        yield rows[start : start + CHUNK]


def _rerate_chunk(
    conn: sa.Connection,
    config: RatingConfig,
    rows: list[sa.Row[Any]],
    report: RerateReport,
    now: datetime,
    *,
    cause: str,
) -> None:
    tenant_id = config.tenant_id
    changed: list[RatingResult] = []
    history: list[dict[str, Any]] = []
    for row in rows:
        result = config.rate(icdr_from_row(row))
        report.examined += 1
        had_cost = row.old_cost_minor is not None
        if isinstance(result, Unrated):
            report.queued += 1
            changed.append(result)  # the queue row records the attempt either way
            if had_cost:  # it had a cost and now cannot be rated: keep the old one in history
                report.now_unrated += 1
                report.changed += 1
                history.append(_history(tenant_id, row, result, now, cause))
                report.old_totals[(row.old_currency, row.old_decimals)] += row.old_cost_minor
            elif row.reason is not None:
                report.unchanged += 1
            continue
        new = cost_row(tenant_id, result, row.start_utc, now)
        if had_cost and all(new[name] == row._mapping[f"old_{name}"] for name in _COMPARED):
            report.unchanged += 1
            continue
        changed.append(result)
        if had_cost or row.reason is not None:
            report.changed += 1
            history.append(_history(tenant_id, row, result, now, cause))
            if had_cost:
                report.old_totals[(row.old_currency, row.old_decimals)] += row.old_cost_minor
            report.new_totals[(result.currency, result.decimals)] += result.cost
        else:
            report.first_rated += 1
    starts = {row.record_id: row.start_utc for row in rows}
    write_results(conn, tenant_id, changed, starts=starts, now=now)
    _move_rollups(conn, config, rows, changed)
    if history:
        conn.execute(call_cost_history.insert(), history)


def _move_rollups(
    conn: sa.Connection, config: RatingConfig, rows: list[sa.Row[Any]], changed: list[RatingResult]
) -> None:
    """Move the changed calls' rollup contributions from their old cost to their new one."""
    zone = ZoneInfo(config.timezone)
    by_id = {row.record_id: row for row in rows}
    deltas = Deltas()
    for result in changed:
        row = by_id[result.record_id]
        old = facts_of_row(row, zone, cost=cost_of_row(row, prefix="old_"))
        deltas.move(old, facts_of_row(row, zone, cost=cost_of_result(result)))
    deltas.write(conn, config.tenant_id)


def _history(
    tenant_id: int, row: sa.Row[Any], result: RatingResult, now: datetime, cause: str
) -> dict[str, Any]:
    return {
        "tenant_id": tenant_id, "record_id": row.record_id, "changed_at": now,
        "old_cost_minor": row.old_cost_minor, "old_currency": row.old_currency,
        "old_tariff_version": row.old_tariff_version, "old_explanation": row.old_explanation,
        "new_cost_minor": result.cost if isinstance(result, RatedCall) else None,
        "new_currency": result.currency if isinstance(result, RatedCall) else None,
        "new_tariff_version": result.tariff_version if isinstance(result, RatedCall) else None,
        "cause": cause, "start_utc": row.start_utc,
    }  # fmt: skip


def local_days(
    since: datetime, until: datetime, zone: ZoneInfo
) -> Iterator[tuple[datetime, datetime]]:
    """``[since, until)`` cut at the tenant's local midnights."""
    day = since.astimezone(zone).date()
    start = since
    while start < until:
        next_midnight = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone).astimezone(
            UTC
        )
        end = min(next_midnight, until)
        yield start, end
        start, day = end, day + timedelta(days=1)
