"""Report rollups: per tenant, tenant-local day and report dimension (migration: v0013_rollups).

Contract:

- One row per (tenant, local day, dimension values) with the measures of the calls that have
  them: ``calls``, ``talk_seconds``, ``billed_seconds``,
  ``cost_micro`` (the ``call_costs`` cost in millionths of the currency unit, so costs of
  versions with different decimals add up exactly) and ``rated`` (calls with a ``call_costs``
  row). ``currency`` is a key: a day's costs are never added across currencies. A call with no
  cost row (unrated) counts under carrier, class and currency ``""``.
- ``rollup_extension_days`` groups by direction, extension and answered: summaries by person,
  extension (and, through the directory, department and site) and direction.
- ``rollup_route_days`` groups by direction, trunk, carrier, destination class (the rated
  ``number_class``) and answered: summaries by trunk, carrier, destination class and direction.
- ``day`` is the call's start in the tenant's time zone. A tenant whose zone changes keeps the
  old days until ``datacenter rollups rebuild --tenant SLUG`` runs (docs/reports.md).
- Ingest, the completion of ``end_pending`` calls and re-rating change these rows in the same
  transaction as the calls and costs they summarise (``datacenter.store.rollups``); a row whose
  ``calls`` reaches 0 is deleted, so the tables equal a rebuild from the raw calls exactly.
"""

from __future__ import annotations

import sqlalchemy as sa

from datacenter.store.tables.icdr_columns import ENUM_LENGTH
from datacenter.store.tables.metadata import TEXT_LENGTH, metadata, tenant_fk
from datacenter.store.tables.rating import NAME_LENGTH

CLASS_LENGTH = 16  # call_costs.number_class

MEASURES = ("calls", "talk_seconds", "billed_seconds", "cost_micro", "rated")


def _measures() -> list[sa.Column[int]]:
    return [
        sa.Column(name, sa.Integer if name in ("calls", "rated") else sa.BigInteger,
                  nullable=False)
        for name in MEASURES
    ]  # fmt: skip


rollup_extension_days = sa.Table(
    "rollup_extension_days",
    metadata,
    tenant_fk(primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("direction", sa.String(ENUM_LENGTH), primary_key=True),
    sa.Column("extension", sa.String(TEXT_LENGTH), primary_key=True),
    sa.Column("answered", sa.Boolean, primary_key=True),
    sa.Column("currency", sa.String(3), primary_key=True),
    *_measures(),
)

rollup_route_days = sa.Table(
    "rollup_route_days",
    metadata,
    tenant_fk(primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("direction", sa.String(ENUM_LENGTH), primary_key=True),
    sa.Column("trunk", sa.String(TEXT_LENGTH), primary_key=True),
    sa.Column("carrier", sa.String(NAME_LENGTH), primary_key=True),
    sa.Column("number_class", sa.String(CLASS_LENGTH), primary_key=True),
    sa.Column("answered", sa.Boolean, primary_key=True),
    sa.Column("currency", sa.String(3), primary_key=True),
    *_measures(),
)
