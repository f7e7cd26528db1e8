"""Polling-health tables on the store's one ``MetaData`` (migration: v0005_health).

Contract:

- ``agent_heartbeats``: every heartbeat document an agent sent (``shared.heartbeat``), keyed
  ``(tenant_id, agent_id, sent_at)``: the same document landing twice is stored once. Beside the
  whole document it keeps the columns the health model filters on: when the file landed
  (``received_at``, the landing area's clock), how late it arrived (``delay_seconds``, corrected
  by the agent's measured clock offset), the uplink failures it reports and the agent's state.
  ``datacenter.health.heartbeats`` writes it (ingest) and prunes it after ``health.heartbeat_retention_days``.
- The newest row per agent is the agent's current picture; the rows of the last hours are its
  timeline. Last upload and last batch sequence stay where ingest keeps them (``agents``,
  ``landed_files``).

``tenant_id`` leads the key, as everywhere in the store.
"""

from __future__ import annotations

import sqlalchemy as sa

from datacenter.store.tables.metadata import AGENT_ID_LENGTH, JSONDocument, UTCDateTime, metadata

FILE_NAME_LENGTH = 100
VERSION_LENGTH = 64
STATE_LENGTH = 16

agent_heartbeats = sa.Table(
    "agent_heartbeats",
    metadata,
    sa.Column(
        "tenant_id",
        sa.Integer,
        sa.ForeignKey("tenants.tenant_id", ondelete="RESTRICT"),
        primary_key=True,
    ),
    sa.Column("agent_id", sa.String(AGENT_ID_LENGTH), primary_key=True),
    sa.Column("sent_at", UTCDateTime, primary_key=True),  # the agent's clock
    sa.Column("received_at", UTCDateTime, nullable=False),  # the landing area's clock
    sa.Column("stored_at", UTCDateTime, nullable=False),
    sa.Column("file_name", sa.String(FILE_NAME_LENGTH), nullable=False),
    sa.Column("agent_state", sa.String(STATE_LENGTH), nullable=False),
    sa.Column("agent_version", sa.String(VERSION_LENGTH), nullable=False),
    sa.Column("delay_seconds", sa.Float, nullable=False),
    sa.Column("uplink_failures", sa.Integer, nullable=False),
    sa.Column("document", JSONDocument, nullable=False),  # Heartbeat.to_dict()
    sa.Index(None, "tenant_id", "received_at"),  # recent rows per tenant; pruning
)
