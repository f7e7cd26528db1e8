"""ICDR v1: validation names the field, JSON Lines round-trips exactly, ids are stable."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.errors import ICDRValidationError
from shared.icdr import (
    ICDR,
    Completion,
    Direction,
    dumps_lines,
    format_time,
    loads_lines,
    lone_surrogate_field,
    make_line_record_id,
    make_record_id,
)
from tests.factories import gen_mivb_call

START = datetime(2026, 5, 14, 13, 31, tzinfo=UTC)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({}, None),
        ({"calling": "Zoë 2201"}, None),  # non-ASCII is fine
        ({"dialled_digits": "0163\ud83d"}, "dialled_digits"),
        ({"raw": "\udc85 line"}, "raw"),
        ({"flags": ("ok", "bad\udfff")}, "flags"),
        ({"extra": {"k\ud800": "v"}}, "extra"),
        ({"extra": {"k": "\ud800"}}, "extra"),
        ({"calling": "\ud800", "raw": "\ud800"}, "calling"),  # the first, in field order
    ],
)
def test_lone_surrogate_field_names_the_field_no_utf8_file_can_hold(
    overrides: dict[str, Any], field: str | None
) -> None:
    assert lone_surrogate_field(gen_mivb_call(**overrides)) == field


def test_round_trip_through_json_lines_is_exact() -> None:
    records = [gen_mivb_call(), gen_mivb_call(record_id="b" * 32, answer=None, answered=False)]
    text = dumps_lines(records)
    assert text.count("\n") == 2
    assert list(loads_lines(text)) == records


def test_times_serialise_as_utc_with_z_and_keep_milliseconds() -> None:
    rec = gen_mivb_call(start=START.replace(microsecond=123000), answer=None)
    data = json.loads(rec.to_json())
    assert data["start"] == "2026-05-14T13:31:00.123000Z"
    assert data["end"] == "2026-05-14T13:37:12Z"
    assert ICDR.from_json(rec.to_json()).start == rec.start


def test_from_dict_converts_offsets_to_utc() -> None:
    data = gen_mivb_call().to_dict()
    data["start"] = "2026-05-14T09:31:00-04:00"
    assert ICDR.from_dict(data).start == START


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"record_id": ""}, "record_id", "must not be empty"),
        ({"agent_id": 7}, "agent_id", "expected a string"),
        ({"start": "yesterday"}, "start", "not an ISO 8601 time"),
        ({"start": "2026-05-14T09:31:00"}, "start", "no UTC offset"),
        ({"end": "2026-05-14T13:00:00Z"}, "end", "is before start"),
        ({"answer": "2026-05-14T14:00:00Z"}, "answer", "not between start and end"),
        ({"talk_seconds": -1}, "talk_seconds", "between 0 and"),
        ({"talk_seconds": True}, "talk_seconds", "expected an integer"),
        ({"direction": "sideways"}, "direction", "not one of: in, out"),
        ({"completion": "maybe"}, "completion", "not one of"),
        ({"answered": "yes"}, "answered", "expected true or false"),
        ({"flags": "x"}, "flags", "list of strings"),
        ({"extra": {"a": 1}}, "extra", "string values"),
        ({"icdr_version": 2}, "icdr_version", "not supported"),
        ({"colour": "blue"}, "colour", "unknown field"),
        ({"utc_offset_minutes": 5000}, "utc_offset_minutes", "between -1080 and 1080"),
        ({"calling": "1" * 300}, "calling", "longer than 256"),
        ({"end": "2027-05-14T13:00:00Z"}, "end", "more than 400 hours"),
    ],
)
def test_validation_names_the_field(change: dict[str, Any], field: str, message: str) -> None:
    data = gen_mivb_call().to_dict() | change
    with pytest.raises(ICDRValidationError) as info:
        ICDR.from_dict(data)
    assert info.value.field == field
    assert message in str(info.value)
    assert f"'{field}'" in str(info.value)


@pytest.mark.parametrize(
    "missing", ["record_id", "agent_id", "source_id", "source_kind", "start", "end"]
)
def test_required_fields(missing: str) -> None:
    data = gen_mivb_call().to_dict()
    del data[missing]
    with pytest.raises(ICDRValidationError, match=f"field '{missing}': missing"):
        ICDR.from_dict(data)


def test_loads_lines_reports_the_line_number() -> None:
    good = gen_mivb_call().to_json()
    with pytest.raises(ICDRValidationError, match="line 3: not valid JSON"):
        list(loads_lines(f"{good}\n\n{{broken\n"))


def test_record_id_is_stable_and_separates_parts() -> None:
    assert make_record_id("a", "b") == make_record_id("a", "b")
    assert make_record_id("ab", "c") != make_record_id("a", "bc")
    assert re.fullmatch(r"[0-9a-f]{32}", make_record_id("x"))
    with pytest.raises(ValueError):
        make_record_id()


def test_line_record_id_is_stable_and_separates_every_part() -> None:
    base = make_line_record_id("agent", "pbx", 12, b"line")
    assert base == make_line_record_id("agent", "pbx", 12, b"line")
    assert re.fullmatch(r"[0-9a-f]{32}", base)
    others = {
        make_line_record_id("agent", "pbx", 12, b"line "),
        make_line_record_id("agent", "pbx", 13, b"line"),
        make_line_record_id("agent", "pbx", 1, b"2\x1fline"),
        make_line_record_id("agen", "tpbx", 12, b"line"),
        make_line_record_id("agent", "pbx2", 12, b"line"),
    }
    assert len(others) == 5 and base not in others
    # scheme 2 never repeats scheme 1's id of the same line
    assert base != make_record_id("agent", "pbx", "12", hashlib.sha256(b"line").hexdigest())


def test_every_field_is_documented() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "icdr.md").read_text()
    for name in ICDR.__dataclass_fields__:
        assert f"`{name}`" in doc, f"docs/icdr.md does not describe field {name}"


# --- properties ---------------------------------------------------------------------------------

text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40)
moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2099, 1, 1), timezones=st.just(UTC)
)


@st.composite
def icdrs(draw: st.DrawFn) -> ICDR:
    start = draw(moments)
    length = draw(st.integers(0, 400 * 3600))
    end = start + timedelta(seconds=length)
    answer = draw(st.none() | st.integers(0, length).map(lambda s: start + timedelta(seconds=s)))
    return gen_mivb_call(
        record_id=draw(st.text("0123456789abcdef", min_size=1, max_size=32)),
        start=start,
        end=end,
        answer=answer,
        talk_seconds=draw(st.integers(0, length)),
        utc_offset_minutes=draw(st.integers(-1080, 1080)),
        direction=draw(st.sampled_from(Direction)),
        completion=draw(st.sampled_from(Completion)),
        calling=draw(text),
        called=draw(text),
        raw=draw(st.text(max_size=200).filter(lambda s: "\ud800" not in s)),
        flags=tuple(draw(st.lists(text, max_size=3))),
        extra=draw(st.dictionaries(text, text, max_size=3)),
    )


@given(icdrs())
def test_property_json_round_trip(rec: ICDR) -> None:
    assert ICDR.from_json(rec.to_json()) == rec
    assert ICDR.from_json(rec.to_json()).to_json() == rec.to_json()


@given(st.lists(icdrs(), max_size=5))
def test_property_json_lines_round_trip(records: list[ICDR]) -> None:
    text = dumps_lines(records)
    assert list(loads_lines(text)) == records
    assert text == "".join(rec.to_json() + "\n" for rec in records)


def test_json_lines_break_at_lf_only() -> None:
    # to_json leaves these unescaped; str.splitlines() would cut the record at each of them.
    rec = gen_mivb_call(raw="2201 \x85 NEL \u2028 LS \u2029 PS \x1c FS", calling="\u2028")
    text = dumps_lines([rec, rec])
    assert "\x85" in text and "\u2028" in text
    assert list(loads_lines(text)) == [rec, rec]


@given(
    st.dictionaries(
        st.sampled_from(sorted(ICDR.__dataclass_fields__)), st.none() | st.integers() | text
    )
)
def test_property_arbitrary_dicts_validate_or_name_a_field(data: dict[str, Any]) -> None:
    try:
        rec = ICDR.from_dict(data)
    except ICDRValidationError as exc:
        assert exc.field in ICDR.__dataclass_fields__ or exc.field == "<record>"
    else:
        assert rec.record_id and rec.end >= rec.start


def test_format_time_normalises_to_utc() -> None:
    local = datetime(2026, 1, 1, 9, 0, tzinfo=UTC).astimezone(UTC) + timedelta(hours=0)
    assert format_time(local) == "2026-01-01T09:00:00Z"
