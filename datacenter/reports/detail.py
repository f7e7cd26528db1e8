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
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from datacenter.reports import columns as cols
from datacenter.reports.periods import utc_bounds
from datacenter.reports.scope import Scope, ScopeTarget, scope_conditions
from datacenter.store.tables.core import calls
from shared.errors import ValidationError

DETAIL_TEXT = cols.TEXT
DETAIL_NUMBERS = cols.NUMBERS
SORTS = tuple(name for name in cols.raw_columns() if name not in ("cost_micro", "rated"))
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


def detail_query(request: DetailRequest) -> sa.Select[Any]:
    """One page of the call-detail report (module doc)."""
    columns = cols.raw_columns()
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
        *cols.filter_conditions(columns, request.filters),
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
            columns["destination"].label("destination"),
            columns["currency"].label("currency"),
            columns["billed_seconds"].label("billed_seconds"),
            *(columns[name].label(name) for name in cols.ATTRIBUTION),
            calls.c.account_code,
            columns["cost_micro"].label("cost_micro"),
        )
        .select_from(cols.raw_from(attributed=True))
        .where(*conditions)
        .order_by(
            order.desc() if request.descending else order.asc(),
            tie.desc() if request.descending else tie.asc(),
        )
        .limit(request.limit)
        .offset(request.offset)
    )


def call_detail(conn: sa.Connection, request: DetailRequest) -> list[sa.Row[Any]]:
    return list(conn.execute(detail_query(request)))
