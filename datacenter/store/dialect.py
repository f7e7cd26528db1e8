"""What differs between the store's two dialects (SQLite, PostgreSQL) in the statements we build.

- ``dialect_insert(conn, table)`` is the INSERT of the connection's dialect, the one that offers
  ``on_conflict_do_nothing`` / ``on_conflict_do_update`` (SQLAlchemy's generic insert does not).
- ``same(value)`` is the encoder for a value a dialect takes as it is; the bulk writer and
  ingest's row builder fall back to it where the other dialect needs a conversion.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite


def dialect_insert(conn: sa.Connection, table: sa.Table) -> Any:
    """INSERT with ON CONFLICT support for the connection's dialect."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def same(value: Any) -> Any:
    """The value unchanged: the encoder for a type the dialect takes as it is."""
    return value
