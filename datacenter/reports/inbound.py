"""Inbound service: were incoming calls answered, how fast, and how long callers rang.

From the raw calls (a call's ring time is not in the rollups), incoming calls only
(``direction = in``), every filter and the scope applied. One row per ring-time band: ``o.bands``
lists the band edges in seconds (default ``10,20,30,60``: 0-9 s, 10-19 s, 20-29 s, 30-59 s,
60 s and more); a call falls in the band of its ``ring_seconds``. Per band:

- ``answered``; ``abandoned`` (not answered, completion ``abandoned``: the caller hung up);
  ``unanswered`` (not answered otherwise: no answer, busy, failed ...);
- ``answered_percent`` of the band's calls;
- ``time_to_answer``: the mean ring time of the answered calls, whole seconds rounded half up.

The totals row carries the same figures over every band (its time to answer is the mean over
all answered calls, not a mean of the bands' means).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import sqlalchemy as sa

from datacenter.reports import columns as cols
from datacenter.reports.periods import utc_bounds
from datacenter.reports.scope import ScopeTarget, scope_conditions
from datacenter.reports.tables import Column, Option, ReportParams, ReportSpec, ReportTable, option
from datacenter.store.tables.core import calls
from shared.errors import ValidationError
from shared.icdr import Completion, Direction

BANDS = Option("bands", "Ring-time bands (s)", "10,20,30,60", help="band edges, ascending")
MAX_BANDS = 20
COLUMNS = (
    Column("band", "Ring time", "text"),
    Column("calls", "Calls", "integer"),
    Column("answered", "Answered", "integer"),
    Column("unanswered", "Unanswered", "integer"),
    Column("abandoned", "Abandoned", "integer"),
    Column("answered_percent", "Answered %", "percent"),
    Column("time_to_answer", "Mean time to answer", "seconds"),
)


def band_edges(text: str) -> list[int]:
    """``"10,20,30"`` -> [10, 20, 30]: whole seconds, strictly ascending, above 0."""
    try:
        edges = [int(part) for part in text.split(",")]
    except ValueError:
        raise ValidationError(
            "o.bands", f"{text!r}: write whole seconds, e.g. 10,20,30,60"
        ) from None
    if not 0 < len(edges) <= MAX_BANDS or edges[0] <= 0 or edges != sorted(set(edges)):
        raise ValidationError("o.bands", f"1-{MAX_BANDS} ascending whole seconds above 0")
    return edges


def band_labels(edges: list[int]) -> list[str]:
    lows = [0, *edges]
    return [f"{low}-{high - 1} s" for low, high in zip(lows, edges, strict=False)] + [
        f"{edges[-1]} s and more"
    ]


def _percent(part: int, whole: int) -> Decimal | None:
    if not whole:
        return None
    return (Decimal(100 * part) / whole).quantize(Decimal("0.1"), ROUND_HALF_UP)


def _mean(total: int, count: int) -> int | None:
    if not count:
        return None
    return int((Decimal(total) / count).quantize(Decimal(1), ROUND_HALF_UP))


def run(conn: sa.Connection, params: ReportParams) -> ReportTable:
    edges = band_edges(option(params, BANDS))
    since, until = utc_bounds(params.first_day, params.last_day, params.zone)
    scoped = scope_conditions(
        params.scope, ScopeTarget(params.tenant_id, calls.c.extension, start_utc=calls.c.start_utc)
    )
    if scoped is None:  # pragma: no cover - every scope applies to the raw calls
        raise ValidationError("scope", "the scope cannot be applied to the raw calls")
    band = sa.case(
        *((calls.c.ring_seconds < edge, n) for n, edge in enumerate(edges)), else_=len(edges)
    )
    not_answered = sa.not_(calls.c.answered)
    abandoned = sa.and_(not_answered, calls.c.completion == Completion.ABANDONED.value)

    def count(condition: Any) -> Any:
        return sa.func.sum(sa.case((condition, 1), else_=0))

    columns = cols.raw_columns()
    query = (
        sa.select(
            band.label("band"),
            sa.func.count().label("calls"),
            count(calls.c.answered).label("answered"),
            count(abandoned).label("abandoned"),
            sa.func.sum(sa.case((calls.c.answered, calls.c.ring_seconds), else_=0)).label("ring"),
        )
        .select_from(cols.raw_from(attributed=cols.needs_attribution(params.filters)))
        .where(
            calls.c.tenant_id == params.tenant_id,
            calls.c.start_utc >= since,
            calls.c.start_utc < until,
            calls.c.direction == Direction.IN.value,
            *cols.filter_conditions(columns, params.filters),
            *scoped,
        )
        .group_by(band)
    )
    found = {int(r.band): (r.calls, int(r.answered), int(r.abandoned), int(r.ring or 0))
             for r in conn.execute(query)}  # fmt: skip
    rows = []
    sums = [0, 0, 0, 0]
    for n, label in enumerate(band_labels(edges)):
        calls_, answered, abandoned_, ring = found.get(n, (0, 0, 0, 0))
        sums = [a + b for a, b in zip(sums, (calls_, answered, abandoned_, ring), strict=True)]
        rows.append(_row(label, calls_, answered, abandoned_, ring))
    return ReportTable("Inbound service", COLUMNS, rows, _row("Total", *sums))


def _row(label: str, calls_: int, answered: int, abandoned: int, ring: int) -> tuple[Any, ...]:
    return (label, calls_, answered, calls_ - answered - abandoned, abandoned,
            _percent(answered, calls_), _mean(ring, answered))  # fmt: skip


SPEC = ReportSpec(
    "inbound", "Inbound service", run, options=(BANDS,),
    description="Incoming calls answered, unanswered and abandoned by ring time, and the mean "
    "time to answer.",
)  # fmt: skip
