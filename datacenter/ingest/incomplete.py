"""Completing incomplete calls at ingest: a stored ``end_pending`` call replaced by its end.

A source may send a call before it has ended (Lync: a session without an end time yet), flagged
``end_pending`` (docs/icdr.md). Its complete version arrives later under the same ``record_id``,
which ingest would otherwise count as a duplicate and drop.

Contract of ``complete_stored_calls`` (called by the ingest store step, inside its transaction,
after the batch's new rows are inserted):

- A record of the batch replaces the stored call when it was not inserted (its ``record_id`` is
  stored already), carries no ``end_pending`` flag, and the stored row does. Nothing else is
  ever replaced: a complete call stays as first stored, and an incomplete version never
  replaces anything.
- The call row takes every value of the new version (times, talk, flags, raw, landed file...).
- The daily rollup and the report rollups move from the old values (and cost) to the new ones
  (same call count).
- The call's rating is replaced by the result the batch's rating computed for it: the cost row
  is written and the ``END_PENDING`` queue row goes (``write_results``, as re-rating does). A
  complete version with another start moves its result rows' ``start_utc`` (and, on PostgreSQL,
  its ``call_keys`` month) with it first, so each stays in its call's month partition.
- All of it commits or rolls back with the batch. Returns the record ids replaced.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from datacenter.accounts.tenants import Tenant
from datacenter.rating.engine import END_PENDING_FLAG
from datacenter.rating.store import BatchRating, write_results
from datacenter.store.dialect import dialect_insert
from datacenter.store.partitions import move_call_start
from datacenter.store.rollups import Deltas, stored_facts
from datacenter.store.tables.core import call_days, calls
from shared.icdr import ICDR

LOOKUP_CHUNK = 500


def complete_stored_calls(
    conn: sa.Connection,
    tenant: Tenant,
    records: Sequence[ICDR],
    inserted: Collection[str],
    rating: BatchRating,
    *,
    row_of: Callable[[ICDR], Mapping[str, Any]],
    now: datetime,
) -> list[str]:
    """Replace stored ``end_pending`` calls by this batch's complete versions (module doc)."""
    candidates = {
        rec.record_id: rec
        for rec in records
        if rec.record_id not in inserted and END_PENDING_FLAG not in rec.flags
    }
    if not candidates:
        return []
    stale = _stored_incomplete(conn, tenant.tenant_id, list(candidates))
    before = stored_facts(conn, tenant.tenant_id, stale, tenant.zone)
    rollup: dict[tuple[date, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for record_id, old in stale.items():
        new = candidates[record_id]
        values = {k: v for k, v in row_of(new).items() if k not in ("tenant_id", "record_id")}
        conn.execute(
            calls.update()
            .where(calls.c.tenant_id == tenant.tenant_id, calls.c.record_id == record_id)
            .values(**values)
        )
        _move(rollup, (old.start_utc.astimezone(tenant.zone).date(), old.direction), old, -1)
        _move(rollup, (new.start.astimezone(tenant.zone).date(), new.direction.value), new, 1)
    _write_rollup(conn, tenant.tenant_id, rollup)
    starts = {rid: candidates[rid].start for rid in stale}
    for record_id, old in stale.items():
        if old.start_utc != starts[record_id]:  # its results follow it to its new month
            move_call_start(conn, tenant.tenant_id, record_id, starts[record_id])
    write_results(
        conn, tenant.tenant_id, [rating.results[rid] for rid in stale], starts=starts, now=now
    )
    _move_report_rollups(conn, tenant, before)
    return sorted(stale)


def _move_report_rollups(conn: sa.Connection, tenant: Tenant, before: Mapping[str, Any]) -> None:
    """The replaced calls' report rollups: from their facts before to the ones stored now."""
    after = stored_facts(conn, tenant.tenant_id, before, tenant.zone)
    deltas = Deltas()
    for record_id, old in before.items():
        deltas.move(old, after[record_id])
    deltas.write(conn, tenant.tenant_id)


def _stored_incomplete(
    conn: sa.Connection, tenant_id: int, record_ids: list[str]
) -> dict[str, Any]:
    """The stored calls among ``record_ids`` that are flagged ``end_pending``."""
    found: dict[str, Any] = {}
    for start in range(0, len(record_ids), LOOKUP_CHUNK):
        chunk = record_ids[start : start + LOOKUP_CHUNK]
        query = sa.select(
            calls.c.record_id, calls.c.flags, calls.c.start_utc, calls.c.direction,
            calls.c.answered, calls.c.talk_seconds,
        ).where(calls.c.tenant_id == tenant_id, calls.c.record_id.in_(chunk))  # fmt: skip
        for row in conn.execute(query):
            if END_PENDING_FLAG in (row.flags or ()):
                found[row.record_id] = row
    return found


def _move(
    rollup: dict[tuple[date, str], list[int]], key: tuple[date, str], call: Any, sign: int
) -> None:
    total = rollup[key]
    total[0] += sign
    total[1] += sign * int(call.answered)
    total[2] += sign * int(call.talk_seconds)


def _write_rollup(
    conn: sa.Connection, tenant_id: int, rollup: Mapping[tuple[date, str], list[int]]
) -> None:
    changes = [
        {"tenant_id": tenant_id, "day": day, "direction": direction, "calls": n,
         "answered": answered, "talk_seconds": talk}
        for (day, direction), (n, answered, talk) in sorted(rollup.items())
        if (n, answered, talk) != (0, 0, 0)
    ]  # fmt: skip
    if not changes:
        return
    insert = dialect_insert(conn, call_days)
    conn.execute(
        insert.on_conflict_do_update(
            index_elements=["tenant_id", "day", "direction"],
            set_={
                name: call_days.c[name] + insert.excluded[name]
                for name in ("calls", "answered", "talk_seconds")
            },
        ),
        changes,
    )
