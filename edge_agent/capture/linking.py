"""Linking a recording to its call record (ICDR) by numbers and times (formats.md §6.7).

SIP Call-IDs rarely match a PBX's record (a Mediation Server or the PBX itself is a
back-to-back agent), so the match is: the recording's two numbers agree with the record's
calling/called (either way round, compared on their last digits so +44 20 7946 0000 matches
02079460000) and its answer or end time is within ``window`` of the record's. Among several
candidates the closest in time wins. A recording with no numbers (no visible signalling) links
through its extension from the device map plus the times.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.icdr import ICDR

SUFFIX_DIGITS = 8
MIN_DIGITS = 2


def digits(number: str) -> str:
    return "".join(ch for ch in number if ch.isdigit())


def same_number(a: str, b: str) -> bool:
    """Equal on their last SUFFIX_DIGITS digits (both at least MIN_DIGITS long)."""
    da, db = digits(a), digits(b)
    if len(da) < MIN_DIGITS or len(db) < MIN_DIGITS:
        return False
    size = min(len(da), len(db), SUFFIX_DIGITS)
    return da[-size:] == db[-size:]


@dataclass(frozen=True)
class RecordingKey:
    """What linking needs of a recording's metadata."""

    numbers: tuple[str, ...]
    answer: datetime | None
    end: datetime | None

    @classmethod
    def from_metadata(cls, meta: dict[str, Any]) -> RecordingKey:
        numbers = [meta.get("caller", ""), meta.get("called", ""), *meta.get("extensions", [])]
        answer = meta.get("answer_time") or meta.get("media_start")
        end = meta.get("end_time")
        return cls(
            tuple(n for n in numbers if n),
            datetime.fromisoformat(answer) if answer else None,
            datetime.fromisoformat(end) if end else None,
        )


def _numbers_match(key: RecordingKey, record: ICDR) -> bool:
    parties = [record.calling, record.called, record.extension, record.dialled_digits]
    hits = {n for n in key.numbers for p in parties if p and same_number(n, p)}
    return len(hits) >= min(2, len(key.numbers)) and bool(hits)


def _time_distance(key: RecordingKey, record: ICDR) -> float | None:
    gaps = []
    if key.answer is not None and record.answer is not None:
        gaps.append(abs((key.answer - record.answer).total_seconds()))
    if key.end is not None:
        gaps.append(abs((key.end - record.end).total_seconds()))
    return min(gaps) if gaps else None


def match_record(key: RecordingKey, records: Iterable[ICDR], *, window: timedelta) -> ICDR | None:
    """The record this recording belongs to, or None."""
    best: tuple[float, ICDR] | None = None
    for record in records:
        distance = _time_distance(key, record)
        if distance is None or distance > window.total_seconds():
            continue
        if not _numbers_match(key, record):
            continue
        if best is None or distance < best[0]:
            best = (distance, record)
    return best[1] if best else None
