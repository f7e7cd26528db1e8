"""How PostgreSQL lays out the tables that grow with calls: monthly range partitions (0018).

Contract (PostgreSQL only; SQLite keeps the tables exactly as ``core`` and ``rating`` declare
them, and ``call_keys`` does not exist there):

- ``calls``, ``call_costs``, ``unrated_calls`` and ``call_cost_history`` are ``PARTITION BY RANGE
  (start_utc)``: one partition per UTC month named ``<table>_yYYYYmMM`` and a DEFAULT partition
  ``<table>_default`` for any call outside them (a converted store's old table becomes it).
- A unique key of a partitioned table must contain the partition key, so their primary keys
  gain ``start_utc`` (``PARTITIONED_KEYS``). What was unique on ``(tenant_id, record_id)`` is
  now kept by ``call_keys``, one row per call ever stored, with the UTC month of its start: its
  primary key is what makes ingest exactly-once (``store/bulk.py``), and it is kept when a month
  is dropped, so a batch re-sent after retention is still known as stored.
- The result tables' foreign keys point at ``call_keys`` (a foreign key to a partitioned table
  would have to name its whole key), ``ON DELETE CASCADE`` as before.

``call_keys`` lives on its own ``MetaData`` so ``create_all``, Alembic's comparison and the
SQLite store never see it.
"""

from __future__ import annotations

import sqlalchemy as sa

from datacenter.store.tables.metadata import NAMING_CONVENTION, RECORD_ID_LENGTH

postgres_metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

call_keys = sa.Table(
    "call_keys",
    postgres_metadata,
    sa.Column("tenant_id", sa.Integer, primary_key=True),
    sa.Column("record_id", sa.String(RECORD_ID_LENGTH), primary_key=True),
    sa.Column("start_month", sa.Date, nullable=False),  # first day of the call's UTC month
)

# Parent first: the order partitions are created in (and the reverse, dropped in).
PARTITIONED_TABLES = ("calls", "call_costs", "unrated_calls", "call_cost_history")
RESULT_TABLES = PARTITIONED_TABLES[1:]
PARTITION_KEY = "start_utc"
PARTITIONED_KEYS = {
    "calls": ("tenant_id", "record_id", "start_utc"),
    "call_costs": ("tenant_id", "record_id", "start_utc"),
    "unrated_calls": ("tenant_id", "record_id", "start_utc"),
    "call_cost_history": ("tenant_id", "record_id", "changed_at", "start_utc"),
}


def result_key(dialect_name: str) -> tuple[str, ...]:
    """The conflict target of ``call_costs``/``unrated_calls`` upserts on this dialect."""
    if dialect_name == "postgresql":
        return PARTITIONED_KEYS["call_costs"]
    return ("tenant_id", "record_id")
