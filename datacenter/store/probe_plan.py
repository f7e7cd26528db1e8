"""PostgreSQL: join a few matching costs to their calls by probing each call's own month.

A cost range without dates ("at least 1.50, ever") finds its costs by ``call_costs``' own
``(tenant_id, decimals, cost_minor)`` index: 7,619 of a 1,000,000-call tenant in a few ms. The
totals then need each one's call (its talk time, the viewer's scope). Joined by the calls' key,
PostgreSQL hashes every call the tenant ever made, month partition after month partition: 340
ms (benchmarks/portal.py, 1,000,000 of 1,500,000 calls). Joined by the start as well (the
partition key, equal on both rows: every writer copies it), each probe reads the one month that
holds its call, pruned when it runs: 8 us a match, 83 ms in all. The planner cannot count that
pruning in advance (it prices a probe as a look in every month, 13 times too dear), so it keeps
the hash join whatever the numbers.

So the store decides, from the planner's own row estimates, which costs less: probing each
match, or hashing the tenant's calls (``PROBE_RATIO`` compares the two per row, measured on
that store), and when probing turns hash and merge joins off for that one statement (``SET
LOCAL``, put back right after it). With a period both sides are pruned to its months before the
query runs, and the planner's own choice stands. SQLite has no partitions: nothing changes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

from datacenter.store.tables.core import calls
from datacenter.store.tables.rating import call_costs

# One probe (an index look-up in one month's partition) costs about as much as hashing this
# many of the tenant's calls: 8 us a probe against 0.34 us a call on the benchmark's store, and
# the hash side also scans other tenants' rows in the same partitions.
PROBE_RATIO = 25
_JOIN_SETTINGS = ("enable_hashjoin", "enable_mergejoin")


def worth_probing(
    conn: sa.Connection, tenant_id: int, cost_conditions: Sequence[sa.ColumnElement[bool]]
) -> bool:
    """True on PostgreSQL when probing each matching cost's call is the cheaper join."""
    if conn.dialect.name != "postgresql" or not cost_conditions:
        return False
    matches = _estimated_rows(
        conn,
        sa.select(sa.literal(1))
        .select_from(call_costs)
        .where(call_costs.c.tenant_id == tenant_id, *cost_conditions),
    )
    tenant_calls = _estimated_rows(
        conn, sa.select(sa.literal(1)).select_from(calls).where(calls.c.tenant_id == tenant_id)
    )
    return matches * PROBE_RATIO <= tenant_calls


@contextmanager
def probing_joins(conn: sa.Connection, probing: bool) -> Iterator[None]:
    """Within: the statements run with hash and merge joins off (``probing`` only).

    Not put back when the statement fails: the failed transaction is rolled back, and the
    ``SET LOCAL`` with it.
    """
    if not probing or conn.dialect.name != "postgresql":
        yield
        return
    for name in _JOIN_SETTINGS:
        conn.exec_driver_sql(f"SET LOCAL {name} = off")
    yield
    for name in _JOIN_SETTINGS:
        conn.exec_driver_sql(f"SET LOCAL {name} TO DEFAULT")


def _estimated_rows(conn: sa.Connection, query: sa.Select[Any]) -> float:
    """The planner's estimate of the rows ``query`` returns (planned, not run)."""
    compiled = query.compile(dialect=conn.dialect)
    plan = conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {compiled}", compiled.params).scalar_one()
    return float(plan[0]["Plan"]["Plan Rows"])
