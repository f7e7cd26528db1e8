"""Linking a recording to its call at the data centre, when the agent could not.

The agent links what it can (``record_id`` in the metadata, ``linked_by`` ``agent``). A
recording that arrives without one is matched here against the tenant's stored calls, and
matched again whenever calls arrive later (``link_waiting``, called by call ingest in the same
transaction as the calls), so the order in which the two arrive does not matter.

The rule (docs/capture.md, "Linking at the data centre"):

- **Time**: the call's ``[start, end]`` overlaps the recording's ``[start, end]`` widened by
  ``LINK_TOLERANCE`` (10 s) on each side: the PBX's and the agent's clocks differ, and the PBX
  counts from the seizure while media starts at the answer.
- **Numbers**: of the recording's numbers (caller, called, extensions, external numbers), at
  least two, or all when it has fewer, equal one of the call's calling, called, extension or
  dialled digits, compared on their last ``SUFFIX_DIGITS`` (8) digits with at least
  ``MIN_DIGITS`` (3) on each side, so ``+44 20 7946 0000`` matches ``02079460000``. A recording
  with no numbers is never linked here.
- **Best match**: the longest overlap; then the nearest start; then the smaller record id (so the
  choice never depends on row order). A call may have several recordings (a transfer).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from datacenter.recordings.manifest import parse_metadata
from datacenter.store.tables.core import calls
from datacenter.store.tables.recordings import recordings
from shared.errors import EnvelopeError

LINK_TOLERANCE = timedelta(seconds=10)
SUFFIX_DIGITS = 8
MIN_DIGITS = 3
RELINK_LOOKBACK = timedelta(hours=12)  # the longest call a late recording is looked for in


@dataclass(frozen=True, slots=True)
class Span:
    """What matching needs of a recording."""

    numbers: tuple[str, ...]
    start: datetime
    end: datetime


def _digits(number: str) -> str:
    return "".join(ch for ch in number if ch.isdigit())


def same_number(a: str, b: str) -> bool:
    da, db = _digits(a), _digits(b)
    if len(da) < MIN_DIGITS or len(db) < MIN_DIGITS:
        return False
    size = min(len(da), len(db), SUFFIX_DIGITS)
    return da[-size:] == db[-size:]


def numbers_match(numbers: tuple[str, ...], parties: Iterable[str]) -> bool:
    present = [p for p in parties if p]
    hits = {n for n in numbers if any(same_number(n, p) for p in present)}
    return bool(numbers) and len(hits) >= min(2, len(numbers))


def _overlap(span: Span, start: datetime, end: datetime) -> float:
    low = max(span.start - LINK_TOLERANCE, start)
    high = min(span.end + LINK_TOLERANCE, end)
    return (high - low).total_seconds()


def match_call(conn: sa.Connection, tenant_id: int, span: Span) -> str | None:
    """The record id of the tenant's call this recording belongs to, or None."""
    if not span.numbers:
        return None
    rows = conn.execute(
        sa.select(
            calls.c.record_id, calls.c.start_utc, calls.c.end_utc, calls.c.calling,
            calls.c.called, calls.c.extension, calls.c.dialled_digits,
        ).where(
            calls.c.tenant_id == tenant_id,
            calls.c.start_utc <= span.end + LINK_TOLERANCE,
            calls.c.start_utc >= span.start - RELINK_LOOKBACK,
            calls.c.end_utc >= span.start - LINK_TOLERANCE,
        )
    )  # fmt: skip
    best: tuple[float, float, str] | None = None
    for row in rows:
        overlap = _overlap(span, row.start_utc, row.end_utc)
        parties = (row.calling, row.called, row.extension, row.dialled_digits)
        if overlap < 0 or not numbers_match(span.numbers, parties):
            continue
        distance = abs((row.start_utc - span.start).total_seconds())
        candidate = (-overlap, distance, row.record_id)
        if best is None or candidate < best:
            best = candidate
    return best[2] if best else None


def link_waiting(conn: sa.Connection, tenant_id: int, start: datetime, end: datetime) -> int:
    """Link the tenant's unlinked recordings that overlap calls in ``[start, end]``; how many."""
    waiting = conn.execute(
        sa.select(recordings.c.recording_id, recordings.c.metadata).where(
            recordings.c.tenant_id == tenant_id,
            recordings.c.record_id.is_(None),
            recordings.c.start_time <= end + LINK_TOLERANCE,
            recordings.c.start_time >= start - RELINK_LOOKBACK,
        )
    ).all()
    linked = 0
    for recording_id, raw in waiting:
        try:
            meta = parse_metadata(raw)
        except EnvelopeError:  # checked at ingest; a row changed by hand must not stop calls
            continue
        if meta.start is None or meta.end is None:
            continue
        record_id = match_call(conn, tenant_id, Span(meta.numbers, meta.start, meta.end))
        if record_id is None:
            continue
        conn.execute(
            recordings.update()
            .where(recordings.c.tenant_id == tenant_id, recordings.c.recording_id == recording_id)
            .values(record_id=record_id, linked_by="datacentre")
        )
        linked += 1
    return linked
