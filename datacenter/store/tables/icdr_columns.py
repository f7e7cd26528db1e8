"""The ``calls`` table's record columns, built from the ICDR's declaration (``shared.icdr.FIELDS``).

One column per declared field, in declaration order: its name (times carry ``_utc``), its type
from the field's kind and maximum length, nullable only where the field may be None. What the
declaration does not say, the store decides here: which column is the key and the one integer
stored small. ``column_name`` and ``field_name`` translate between the two namings; ingest's row
builder and the web's read model go through them.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from datacenter.store.tables.metadata import TEXT_LENGTH, JSONDocument, UTCDateTime
from shared.icdr import FIELDS, FieldInfo

ENUM_LENGTH = 16  # direction and completion values
_KEY = "record_id"  # with tenant_id, the calls table's primary key
_SMALL = frozenset({"icdr_version"})


def column_name(field: str) -> str:
    """The column of a declared field: times are stored as ``<name>_utc``."""
    return f"{field}_utc" if _FIELDS[field].kind in ("time", "time?") else field


def field_name(column: str) -> str | None:
    """The declared field a column holds, or None for a column of the store's own."""
    return _BY_COLUMN.get(column)


def column_type(each: FieldInfo) -> Any:
    """The SQL type of a declared field."""
    if each.kind == "str":
        limit = each.spec.max_length
        return sa.Text if limit is None or limit > TEXT_LENGTH else sa.String(limit)
    if each.kind == "int":
        return sa.SmallInteger if each.name in _SMALL else sa.Integer
    simple: dict[str, Any] = {
        "bool": sa.Boolean,
        "time": UTCDateTime,
        "time?": UTCDateTime,
        "direction": sa.String(ENUM_LENGTH),
        "completion": sa.String(ENUM_LENGTH),
        "strs": JSONDocument,
        "strmap": JSONDocument,
    }
    return simple[each.kind]


def icdr_columns() -> list[sa.Column[Any]]:
    """New ``Column`` objects for every declared field (a ``Table`` takes ownership of them)."""
    return [
        sa.Column(
            column_name(each.name),
            column_type(each),
            primary_key=each.name == _KEY,
            nullable=each.kind == "time?",
        )
        for each in FIELDS
    ]


_FIELDS = {each.name: each for each in FIELDS}
_BY_COLUMN = {column_name(each.name): each.name for each in FIELDS}
