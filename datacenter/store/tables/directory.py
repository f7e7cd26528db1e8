"""The tenant's directory: who had which extension when (migration: v0008_directory).

Contract:

- ``directory_entries``: one row per (extension, person) over a validity period. A call is
  attributed to the entry whose extension equals the call's ``extension`` and whose period holds
  the call's start: ``valid_from <= start_utc`` and (``valid_to`` is NULL or ``start_utc <
  valid_to``), so a past call stays with whoever had the extension then. Periods of one
  extension do not overlap (the importers close the old period when a new one starts).
- ``department``, ``cost_centre`` and ``site`` are what reports group by and what a user's scope
  may be limited to (``user_scopes`` in the accounts tables); empty means not known.
- ``source`` says where the row came from (``csv``, ``ldap``, ``manual``); ``external_id`` is the
  LDAP DN or the CSV's own key, so a re-sync updates rows instead of adding them.

``tenant_id`` leads every key, as everywhere in the store (Citus distribution by tenant).
"""

from __future__ import annotations

import sqlalchemy as sa

from datacenter.store.tables.metadata import TEXT_LENGTH, UTCDateTime, metadata, tenant_fk

ENTRY_ID_LENGTH = 32  # uuid4 hex, made in Python: a composite key cannot autoincrement on SQLite
DIRECTORY_SOURCES = ("csv", "ldap", "manual")

directory_entries = sa.Table(
    "directory_entries",
    metadata,
    tenant_fk(primary_key=True),
    sa.Column("entry_id", sa.String(ENTRY_ID_LENGTH), primary_key=True),
    sa.Column("extension", sa.String(TEXT_LENGTH), nullable=False),
    sa.Column("person", sa.String(200), nullable=False),
    sa.Column("email", sa.String(254), nullable=False, server_default=""),
    sa.Column("department", sa.String(200), nullable=False, server_default=""),
    sa.Column("cost_centre", sa.String(200), nullable=False, server_default=""),
    sa.Column("site", sa.String(200), nullable=False, server_default=""),
    sa.Column("valid_from", UTCDateTime, nullable=False),
    sa.Column("valid_to", UTCDateTime, nullable=True),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("external_id", sa.String(1024), nullable=False, server_default=""),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.CheckConstraint("source IN ('csv', 'ldap', 'manual')", name="source"),
    sa.Index(None, "tenant_id", "extension", "valid_from"),
    sa.Index(None, "tenant_id", "department"),
    sa.Index(None, "tenant_id", "cost_centre"),
)
