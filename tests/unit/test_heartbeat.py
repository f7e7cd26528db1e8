"""The heartbeat document: round trips, file names, and a parser that only ever says ValidationError."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.errors import ValidationError
from shared.heartbeat import (
    FORMAT_NAME,
    HEARTBEAT_VERSION,
    MAX_HEARTBEAT_BYTES,
    AgentState,
    Heartbeat,
    SourceStatus,
    SpoolStatus,
    UplinkStatus,
    heartbeat_file_name,
    parse_heartbeat,
    parse_heartbeat_file_name,
)

T0 = datetime(2026, 3, 3, 14, 0, 0, 123000, tzinfo=UTC)


def sample(**overrides: Any) -> Heartbeat:
    values: dict[str, Any] = {
        "agent_id": "edge-1",
        "tenant": "acme",
        "sent_at": T0,
        "agent_version": "0.1.0",
        "started_at": T0 - timedelta(hours=2),
        "interval_seconds": 60,
        "clock_offset_seconds": -0.4,
        "spool": SpoolStatus(used_bytes=1_000_000, quota_bytes=512_000_000, level="ok"),
        "disk_free_bytes": 10**10,
        "disk_total_bytes": 2 * 10**10,
        "unbatched_records": 3,
        "unsent_batches": 1,
        "oldest_unsent_at": T0 - timedelta(seconds=30),
        "uplink": UplinkStatus(last_ok_at=T0 - timedelta(minutes=1), last_sequence_sent=41),
        "sources": (
            SourceStatus(
                source_id="pbx",
                kind="mivb-smdr",
                ok=False,
                message="refused",
                at=T0,
                last_ok_at=T0 - timedelta(minutes=5),
                records=12,
                attempts=7,
                failures_in_a_row=2,
                reconnects=1,
            ),
        ),
    }
    values.update(overrides)
    return Heartbeat(**values)


def document(**changes: Any) -> dict[str, Any]:
    doc = sample().to_dict()
    doc.update(changes)
    return doc


def test_round_trip_keeps_every_field() -> None:
    heartbeat = sample()
    assert parse_heartbeat(heartbeat.to_json()) == heartbeat
    assert heartbeat.to_dict()["format"] == FORMAT_NAME
    assert heartbeat.to_dict()["version"] == HEARTBEAT_VERSION
    assert heartbeat.uptime_seconds == 7200.0


def test_unknown_fields_are_ignored_within_the_version() -> None:
    doc = document(future_field={"x": 1})
    assert parse_heartbeat(json.dumps(doc)) == sample()


@pytest.mark.parametrize(
    ("change", "field", "problem"),
    [
        ({"format": "callcollect-batch"}, "format", "expected"),
        ({"version": 2}, "version", "not supported"),
        ({"version": True}, "version", "expected int"),
        ({"agent_id": "../etc"}, "agent_id", "not a valid agent id"),
        ({"state": "sleeping"}, "state", "not one of"),
        ({"sent_at": "yesterday"}, "sent_at", "not an ISO 8601 time"),
        ({"sent_at": "2026-03-03T14:00:00"}, "sent_at", "no UTC offset"),
        ({"interval_seconds": -1}, "interval_seconds", "negative"),
        ({"clock_offset_seconds": "1"}, "clock_offset_seconds", "finite number"),
        ({"spool": {"used_bytes": 1, "quota_bytes": 2, "level": "meh"}}, "spool.level", "not one of"),
        ({"spool": []}, "spool", "JSON object"),
        ({"sources": {}}, "sources", "expected list"),
        ({"sources": [{"source_id": ""}]}, "sources[0].source_id", "empty"),
    ],
)  # fmt: skip
def test_bad_fields_are_named(change: dict[str, Any], field: str, problem: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_heartbeat(json.dumps(document(**change)))
    assert caught.value.field == field
    assert problem in caught.value.problem


def test_a_missing_field_is_named() -> None:
    doc = document()
    del doc["uplink"]["failures_in_a_row"]
    with pytest.raises(ValidationError, match=r"uplink\.failures_in_a_row"):
        parse_heartbeat(json.dumps(doc))


def test_a_repeated_source_is_refused() -> None:
    doc = document()
    doc["sources"] = doc["sources"] * 2
    with pytest.raises(ValidationError, match="appears twice"):
        parse_heartbeat(json.dumps(doc))


def test_oversized_and_non_json_documents_are_refused() -> None:
    with pytest.raises(ValidationError, match="more than"):
        parse_heartbeat(b" " * (MAX_HEARTBEAT_BYTES + 1))
    with pytest.raises(ValidationError, match="not UTF-8 JSON"):
        parse_heartbeat(b"\xff{")
    with pytest.raises(ValidationError, match="JSON object"):
        parse_heartbeat(b"[1, 2]")


def test_file_names_sort_by_time_and_round_trip_to_the_millisecond() -> None:
    name = heartbeat_file_name("edge-1.a", T0)
    assert name == "edge-1.a-20260303T140000123Z.json"
    assert parse_heartbeat_file_name(name) == ("edge-1.a", T0)
    later = heartbeat_file_name("edge-1.a", T0 + timedelta(milliseconds=1))
    assert sorted([later, name]) == [name, later]


@pytest.mark.parametrize(
    "name",
    ["edge-1-20260303T140000123Z.json.part", "edge-1-20261303T140000123Z.json",
     "edge-1-20260303T1400001Z.json", "-20260303T140000123Z.json", "edge-1.ccb"],
)  # fmt: skip
def test_other_names_are_not_heartbeats(name: str) -> None:
    assert parse_heartbeat_file_name(name) is None


# --- properties ---------------------------------------------------------------------------------

_times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
_counts = st.integers(min_value=0, max_value=2**53)
_text = st.text(max_size=40)
_ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,20}", fullmatch=True)
_sources = st.lists(
    st.builds(
        SourceStatus, source_id=_ids, kind=_text, ok=st.booleans(), message=_text,
        at=st.none() | _times, last_ok_at=st.none() | _times, last_record_at=st.none() | _times,
        records=_counts, attempts=_counts, failures_in_a_row=_counts, reconnects=_counts,
    ),
    max_size=4, unique_by=lambda s: s.source_id,
).map(tuple)  # fmt: skip
_heartbeats = st.builds(
    Heartbeat, agent_id=_ids, tenant=_text, sent_at=_times, agent_version=_text,
    started_at=_times, interval_seconds=st.integers(0, 86400),
    state=st.sampled_from(AgentState),
    clock_offset_seconds=st.none() | st.floats(allow_nan=False, allow_infinity=False),
    spool=st.builds(SpoolStatus, used_bytes=_counts, quota_bytes=_counts,
                    level=st.sampled_from(["ok", "warning", "critical", "full"])),
    disk_free_bytes=_counts, disk_total_bytes=_counts, unbatched_records=_counts,
    unsent_batches=_counts, oldest_unsent_at=st.none() | _times,
    uplink=st.builds(UplinkStatus, last_ok_at=st.none() | _times, failures_in_a_row=_counts,
                     last_error=_text, last_sequence_sent=st.none() | _counts),
    sources=_sources,
)  # fmt: skip


@given(_heartbeats)
def test_every_document_written_reads_back_equal(heartbeat: Heartbeat) -> None:
    parsed = parse_heartbeat(heartbeat.to_json())
    assert parsed == heartbeat


@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_validation_errors(data: bytes) -> None:
    with contextlib.suppress(ValidationError):
        parse_heartbeat(data)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=300)
@given(st.sampled_from(sorted(sample().to_dict())), _json)
def test_any_value_in_any_field_raises_only_validation_errors(key: str, value: Any) -> None:
    """Replace one top-level field with arbitrary JSON: valid or a named ValidationError."""
    doc = document(**{key: value})
    try:
        parse_heartbeat(json.dumps(doc))
    except ValidationError as exc:
        assert exc.field.split(".")[0].split("[")[0] in doc or exc.field == "document"
