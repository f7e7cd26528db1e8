"""Cost and fraud alarm tables on the store's one ``MetaData`` (migration: v0015_cost_alarms).

Contract:

- ``cost_alarm_rules``: one row per tenant: the rules document as the tenant admin wrote it
  (TOML, ``datacenter.cost_alarms.rules``; stored only once it parses) and the tenant's webhook
  signing secret (generated, never typed in).
- ``cost_alarm_marks``: per tenant, how far evaluation got: the newest ``calls.ingested_at`` and
  ``call_costs.rated_at`` already evaluated. A pass re-reads an overlap before each mark
  (``datacenter.cost_alarms.runner``), which is harmless because evaluation is idempotent.
- ``cost_alarms``: one row per (tenant, rule, subject, period), unique, so the store itself
  refuses a second alarm for the same rule, subject (extension, number or "" for the whole
  tenant) and period (a local day or hour). Delivery state per channel: how many of its calls
  each channel has told about, attempts and the earliest time of the next try.
- ``cost_alarm_calls``: the calls that triggered an alarm, unique per alarm: a call evaluated
  again attaches nothing new. They go with their alarm.

``tenant_id`` leads every key, as everywhere in the store.
"""

from __future__ import annotations

import sqlalchemy as sa

from datacenter.store.tables.metadata import (
    RECORD_ID_LENGTH,
    TEXT_LENGTH,
    UTCDateTime,
    metadata,
    tenant_fk,
)

ALARM_ID_LENGTH = 32  # uuid4 hex
RULE_ID_LENGTH = 64
KIND_LENGTH = 32
PERIOD_LENGTH = 16  # "2026-03-02" or "2026-03-02T14"
SECRET_LENGTH = 64  # 32 random bytes, hex
ACTOR_LENGTH = 254

cost_alarm_rules = sa.Table(
    "cost_alarm_rules",
    metadata,
    tenant_fk(primary_key=True),
    sa.Column("document", sa.Text, nullable=False),
    sa.Column("webhook_secret", sa.String(SECRET_LENGTH), nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("updated_by", sa.String(ACTOR_LENGTH), nullable=False),
)

cost_alarm_marks = sa.Table(
    "cost_alarm_marks",
    metadata,
    tenant_fk(primary_key=True),
    sa.Column("ingested_through", UTCDateTime, nullable=True),
    sa.Column("rated_through", UTCDateTime, nullable=True),
    sa.Column("evaluated_at", UTCDateTime, nullable=False),
)

cost_alarms = sa.Table(
    "cost_alarms",
    metadata,
    tenant_fk(primary_key=True),
    sa.Column("alarm_id", sa.String(ALARM_ID_LENGTH), primary_key=True),
    sa.Column("rule_id", sa.String(RULE_ID_LENGTH), nullable=False),
    sa.Column("kind", sa.String(KIND_LENGTH), nullable=False),
    sa.Column("subject", sa.String(TEXT_LENGTH), nullable=False),
    sa.Column("period", sa.String(PERIOD_LENGTH), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("raised_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("calls", sa.Integer, nullable=False),
    sa.Column("acknowledged_at", UTCDateTime, nullable=True),
    sa.Column("acknowledged_by", sa.String(ACTOR_LENGTH), nullable=True),
    sa.Column("email_calls", sa.Integer, nullable=False),  # calls the last email listed
    sa.Column("email_attempts", sa.Integer, nullable=False),
    sa.Column("email_next_at", UTCDateTime, nullable=True),
    sa.Column("email_error", sa.Text, nullable=False),
    sa.Column("webhook_calls", sa.Integer, nullable=False),
    sa.Column("webhook_attempts", sa.Integer, nullable=False),
    sa.Column("webhook_next_at", UTCDateTime, nullable=True),
    sa.Column("webhook_error", sa.Text, nullable=False),
    sa.UniqueConstraint("tenant_id", "rule_id", "subject", "period"),
    sa.Index(None, "tenant_id", "raised_at"),
)

cost_alarm_calls = sa.Table(
    "cost_alarm_calls",
    metadata,
    tenant_fk(primary_key=True),
    sa.Column("alarm_id", sa.String(ALARM_ID_LENGTH), primary_key=True),
    sa.Column("record_id", sa.String(RECORD_ID_LENGTH), primary_key=True),
    sa.Column("attached_at", UTCDateTime, nullable=False),
    sa.ForeignKeyConstraint(
        ["tenant_id", "alarm_id"],
        ["cost_alarms.tenant_id", "cost_alarms.alarm_id"],
        ondelete="CASCADE",
    ),
)
