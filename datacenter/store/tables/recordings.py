"""Call recordings: their metadata, who may play them, and each tenant's policy (v0016).

Contract:

- ``recordings``: one row per recording, unique on ``(tenant_id, recording_id)`` (the agent's
  UUID), so a recording that arrives twice (a crash between sealing and deleting on the agent,
  or a re-sent batch) is stored once. ``record_id`` is the call it belongs to: set by the agent
  (``linked_by`` ``agent``) or matched at the data centre (``datacentre``); NULL while no call
  matches. ``status``: ``stored`` (``audio_path`` names the encrypted audio under
  ``recordings.root``), ``no_audio`` (nothing was recordable: ``reason`` says why, e.g. SRTP) or
  ``deleted`` (retention removed the audio; ``deleted_at``). ``metadata`` is the agent's JSON.
- ``recording_policies``: per tenant, how many days audio is kept (NULL: for ever) and whether
  technicians may play its recordings. No row: kept for ever, technicians may not.
- ``user_permissions``: what a ``tenant`` user may do beyond reading calls: ``recordings`` (play)
  and ``recordings_download``. Tenant admins may always do both.
"""

from __future__ import annotations

import sqlalchemy as sa

from datacenter.store.tables.metadata import (
    AGENT_ID_LENGTH,
    RECORD_ID_LENGTH,
    JSONDocument,
    UTCDateTime,
    metadata,
    tenant_fk,
)

RECORDING_ID_LENGTH = 64
RECORDING_STATUSES = ("stored", "no_audio", "deleted")
PERMISSIONS = ("recordings", "recordings_download")

recordings = sa.Table(
    "recordings",
    metadata,
    tenant_fk(primary_key=True),
    sa.Column("recording_id", sa.String(RECORDING_ID_LENGTH), primary_key=True),
    sa.Column("agent_id", sa.String(AGENT_ID_LENGTH), nullable=False),
    sa.Column("record_id", sa.String(RECORD_ID_LENGTH), nullable=True),
    sa.Column("linked_by", sa.String(16), nullable=True),
    sa.Column("start_time", UTCDateTime, nullable=True),
    sa.Column("end_time", UTCDateTime, nullable=True),
    sa.Column("duration_seconds", sa.Float, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("reason", sa.String(256), nullable=False, server_default=""),
    sa.Column("audio_path", sa.String(256), nullable=True),
    sa.Column("audio_bytes", sa.BigInteger, nullable=False),
    sa.Column("sip_path", sa.String(256), nullable=True),
    sa.Column("batch_file", sa.String(128), nullable=False),
    sa.Column("stored_at", UTCDateTime, nullable=False),
    sa.Column("deleted_at", UTCDateTime, nullable=True),
    sa.Column("metadata", JSONDocument, nullable=False),
    sa.CheckConstraint("status IN ('stored', 'no_audio', 'deleted')", name="status"),
    sa.Index(None, "tenant_id", "record_id"),
    sa.Index(None, "tenant_id", "start_time"),
)

recording_policies = sa.Table(
    "recording_policies",
    metadata,
    tenant_fk(primary_key=True),
    sa.Column("retention_days", sa.Integer, nullable=True),
    sa.Column("technicians_may_play", sa.Boolean, nullable=False),
    sa.CheckConstraint("retention_days IS NULL OR retention_days >= 1", name="retention_days"),
)

user_permissions = sa.Table(
    "user_permissions",
    metadata,
    tenant_fk(primary_key=True),
    sa.Column(
        "user_id",
        sa.Integer,
        sa.ForeignKey("users.user_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("permission", sa.String(32), primary_key=True),
    sa.CheckConstraint("permission IN ('recordings', 'recordings_download')", name="permission"),
)
