"""Rating's tables, on the store's one ``MetaData`` (migration: v0002_rating).

Contract:

- ``tenant_id`` leads every key, as in the rest of the store.
- Configuration: ``tariff_versions`` holds each imported tariff version whole (settings,
  calendar and the canonical CSV rate deck with its SHA-256), so a version can be exported,
  compared and cached by content; ``dial_plans`` and ``route_maps`` hold one document per site
  (agent), with agent ``*`` as the tenant-wide default.
- Results: every stored call has exactly one of a ``call_costs`` row (rated, possibly zero with
  a reason) or an ``unrated_calls`` row (the unrated queue, with reason and attempt counts).
  Both reference ``calls`` and go with it. Costs live beside ``calls`` rather than in it so a
  re-rate rewrites a narrow row, not the call, and so ingest's call insert is untouched.
- ``call_costs.start_utc`` is always its call's ``calls.start_utc`` (every writer passes the
  call's start: ingest, re-rate, completion of an end-pending call), so a cost-range filter
  reads the costs of a period by the ``(tenant_id, start_utc, cost_minor)`` index and joins
  only the calls that match; without a period it reads the matching costs by the
  ``(tenant_id, decimals, cost_minor)`` index (0020: costs compare in each row's minor units).
- ``call_cost_history`` keeps every change a re-rate made: old -> new cost, version and the old
  explanation, for audit. A re-rate that changes nothing writes nothing.
- The three result tables carry their call's ``start_utc`` (migration 0018): on PostgreSQL they
  are partitioned by month with ``calls`` (``tables/partitioning.py``), their keys then include
  it and their foreign keys point at ``call_keys``; on SQLite they are as declared here.
"""

from __future__ import annotations

import sqlalchemy as sa

from datacenter.store.tables.metadata import JSONDocument, UTCDateTime, metadata, tenant_fk

TENANT_DEFAULT_SITE = "*"  # dial_plans / route_maps row that applies to agents without their own
NAME_LENGTH = 64
E164_LENGTH = 16
REASON_LENGTH = 32


def _calls_fk() -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["tenant_id", "record_id"], ["calls.tenant_id", "calls.record_id"], ondelete="CASCADE"
    )


tariff_versions = sa.Table(
    "tariff_versions",
    metadata,
    tenant_fk(primary_key=True),
    sa.Column("carrier", sa.String(NAME_LENGTH), primary_key=True),
    sa.Column("version", sa.String(NAME_LENGTH), primary_key=True),
    sa.Column("valid_from", UTCDateTime, nullable=False),
    sa.Column("valid_to", UTCDateTime, nullable=True),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("decimals", sa.SmallInteger, nullable=False),
    sa.Column("rounding", sa.String(16), nullable=False),
    sa.Column("band_rule", sa.String(16), nullable=False),
    sa.Column("max_band_spans", sa.Integer, nullable=False),
    sa.Column("calendar", JSONDocument, nullable=True),  # None: a single band
    sa.Column("rates_csv", sa.Text, nullable=False),
    sa.Column("content_sha256", sa.String(64), nullable=False),
    sa.Column("destinations", sa.Integer, nullable=False),
    sa.Column("imported_at", UTCDateTime, nullable=False),
)

dial_plans = sa.Table(
    "dial_plans",
    metadata,
    tenant_fk(primary_key=True),
    sa.Column("agent_id", sa.String(64), primary_key=True),
    sa.Column("plan", JSONDocument, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

route_maps = sa.Table(
    "route_maps",
    metadata,
    tenant_fk(primary_key=True),
    sa.Column("agent_id", sa.String(64), primary_key=True),
    sa.Column("rules", JSONDocument, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

call_costs = sa.Table(
    "call_costs",
    metadata,
    sa.Column("tenant_id", sa.Integer, primary_key=True),
    sa.Column("record_id", sa.String(128), primary_key=True),
    sa.Column("cost_minor", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),  # "" when no tariff was involved
    sa.Column("decimals", sa.SmallInteger, nullable=False),
    sa.Column("number_class", sa.String(16), nullable=False),
    sa.Column("e164", sa.String(E164_LENGTH), nullable=False),
    sa.Column("carrier", sa.String(NAME_LENGTH), nullable=False),
    sa.Column("destination", sa.String(200), nullable=False),
    sa.Column("prefix", sa.String(E164_LENGTH), nullable=False),
    sa.Column("tariff_version", sa.String(NAME_LENGTH), nullable=False),
    sa.Column("billed_seconds", sa.Integer, nullable=False),
    sa.Column("bands", JSONDocument, nullable=False),
    sa.Column("zero_reason", sa.String(REASON_LENGTH), nullable=True),
    sa.Column("explanation", JSONDocument, nullable=False),
    sa.Column("engine_version", sa.String(16), nullable=False),
    sa.Column("rated_at", UTCDateTime, nullable=False),
    # The call's calls.start_utc, copied (0017): a cost range is read from this table by
    # (tenant, start, cost) and joined to the matching calls only; on PostgreSQL it is also the
    # partition key (0018).
    sa.Column("start_utc", UTCDateTime, nullable=False),
    _calls_fk(),
    sa.Index(None, "tenant_id", "carrier", "tariff_version"),
    sa.Index(None, "tenant_id", "rated_at"),  # cost alarms read new and re-rated costs (0015)
    sa.Index(None, "tenant_id", "start_utc", "cost_minor"),  # the call list's cost range (0017)
    sa.Index(None, "tenant_id", "decimals", "cost_minor"),  # a cost range without dates (0020)
)

call_cost_history = sa.Table(
    "call_cost_history",
    metadata,
    sa.Column("tenant_id", sa.Integer, primary_key=True),
    sa.Column("record_id", sa.String(128), primary_key=True),
    sa.Column("changed_at", UTCDateTime, primary_key=True),
    sa.Column("old_cost_minor", sa.BigInteger, nullable=True),  # None: was unrated
    sa.Column("old_currency", sa.String(3), nullable=True),
    sa.Column("old_tariff_version", sa.String(NAME_LENGTH), nullable=True),
    sa.Column("old_explanation", JSONDocument, nullable=True),
    sa.Column("new_cost_minor", sa.BigInteger, nullable=True),  # None: now unrated
    sa.Column("new_currency", sa.String(3), nullable=True),
    sa.Column("new_tariff_version", sa.String(NAME_LENGTH), nullable=True),
    sa.Column("cause", sa.String(REASON_LENGTH), nullable=False),  # "rerate", "retry"
    sa.Column("start_utc", UTCDateTime, nullable=False),  # the call's (0018)
    _calls_fk(),
)

unrated_calls = sa.Table(
    "unrated_calls",
    metadata,
    sa.Column("tenant_id", sa.Integer, primary_key=True),
    sa.Column("record_id", sa.String(128), primary_key=True),
    sa.Column("reason", sa.String(REASON_LENGTH), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("explanation", JSONDocument, nullable=False),
    sa.Column("first_attempt_at", UTCDateTime, nullable=False),
    sa.Column("last_attempt_at", UTCDateTime, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("start_utc", UTCDateTime, nullable=False),  # the call's (0018)
    _calls_fk(),
    sa.Index(None, "tenant_id", "reason"),
)
