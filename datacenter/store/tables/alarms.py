"""Alarm tables on the store's one ``MetaData`` (migration: v0004_alarms).

Contract:

- ``technician_tenants``: which tenants a technician looks after (admins look after all and need
  no rows). A technician without rows sees no sites and receives no alarm email.
- ``alarms``: one row per alarm *episode*: raised when a site (or one of its sources) enters a
  state other than ok, closed (``cleared_at``) when it is ok again. ``open_key`` is
  ``AGENT/SOURCE/STATE`` while the alarm is open and NULL once cleared; the unique key
  ``(tenant_id, open_key)`` makes the store itself refuse a second open alarm for the same
  site, source and state (NULLs never collide, so closed episodes pile up freely as history).
- ``alarm_events``: the history, append-only: raised, notified, acknowledged, silenced,
  unsilenced, cleared, with who did it and the note. It goes with its alarm.
- ``technician_digests``: when each technician last received the daily digest; the next one
  lists what changed since then.

``tenant_id`` leads the keys of the tenant-owned tables, as everywhere in the store.
"""

from __future__ import annotations

import sqlalchemy as sa

from datacenter.store.tables.metadata import (
    AGENT_ID_LENGTH,
    TEXT_LENGTH,
    UTCDateTime,
    metadata,
    tenant_fk,
)

ALARM_ID_LENGTH = 32  # uuid4 hex
STATE_LENGTH = 32
OPEN_KEY_LENGTH = AGENT_ID_LENGTH + TEXT_LENGTH + STATE_LENGTH + 2
ACTOR_LENGTH = 254  # an email, or "scheduler"
EVENT_KINDS = ("raised", "notified", "acknowledged", "silenced", "unsilenced", "cleared")


technician_tenants = sa.Table(
    "technician_tenants",
    metadata,
    tenant_fk(primary_key=True),
    sa.Column(
        "user_id",
        sa.Integer,
        sa.ForeignKey("users.user_id", ondelete="CASCADE"),
        primary_key=True,
        index=True,
    ),
    sa.Column("added_at", UTCDateTime, nullable=False),
)

alarms = sa.Table(
    "alarms",
    metadata,
    tenant_fk(primary_key=True),
    sa.Column("alarm_id", sa.String(ALARM_ID_LENGTH), primary_key=True),
    sa.Column("agent_id", sa.String(AGENT_ID_LENGTH), nullable=False),
    sa.Column("source_id", sa.String(TEXT_LENGTH), nullable=False),  # "" = the whole site
    sa.Column("state", sa.String(STATE_LENGTH), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("open_key", sa.String(OPEN_KEY_LENGTH), nullable=True),
    sa.Column("raised_at", UTCDateTime, nullable=False),
    sa.Column("last_seen_at", UTCDateTime, nullable=False),
    sa.Column("cleared_at", UTCDateTime, nullable=True),
    sa.Column("notified_at", UTCDateTime, nullable=True),
    sa.Column("notifications", sa.Integer, nullable=False),
    sa.Column("acknowledged_at", UTCDateTime, nullable=True),
    sa.Column("acknowledged_by", sa.String(ACTOR_LENGTH), nullable=True),
    sa.Column("silenced_until", UTCDateTime, nullable=True),
    sa.Column("note", sa.Text, nullable=False),
    sa.UniqueConstraint("tenant_id", "open_key"),
    sa.Index(None, "tenant_id", "agent_id", "raised_at"),
)

alarm_events = sa.Table(
    "alarm_events",
    metadata,
    tenant_fk(primary_key=True),
    sa.Column("event_id", sa.String(ALARM_ID_LENGTH), primary_key=True),
    sa.Column("alarm_id", sa.String(ALARM_ID_LENGTH), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False, index=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("actor", sa.String(ACTOR_LENGTH), nullable=False),
    sa.Column("note", sa.Text, nullable=False),
    sa.ForeignKeyConstraint(
        ["tenant_id", "alarm_id"], ["alarms.tenant_id", "alarms.alarm_id"], ondelete="CASCADE"
    ),
    sa.Index(None, "tenant_id", "alarm_id"),
)

technician_digests = sa.Table(
    "technician_digests",
    metadata,
    sa.Column(
        "user_id",
        sa.Integer,
        sa.ForeignKey("users.user_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("last_sent_at", UTCDateTime, nullable=False),
    sa.Column("last_day", sa.Date, nullable=False),  # digest.timezone's day it was sent for
)
