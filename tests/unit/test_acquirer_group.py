"""Several acquirers feeding one sink, stopped together."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from edge_agent.sources.base import UnitSink
from edge_agent.sources.streams.acquirer_group import AcquirerGroup
from shared.errors import SourceError


class ListSink:
    def __init__(self) -> None:
        self.units: list[bytes] = []
        self.lock = threading.Lock()

    def deliver(self, data: Sequence[bytes], *, received_at: datetime) -> None:
        with self.lock:
            self.units.extend(data)

    def report(self, *, ok: bool, message: str = "", records: int = 0) -> None: ...

    def get_state(self, key: str) -> str | None:
        return None

    def set_state(self, key: str, value: str) -> None: ...

    def may_read(self) -> bool:
        return True


class Emitter:
    def __init__(self, name: bytes, *, fail: bool = False) -> None:
        self.name = name
        self.fail = fail
        self.stopped = False

    def run(self, sink: UnitSink, stop: threading.Event) -> None:
        sink.deliver([self.name], received_at=datetime.now(UTC))
        if self.fail:
            raise SourceError(f"{self.name!r} broke")
        stop.wait(10)
        self.stopped = stop.is_set()


def test_members_run_together_and_stop_together() -> None:
    members = [Emitter(b"local"), Emitter(b"push")]
    sink = ListSink()
    stop = threading.Event()
    thread = threading.Thread(target=AcquirerGroup(members).run, args=(sink, stop))
    thread.start()
    try:
        for _ in range(200):
            if len(sink.units) == 2:
                break
            threading.Event().wait(0.01)
        assert sorted(sink.units) == [b"local", b"push"]
    finally:
        stop.set()
        thread.join(5)
    assert not thread.is_alive()
    assert all(m.stopped for m in members)


def test_a_failing_member_stops_the_others_and_is_raised() -> None:
    healthy = Emitter(b"local")
    group = AcquirerGroup([healthy, Emitter(b"push", fail=True)], names=["local", "push"])
    with pytest.raises(SourceError, match="broke"):
        group.run(ListSink(), threading.Event())
    assert healthy.stopped
