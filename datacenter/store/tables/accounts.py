"""Who may see what, and how sign-in holds (migration: v0012_accounts).

Contract:

- ``user_scopes``: what part of its tenant a ``tenant`` user sees. No row means the whole
  organisation; rows of one kind (``site``, ``department``, ``cost_centre``, ``extension``) limit
  the user to calls whose extension is one of the values, or belonged (in ``directory_entries``,
  at the call's start) to one of the sites / departments / cost centres. Rows of several kinds
  add up (a call matching any row is in scope). Tenant admins always see the whole tenant.
- ``user_sessions``: one row per signed-in browser. The cookie holds a random session id; the
  store keeps only its SHA-256 (``session_hash``), so a copy of the table signs nobody in. A
  session is live while ``ended_at`` is NULL, it was used within the idle timeout and is younger
  than the absolute lifetime.
- ``login_attempts``: every sign-in attempt, by normalised email and source address, so the
  throttle holds across gunicorn workers and machines (not tenant-owned: the email may be unknown).
- ``audit_log``: sign-ins, failures, lock-outs, admin changes; ``tenant_id`` is NULL for events
  of staff accounts. Tenant admins read their tenant's rows.
- ``recovery_codes``: one-use TOTP recovery codes, argon2 hashes like passwords.
- ``number_masks``: how many trailing digits of external numbers are hidden for a tenant's users
  of one role (``tenant``, ``tenant_admin`` or ``technician``); no row hides nothing.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from datacenter.store.tables.metadata import (
    JSONDocument,
    UTCDateTime,
    metadata,
    tenant_fk,
)

SCOPE_KINDS = ("site", "department", "cost_centre", "extension")
MASKED_ROLES = ("tenant", "tenant_admin", "technician")


def _user_fk(**kwargs: Any) -> sa.Column[int]:
    return sa.Column(
        "user_id", sa.Integer, sa.ForeignKey("users.user_id", ondelete="CASCADE"), **kwargs
    )


user_scopes = sa.Table(
    "user_scopes",
    metadata,
    tenant_fk(primary_key=True),
    _user_fk(primary_key=True),
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("value", sa.String(200), primary_key=True),
    sa.CheckConstraint("kind IN ('site', 'department', 'cost_centre', 'extension')", name="kind"),
)

user_sessions = sa.Table(
    "user_sessions",
    metadata,
    sa.Column("session_hash", sa.String(64), primary_key=True),
    _user_fk(nullable=False, index=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("last_seen_at", UTCDateTime, nullable=False),
    sa.Column("ended_at", UTCDateTime, nullable=True),
    sa.Column("ended_reason", sa.String(32), nullable=True),
    sa.Column("address", sa.String(64), nullable=False, server_default=""),
)

login_attempts = sa.Table(
    "login_attempts",
    metadata,
    sa.Column("attempt_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("email", sa.String(254), nullable=False),
    sa.Column("address", sa.String(64), nullable=False),
    sa.Column("succeeded", sa.Boolean, nullable=False),
    sa.Index(None, "email", "at"),
    sa.Index(None, "address", "at"),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("audit_id", sa.Integer, primary_key=True, autoincrement=True),
    tenant_fk(nullable=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("actor", sa.String(254), nullable=False),  # an email, or "" when nobody signed in
    sa.Column("event", sa.String(32), nullable=False),
    sa.Column("subject", sa.String(254), nullable=False, server_default=""),
    sa.Column("address", sa.String(64), nullable=False, server_default=""),
    sa.Column("details", JSONDocument, nullable=False),
    sa.Index(None, "tenant_id", "at"),
)

recovery_codes = sa.Table(
    "recovery_codes",
    metadata,
    _user_fk(primary_key=True),
    sa.Column("code_index", sa.SmallInteger, primary_key=True),
    sa.Column("code_hash", sa.String(255), nullable=False),
    sa.Column("used_at", UTCDateTime, nullable=True),
)

number_masks = sa.Table(
    "number_masks",
    metadata,
    tenant_fk(primary_key=True),
    sa.Column("role", sa.String(16), primary_key=True),
    sa.Column("digits", sa.SmallInteger, nullable=False),
    sa.CheckConstraint("role IN ('tenant', 'tenant_admin', 'technician')", name="role"),
    sa.CheckConstraint("digits >= 0 AND digits <= 20", name="digits"),
)
