"""Bookkeeping for event-stream parsers: calls still open, and calls recently closed.

Contract: ``OpenCalls`` holds the calls being built from an event stream (IP SMDR, OAI) keyed by
the source's call id, and knows for each the journal seq of its first unit and when it was last
active (receive time, UTC). ``oldest_seq()`` is the lowest journal seq any open call still
needs: a restart that replays the journal from that seq rebuilds every open call exactly (units
before it belong only to calls already emitted). ``idle(now, timeout)`` lists calls with no
event for ``timeout``; ``excess()`` lists the oldest calls beyond the open-call bound, so a
stream that never ends its calls cannot exhaust memory. ``RecentlyClosed`` remembers the last
closed call ids (bounded) so repeated events after a reconnect are recognised.

Nothing here is on disk: the state is rebuilt from the journal, never persisted.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Generic, TypeVar

C = TypeVar("C")
V = TypeVar("V")


@dataclass(slots=True)
class _Entry(Generic[C]):
    call: C
    first_seq: int
    last_active: datetime


class OpenCalls(Generic[C]):
    """Open calls in order of their first unit, with activity kept in a second order."""

    def __init__(self, *, max_open: int) -> None:
        self._by_first: dict[str, _Entry[C]] = {}  # insertion order == first-seq order
        self._by_activity: OrderedDict[str, None] = OrderedDict()
        self._max_open = max_open

    def __len__(self) -> int:
        return len(self._by_first)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._by_first))

    def get(self, key: str) -> C | None:
        entry = self._by_first.get(key)
        return None if entry is None else entry.call

    def open(self, key: str, call: C, *, seq: int, received_at: datetime) -> None:
        self._by_first[key] = _Entry(call, seq, received_at)
        self._by_activity[key] = None

    def touch(self, key: str, *, received_at: datetime) -> None:
        entry = self._by_first[key]
        entry.last_active = max(entry.last_active, received_at)
        self._by_activity.move_to_end(key)

    def pop(self, key: str) -> C:
        entry = self._by_first.pop(key)
        del self._by_activity[key]
        return entry.call

    def oldest_seq(self) -> int | None:
        for entry in self._by_first.values():
            return entry.first_seq
        return None

    def idle(self, now: datetime, timeout: timedelta) -> list[str]:
        keys: list[str] = []
        for key in self._by_activity:
            if now - self._by_first[key].last_active < timeout:
                break
            keys.append(key)
        return keys

    def excess(self) -> list[str]:
        over = len(self._by_first) - self._max_open
        return list(self._by_first)[:over] if over > 0 else []


class RecentlyClosed(Generic[V]):
    """The last ``size`` closed call ids with a value each (e.g. the events they were built from)."""

    def __init__(self, *, size: int) -> None:
        self._items: OrderedDict[str, V] = OrderedDict()
        self._size = size

    def add(self, key: str, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self._size:
            self._items.popitem(last=False)

    def get(self, key: str) -> V | None:
        return self._items.get(key)

    def discard(self, key: str) -> None:
        self._items.pop(key, None)
