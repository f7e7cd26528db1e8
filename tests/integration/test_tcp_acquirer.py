"""TCP acquirers over real loopback sockets, fed by the MiVB SMDR simulator."""

from __future__ import annotations

import random
import socket
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime

import pytest

from edge_agent.simulators.mivb_smdr import SmdrSimulatorServer, generate_calls
from edge_agent.simulators.pbx_server import PbxServer, recv_exactly
from edge_agent.sources.base import Acquirer, SinkUnavailable
from edge_agent.sources.streams.tcp import SOURCE_JITTER, TcpClientAcquirer, TcpListenerAcquirer
from shared.backoff import Backoff
from shared.errors import SourceError
from tests.fixtures.ports import free_port
from tests.fixtures.recording_sink import WAIT, RecordingSink
from tests.fixtures.recording_sink import running as run_acquirer

STOP_WITHIN = 3.0  # stop must be prompt: the supervisor joins acquirers on shutdown


def running(acquirer: Acquirer, sink: RecordingSink) -> AbstractContextManager[threading.Event]:
    return run_acquirer(acquirer, sink, stop_within=STOP_WITHIN)


FAST = Backoff(min_seconds=0.05, max_seconds=0.2, jitter=SOURCE_JITTER)
LINES = [
    call.line
    for call in generate_calls(count=120, seed=4, start=datetime(2026, 5, 14, 9, 0), tz="UTC")
]


def client(port: int, **kwargs: object) -> TcpClientAcquirer:
    options: dict[str, object] = {"backoff": FAST, "poll_interval": 0.05, "rng": random.Random(1)}
    options.update(kwargs)
    return TcpClientAcquirer(host="127.0.0.1", port=port, **options)  # type: ignore[arg-type]


def encoded(lines: Sequence[str]) -> list[bytes]:
    return [line.encode("latin-1") for line in lines]


def test_every_line_arrives_in_order() -> None:
    sink = RecordingSink()
    with SmdrSimulatorServer(LINES) as pbx, running(client(pbx.port), sink):
        port = pbx.port
        assert sink.wait(lambda s: len(s.units) >= len(LINES))
    assert sink.units == encoded(LINES)
    assert sink.reports[0] == (True, f"connected to 127.0.0.1:{port}")
    assert max(sink.groups) <= 100


def test_lines_paced_by_the_pbx_arrive_in_small_groups() -> None:
    sink = RecordingSink()
    with (
        SmdrSimulatorServer(LINES[:15], rate_per_second=100) as pbx,
        running(client(pbx.port), sink),
    ):
        assert sink.wait(lambda s: len(s.units) >= 15)
    assert sink.units == encoded(LINES[:15])
    assert len(sink.groups) > 3


def test_a_pbx_that_closes_the_connection_loses_and_repeats_nothing() -> None:
    sink = RecordingSink()
    with (
        SmdrSimulatorServer(LINES, drop_after_lines=25) as pbx,
        running(client(pbx.port), sink),
    ):
        assert sink.wait(lambda s: len(s.units) >= len(LINES))
        time.sleep(0.2)  # anything duplicated would arrive now
    assert sink.units == encoded(LINES)
    assert pbx.connections >= 5
    closed = [m for ok, m in sink.reports if not ok and "PBX closed the connection" in m]
    assert len(closed) >= 4
    assert "after 25 lines, reconnecting in" in closed[0]


def test_a_refused_port_is_reported_and_retried() -> None:
    port = free_port()
    sink = RecordingSink()
    with running(client(port), sink):
        assert sink.wait(lambda s: len(s.reports) >= 3)
    first_ok, first = sink.reports[0]
    assert not first_ok
    assert first.startswith(f"connection refused: 127.0.0.1:{port}, retrying in ")


def test_the_collector_connects_once_the_pbx_is_up() -> None:
    port = free_port()
    sink = RecordingSink()
    with running(client(port), sink):
        assert sink.wait(lambda s: s.reported("connection refused"))
        with SmdrSimulatorServer(LINES[:10], port=port):
            assert sink.wait(lambda s: len(s.units) >= 10)
    assert sink.units == encoded(LINES[:10])
    assert sink.reported(f"connected to 127.0.0.1:{port}")


def test_stop_is_prompt_on_a_silent_connection() -> None:
    sink = RecordingSink()
    with SmdrSimulatorServer([]) as pbx:
        acquirer = client(pbx.port, poll_interval=0.25)
        stop = threading.Event()
        thread = threading.Thread(target=acquirer.run, args=(sink, stop), daemon=True)
        thread.start()
        assert sink.wait(lambda s: s.reported("connected to"))
        started = time.monotonic()
        stop.set()
        thread.join(3.0)
        assert not thread.is_alive()
        assert time.monotonic() - started < 1.0


def test_stop_is_prompt_during_back_off() -> None:
    sink = RecordingSink()
    acquirer = client(
        free_port(), backoff=Backoff(min_seconds=30, max_seconds=60, jitter=SOURCE_JITTER)
    )
    stop = threading.Event()
    thread = threading.Thread(target=acquirer.run, args=(sink, stop), daemon=True)
    thread.start()
    assert sink.wait(lambda s: s.reported("retrying in"))
    started = time.monotonic()
    stop.set()
    thread.join(3.0)
    assert not thread.is_alive() and time.monotonic() - started < 1.0


def serve(handler: Callable[[socket.socket, threading.Event], None]) -> PbxServer:
    return PbxServer(handler)


def test_a_partial_line_at_disconnect_is_delivered() -> None:
    def handler(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(b"first line\r\nsecond, cut off")

    sink = RecordingSink()
    with serve(handler) as pbx, running(client(pbx.port), sink):
        assert sink.wait(lambda s: len(s.units) >= 2)
    assert sink.units[:2] == [b"first line", b"second, cut off"]


def test_a_blank_tail_at_disconnect_is_not_a_unit() -> None:
    def handler(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(b"only line\r\n\r")

    sink = RecordingSink()
    with serve(handler) as pbx, running(client(pbx.port), sink):
        assert sink.wait(lambda s: s.reported("PBX closed the connection"))
    assert set(sink.units) == {b"only line"}


def test_a_silent_connection_is_replaced_after_the_idle_timeout() -> None:
    sink = RecordingSink()
    with SmdrSimulatorServer([]) as pbx, running(client(pbx.port, idle_timeout=0.3), sink):
        assert sink.wait(lambda s: s.reported("no data from"))
        assert sink.wait(lambda s: sum("connected to" in m for _, m in s.reports) >= 2)


def test_nothing_is_read_while_the_spool_is_full() -> None:
    sink = RecordingSink(room=False)
    with SmdrSimulatorServer(LINES[:20]) as pbx, running(client(pbx.port), sink):
        assert sink.wait(lambda s: s.reported("paused reading"))
        time.sleep(0.3)
        assert sink.units == []
        sink.room = True
        assert sink.wait(lambda s: len(s.units) >= 20)
    assert sink.units == encoded(LINES[:20])
    assert sink.reported("resumed reading")


def test_a_login_handshake_runs_before_reading() -> None:
    def handler(conn: socket.socket, stop: threading.Event) -> None:
        if recv_exactly(conn, 6, stop) == b"LOGIN\n":
            conn.sendall(b"OK\nrecord after login\r\n")
            stop.wait()

    def login(sock: socket.socket) -> None:
        sock.sendall(b"LOGIN\n")
        if sock.recv(3) != b"OK\n":
            raise SourceError("the PBX refused the password")

    sink = RecordingSink()
    with serve(handler) as pbx, running(client(pbx.port, handshake=login), sink):
        assert sink.wait(lambda s: len(s.units) >= 1)
    assert sink.units == [b"record after login"]


def test_a_failed_handshake_is_reported() -> None:
    def handler(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(b"NO\n")

    def login(sock: socket.socket) -> None:
        if sock.recv(3) != b"OK\n":
            raise SourceError("the PBX refused the password")

    sink = RecordingSink()
    with serve(handler) as pbx, running(client(pbx.port, handshake=login), sink):
        assert sink.wait(lambda s: s.reported("login to"))
    ok, message = next((ok, m) for ok, m in sink.reports if "login to" in m)
    assert not ok and "the PBX refused the password" in message and "retrying in" in message


def test_the_simulator_streams_to_every_connected_client() -> None:
    """A client gets every line from when it connected; the buffer goes to the first one."""
    early, late = RecordingSink(), RecordingSink()
    expected = encoded(LINES[:40])
    with SmdrSimulatorServer(LINES[:40], rate_per_second=40) as pbx:
        with running(client(pbx.port), early):
            assert early.wait(lambda s: len(s.units) >= 5)
            with running(client(pbx.port), late):
                for sink in (early, late):
                    assert sink.wait(lambda s: expected[-1] in s.units)
        assert pbx.connections == 2
    assert early.units == expected
    assert 1 <= len(late.units) <= 35
    assert late.units == expected[-len(late.units) :]


def test_backoff_grows_is_bounded_and_jittered() -> None:
    backoff = Backoff(min_seconds=1, max_seconds=60, jitter=0.2)
    rng = random.Random(7)
    delays = [backoff.delay(attempt, rng) for attempt in range(12)]
    assert all(0.8 <= d <= 60 for d in delays)
    assert delays[0] <= 1 and delays[3] > 6 and delays[-1] >= 48
    assert len({round(d, 6) for d in delays[8:]}) > 1  # capped, but not in lock-step


# --- listener: the PBX connects to the agent ---------------------------------------------------


def listener(**kwargs: object) -> TcpListenerAcquirer:
    options: dict[str, object] = {"poll_interval": 0.05, "backoff": FAST}
    options.update(kwargs)
    return TcpListenerAcquirer(host="127.0.0.1", port=0, **options)  # type: ignore[arg-type]


def test_listener_takes_lines_from_several_pbx_connections() -> None:
    sink = RecordingSink()
    acquirer = listener()
    with running(acquirer, sink):
        assert acquirer.listening.wait(WAIT) and acquirer.bound_port
        with (
            socket.create_connection(("127.0.0.1", acquirer.bound_port), timeout=5) as one,
            socket.create_connection(("127.0.0.1", acquirer.bound_port), timeout=5) as two,
        ):
            one.sendall(b"a1\r\na2\r\n")
            two.sendall(b"b1\nb2-partial")
            assert sink.wait(lambda s: len(s.units) >= 3)
        assert sink.wait(lambda s: len(s.units) >= 4)
        assert sink.wait(lambda s: sum("closed the connection" in m for _, m in s.reports) >= 2)
    assert sorted(sink.units) == [b"a1", b"a2", b"b1", b"b2-partial"]
    assert sink.units.index(b"a1") < sink.units.index(b"a2")
    assert sink.reported(f"listening on 127.0.0.1:{acquirer.bound_port}")
    assert sink.reported("PBX connected from 127.0.0.1:")


def test_listener_refuses_peers_that_are_not_allowed() -> None:
    sink = RecordingSink()
    acquirer = listener(allowed_peers=frozenset({"192.0.2.10"}))
    with running(acquirer, sink):
        assert acquirer.listening.wait(WAIT) and acquirer.bound_port
        with socket.create_connection(("127.0.0.1", acquirer.bound_port), timeout=5) as conn:
            conn.sendall(b"not welcome\r\n")
            assert sink.wait(lambda s: s.reported("not an allowed peer"))
    assert sink.units == []


def test_listener_reports_a_port_it_cannot_bind() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        sink = RecordingSink()
        acquirer = TcpListenerAcquirer(host="127.0.0.1", port=port, backoff=FAST)
        with running(acquirer, sink):
            assert sink.wait(lambda s: s.reported(f"cannot listen on 127.0.0.1:{port}"))


@pytest.mark.parametrize("stop_first", [True, False])
def test_listener_delivers_partial_lines_when_it_stops(stop_first: bool) -> None:
    sink = RecordingSink()
    acquirer = listener()
    with running(acquirer, sink) as stop:
        assert acquirer.listening.wait(WAIT) and acquirer.bound_port
        conn = socket.create_connection(("127.0.0.1", acquirer.bound_port), timeout=5)
        try:
            conn.sendall(b"done\r\nhalf")
            assert sink.wait(lambda s: len(s.units) >= 1)
            if stop_first:
                stop.set()
            else:
                conn.close()
            assert sink.wait(lambda s: len(s.units) >= 2)
        finally:
            conn.close()
    assert sink.units == [b"done", b"half"]


class FullDiskSink(RecordingSink):
    """Refuses the first ``failures`` deliveries the way a full journal does (rolled back)."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def deliver(self, data: Sequence[bytes], *, received_at: datetime) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise SinkUnavailable("journal pbx-1: write failed: No space left on device")
        super().deliver(data, received_at=received_at)


@pytest.mark.parametrize("drop_after", [0, 25])
def test_units_the_journal_could_not_take_are_kept_and_delivered_once(drop_after: int) -> None:
    """The defect: a failed journal write dropped what was just read, on every reconnect."""
    sink = FullDiskSink(failures=7)
    with (
        SmdrSimulatorServer(LINES, drop_after_lines=drop_after or None) as pbx,
        running(client(pbx.port), sink),
    ):
        assert sink.wait(lambda s: len(s.units) >= len(LINES))
        time.sleep(0.2)  # anything duplicated would arrive now
    assert sink.units == encoded(LINES), "lost or repeated lines across the failed writes"
    held = [m for ok, m in sink.reports if not ok and "No space left on device" in m]
    assert held and "retrying" in held[0]
    assert any(ok and "journal writable again" in m for ok, m in sink.reports)
