"""Batch envelope: seal/open round-trips; truncation, tampering and foreign files are caught."""

from __future__ import annotations

import gzip
import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.envelope import (
    MAGIC,
    BatchLimits,
    batch_file_name,
    open_batch,
    parse_batch_file_name,
    read_manifest,
    seal,
)
from shared.errors import EnvelopeError
from shared.icdr import ICDR, make_record_id
from tests.factories import gen_mivb_call

WHEN = datetime(2026, 5, 14, 14, 0, tzinfo=UTC)


def records(n: int) -> list[ICDR]:
    return [
        gen_mivb_call(record_id=make_record_id("agent-1", "pbx1", str(i)), start=WHEN + timedelta(minutes=i),
                 end=WHEN + timedelta(minutes=i, seconds=30), answer=None, answered=False)
        for i in range(n)
    ]  # fmt: skip


def test_round_trip_and_manifest() -> None:
    recs = records(3)
    data = seal(recs, agent_id="agent-1", tenant="acme", sequence=7, created_at=WHEN)
    batch = open_batch(data)
    assert batch.records == recs
    m = batch.manifest
    assert (m.agent_id, m.tenant, m.sequence, m.record_count) == ("agent-1", "acme", 7, 3)
    assert (m.first_record_id, m.last_record_id) == (recs[0].record_id, recs[-1].record_id)
    assert m.created_at == "2026-05-14T14:00:00Z"


def test_sealing_is_deterministic() -> None:
    """Same records, same sequence, same time: same bytes (a re-seal after a crash is identical)."""
    a = seal(records(2), agent_id="a", tenant="t", sequence=1, created_at=WHEN)
    b = seal(records(2), agent_id="a", tenant="t", sequence=1, created_at=WHEN)
    assert a == b


def test_empty_batch_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one record"):
        seal([], agent_id="a", tenant="t", sequence=1)


GOOD = seal(records(4), agent_id="agent-1", tenant="acme", sequence=1, created_at=WHEN)


def _rewrite_manifest(**change: object) -> bytes:
    head, payload = GOOD[len(MAGIC) :].split(b"\n", 1)
    manifest = json.loads(head) | change
    return MAGIC + json.dumps(manifest).encode() + b"\n" + payload


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "bad magic"),
        (b"PK\x03\x04zipfile", "bad magic"),
        (GOOD[:3], "bad magic"),
        (MAGIC + b"{}", "manifest line is missing"),
        (MAGIC + b"not json\n", "manifest is not valid JSON"),
        (GOOD[:-10], "file truncated"),
        (GOOD[:-1] + bytes([GOOD[-1] ^ 1]), "SHA-256 does not match"),
        (_rewrite_manifest(version=9), "unsupported batch format"),
        (_rewrite_manifest(protection="cms"), "unsupported protection"),
        (_rewrite_manifest(sequence="one"), "'sequence' is missing or not a int"),
        (_rewrite_manifest(record_count=5), "manifest says 5"),
        (_rewrite_manifest(created_at="soon"), "created_at"),
        (_rewrite_manifest(first_record_id="x"), "first or last record id"),
    ],
)
def test_defects_are_reported(data: bytes, reason: str) -> None:
    with pytest.raises(EnvelopeError, match=reason):
        open_batch(data)


def test_invalid_record_inside_a_valid_envelope() -> None:
    body = gzip.compress(
        json.dumps(gen_mivb_call().to_dict() | {"record_id": ""}).encode(), mtime=0
    )

    bad = _rewrite_manifest(
        payload_sha256=hashlib.sha256(body).hexdigest(), payload_bytes=len(body)
    )
    bad = bad[: bad.index(b"\n", len(MAGIC)) + 1] + body
    with pytest.raises(EnvelopeError, match="invalid record in payload: field 'record_id'"):
        open_batch(bad)


def test_file_names() -> None:
    name = batch_file_name("site-1", 42)
    assert name == "site-1-0000000042.ccb"
    assert parse_batch_file_name(name) == ("site-1", 42)
    for other in ("site-1-0000000042.ccb.part", "x.txt", "-0000000001.ccb", "a b-0000000001.ccb"):
        assert parse_batch_file_name(other) is None
    with pytest.raises(ValueError):
        batch_file_name("../etc", 1)


@settings(max_examples=300)
@given(st.binary(max_size=2000))
def test_property_arbitrary_bytes_are_refused_with_envelope_error(data: bytes) -> None:
    """Random bytes never crash the reader with anything but a clear EnvelopeError."""
    with pytest.raises(EnvelopeError):
        open_batch(data)


@settings(max_examples=200)
@given(st.integers(0, len(GOOD) - 1), st.integers(1, 255))
def test_property_any_single_byte_change_is_detected(index: int, xor: int) -> None:
    altered = bytearray(GOOD)
    altered[index] ^= xor
    try:
        batch = open_batch(bytes(altered))
    except EnvelopeError:
        return
    # The only undetectable changes are to manifest bytes that do not alter its meaning
    # (e.g. JSON whitespace); the records themselves must then be intact.
    assert batch.records == open_batch(GOOD).records
    assert read_manifest(bytes(altered))[1] == read_manifest(GOOD)[1]


@given(st.integers(0, len(GOOD) - 1))
def test_property_every_truncation_is_detected(length: int) -> None:
    with pytest.raises(EnvelopeError):
        open_batch(GOOD[:length])


def reseal(data: bytes, payload: bytes, **manifest_changes: object) -> bytes:
    """``data`` with its payload (and manifest fields) replaced, the digest made to match."""
    fields = json.loads(data[len(MAGIC) : data.index(b"\n", len(MAGIC))])
    fields.update(payload_sha256=hashlib.sha256(payload).hexdigest(), payload_bytes=len(payload))
    fields.update(manifest_changes)
    return MAGIC + json.dumps(fields, sort_keys=True).encode() + b"\n" + payload


LIMITS = BatchLimits(max_records=10, max_bytes=64 * 1024)
GZ_GOOD = read_manifest(GOOD)[1]


@pytest.mark.parametrize(
    ("payload", "changes", "reason"),
    [
        (gzip.compress(bytes(10 * 1024 * 1024)), {}, "expands beyond 65536 bytes"),
        (gzip.compress(b"\n" * 1000), {}, "more than 10 records"),
        (gzip.compress(b"{}\n"), {"record_count": 11}, "more than the 10 a batch may hold"),
        (GZ_GOOD + gzip.compress(b"{}\n"), {}, "data after the gzip stream"),
        (GZ_GOOD[:-9], {}, "the gzip stream is truncated"),
        (b"\x1f\x8b" + b"\x00" * 30, {}, "does not decompress"),
    ],
    ids=["bytes", "records", "manifest-count", "second-member", "truncated", "bad-header"],
)
def test_limits_and_stream_defects_are_refused(
    payload: bytes, changes: dict[str, object], reason: str
) -> None:
    with pytest.raises(EnvelopeError, match=reason):
        open_batch(reseal(GOOD, payload, **changes), LIMITS)


def test_a_batch_at_its_limits_opens() -> None:
    _, payload = read_manifest(GOOD)
    size = len(gzip.decompress(payload))
    batch = open_batch(GOOD, BatchLimits(max_records=4, max_bytes=size))
    assert len(batch.records) == 4
    with pytest.raises(EnvelopeError, match="expands beyond"):
        open_batch(GOOD, BatchLimits(max_records=4, max_bytes=size - 1))
