"""The ICDR is declared once (``shared.icdr.FIELDS``): every consumer is checked against it.

The ``calls`` table's record columns, ingest's row builder, reading a row back, and the web's
read model must each follow the declaration field for field, so adding, renaming or retyping a
field in ``shared/icdr.py`` without them fails here. (docs/icdr.md: tests/unit/test_docs.py.)
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa

from datacenter.ingest.rows import CALL_COLUMNS, call_values
from datacenter.store.attribution import ATTRIBUTION_COLUMNS
from datacenter.store.call_rows import icdr_from_row
from datacenter.store.scoped import _DETAIL_ONLY, Call
from datacenter.store.tables.core import calls
from datacenter.store.tables.icdr_columns import column_name, field_name
from datacenter.store.tables.metadata import TEXT_LENGTH
from shared.icdr import FIELDS, ICDR, Completion, Direction
from tests.unit.test_icdr import START

STORE_OWN = ("tenant_id", "landed_file", "ingested_at")


def distinct_record() -> ICDR:
    """A record whose every field holds a value no other field holds."""
    values: dict[str, Any] = {}
    for number, each in enumerate(FIELDS, start=1):
        values[each.name] = {
            "str": f"v{number}",
            "int": number,
            "bool": number % 2 == 0,
            "time": START + timedelta(seconds=number),
            "time?": START + timedelta(seconds=number),
            "direction": Direction.TANDEM,
            "completion": Completion.BUSY,
            "strs": (f"v{number}",),
            "strmap": {"k": f"v{number}"},
        }[each.kind]
    values.update(end=START + timedelta(hours=1), icdr_version=1)
    return ICDR(**values)


def test_every_declared_field_has_its_column_and_nothing_else_does() -> None:
    """Names and nullability follow the declaration; the migrations test pins the SQL types."""
    declared = [column_name(each.name) for each in FIELDS]
    record_columns = [c.name for c in calls.columns if c.name not in STORE_OWN]
    assert sorted(record_columns) == sorted(declared)
    assert [field_name(name) for name in declared] == [each.name for each in FIELDS]
    for each in FIELDS:
        assert calls.c[column_name(each.name)].nullable is (each.kind == "time?"), each.name


def test_text_columns_hold_what_validation_lets_through() -> None:
    for each in FIELDS:
        limit = each.spec.max_length
        if each.kind != "str" or limit is None:
            continue
        column = calls.c[column_name(each.name)].type
        if limit <= TEXT_LENGTH:
            assert isinstance(column, sa.String) and column.length == limit, each.name
        else:
            assert isinstance(column, sa.Text), each.name


def _stored(kind: str, value: Any) -> Any:
    if kind in ("direction", "completion"):
        return value.value
    if kind == "strs":
        return list(value)
    if kind == "strmap":
        return dict(value)
    return value


def test_the_row_builder_puts_every_field_in_its_column() -> None:
    rec = distinct_record()
    row = dict(zip(CALL_COLUMNS, call_values(7, rec, "f.ccb", "now"), strict=True))
    assert [row[name] for name in STORE_OWN] == [7, "f.ccb", "now"]
    for each in FIELDS:
        expected = _stored(each.kind, getattr(rec, each.name))
        assert row[column_name(each.name)] == expected, each.name


def test_a_row_reads_back_as_the_same_record() -> None:
    rec = distinct_record()
    row = SimpleNamespace(**dict(zip(CALL_COLUMNS, call_values(7, rec, "f", "now"), strict=True)))
    assert icdr_from_row(row) == rec  # type: ignore[arg-type]


def test_the_read_model_lists_every_field_but_the_detail_ones() -> None:
    names = {each.name for each in FIELDS}
    assert names >= _DETAIL_ONLY, "the read model leaves out a field the record no longer has"
    listed = [f.name for f in dataclasses.fields(Call)]  # type: ignore[arg-type]
    # the record's summary fields, then who had the extension (the directory's attribution)
    assert listed == [
        *(column_name(e.name) for e in FIELDS if e.name not in _DETAIL_ONLY),
        *ATTRIBUTION_COLUMNS,
        "cost",  # the list's cost (None: not rated) and the unrated queue's reason
        "unrated_reason",
    ]
