"""ICDR construction: the generated ``__init__`` stores every field, validates every record and
leaves it frozen (``shared/icdr.py``; the JSON contract is pinned in test_icdr.py)."""

from __future__ import annotations

import copy
import dataclasses
import inspect
import pickle
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given

from shared.errors import ICDRValidationError
from shared.icdr import (
    ICDR,
    MAX_CALL_SECONDS,
    MAX_NAME,
    MAX_RAW,
    MAX_TEXT,
    Completion,
    Direction,
    checked_builder,
    source_checked,
    source_checked_builder,
)
from tests.factories import gen_mivb_call
from tests.unit.test_icdr import START, icdrs

TEXT_FIELDS = [
    "calling", "called", "dialled_digits", "extension", "trunk", "route", "third_party",
    "account_code", "ani", "dnis", "completion_source", "call_id", "parent_call_id",
]  # fmt: skip


def test_the_constructor_mirrors_the_fields() -> None:
    parameters = list(inspect.signature(ICDR).parameters.values())
    fields = dataclasses.fields(ICDR)
    assert [p.name for p in parameters] == [f.name for f in fields]
    for parameter, field in zip(parameters, fields, strict=True):
        if field.default is not dataclasses.MISSING:
            assert parameter.default == field.default, field.name
        elif field.default_factory is dataclasses.MISSING:
            assert parameter.default is inspect.Parameter.empty, field.name


def test_every_field_is_stored() -> None:
    values: dict[str, Any] = {
        "record_id": "r1", "agent_id": "a1", "source_id": "s1", "source_kind": "k1",
        "start": START, "end": START + timedelta(seconds=90),
        "answer": START + timedelta(seconds=5), "utc_offset_minutes": -240,
        "ring_seconds": 5, "talk_seconds": 85, "hold_seconds": 3,
        "direction": Direction.IN, "calling": "T012", "called": "2201",
        "dialled_digits": "4455", "extension": "2201", "trunk": "T012", "route": "gw1",
        "third_party": "2230", "account_code": "880042", "ani": "6135550123",
        "dnis": "6135550188", "answered": True, "completion": Completion.ANSWERED,
        "completion_source": "T", "transferred": True, "conference": True,
        "call_id": "c1", "parent_call_id": "p1", "flags": ("unsupervised",), "raw": "line",
        "parser_version": "p/1", "icdr_version": 1, "extra": {"system_id": "001"},
    }  # fmt: skip
    assert set(values) == {f.name for f in dataclasses.fields(ICDR)}
    rec = ICDR(**values)
    assert {name: getattr(rec, name) for name in values} == values
    assert type(rec) is ICDR


def test_defaults_and_a_new_extra_per_record() -> None:
    first = ICDR(
        record_id="r", agent_id="a", source_id="s", source_kind="k", start=START, end=START
    )
    second = ICDR(
        record_id="r", agent_id="a", source_id="s", source_kind="k", start=START, end=START
    )
    assert (first.answer, first.direction, first.completion, first.flags) == (
        None,
        Direction.UNKNOWN,
        Completion.UNKNOWN,
        (),
    )
    assert first.extra == {} and type(first.extra) is dict
    assert first.extra is not second.extra


def test_a_record_is_frozen() -> None:
    rec = gen_mivb_call()
    for name in (f.name for f in dataclasses.fields(ICDR)):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(rec, name, getattr(rec, name))
        with pytest.raises(dataclasses.FrozenInstanceError):
            delattr(rec, name)
    with pytest.raises((AttributeError, TypeError)):
        rec.colour = "blue"  # type: ignore[attr-defined]


def test_replace_copy_and_pickle_keep_records_valid_and_equal() -> None:
    rec = gen_mivb_call()
    assert copy.copy(rec) == rec and copy.deepcopy(rec) == rec
    assert pickle.loads(pickle.dumps(rec)) == rec
    assert dataclasses.replace(rec, talk_seconds=1).talk_seconds == 1
    with pytest.raises(ICDRValidationError, match="field 'talk_seconds'"):
        dataclasses.replace(rec, talk_seconds=-1)


LATE = START + timedelta(hours=1)
NAIVE = datetime(2026, 5, 14, 13, 31)


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"record_id": ""}, "record_id", "must not be empty"),
        ({"agent_id": ""}, "agent_id", "must not be empty"),
        ({"source_id": ""}, "source_id", "must not be empty"),
        ({"source_kind": ""}, "source_kind", "must not be empty"),
        ({"record_id": "r" * 129}, "record_id", "longer than 128"),
        ({"start": NAIVE}, "start", "timezone-aware"),
        ({"start": None}, "start", "timezone-aware"),
        ({"start": "2026-05-14T13:31:00Z"}, "start", "timezone-aware"),
        ({"end": NAIVE}, "end", "timezone-aware"),
        ({"answer": NAIVE}, "answer", "timezone-aware"),
        ({"end": START - timedelta(seconds=1)}, "end", "is before start"),
        ({"end": START + timedelta(seconds=MAX_CALL_SECONDS, microseconds=1)}, "end", "400"),
        ({"answer": LATE}, "answer", "not between start and end"),
        ({"answer": START - timedelta(seconds=1)}, "answer", "not between start and end"),
        ({"ring_seconds": -1}, "ring_seconds", "between 0 and"),
        ({"talk_seconds": MAX_CALL_SECONDS + 1}, "talk_seconds", "between 0 and"),
        ({"hold_seconds": -5}, "hold_seconds", "between 0 and"),
        ({"utc_offset_minutes": -1081}, "utc_offset_minutes", "between -1080 and 1080"),
        ({"raw": "x" * (MAX_RAW + 1)}, "raw", f"longer than {MAX_RAW}"),
        ({"direction": "out"}, "direction", "must be a Direction"),
        ({"completion": "answered"}, "completion", "must be a Completion"),
        # the first bad field in field order is named
        ({"agent_id": "", "talk_seconds": -1}, "agent_id", "must not be empty"),
        ({"calling": "1" * 300, "parent_call_id": "2" * 300}, "calling", "longer than"),
        *(({name: "9" * (MAX_TEXT + 1)}, name, f"longer than {MAX_TEXT}") for name in TEXT_FIELDS),
    ],
)
def test_construction_rejects_each_bad_value_naming_the_field(
    change: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(ICDRValidationError) as info:
        gen_mivb_call(**change)
    assert info.value.field == field
    assert message in str(info.value)


@pytest.mark.parametrize(
    "change",
    [
        {"end": START + timedelta(seconds=MAX_CALL_SECONDS), "answer": None},
        {"utc_offset_minutes": 1080},
        {"raw": "x" * MAX_RAW},
        # long together, each within its limit
        dict.fromkeys(TEXT_FIELDS, "7" * MAX_TEXT),
        {"answer": None, "end": START, "talk_seconds": 0},
    ],
)
def test_boundary_values_are_accepted(change: dict[str, Any]) -> None:
    rec = gen_mivb_call(**change)
    assert all(getattr(rec, name) == value for name, value in change.items())


@pytest.mark.parametrize(
    ("name", "limit"),
    [("agent_id", MAX_NAME), ("source_kind", MAX_NAME), ("parser_version", MAX_NAME),
     ("source_id", MAX_TEXT)],
)  # fmt: skip
def test_names_are_refused_beyond_what_the_store_holds(name: str, limit: int) -> None:
    assert getattr(gen_mivb_call(**{name: "n" * limit}), name) == "n" * limit
    with pytest.raises(ICDRValidationError, match=f"longer than {limit}") as info:
        gen_mivb_call(**{name: "n" * (limit + 1)})
    assert info.value.field == name


def _fields(rec: ICDR) -> dict[str, Any]:
    return {f.name: getattr(rec, f.name) for f in dataclasses.fields(ICDR)}


@given(icdrs())
def test_property_source_checked_builds_the_record_icdr_builds(rec: ICDR) -> None:
    built = source_checked(**_fields(rec))
    assert built == rec and type(built) is ICDR
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.calling = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"record_id": ""}, "record_id"),
        ({"source_kind": ""}, "source_kind"),
        ({"end": START - timedelta(seconds=1)}, "end"),
        ({"end": START + timedelta(seconds=MAX_CALL_SECONDS, microseconds=1)}, "end"),
        ({"answer": LATE}, "answer"),
        ({"ring_seconds": -1}, "ring_seconds"),
        ({"talk_seconds": MAX_CALL_SECONDS + 1}, "talk_seconds"),
        ({"utc_offset_minutes": 1081}, "utc_offset_minutes"),
    ],
)
def test_source_checked_still_checks_what_no_parser_type_guarantees(
    change: dict[str, Any], field: str
) -> None:
    values = {**_fields(gen_mivb_call()), **change}
    with pytest.raises(ICDRValidationError) as checked:
        source_checked(**values)
    with pytest.raises(ICDRValidationError) as full:
        ICDR(**values)
    assert checked.value.field == full.value.field == field
    assert str(checked.value) == str(full.value)


def test_positional_builders_give_the_record_icdr_gives() -> None:
    rec = gen_mivb_call(extra={"k": "v"}, flags=("unsupervised",))
    names = ("calling", "record_id", "agent_id", "source_id", "source_kind", "start", "end", "raw")
    values = [getattr(rec, name) for name in names]
    expected = ICDR(**dict(zip(names, values, strict=True)))
    for builder in (source_checked_builder(names), checked_builder(names)):
        built = builder(*values)
        assert built == expected and type(built) is ICDR
        assert built.extra == {} and built.extra is not builder(*values).extra
    with pytest.raises(ICDRValidationError, match="is before start"):
        source_checked_builder(names)(*values[:5], rec.end, rec.start, "")
    with pytest.raises(ValueError, match="required"):
        source_checked_builder(("record_id", "agent_id"))
    with pytest.raises(ValueError, match="required"):
        source_checked_builder(("colour", *names))
