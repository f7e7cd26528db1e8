"""Property tests: whatever the rows hold, the LcsCDR parser answers with a call or a quarantine."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.sources.base import Quarantined, RawUnit, SourceContext
from edge_agent.sources.lync_cdr.parser import LyncCdrParser
from edge_agent.sources.lync_cdr.schema import COLUMN_KINDS, Kind, csv_units, dump_row
from shared.icdr import ICDR

CTX = SourceContext(agent_id="agent-1", source_id="lync", timezone=ZoneInfo("UTC"))
RECEIVED = datetime(2024, 3, 1, tzinfo=UTC)

_times = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31)).map(
    lambda t: t.isoformat(timespec="milliseconds")
)
_uris = st.one_of(
    st.text(max_size=40),
    st.from_regex(r"(sip:|tel:)?\+?[0-9]{3,15}(@example\.com)?(;user=phone|;ext=[0-9]{1,4})?"),
    st.from_regex(r"sip:[a-z]{1,12}@example\.com"),
)
_anything = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=30),
    st.lists(st.integers(), max_size=3), _times,
)  # fmt: skip


# Times within a few hours of each other, so most typed rows are plausible calls.
_near_times = st.integers(min_value=0, max_value=4 * 3600 * 1000).map(
    lambda ms: (datetime(2024, 3, 1) + timedelta(milliseconds=ms)).isoformat(
        timespec="milliseconds"
    )
)


def _typed(kind: Kind) -> st.SearchStrategy[Any]:
    by_kind: dict[Kind, st.SearchStrategy[Any]] = {
        Kind.TIME: st.one_of(_near_times, _times),
        Kind.INT: st.integers(min_value=-(2**31), max_value=2**31 - 1),
        Kind.GUID: st.uuids().map(str),
        Kind.TEXT: _uris,
        Kind.BOOL: st.booleans(),
    }
    return st.one_of(st.none(), by_kind[kind])


_typed_rows = st.fixed_dictionaries(
    {"SessionIdTime": _near_times, "SessionIdSeq": st.integers(min_value=1, max_value=9)},
    optional={
        name: _typed(kind)
        for name, kind in COLUMN_KINDS.items()
        if name not in ("SessionIdTime", "SessionIdSeq")
    },
)
_wild_rows = st.dictionaries(
    st.one_of(st.sampled_from(sorted(COLUMN_KINDS)), st.text(max_size=10)), _anything, max_size=40
)


def _feed(data: bytes) -> list[ICDR | Quarantined]:
    return LyncCdrParser(CTX).feed(RawUnit("lync", 1, RECEIVED, data))


def _one_result(data: bytes) -> ICDR | Quarantined:
    results = _feed(data)
    assert len(results) == 1
    result = results[0]
    if isinstance(result, Quarantined):
        assert result.raw == data and result.reason and result.detail
    return result


@given(st.binary(max_size=300))
def test_arbitrary_bytes_are_a_call_or_quarantined(data: bytes) -> None:
    _one_result(data)


@given(_wild_rows)
def test_arbitrary_values_are_a_call_or_quarantined(row: dict[str, Any]) -> None:
    _one_result(json.dumps(row).encode())


@settings(max_examples=300)
@given(_typed_rows)
def test_typed_rows_give_consistent_calls(row: dict[str, Any]) -> None:
    result = _one_result(dump_row(row))
    if isinstance(result, Quarantined):
        return
    assert result.start <= (result.answer or result.start) <= result.end
    assert result.talk_seconds >= 0 and result.ring_seconds >= 0
    assert result.answered == (result.answer is not None)
    assert result.talk_seconds == 0 or result.answered
    # Re-reading the same session, whatever changed in it, is the same record.
    changed = dict(row, SessionEndTime=None, ResponseCode=None)
    again = _one_result(dump_row(changed))
    if isinstance(again, ICDR):
        assert again.record_id == result.record_id


@given(st.text(max_size=400))
def test_arbitrary_csv_exports_frame_into_results(text: str) -> None:
    data = ("SessionIdTime,SessionIdSeq,MediaTypes,StartedByUri\n" + text).encode(
        "utf-8", "surrogateescape"
    )
    for unit in csv_units(data):
        _one_result(unit)


@given(st.binary(max_size=300))
def test_arbitrary_csv_bytes_never_raise(data: bytes) -> None:
    for unit in csv_units(data):
        _one_result(unit)


# --- CSV exports: whatever NULL convention the tool used, the calls are those of the poll -------

_csv_text = st.from_regex(
    r"(sip:|tel:)?\+?[0-9a-z]{1,12}(@example\.com)?(;user=phone)?", fullmatch=True
)
_csv_rows = st.fixed_dictionaries(
    {"SessionIdTime": _near_times, "SessionIdSeq": st.integers(min_value=1, max_value=9),
     "MediaTypes": st.sampled_from([16, 17, 48])},
    optional={
        name: st.one_of(st.none(), {
            Kind.TIME: _near_times, Kind.INT: st.integers(min_value=0, max_value=700),
            Kind.GUID: st.uuids().map(str), Kind.TEXT: _csv_text,
            Kind.BOOL: st.booleans(),
        }[kind])
        for name, kind in COLUMN_KINDS.items()
        if name not in ("SessionIdTime", "SessionIdSeq", "MediaTypes")
    },
)  # fmt: skip


def _as_csv(row: dict[str, Any], null: str) -> bytes:
    cells = [null if v is None else str(v).lower() if isinstance(v, bool) else str(v)
             for v in row.values()]  # fmt: skip
    return (",".join(row) + "\r\n" + ",".join(cells) + "\r\n").encode()


def _outcome(data: bytes) -> dict[str, Any] | str:
    result = LyncCdrParser(CTX).feed(RawUnit("lync", 1, RECEIVED, data))[0]
    if isinstance(result, Quarantined):
        return result.reason
    return result.to_dict() | {"raw": ""}


@settings(max_examples=200, deadline=None)
@given(row=_csv_rows, written=st.sampled_from(["", "NULL"]))
def test_csv_with_either_null_gives_the_polled_call(row: dict[str, Any], written: str) -> None:
    """An export writing NULL as an empty field or as NULL parses like the polled row (auto)."""
    units = list(csv_units(_as_csv(row, written)))
    assert len(units) == 1
    assert _outcome(units[0]) == _outcome(dump_row(row))


@settings(max_examples=200, deadline=None)
@given(row=_csv_rows)
def test_csv_empty_convention_never_invents_a_party(row: dict[str, Any]) -> None:
    """With csv_null=empty, an empty field is NULL in every column: no '' transfer or party."""
    units = list(csv_units(_as_csv(row, ""), null="empty"))
    decoded = json.loads(units[0])
    assert all(decoded[name] is None for name, value in row.items() if value is None)
    assert _outcome(units[0]) == _outcome(dump_row(row))
