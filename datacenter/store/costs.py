"""Read models of a call's rating, for ``TenantScope``: cost rows, totals, queue and history.

This module builds clauses and turns rows into dataclasses; it runs no query itself. Only
``TenantScope`` executes them, always with the tenant condition first, so there is still one
place every call query goes through.

- ``CallCost``: a ``call_costs`` row as the list shows it (cost in minor units of its
  currency, destination, class, carrier, billed seconds), plus ``rated_at``.
- ``CallTotals``: count, talk and billed seconds and cost per currency of a filtered set,
  computed by one ``GROUP BY currency`` query over the same filter as the list, not over a page.
- ``CostFilter`` conditions: destination class, carrier, cost at least / at most (inclusive,
  in major units of each call's own currency, compared exactly in minor units; a no-charge
  call costs 0, so "at most" includes it). Calls that are not rated match no cost condition.
- A cost range (``has_cost_range``) is read the other way round: ``costs_then_calls`` scans
  ``call_costs`` by its ``(tenant_id, start_utc, cost_minor)`` index over the period and joins
  each matching cost to its call, instead of joining every call of the period to its cost (for
  a month of a 1,000,000-call tenant, 82,000 primary-key probes). ``call_costs.start_utc`` is
  its call's start (every writer copies it), so the queries put the period and the order on
  ``call_costs.start_utc`` (``start_column``); the join is by the calls' primary key. Without
  a period, the cost bound itself is read from the ``(tenant_id, decimals, cost_minor)`` index
  (``_in_minor_units``), so "at least 1.50 ever" reads only the calls that cost that much.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from datacenter.store.tables.core import calls
from datacenter.store.tables.rating import call_cost_history, call_costs, unrated_calls

MAX_DECIMALS = 6  # tariffs keep at most micro-units: a tariff with more is refused
COST_COLUMNS = (
    "cost_minor", "currency", "decimals", "number_class", "e164", "carrier", "destination",
    "tariff_version", "billed_seconds", "zero_reason", "rated_at",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class CallCost:
    """A rated call's cost and destination (``currency`` is "" when no tariff was involved)."""

    cost_minor: int
    currency: str
    decimals: int
    number_class: str
    e164: str  # digits without '+', "" for a call that was not a public number
    carrier: str
    destination: str
    tariff_version: str
    billed_seconds: int
    zero_reason: str | None
    rated_at: datetime

    @property
    def amount(self) -> Decimal:
        return Decimal(self.cost_minor).scaleb(-self.decimals)


@dataclass(frozen=True, slots=True)
class CurrencyTotal:
    currency: str
    decimals: int
    calls: int
    cost_minor: int

    @property
    def amount(self) -> Decimal:
        return Decimal(self.cost_minor).scaleb(-self.decimals)


@dataclass(frozen=True, slots=True)
class CallTotals:
    """Totals of every call matching a filter (not of one page)."""

    calls: int = 0
    talk_seconds: int = 0
    billed_seconds: int = 0
    not_rated: int = 0  # calls with no cost row (on the unrated queue, or never rated)
    costs: tuple[CurrencyTotal, ...] = ()  # one per currency, tariff-less zero costs left out


@dataclass(frozen=True, slots=True)
class UnratedInfo:
    """Why a call is on the unrated queue (``reason``: an ``UnratedReason`` code)."""

    reason: str
    detail: str
    explanation: dict[str, Any]
    first_attempt_at: datetime
    last_attempt_at: datetime
    attempts: int


@dataclass(frozen=True, slots=True)
class CostChange:
    """One ``call_cost_history`` row: a re-rate or retry that changed the call's cost."""

    changed_at: datetime
    cause: str
    old_cost_minor: int | None
    old_currency: str | None
    old_tariff_version: str | None
    new_cost_minor: int | None
    new_currency: str | None
    new_tariff_version: str | None


@dataclass(frozen=True, slots=True)
class CostFilter:
    """Conditions on the rating result; empty fields do not filter."""

    number_class: str | None = None
    carrier: str | None = None
    cost_min: Decimal | None = None  # inclusive, major units
    cost_max: Decimal | None = None

    @property
    def empty(self) -> bool:
        return all(
            v is None for v in (self.number_class, self.carrier, self.cost_min, self.cost_max)
        )


def joined_costs(*, by_start: bool = True) -> sa.Join:
    """``calls`` with their cost row, when they have one.

    By the start too (the partition key, 0018): each call's cost is then looked for in its own
    month only. ``by_start=False`` where both sides already carry the period (``TenantScope``
    puts it on the cost row's start as well for a filter on the cost row): the start adds no
    pruning there, and PostgreSQL, which multiplies the two equalities' selectivities, then
    expects two rows of 15,000 and sorts all of them for a page of 50 (a week of one carrier:
    70-110 ms instead of 2).
    """
    return calls.outerjoin(call_costs, _same_call(by_start=by_start))


def _same_call(*, by_start: bool) -> sa.ColumnElement[bool]:
    """A cost row and its call: the same tenant and record, and with ``by_start`` the same
    start (the partition key, 0018: a cost row carries its call's start)."""
    keys = [
        call_costs.c.tenant_id == calls.c.tenant_id,
        call_costs.c.record_id == calls.c.record_id,
    ]
    if by_start:
        keys.append(call_costs.c.start_utc == calls.c.start_utc)
    return sa.and_(*keys)


def only_rated(filter: CostFilter) -> bool:
    """True when ``filter`` puts a condition on the cost row, so every call it admits is rated
    (has one): a class, a carrier or a cost range."""
    return bool(filter.number_class or filter.carrier) or has_cost_range(filter)


def has_cost_range(filter: CostFilter) -> bool:
    return filter.cost_min is not None or filter.cost_max is not None


def costs_then_calls(*, by_start: bool = False) -> sa.Join:
    """``call_costs`` joined to their calls: a cost range's source (only rated calls match).

    By the calls' primary key only: equating the starts too (true, but unknown to the planner)
    makes PostgreSQL estimate one row and probe calls by start instead. ``by_start`` equates
    them, for ``probe_plan``: each probe then reads its call's month only.
    """
    return call_costs.join(calls, _same_call(by_start=by_start))


def start_column(filter: CostFilter) -> sa.ColumnElement[datetime]:
    """The start the period and the order are put on: the cost row's for a cost range."""
    return call_costs.c.start_utc if has_cost_range(filter) else calls.c.start_utc


def record_column(filter: CostFilter) -> sa.ColumnElement[str]:
    return call_costs.c.record_id if has_cost_range(filter) else calls.c.record_id


def source(
    filter: CostFilter, *, probing: bool = False, costs_dated: bool = False
) -> sa.FromClause:
    """What a count or totals query reads for ``filter``: ``probing`` joins a cost range's
    costs to their calls by the start too (``probe_plan``); ``costs_dated``: the period is on
    the cost rows as well (``joined_costs``)."""
    if has_cost_range(filter):
        return costs_then_calls(by_start=probing)
    return joined_costs(by_start=not costs_dated)


def joined_costs_and_queue(*, costs_dated: bool = False) -> sa.Join:
    """``calls`` with their cost row and their unrated-queue row (at most one of the two)."""
    return joined_costs(by_start=not costs_dated).outerjoin(
        unrated_calls,
        sa.and_(
            unrated_calls.c.tenant_id == calls.c.tenant_id,
            unrated_calls.c.record_id == calls.c.record_id,
            unrated_calls.c.start_utc == calls.c.start_utc,  # the partition key (0018)
        ),
    )


def list_base(filter: CostFilter, *, costs_dated: bool = False) -> sa.Join:
    """What the list reads: every call with its cost and queue rows, or for a cost range the
    costs with their calls (a rated call is never on the queue)."""
    if has_cost_range(filter):
        return costs_then_calls()
    return joined_costs_and_queue(costs_dated=costs_dated)


def list_columns(filter: CostFilter) -> list[sa.ColumnElement[Any]]:
    """The cost columns (``cost_*`` labels) and the queue reason a list row carries."""
    reason: sa.ColumnElement[Any] = sa.null() if has_cost_range(filter) else unrated_calls.c.reason
    return [call_costs.c[name].label(f"cost_{name}") for name in COST_COLUMNS] + [
        reason.label("unrated_reason")
    ]


def cost_conditions(filter: CostFilter) -> list[sa.ColumnElement[bool]]:
    out: list[sa.ColumnElement[bool]] = []
    if filter.number_class:
        out.append(call_costs.c.number_class == filter.number_class)
    if filter.carrier:
        out.append(call_costs.c.carrier == filter.carrier)
    if filter.cost_min is not None:
        out.append(_in_minor_units(filter.cost_min, math.ceil, operator.ge))
    if filter.cost_max is not None:
        out.append(_in_minor_units(filter.cost_max, math.floor, operator.le))
    return out


def _in_minor_units(amount: Decimal, to_int: Any, compare: Any) -> sa.ColumnElement[bool]:
    """``cost compare amount``, exact in each row's own minor units: one term per number of
    decimals a currency can have (0-6, which tariffs enforce), ``decimals = d AND cost_minor >=
    ceil(amount * 10**d)``. Each term is a range of the ``(tenant_id, decimals, cost_minor)``
    index (0020), so a cost range without dates reads only the matching costs; a per-row
    ``CASE`` over the decimals (before 0020) could use no index and read all of them."""
    return sa.or_(
        *(
            sa.and_(
                call_costs.c.decimals == places,
                compare(call_costs.c.cost_minor, int(to_int(amount.scaleb(places)))),
            )
            for places in range(MAX_DECIMALS + 1)
        )
    )


def totals_query(
    conditions: list[sa.ColumnElement[bool]], *, source: sa.FromClause
) -> sa.Select[Any]:
    return (
        sa.select(
            call_costs.c.currency,
            call_costs.c.decimals,
            sa.func.count().label("calls"),
            sa.func.coalesce(sa.func.sum(calls.c.talk_seconds), 0).label("talk"),
            sa.func.coalesce(sa.func.sum(call_costs.c.billed_seconds), 0).label("billed"),
            sa.func.coalesce(sa.func.sum(call_costs.c.cost_minor), 0).label("cost"),
        )
        .select_from(source)
        .where(*conditions)
        .group_by(call_costs.c.currency, call_costs.c.decimals)
    )


def totals_from_rows(rows: list[sa.Row[Any]]) -> CallTotals:
    costs = sorted(
        (
            CurrencyTotal(row.currency, int(row.decimals), int(row.calls), int(row.cost))
            for row in rows
            if row.currency  # NULL: not rated; "": zero cost without a tariff
        ),
        key=lambda total: total.currency,
    )
    return CallTotals(
        calls=sum(int(row.calls) for row in rows),
        talk_seconds=sum(int(row.talk) for row in rows),
        billed_seconds=sum(int(row.billed) for row in rows),
        not_rated=sum(int(row.calls) for row in rows if row.currency is None),
        costs=tuple(_merge(costs)),
    )


def _merge(costs: list[CurrencyTotal]) -> list[CurrencyTotal]:
    """One total per currency (a tariff's decimals could differ between versions)."""
    out: dict[str, CurrencyTotal] = {}
    for total in costs:
        held = out.get(total.currency)
        if held is None:
            out[total.currency] = total
            continue
        places = max(held.decimals, total.decimals)
        out[total.currency] = CurrencyTotal(
            total.currency, places, held.calls + total.calls,
            held.cost_minor * 10 ** (places - held.decimals)
            + total.cost_minor * 10 ** (places - total.decimals),
        )  # fmt: skip
    return list(out.values())


def cost_from_row(row: sa.Row[Any]) -> CallCost | None:
    """The ``cost_*`` labelled columns of a list row (None: the call has no cost row)."""
    mapping = row._mapping
    if mapping["cost_cost_minor"] is None:
        return None
    return CallCost(**{name: mapping[f"cost_{name}"] for name in COST_COLUMNS})


def cost_select(tenant_id: int, record_id: str) -> sa.Select[Any]:
    return sa.select(
        *(call_costs.c[name] for name in COST_COLUMNS), call_costs.c.explanation
    ).where(call_costs.c.tenant_id == tenant_id, call_costs.c.record_id == record_id)


def queue_select(tenant_id: int, record_id: str) -> sa.Select[Any]:
    columns = [unrated_calls.c[f] for f in UnratedInfo.__dataclass_fields__]
    return sa.select(*columns).where(
        unrated_calls.c.tenant_id == tenant_id, unrated_calls.c.record_id == record_id
    )


def history_select(tenant_id: int, record_id: str) -> sa.Select[Any]:
    columns = [call_cost_history.c[f] for f in CostChange.__dataclass_fields__]
    return (
        sa.select(*columns)
        .where(
            call_cost_history.c.tenant_id == tenant_id, call_cost_history.c.record_id == record_id
        )
        .order_by(call_cost_history.c.changed_at.desc())
    )
