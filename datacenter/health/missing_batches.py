"""Missing batches: which of an agent's batch numbers the data centre does not hold.

Contract:

- An agent numbers its batches 1, 2, 3, ... and never reuses or skips a number (the spool keeps
  counting after a purge). So every number from 1 up to the highest that has landed should be
  in ``landed_files`` as ``stored`` or ``duplicate`` (its calls are in the store) or ``claimed``
  (a worker is storing it now). Any other number is **missing**: never landed (lost, or still
  on the appliance), or quarantined (landed, but nothing of it was stored).
- ``missing_batches(conn, tenant_id, agent_id)`` returns those numbers as ranges, oldest first.
  A re-sent batch fills its gap when it is stored; its calls that are already stored count as
  duplicates and are never stored twice (ingest's unique key on ``(tenant_id, record_id)``).
- The query reads only the agent's rows of ``landed_files`` through the
  ``(tenant_id, agent_id, sequence)`` index and returns the gaps, not the rows.

The technician console's transport check (``datacenter.health.facts``) looks at recent landings for
its alarm; this is the exact, all-time answer for `datacenter agent list` and re-send requests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from datacenter.store.tables.core import landed_files
from shared.envelope import RECORDINGS_SUFFIX

PRESENT_STATUSES = ("stored", "duplicate", "claimed")
FIRST_SEQUENCE = 1


@dataclass(frozen=True, slots=True)
class MissingRange:
    """Batch numbers ``first``..``last`` (inclusive) of one agent are not stored."""

    first: int
    last: int

    @property
    def count(self) -> int:
        return self.last - self.first + 1

    def __str__(self) -> str:
        return str(self.first) if self.first == self.last else f"{self.first}-{self.last}"


def missing_batches(conn: sa.Connection, tenant_id: int, agent_id: str) -> list[MissingRange]:
    """Every batch number of the agent, up to the highest landed, that is not stored."""
    lf = landed_files
    # Call batches only: recordings batches (.ccr) are numbered in their own series.
    mine = (
        lf.c.tenant_id == tenant_id,
        lf.c.agent_id == agent_id,
        lf.c.file_name.not_like(f"%{RECORDINGS_SUFFIX}%"),
    )
    highest = conn.execute(sa.select(sa.func.max(lf.c.sequence)).where(*mine)).scalar_one()
    if highest is None:
        return []
    present = (
        sa.select(lf.c.sequence)
        .where(*mine, lf.c.status.in_(PRESENT_STATUSES))
        .distinct()  # a conflicting file kept in quarantine shares its number with the stored one
        .subquery()
    )
    previous = sa.func.lag(present.c.sequence).over(order_by=present.c.sequence)
    ranked = sa.select(present.c.sequence, previous.label("previous")).subquery()
    gaps = conn.execute(
        sa.select(ranked.c.previous, ranked.c.sequence)
        .where(sa.or_(ranked.c.previous.is_(None), ranked.c.sequence - ranked.c.previous > 1))
        .order_by(ranked.c.sequence)
    ).all()
    top = conn.execute(sa.select(sa.func.max(present.c.sequence))).scalar_one()
    ranges = [
        MissingRange((FIRST_SEQUENCE - 1 if prev is None else prev) + 1, seq - 1)
        for prev, seq in gaps
    ]
    ranges.append(MissingRange((top or FIRST_SEQUENCE - 1) + 1, highest))
    return [r for r in ranges if r.count > 0]


def describe(ranges: Sequence[MissingRange]) -> str:
    """``"2,5-7"``, or ``"-"`` when nothing is missing (one field of a tab-separated listing)."""
    return ",".join(str(r) for r in ranges) or "-"
