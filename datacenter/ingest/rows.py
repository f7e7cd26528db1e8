"""The rows a batch stores: its ``calls`` rows and the daily rollup in ``call_days``.

- ``call_values`` builds one ``calls`` row in ``CALL_COLUMNS`` order (a test pins the order to
  the table); ``call_rows`` builds a batch's with the dialect's encoders
  (``datacenter.store.bulk``).
- ``unique_records`` keeps the first record of each id (a batch could repeat one).
- ``add_rollups`` adds the calls actually inserted to ``call_days`` (one upsert per batch) and,
  with their rating results, to the report rollups (``datacenter.store.rollups``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from datacenter.accounts.tenants import Tenant
from datacenter.rating.engine import RatingResult
from datacenter.store.bulk import json_text, time_encoder
from datacenter.store.call_rows import make_row_builder
from datacenter.store.dialect import dialect_insert
from datacenter.store.rollups import Deltas, facts_of_icdr
from datacenter.store.tables.core import call_days, calls
from shared.icdr import ICDR

CALL_COLUMNS = tuple(column.name for column in calls.columns)


def call_rows(
    conn: sa.Connection, tenant_id: int, records: Sequence[ICDR], landed_file: str, now: datetime
) -> list[tuple[Any, ...]]:
    """The ``calls`` rows of a batch, encoded for the connection's dialect."""
    encode_time = time_encoder(conn)
    ingested_at = encode_time(now)
    return [
        call_values(
            tenant_id,
            rec,
            landed_file,
            ingested_at,
            encode_time=encode_time,
            encode_json=json_text,
        )
        for rec in records
    ]


# One ``calls`` row, in ``CALL_COLUMNS`` order: generated from the ICDR's declaration, so a field
# added there reaches the row without an edit here (a test pins the order to the table).
call_values = make_row_builder(calls, own=("tenant_id", "landed_file", "ingested_at"))


def unique_records(records: Sequence[ICDR]) -> list[ICDR]:
    """First occurrence of each record id (a batch could repeat one; it is stored once)."""
    seen: dict[str, ICDR] = {}
    for rec in records:
        seen.setdefault(rec.record_id, rec)
    return list(seen.values())


def add_rollups(
    conn: sa.Connection,
    tenant: Tenant,
    records: Sequence[ICDR],
    results: Mapping[str, RatingResult],
) -> None:
    """Add these (inserted) calls to the tenant's rollups: ``call_days`` and the report rollups
    (with the cost of each call's rating result, ``results`` by record id)."""
    _add_report_rollups(conn, tenant, records, results)
    totals: dict[tuple[Any, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    zone = tenant.zone
    for rec in records:
        total = totals[(rec.start.astimezone(zone).date(), rec.direction.value)]
        total[0] += 1
        total[1] += int(rec.answered)
        total[2] += rec.talk_seconds
    if not totals:
        return
    insert = dialect_insert(conn, call_days)
    upsert = insert.on_conflict_do_update(
        index_elements=["tenant_id", "day", "direction"],
        set_={
            "calls": call_days.c.calls + insert.excluded.calls,
            "answered": call_days.c.answered + insert.excluded.answered,
            "talk_seconds": call_days.c.talk_seconds + insert.excluded.talk_seconds,
        },
    )
    conn.execute(
        upsert,
        [
            {
                "tenant_id": tenant.tenant_id,
                "day": day,
                "direction": direction,
                "calls": n,
                "answered": answered,
                "talk_seconds": talk,
            }
            for (day, direction), (n, answered, talk) in sorted(totals.items())
        ],
    )


def _add_report_rollups(
    conn: sa.Connection,
    tenant: Tenant,
    records: Sequence[ICDR],
    results: Mapping[str, RatingResult],
) -> None:
    deltas = Deltas()
    for rec in records:
        deltas.add(facts_of_icdr(rec, results.get(rec.record_id), tenant.zone))
    deltas.write(conn, tenant.tenant_id)
