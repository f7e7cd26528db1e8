"""Keeping the report rollups (``datacenter.store.tables.rollups``) equal to the raw calls.

Contract:

- A call's contribution is its ``CallFacts``: the tenant-local day of its start, its dimensions
  (direction, extension, trunk, answered, and from its ``call_costs`` row carrier, destination
  class and currency) and its measures (1 call, talk and billed seconds, cost in micro-units,
  rated or not). ``facts_of_icdr`` builds it from a record and its rating result (ingest),
  ``facts_of_row`` from a stored call row with its cost columns (re-rating, rebuild).
- Every writer collects ``Deltas``: ``+facts`` for a call added, ``-old +new`` for a call whose
  row or cost changed, then ``write`` applies them with one upsert per rollup table, in the
  caller's transaction, and deletes the rows whose ``calls`` fell to 0. Keys are written in
  sorted order so two workers adding to the same rows lock them in the same order.
- ``rebuild`` replaces a tenant's rows by the aggregate of its raw calls (``rebuild_day``: one
  local day's, a store job of ``datacenter rollups rebuild``); ``differences`` lists
  where the stored rows and that aggregate disagree (empty: exact). Both cover ``call_days``
  too (the dashboard's per day and direction totals that ingest keeps), so a time zone change
  is one rebuild. Both read every call of the
  tenant (streamed) and aggregate in Python, because the local day needs the tenant's zone and
  SQLite has no time zones.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from datacenter.rating.engine import RatedCall, RatingResult
from datacenter.reports.periods import local_midnight
from datacenter.store.costs import joined_costs
from datacenter.store.dialect import dialect_insert
from datacenter.store.tables.core import call_days, calls
from datacenter.store.tables.rating import call_costs
from datacenter.store.tables.rollups import MEASURES, rollup_extension_days, rollup_route_days
from shared.errors import StoreError
from shared.icdr import ICDR

MICRO_PLACES = 6  # rating refuses more decimals than this, so every cost converts exactly
DAY_MEASURES = ("calls", "answered", "talk_seconds")  # call_days, the dashboard's daily totals
STREAM_ROWS = 20_000  # raw calls fetched at a time by rebuild and check
INSERT_ROWS = 5_000

Key = tuple[Any, ...]  # (day, *dimensions)
Totals = dict[Key, list[int]]  # key -> measures in MEASURES order


@dataclass(frozen=True, slots=True)
class Rollup:
    """One rollup table and the dimensions (after tenant and day) it groups by."""

    table: sa.Table
    dimensions: tuple[str, ...]

    def key(self, facts: CallFacts) -> Key:
        return (facts.day, *(getattr(facts, name) for name in self.dimensions))


ROLLUPS = (
    Rollup(rollup_extension_days, ("direction", "extension", "answered", "currency")),
    Rollup(
        rollup_route_days,
        ("direction", "trunk", "carrier", "number_class", "answered", "currency"),
    ),
)


@dataclass(frozen=True, slots=True)
class CallFacts:
    """What one call contributes to the rollups."""

    day: date
    direction: str
    extension: str
    trunk: str
    answered: bool
    carrier: str
    number_class: str
    currency: str
    talk_seconds: int
    billed_seconds: int
    cost_micro: int
    rated: int

    def measures(self) -> tuple[int, ...]:
        return (1, self.talk_seconds, self.billed_seconds, self.cost_micro, self.rated)


@dataclass(frozen=True, slots=True)
class Cost:
    """The rollup's view of a ``call_costs`` row (or a rating result)."""

    carrier: str
    number_class: str
    currency: str
    decimals: int
    cost_minor: int
    billed_seconds: int


def micro(cost_minor: int, decimals: int) -> int:
    """Minor units with ``decimals`` places -> millionths of the currency unit (exact)."""
    return cost_minor * int(10 ** (MICRO_PLACES - decimals))


def make_facts(
    *,
    start: datetime,
    direction: str,
    extension: str,
    trunk: str,
    answered: bool,
    talk_seconds: int,
    cost: Cost | None,
    zone: ZoneInfo,
) -> CallFacts:
    day = start.astimezone(zone).date()
    if cost is None:
        return CallFacts(day, direction, extension, trunk, answered, "", "", "", talk_seconds,
                         0, 0, 0)  # fmt: skip
    return CallFacts(
        day, direction, extension, trunk, answered, cost.carrier, cost.number_class,
        cost.currency, talk_seconds, cost.billed_seconds, micro(cost.cost_minor, cost.decimals), 1,
    )  # fmt: skip


def cost_of_result(result: RatingResult | None) -> Cost | None:
    """A rating result's cost; None when the call is unrated (it has no ``call_costs`` row)."""
    if not isinstance(result, RatedCall):
        return None
    return Cost(result.carrier, result.number_class.value, result.currency, result.decimals,
                result.cost, result.billed_seconds)  # fmt: skip


def cost_of_row(row: Any, prefix: str = "") -> Cost | None:
    """The cost columns of a row (named ``<prefix>cost_minor`` ...); None when they are NULL."""
    values = row._mapping
    if values[f"{prefix}cost_minor"] is None:
        return None
    return Cost(*(values[f"{prefix}{name}"] for name in COST_COLUMNS))


COST_COLUMNS = ("carrier", "number_class", "currency", "decimals", "cost_minor", "billed_seconds")
CALL_COLUMNS = ("start_utc", "direction", "extension", "trunk", "answered", "talk_seconds")


def facts_of_icdr(rec: ICDR, result: RatingResult | None, zone: ZoneInfo) -> CallFacts:
    return make_facts(
        start=rec.start, direction=rec.direction.value, extension=rec.extension, trunk=rec.trunk,
        answered=rec.answered, talk_seconds=rec.talk_seconds, cost=cost_of_result(result),
        zone=zone,
    )  # fmt: skip


def facts_of_row(row: Any, zone: ZoneInfo, *, cost: Cost | None) -> CallFacts:
    """A stored call row's facts (its ``CALL_COLUMNS``) with the given cost."""
    return make_facts(
        start=row.start_utc, direction=row.direction, extension=row.extension, trunk=row.trunk,
        answered=bool(row.answered), talk_seconds=row.talk_seconds, cost=cost, zone=zone,
    )  # fmt: skip


class Deltas:
    """Changes to the rollups collected by a writer, applied by ``write`` (module doc)."""

    def __init__(self) -> None:
        self.totals: dict[str, Totals] = {r.table.name: {} for r in ROLLUPS}

    def add(self, facts: CallFacts, sign: int = 1) -> None:
        measures = facts.measures()
        for rollup in ROLLUPS:
            total = self.totals[rollup.table.name].setdefault(rollup.key(facts), [0] * 5)
            for position, value in enumerate(measures):
                total[position] += sign * value

    def move(self, old: CallFacts, new: CallFacts) -> None:
        if old != new:
            self.add(old, -1)
            self.add(new, 1)

    def write(self, conn: sa.Connection, tenant_id: int) -> None:
        for rollup in ROLLUPS:
            changed = {k: v for k, v in self.totals[rollup.table.name].items() if any(v)}
            _apply(conn, rollup, tenant_id, changed)


def _rows(rollup: Rollup, tenant_id: int, totals: Mapping[Key, list[int]]) -> list[dict[str, Any]]:
    names = ("day", *rollup.dimensions)
    return [
        {"tenant_id": tenant_id, **dict(zip(names, key, strict=True)),
         **dict(zip(MEASURES, values, strict=True))}
        for key, values in sorted(totals.items(), key=lambda item: repr(item[0]))
    ]  # fmt: skip


def _apply(conn: sa.Connection, rollup: Rollup, tenant_id: int, totals: Totals) -> None:
    if not totals:
        return
    table = rollup.table
    insert = dialect_insert(conn, table)
    conn.execute(
        insert.on_conflict_do_update(
            index_elements=["tenant_id", "day", *rollup.dimensions],
            set_={name: table.c[name] + insert.excluded[name] for name in MEASURES},
        ),
        _rows(rollup, tenant_id, totals),
    )
    days = sorted({key[0] for key, values in totals.items() if values[0] < 0})
    for start in range(0, len(days), 500):  # a call moved away: its old row may now be empty
        conn.execute(
            table.delete().where(
                table.c.tenant_id == tenant_id,
                table.c.day.in_(days[start : start + 500]),
                table.c.calls == 0,
            )
        )


# --- raw calls: stored contributions, rebuild, check --------------------------------------------


def raw_select(tenant_id: int, *, costs_by_start: bool = True) -> sa.Select[Any]:
    """Each call of the tenant with the columns its facts need (cost columns NULL if unrated).

    The join names ``start_utc``, the partition key since 0018: without it PostgreSQL looks for
    each call's cost in every month's partition (a 1,000,000-call tenant's rebuild took 27 s
    instead of 4). Migration 0013 runs this code on a store whose ``call_costs`` has no such
    column yet: ``costs_by_start=False``.
    """
    source = joined_costs(by_start=costs_by_start)
    return (
        sa.select(
            calls.c.record_id,
            *(calls.c[name] for name in CALL_COLUMNS),
            *(call_costs.c[name] for name in COST_COLUMNS),
        )
        .select_from(source)
        .where(calls.c.tenant_id == tenant_id)
    )


def stored_facts(
    conn: sa.Connection, tenant_id: int, record_ids: Iterable[str], zone: ZoneInfo
) -> dict[str, CallFacts]:
    """The facts of these stored calls as the store holds them now."""
    ids = sorted(set(record_ids))
    found: dict[str, CallFacts] = {}
    for start in range(0, len(ids), 500):
        query = raw_select(tenant_id).where(calls.c.record_id.in_(ids[start : start + 500]))
        for row in conn.execute(query):
            found[row.record_id] = facts_of_row(row, zone, cost=cost_of_row(row))
    return found


# [start, end) of ``calls.start_utc``; no start: from the tenant's first call
Window = tuple[datetime | None, datetime]
DaySpan = tuple[date | None, date]  # [first, end) of tenant-local rollup days, the same way


def _stream(
    conn: sa.Connection, tenant_id: int, window: Window | None, *, costs_by_start: bool = True
) -> Iterator[Any]:
    query = raw_select(tenant_id, costs_by_start=costs_by_start)
    if window is not None:
        if window[0] is not None:
            query = query.where(calls.c.start_utc >= window[0])
        query = query.where(calls.c.start_utc < window[1])
    # On the statement, not the connection: Connection.execution_options changes the connection.
    yield from conn.execute(query.execution_options(yield_per=STREAM_ROWS))


def raw_totals(
    conn: sa.Connection,
    tenant_id: int,
    zone: ZoneInfo,
    window: Window | None = None,
    *,
    costs_by_start: bool = True,
) -> dict[str, Totals]:
    """What every rollup table (and ``call_days``) should hold for the tenant, from its raw calls
    and costs (those that started in ``window`` when one is given)."""
    deltas = Deltas()
    days: Totals = {}
    for row in _stream(conn, tenant_id, window, costs_by_start=costs_by_start):
        facts = facts_of_row(row, zone, cost=cost_of_row(row))
        deltas.add(facts)
        total = days.setdefault((facts.day, facts.direction), [0, 0, 0])
        total[0] += 1
        total[1] += int(facts.answered)
        total[2] += facts.talk_seconds
    out = {name: {k: v for k, v in t.items() if v[0]} for name, t in deltas.totals.items()}
    out[call_days.name] = days
    return out


def stored_totals(conn: sa.Connection, tenant_id: int) -> dict[str, Totals]:
    """What the rollup tables hold for the tenant."""
    out: dict[str, Totals] = {}
    for rollup in ROLLUPS:
        table = rollup.table
        names = ("day", *rollup.dimensions)
        query = sa.select(*(table.c[n] for n in (*names, *MEASURES))).where(
            table.c.tenant_id == tenant_id
        )
        out[table.name] = {
            tuple(row[: len(names)]): [int(v) for v in row[len(names) :]]
            for row in conn.execute(query)
        }
    query = sa.select(
        call_days.c.day, call_days.c.direction, *(call_days.c[n] for n in DAY_MEASURES)
    ).where(call_days.c.tenant_id == tenant_id)
    out[call_days.name] = {
        (row[0], row[1]): [int(v) for v in row[2:]] for row in conn.execute(query)
    }
    return out


def rebuild(
    conn: sa.Connection, tenant_id: int, zone: ZoneInfo, *, costs_by_start: bool = True
) -> int:
    """Replace the tenant's rollup rows by the aggregate of its raw calls; returns rows written
    (``costs_by_start``: see ``raw_select``)."""
    totals = raw_totals(conn, tenant_id, zone, costs_by_start=costs_by_start)
    return _replace(conn, tenant_id, totals, span=None)


def rebuild_day(conn: sa.Connection, tenant_id: int, zone: ZoneInfo, day: date) -> int:
    """``rebuild`` of one tenant-local day: its rows replaced by the aggregate of the calls that
    started that day (a store job's work). Days share no rollup rows, so rebuilding every day
    that has calls or rows (``rollup_days``) equals ``rebuild``; returns rows written."""
    return _rebuild_days(conn, tenant_id, zone, (day, day + timedelta(days=1)))


def rebuild_before(conn: sa.Connection, tenant_id: int, zone: ZoneInfo, day: date) -> int:
    """Replace the tenant's rollup rows of the local days before ``day`` by the aggregate of its
    raw calls of those days (after retention deleted or dropped calls); rows written."""
    return _rebuild_days(conn, tenant_id, zone, (None, day))


def _rebuild_days(conn: sa.Connection, tenant_id: int, zone: ZoneInfo, span: DaySpan) -> int:
    """The rows of the local days in ``span`` from the calls that started in them."""
    first, end = span
    window = (None if first is None else local_midnight(first, zone), local_midnight(end, zone))
    return _replace(conn, tenant_id, raw_totals(conn, tenant_id, zone, window), span=span)


def rollup_days(conn: sa.Connection, tenant_id: int, zone: ZoneInfo) -> list[date]:
    """Every local day a rebuild must cover: days with rollup rows, and each day from the
    tenant's first call to its last (the ``(tenant_id, start_utc)`` index answers both ends)."""
    days: set[date] = set()
    for table in (*(r.table for r in ROLLUPS), call_days):
        query = sa.select(table.c.day).where(table.c.tenant_id == tenant_id).distinct()
        days.update(conn.execute(query).scalars())
    first, last = conn.execute(
        sa.select(sa.func.min(calls.c.start_utc), sa.func.max(calls.c.start_utc)).where(
            calls.c.tenant_id == tenant_id
        )
    ).one()
    if first is not None:
        day, end = _as_utc(first).astimezone(zone).date(), _as_utc(last).astimezone(zone).date()
        while day <= end:
            days.add(day)
            day += timedelta(days=1)
    return sorted(days)


def _as_utc(moment: datetime) -> datetime:
    """``min``/``max`` bypass the column type on SQLite: a naive or text UTC time comes back."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _replace(
    conn: sa.Connection, tenant_id: int, wanted: dict[str, Totals], *, span: DaySpan | None
) -> int:
    """Delete the tenant's rows (of the days in ``span`` only, when given) and write ``wanted``
    instead."""
    written = 0
    for table in (*(r.table for r in ROLLUPS), call_days):
        conn.execute(table.delete().where(table.c.tenant_id == tenant_id, *_days(table, span)))
    for rollup in ROLLUPS:
        rows = _rows(rollup, tenant_id, wanted[rollup.table.name])
        for start in range(0, len(rows), INSERT_ROWS):
            conn.execute(rollup.table.insert(), rows[start : start + INSERT_ROWS])
        written += len(rows)
    day_rows = [
        {"tenant_id": tenant_id, "day": day, "direction": direction,
         **dict(zip(DAY_MEASURES, values, strict=True))}
        for (day, direction), values in sorted(wanted[call_days.name].items())
    ]  # fmt: skip
    for start in range(0, len(day_rows), INSERT_ROWS):
        conn.execute(call_days.insert(), day_rows[start : start + INSERT_ROWS])
    return written + len(day_rows)


def _days(table: sa.Table, span: DaySpan | None) -> tuple[sa.ColumnElement[bool], ...]:
    if span is None:
        return ()
    first, end = span
    return (table.c.day < end,) if first is None else (table.c.day >= first, table.c.day < end)


@dataclass(frozen=True, slots=True)
class Difference:
    table: str
    key: Key
    stored: tuple[int, ...] | None  # None: no row
    raw: tuple[int, ...] | None

    def describe(self) -> str:
        def shown(values: tuple[int, ...] | None) -> str:
            if values is None:
                return "no row"
            names = DAY_MEASURES if self.table == call_days.name else MEASURES
            return ", ".join(f"{n}={v}" for n, v in zip(names, values, strict=True))

        key = ", ".join(str(part) for part in self.key)
        return f"{self.table} ({key}): stored {shown(self.stored)}; raw calls {shown(self.raw)}"


def differences(conn: sa.Connection, tenant_id: int, zone: ZoneInfo) -> list[Difference]:
    """Where the tenant's stored rollups and its raw calls disagree (empty: they are equal)."""
    raw = raw_totals(conn, tenant_id, zone)
    held = stored_totals(conn, tenant_id)
    found: list[Difference] = []
    for name in raw:
        for key in sorted(set(raw[name]) | set(held[name]), key=repr):
            want, have = raw[name].get(key), held[name].get(key)
            if want != have:
                found.append(Difference(name, key, _tuple(have), _tuple(want)))
    return found


def _tuple(values: list[int] | None) -> tuple[int, ...] | None:
    return None if values is None else tuple(values)


class RollupMismatch(StoreError):
    """`datacenter rollups rebuild --check` found rollups that differ from the raw calls."""

    exit_code = 12
