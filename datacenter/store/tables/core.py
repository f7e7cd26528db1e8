"""The data-centre schema: SQLAlchemy Core tables on one ``MetaData``.

Contract:

- ``tenant_id`` leads the primary and unique keys of every tenant-owned table, so PostgreSQL can
  partition and Citus can distribute by tenant without re-keying (docs/datacenter.md).
- Calls are unique on ``(tenant_id, record_id)``: re-ingesting a record is a no-op.
- Every time is timezone-aware UTC in Python on both SQLite and PostgreSQL (``UTCDateTime``);
  a naive datetime is refused on the way in rather than guessed at.
- ``call_days`` is the daily rollup (tenant's local day) that dashboards read; ingest maintains
  it in the same transaction as the calls it counts.
- The Alembic migrations in ``datacenter/store/migrations`` build exactly this schema; a test
  compares the two. Change a table here only together with a new migration.

Rating adds its own columns/tables in its own migration.
"""

from __future__ import annotations

import sqlalchemy as sa

from datacenter.store.tables.icdr_columns import icdr_columns
from datacenter.store.tables.metadata import (
    AGENT_ID_LENGTH,
    ROLE_CHECK,
    ROLE_TENANT_CHECK,
    SLUG_LENGTH,
    UTCDateTime,
    metadata,
    tenant_fk,
)

tenants = sa.Table(
    "tenants",
    metadata,
    sa.Column("tenant_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("slug", sa.String(SLUG_LENGTH), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("timezone", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

agents = sa.Table(
    "agents",
    metadata,
    tenant_fk(primary_key=True),
    sa.Column("agent_id", sa.String(AGENT_ID_LENGTH), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, server_default=""),
    sa.Column("enrolled_at", UTCDateTime, nullable=False),
    sa.Column("last_seen_at", UTCDateTime, nullable=True),
    sa.Column("last_sequence", sa.BigInteger, nullable=True),
    # The pinned batch-signing certificate (PEM) and its shared.keys.fingerprint (migration 0006)
    sa.Column("certificate", sa.Text, nullable=True),
    sa.Column("certificate_fingerprint", sa.String(80), nullable=True),
    # The agent's own landing account, and the certificate a rotation still accepts (0011)
    sa.Column("landing_account", sa.String(32), nullable=True, unique=True),
    sa.Column("previous_certificate_fingerprint", sa.String(80), nullable=True),
    sa.Column("previous_certificate_until", UTCDateTime, nullable=True),
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("user_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("email", sa.String(254), nullable=False, unique=True),  # stored lower-case
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    tenant_fk(nullable=True),
    sa.Column("display_name", sa.String(200), nullable=False, server_default=""),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("last_login_at", UTCDateTime, nullable=True),
    sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
    # Sign-in hardening (migration 0012): the TOTP secret (base32) once enrolled and the time
    # step of the last code used, consecutive failures and when the account was locked.
    sa.Column("totp_secret", sa.String(64), nullable=True),
    sa.Column("totp_last_step", sa.BigInteger, nullable=True),  # no code is accepted twice
    sa.Column("failed_logins", sa.Integer, nullable=False, server_default="0"),
    sa.Column("locked_at", UTCDateTime, nullable=True),
    sa.CheckConstraint(ROLE_CHECK, name="role"),
    # A tenant user or tenant admin belongs to exactly one tenant; staff belong to none.
    sa.CheckConstraint(ROLE_TENANT_CHECK, name="role_tenant"),
)

landed_files = sa.Table(
    "landed_files",
    metadata,
    tenant_fk(primary_key=True),
    sa.Column("file_name", sa.String(100), primary_key=True),
    sa.Column("agent_id", sa.String(AGENT_ID_LENGTH), nullable=False),
    sa.Column("sequence", sa.BigInteger, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False, index=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("records", sa.Integer, nullable=True),
    sa.Column("inserted", sa.Integer, nullable=True),
    sa.Column("duplicates", sa.Integer, nullable=True),
    sa.Column("claimed_by", sa.String(200), nullable=False),
    sa.Column("claimed_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime, nullable=True),
    # Claims taken so far (1 + takeovers of expired ones); migration 0009.
    sa.Column("attempts", sa.Integer, nullable=False, server_default="1"),
    sa.CheckConstraint(
        "status IN ('claimed', 'stored', 'duplicate', 'quarantined')", name="status"
    ),
    sa.Index(None, "tenant_id", "agent_id", "sequence"),  # missing batches (migration 0006)
)

# The record's columns come from the ICDR's declaration (icdr_columns). The table keeps the
# physical order the migrations built: the store's own two columns after ``parser_version``, and
# ``extra`` and ``icdr_version`` last, as 0007 added them.
_record_columns = icdr_columns()
_LATER = 2  # extra, icdr_version: the declaration's last two fields
calls = sa.Table(
    "calls",
    metadata,
    tenant_fk(primary_key=True),
    *_record_columns[:-_LATER],
    sa.Column("landed_file", sa.String(100), nullable=False),
    sa.Column("ingested_at", UTCDateTime, nullable=False),
    *_record_columns[-_LATER:],
    sa.Index(None, "tenant_id", "start_utc"),
    sa.Index(None, "tenant_id", "extension", "start_utc"),
    sa.Index(None, "tenant_id", "ingested_at"),  # cost alarms read new calls (0015)
)

call_days = sa.Table(
    "call_days",
    metadata,
    tenant_fk(primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),  # the tenant's local day
    sa.Column("direction", sa.String(16), primary_key=True),
    sa.Column("calls", sa.Integer, nullable=False),
    sa.Column("answered", sa.Integer, nullable=False),
    sa.Column("talk_seconds", sa.BigInteger, nullable=False),
)
