"""What every table module shares: the one ``MetaData``, its naming convention, column types.

The table modules (``core``, ``rating``, ``alarms``, ``health``) import this module and nothing
else of the store, so the schema has no import circle; ``datacenter.store.tables`` imports them
all, which is how Alembic and ``create_all`` see the whole schema.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect

ROLES = ("tenant", "tenant_admin", "technician", "admin")
TENANT_ROLES = ("tenant", "tenant_admin")  # belong to one tenant; the others to none
ROLE_CHECK = "role IN ('tenant', 'tenant_admin', 'technician', 'admin')"
ROLE_TENANT_CHECK = (
    "(role IN ('tenant', 'tenant_admin') AND tenant_id IS NOT NULL) "
    "OR (role NOT IN ('tenant', 'tenant_admin') AND tenant_id IS NULL)"
)
LANDED_STATUSES = ("claimed", "stored", "duplicate", "quarantined")
SLUG_LENGTH = 63
AGENT_ID_LENGTH = 64  # shared.envelope's batch file name allows 1-64 characters
RECORD_ID_LENGTH = 128  # shared.icdr refuses longer ids
TEXT_LENGTH = 256  # shared.icdr.MAX_TEXT

# Names for constraints and indexes, so Alembic migrations (and SQLite batch mode) can refer to
# them on every dialect.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every dialect.

    PostgreSQL stores ``timestamptz``. SQLite has no time zone type, so the value is stored as
    naive UTC text (which still sorts and compares correctly) and comes back tagged as UTC.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: store times as timezone-aware UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# JSONB on PostgreSQL (indexable, compact), JSON text elsewhere.
JSONDocument = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def text_column() -> sa.String:
    return sa.String(TEXT_LENGTH)


def tenant_fk(**kwargs: Any) -> sa.Column[int]:
    return sa.Column(
        "tenant_id",
        sa.Integer,
        sa.ForeignKey("tenants.tenant_id", ondelete="RESTRICT"),
        **kwargs,
    )
