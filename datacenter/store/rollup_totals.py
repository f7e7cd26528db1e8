"""The call list's totals from the report rollups, when the list's filter allows it.

The totals above the call list (calls, talk and billed time, cost per currency, calls not
rated) are the same sums the report rollups (``datacenter.store.tables.rollups``) hold per
tenant-local day, and ingest and re-rating keep those rollups exactly equal to the raw calls
(``datacenter.store.rollups``). Reading a month from a rollup is a few hundred rows; reading it
from the calls joins every matching call to its ``call_costs`` row. So ``TenantScope`` asks
``plan`` first and reads the raw calls only when it returns None.

A filter goes to a rollup (``RollupPlan``) only when the rollup answers it exactly:

- its dates are whole days in the tenant's time zone (a rollup's ``day`` is the tenant-local
  day of the call's start), not UTC days;
- every other condition is an equality on a dimension the rollup has: ``direction`` and
  ``answered`` (both rollups), ``extension`` (``rollup_extension_days``), destination class and
  carrier (``rollup_route_days``); a number search or a cost range is not a dimension;
- the viewer's scope is the whole tenant, or extensions only (carried by the extension rollup);
  a site, department or cost-centre scope depends on who held the extension at the call's
  start, which a daily row cannot tell (the same rule as ``datacenter.reports.user_scope``).

Of the rollups that fit, the one with the fewest dimensions (fewest rows) is read.

Costs are summed in micro-units (rollups) or minor units (raw calls); ``currency_total`` turns
either into one canonical ``CurrencyTotal``, so both paths give equal ``CallTotals``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import sqlalchemy as sa

from datacenter.store.call_scope import UserScope
from datacenter.store.costs import CallTotals, CurrencyTotal
from datacenter.store.rollups import MICRO_PLACES, ROLLUPS, Rollup
from datacenter.store.scope_sql import needs_start_time, scope_condition

DEFAULT_DECIMALS = 2  # for a currency none of the tenant's tariffs names any more


@dataclass(frozen=True, slots=True)
class RollupPlan:
    """Which rollup answers a filter, and the conditions on it."""

    rollup: Rollup
    first_day: date | None  # inclusive tenant-local days; None: open
    last_day: date | None
    equals: Mapping[str, Any]  # rollup column -> value

    @property
    def source(self) -> str:
        return self.rollup.table.name


def plan(
    *,
    whole_local_days: bool,
    first_day: date | None,
    last_day: date | None,
    equals: Mapping[str, Any],
    other_conditions: bool,
    user_scope: UserScope,
) -> RollupPlan | None:
    """The rollup that answers these totals exactly (module doc), or None: read raw calls.

    ``equals`` maps rollup dimensions to the values the filter requires; ``other_conditions``
    says the filter also has conditions no rollup has (a number, a cost range).
    """
    if other_conditions or not whole_local_days or needs_start_time(user_scope):
        return None
    needed = set(equals)
    if user_scope.extensions:
        needed.add("extension")
    fitting = [r for r in ROLLUPS if needed <= set(r.dimensions)]
    if not fitting:
        return None
    rollup = min(fitting, key=lambda r: len(r.dimensions))
    return RollupPlan(rollup, first_day, last_day, dict(equals))


def totals_query(found: RollupPlan, tenant_id: int, user_scope: UserScope) -> sa.Select[Any]:
    """Per currency: calls, talk and billed seconds, cost in micro-units and calls rated."""
    table = found.rollup.table
    conditions: list[sa.ColumnElement[bool]] = [table.c.tenant_id == tenant_id]
    if found.first_day is not None:
        conditions.append(table.c.day >= found.first_day)
    if found.last_day is not None:
        conditions.append(table.c.day <= found.last_day)
    conditions.extend(table.c[name] == value for name, value in found.equals.items())
    if not user_scope.whole:  # extensions only, on the extension rollup: plan() saw to it
        scoped = scope_condition(user_scope, tenant_id, table.c.extension, None)
        conditions.extend([] if scoped is None else [scoped])
    return (
        sa.select(
            table.c.currency,
            sa.func.sum(table.c.calls).label("calls"),
            sa.func.sum(table.c.talk_seconds).label("talk"),
            sa.func.sum(table.c.billed_seconds).label("billed"),
            sa.func.sum(table.c.cost_micro).label("cost_micro"),
            sa.func.sum(table.c.rated).label("rated"),
        )
        .where(*conditions)
        .group_by(table.c.currency)
    )


def totals_from_rollup_rows(rows: Sequence[sa.Row[Any]], decimals: Mapping[str, int]) -> CallTotals:
    """``CallTotals`` from ``totals_query``'s rows (``decimals``: ``currency_decimals``)."""
    counted = sum(int(row.calls) for row in rows)
    return CallTotals(
        calls=counted,
        talk_seconds=sum(int(row.talk) for row in rows),
        billed_seconds=sum(int(row.billed) for row in rows),
        not_rated=counted - sum(int(row.rated) for row in rows),
        costs=tuple(
            currency_total(row.currency, int(row.calls), int(row.cost_micro), decimals)
            for row in sorted(rows, key=lambda row: row.currency)
            if row.currency  # "": unrated calls and zero costs without a tariff
        ),
    )


def canonical(totals: CallTotals, decimals: Mapping[str, int]) -> CallTotals:
    """The raw path's totals with each currency's cost in the canonical decimals."""
    return CallTotals(
        calls=totals.calls,
        talk_seconds=totals.talk_seconds,
        billed_seconds=totals.billed_seconds,
        not_rated=totals.not_rated,
        costs=tuple(
            currency_total(
                total.currency,
                total.calls,
                total.cost_minor * 10 ** (MICRO_PLACES - total.decimals),
                decimals,
            )
            for total in totals.costs
        ),
    )


def currency_total(
    currency: str, calls: int, cost_micro: int, decimals: Mapping[str, int]
) -> CurrencyTotal:
    """The total in the fewest decimals that are exact, but at least ``decimals[currency]`` (the
    fewest any of the tenant's tariff versions in that currency prices in)."""
    places = min(decimals.get(currency, DEFAULT_DECIMALS), MICRO_PLACES)
    while cost_micro % 10 ** (MICRO_PLACES - places):
        places += 1
    return CurrencyTotal(currency, places, calls, cost_micro // 10 ** (MICRO_PLACES - places))
