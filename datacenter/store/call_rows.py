"""``calls`` rows to and from ICDRs, generated from the record's declaration (``shared.icdr``).

- ``make_row_builder(table, own)``: ingest's positional row builder, one value per column of the
  table in its order; a declared field's column takes the record's value (times and JSON through
  the caller's encoders), each of the store's ``own`` columns takes the parameter of its name.
- ``icdr_from_row(row)``: the ICDR a full row holds, validated again on the way out.

Both are straight-line functions compiled at import time (a loop over the fields per row would
cost several times as much on ingest's hot path); ``__source__`` shows what runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa

from datacenter.store.tables.icdr_columns import column_name, field_name
from shared.codegen import compile_function, indent
from shared.icdr import FIELDS, ICDR, Completion, Direction


def _same(value: Any) -> Any:
    return value


class RowBuilder(Protocol):
    def __call__(
        self,
        tenant_id: int,
        rec: ICDR,
        landed_file: str,
        ingested_at: Any,
        *,
        encode_time: Callable[[datetime], Any] = _same,
        encode_json: Callable[[Any], Any] = _same,
    ) -> tuple[Any, ...]: ...


# How each kind is written to its column, as an expression of the record's attribute `{v}`.
_TO_COLUMN = {
    "str": "{v}",
    "int": "{v}",
    "bool": "{v}",
    "time": "encode_time({v})",
    "time?": "(None if {v} is None else encode_time({v}))",
    "direction": "{v}.value",
    "completion": "{v}.value",
    "strs": "encode_json(list({v}))",
    "strmap": "encode_json(dict({v}))",
}
# How each kind is read back from its column `{v}` (drivers differ in what they return).
_FROM_COLUMN = {
    "str": "{v}",
    "int": "{v}",
    "bool": "bool({v})",
    "time": "{v}",
    "time?": "{v}",
    "direction": "_Direction({v})",
    "completion": "_Completion({v})",
    "strs": "tuple({v})",
    "strmap": "dict({v})",
}
_KINDS = {each.name: each.kind for each in FIELDS}


def make_row_builder(table: sa.Table, own: Sequence[str]) -> RowBuilder:
    """The row builder of ``table``; ``own`` are its columns that are not record fields."""
    values = []
    for column in table.columns:
        field = field_name(column.name)
        if field is None:
            if column.name not in own:
                raise ValueError(f"{table.name}.{column.name} is neither a record field nor own")
            values.append(f"{column.name},")
        else:
            values.append(_TO_COLUMN[_KINDS[field]].format(v=f"rec.{field}") + ",")
    params = f"{', '.join(own[:1])}, rec, {', '.join(own[1:])}"
    source = "\n".join(
        [
            f"def call_values({params}, *, encode_time=_same, encode_json=_same):",
            "    return (",
            *indent(values, 2),
            "    )",
        ]
    )
    builder: RowBuilder = compile_function("call_values", source + "\n", {"_same": _same})
    return builder


def _from_row_source() -> str:
    arguments = [
        f"{each.name}={_FROM_COLUMN[each.kind].format(v=f'row.{column_name(each.name)}')},"
        for each in FIELDS
    ]
    return "\n".join(
        ["def icdr_from_row(row):", "    return _ICDR(", *indent(arguments, 2), "    )"]
    )


icdr_from_row: Callable[[sa.Row[Any]], ICDR] = compile_function(
    "icdr_from_row",
    _from_row_source() + "\n",
    {"_ICDR": ICDR, "_Direction": Direction, "_Completion": Completion},
)
icdr_from_row.__doc__ = (
    "The ICDR a ``calls`` row holds (every column of the table), validated again."
)
