"""The timing loop of ``smdr_parse.py``, shared with ``smdr_parse_old.py``.

It imports nothing of the project: the caller passes the framer, unit and record classes, so
the same loop times today's parser and the frozen old one (run from a ``git archive`` of an
older commit) on the same bytes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

CHUNK = 65536  # bytes per simulated recv()
GROUP = 100  # units per delivery, each group stamped with one receive time
WARM_UP = 2_000  # lines run untimed before each measurement


@dataclass(frozen=True)
class Timing:
    cpu: float
    wall: float
    produced: int


@dataclass(frozen=True)
class Kit:
    """What framing and wrapping need from the code under test."""

    framer: Callable[[], Any]  # LineFramer
    unit: Callable[[str, int, datetime, bytes], Any]  # RawUnit
    record: type  # ICDR: a result counts when its first item is one


def run(kit: Kit, data: bytes, received: datetime, work: Callable[[Any], object]) -> Timing:
    """Frame, wrap and hand each unit to ``work``; seconds taken and records produced."""
    _frame(kit, data[: WARM_UP * 100], received, work)  # about WARM_UP lines
    started = time.perf_counter()
    cpu_started = time.process_time()
    produced = _frame(kit, data, received, work)
    return Timing(time.process_time() - cpu_started, time.perf_counter() - started, produced)


def _frame(kit: Kit, data: bytes, received: datetime, work: Callable[[Any], object]) -> int:
    framer = kit.framer()
    make_unit = kit.unit
    record = kit.record
    seq = 0
    produced = 0
    for offset in range(0, len(data), CHUNK):
        units = framer.feed(data[offset : offset + CHUNK])
        for first in range(0, len(units), GROUP):
            stamp = received + timedelta(microseconds=seq)  # a new object per delivery
            for unit in units[first : first + GROUP]:
                seq += 1
                result = work(make_unit("pbx1", seq, stamp, unit))
                produced += result.__class__ is list and result[0].__class__ is record
    return produced
