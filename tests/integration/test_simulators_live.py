"""The Mitel simulators' live mode: a record leaves the simulated PBX when its time comes.

A PBX writes a call's record when the call ends (MiVB SMDR) and MCS sends an event when it
happens, so in live mode a line is sent once the clock reaches it: lines already due at once,
the rest as the clock moves. The clock is a test double moved by hand; the lines travel over a
real loopback TCP connection, and each test checks what the client received against the times
the simulator recorded for each call.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from edge_agent.simulators.mcs_ipsmdr import IpSmdrServer, interleave_timed
from edge_agent.simulators.mcs_ipsmdr import generate_calls as mcs_calls
from edge_agent.simulators.mivb_smdr import SmdrSimulatorServer, generate_calls

QUIET_SECONDS = 0.6  # long enough for a line that is not due to have been sent if it were
RECEIVE_SECONDS = 10.0


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self.now

    def set(self, when: datetime) -> None:
        with self._lock:
            self.now = when


class Reader:
    """Collects the CR LF lines a simulated PBX sends to one client."""

    def __init__(self, port: int) -> None:
        self.lines: list[str] = []
        self._sock = socket.create_connection(("127.0.0.1", port), timeout=0.1)
        self._buffer = b""

    def read_for(self, seconds: float) -> list[str]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                chunk = self._sock.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                break
            self._buffer += chunk
            *complete, self._buffer = self._buffer.split(b"\r\n")
            self.lines.extend(line.decode("latin-1") for line in complete)
        return self.lines

    def wait_for(self, count: int) -> list[str]:
        deadline = time.monotonic() + RECEIVE_SECONDS
        while len(self.lines) < count and time.monotonic() < deadline:
            self.read_for(0.1)
        return self.lines

    def close(self) -> None:
        self._sock.close()


def test_mivb_live_sends_each_record_once_its_call_has_ended() -> None:
    start = datetime(2026, 5, 14, 9, 0, tzinfo=UTC)
    calls = generate_calls(count=12, seed=3, start=start, tz="UTC", mean_gap_seconds=60)
    middle = calls[5].received_at
    clock = Clock(middle)
    with SmdrSimulatorServer(calls, live=True, clock=clock) as server:
        reader = Reader(server.port)
        try:
            due = [c.line for c in calls if c.received_at <= middle]
            assert 0 < len(due) < len(calls)
            assert reader.wait_for(len(due)) == due
            assert reader.read_for(QUIET_SECONDS) == due  # nothing from the future
            clock.set(calls[-1].received_at)
            assert reader.wait_for(len(calls)) == [c.line for c in calls]
        finally:
            reader.close()


def test_mivb_spans_name_each_connections_lines_and_release_all_sends_the_rest() -> None:
    start = datetime(2026, 5, 14, 9, 0, tzinfo=UTC)
    calls = generate_calls(count=40, seed=5, start=start, tz="UTC", mean_gap_seconds=60)
    with SmdrSimulatorServer(calls, rate_per_second=0.01) as server:  # one line, next in 100 s
        first = Reader(server.port)
        try:
            assert first.wait_for(1)[:1] == [calls[0].line]
        finally:
            first.close()
        server.release_all()  # without it the other 39 lines would take over an hour
        second = Reader(server.port)
        try:
            server.wait_until_sent(len(calls), timeout=RECEIVE_SECONDS)
            spans = server.spans()
            got = second.wait_for(len(spans[1]))
        finally:
            second.close()
    # The first connection may still send a line after the reader closed it (release_all made
    # every line due before the server's next send failed): that line went nowhere and the
    # second connection starts from it again. So the spans may overlap but never leave a gap.
    assert spans[0].start == 0 and spans[0].stop >= 1
    assert spans[1].start <= spans[0].stop and spans[1].stop == len(calls)
    assert got == [call.line for call in calls[spans[1].start :]]


def test_mivb_live_needs_the_calls_times() -> None:
    with pytest.raises(ValueError, match="live mode needs SimCall"):
        SmdrSimulatorServer(["a line"], live=True)


def test_mcs_live_sends_each_event_when_it_happens() -> None:
    start = datetime(2026, 5, 14, 9, 0)  # MCS's naive local wall clock
    timed = interleave_timed(mcs_calls(count=6, seed=2, start=start))
    times, lines = [when for when, _ in timed], [line for _, line in timed]
    clock = Clock(start + timedelta(seconds=30))
    server = IpSmdrServer(lines, due_at=times, clock=clock)
    with server.server:
        reader = Reader(server.server.port)
        try:
            due = [line for when, line in timed if when <= clock()]
            assert 0 < len(due) < len(lines)
            assert reader.wait_for(len(due)) == due
            assert reader.read_for(QUIET_SECONDS) == due
            clock.set(max(times))
            assert reader.wait_for(len(lines)) == lines
        finally:
            reader.close()


@pytest.mark.parametrize("make", [lambda: IpSmdrServer(["x"], due_at=[])])
def test_mcs_live_needs_one_time_per_line(make: Callable[[], object]) -> None:
    with pytest.raises(ValueError, match="one time per line"):
        make()
