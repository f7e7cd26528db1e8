"""The call-detail report: one row per call, from the raw calls (``calls`` + ``call_costs``).

``detail_query(request)`` selects the tenant's calls that started in the tenant-local days
``first_day`` .. ``last_day``, filtered (``reports.filters`` syntax) on text columns
(``DETAIL_TEXT``) and number columns (``DETAIL_NUMBERS``: seconds as integers, ``cost`` in the
currency's units, e.g. ``1.50-5``, compared in micro-units), restricted by the ``scope`` hook,
sorted by one column (``start`` by default, newest first) with the record id as tie-break, one
page (``limit``/``offset``). Unrated calls have carrier, class and currency ``""`` and cost 0.
It never reads the rollups: a call's own values exist only in the raw rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from datacenter.reports.filters import FilterError, number_condition, parse_filter, text_condition
from datacenter.reports.periods import utc_bounds
from datacenter.reports.scope import Scope, ScopeTarget, scope_conditions
from datacenter.reports.summaries import raw_columns, raw_from
from datacenter.store.rollups import MICRO_PLACES
from datacenter.store.tables.core import calls
from datacenter.store.tables.rating import call_costs
from shared.errors import ValidationError

DETAIL_TEXT = ("extension", "direction", "trunk", "carrier", "destination_class", "currency",
               "calling", "called", "dialled_digits", "e164", "account_code")  # fmt: skip
DETAIL_NUMBERS = ("talk_seconds", "ring_seconds", "billed_seconds", "cost")
SORTS = ("start", "extension", "talk_seconds", "cost", "e164")
MAX_LIMIT = 10_000


@dataclass(frozen=True)
class DetailRequest:
    tenant_id: int
    zone: ZoneInfo
    first_day: date
    last_day: date  # inclusive
    filters: Mapping[str, str] = field(default_factory=dict)
    scope: Scope | None = None
    sort: str = "start"
    descending: bool = True
    limit: int = 50
    offset: int = 0


def _columns() -> dict[str, sa.ColumnElement[Any]]:
    raw = raw_columns()
    return {
        **raw,
        "start": calls.c.start_utc,
        "calling": calls.c.calling,
        "called": calls.c.called,
        "dialled_digits": calls.c.dialled_digits,
        "account_code": calls.c.account_code,
        "talk_seconds": calls.c.talk_seconds,
        "ring_seconds": calls.c.ring_seconds,
        "e164": sa.func.coalesce(call_costs.c.e164, ""),
        "cost": raw["cost_micro"],
    }


def _micro(number: Decimal) -> int:
    scaled = number.scaleb(MICRO_PLACES)
    if scaled != scaled.to_integral_value():
        raise FilterError("cost", f"{number} has more than {MICRO_PLACES} decimals")
    return int(scaled)


def _whole(name: str) -> Any:
    def scale(number: Decimal) -> int:
        if number != number.to_integral_value():
            raise FilterError(name, f"{number} is not a whole number of seconds")
        return int(number)

    return scale


def detail_query(request: DetailRequest) -> sa.Select[Any]:
    """One page of the call-detail report (module doc)."""
    columns = _columns()
    if request.sort not in SORTS:
        raise ValidationError("sort", f"{request.sort!r} is not one of {', '.join(SORTS)}")
    if not 0 < request.limit <= MAX_LIMIT or request.offset < 0:
        raise ValidationError("limit", f"a page is 1-{MAX_LIMIT} rows from offset 0 or more")
    since, until = utc_bounds(request.first_day, request.last_day, request.zone)
    scoped = scope_conditions(
        request.scope,
        ScopeTarget(request.tenant_id, calls.c.extension, start_utc=calls.c.start_utc),
    )
    if scoped is None:
        raise ValidationError("scope", "the scope cannot be applied to the raw calls")
    conditions = [
        calls.c.tenant_id == request.tenant_id,
        calls.c.start_utc >= since,
        calls.c.start_utc < until,
        *(
            _condition(columns, name, text)
            for name, text in request.filters.items()
            if text.strip()
        ),
        *scoped,
    ]
    order = columns[request.sort]
    tie = calls.c.record_id
    return (
        sa.select(
            calls.c.record_id,
            calls.c.start_utc,
            calls.c.direction,
            calls.c.extension,
            calls.c.trunk,
            calls.c.calling,
            calls.c.called,
            calls.c.dialled_digits,
            calls.c.answered,
            calls.c.talk_seconds,
            columns["e164"].label("e164"),
            columns["carrier"].label("carrier"),
            columns["destination_class"].label("destination_class"),
            sa.func.coalesce(call_costs.c.destination, "").label("destination"),
            columns["currency"].label("currency"),
            columns["billed_seconds"].label("billed_seconds"),
            columns["cost_micro"].label("cost_micro"),
        )
        .select_from(raw_from())
        .where(*conditions)
        .order_by(
            order.desc() if request.descending else order.asc(),
            tie.desc() if request.descending else tie.asc(),
        )
        .limit(request.limit)
        .offset(request.offset)
    )


def _condition(
    columns: Mapping[str, sa.ColumnElement[Any]], name: str, text: str
) -> sa.ColumnElement[bool]:
    parsed = parse_filter(text, field=name)
    if name in DETAIL_TEXT:
        return text_condition(columns[name], parsed)
    if name in DETAIL_NUMBERS:
        scale = _micro if name == "cost" else _whole(name)
        return number_condition(columns[name], parsed, name=name, scale=scale)
    known = ", ".join((*DETAIL_TEXT, *DETAIL_NUMBERS))
    raise ValidationError(name, f"no such filter; filters: {known}")


def call_detail(conn: sa.Connection, request: DetailRequest) -> list[sa.Row[Any]]:
    return list(conn.execute(detail_query(request)))
