"""TCP acquirers: the agent connects to a PBX that serves records, or listens for one that pushes.

``TcpClientAcquirer`` is for PBXs that are the server (MiVoice Business SMDR on port 1752, the
MiVoice Office 250 SMDR socket); ``TcpListenerAcquirer`` is for PBXs that connect to the agent
(IP SMDR push mode). Both guarantee:

- **Nothing read is lost.** Bytes are cut into units by the framer (``LineFramer`` for text) and
  handed to ``sink.deliver`` in groups of at most ``max_group``, stamped with ``clock()``. The
  sink journals and fsyncs before it returns. A partial unit left when a connection ends (PBX
  close, reset, idle timeout, stop) is delivered too when it holds more than blanks, because the
  PBX will not send it again. When the sink cannot make units durable (``SinkUnavailable``: the
  journal's disk is full; the journal rolled the append back) the stream keeps them and offers
  them again every ``poll_interval`` until the sink takes them, reading nothing meanwhile (TCP
  flow control makes the PBX hold the rest); the outage is reported once. Only a stop during
  that wait loses them, and that is logged with their count. Any other exception from the sink
  propagates (after the socket is closed): a bug must stop the source, not be mistaken for a
  network fault.
- **Every connection outcome is reported** with ``sink.report``: connected, refused, timed out,
  closed by the PBX, reset, idle, login failure, plus pauses while the spool is full.
- **Bounded retry.** Reconnects wait an exponential back-off with jitter between
  ``Backoff.min_seconds`` and ``Backoff.max_seconds``; a connection that delivered data resets it.
- **Half-dead connections are found.** TCP keepalive probes an idle peer (SMDR is silent at
  night, so silence alone is no fault); an optional idle timeout reconnects after that many
  seconds without a byte (the PBX buffers meanwhile).
- **Prompt stop.** Every blocking step (connect, read, back-off, pause) waits at most
  ``poll_interval`` (1 s by default) before looking at ``stop``. Data never waits for it: a
  read returns as soon as bytes arrive, so the interval costs only stop latency, and a longer
  one lets an idle agent sleep (benchmarks/agent_footprint.py counts its wake-ups).
- **Back-pressure.** While ``sink.may_read()`` is False nothing is read (or accepted), so TCP flow
  control makes the PBX hold its records in its own buffer.

A driver that must log in first (binary OAI-style protocols) passes ``handshake``: a callable
that gets the connected socket (timeout = the connect timeout) and raises ``SourceError`` when
the PBX refuses.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import random
import selectors
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypedDict, Unpack

from edge_agent.sources.base import SinkUnavailable, UnitSink
from edge_agent.sources.streams.lines import LineFramer
from shared.backoff import Backoff
from shared.clock import Clock, utc_now
from shared.errors import SourceError

log = logging.getLogger(__name__)

DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_POLL_INTERVAL = 1.0  # each idle source wakes this often to look at `stop`: 1/s is cheap
DEFAULT_MAX_GROUP = 100
DEFAULT_RECV_BYTES = 65536
DEFAULT_KEEPALIVE_IDLE = 60  # seconds of silence before the kernel probes the peer
DEFAULT_KEEPALIVE_INTERVAL = 10
DEFAULT_KEEPALIVE_COUNT = 5
DEFAULT_MAX_CONNECTIONS = 8  # listener: PBX controllers allowed at once
_BLANK_BYTES = b"\r\n\x00 \t"


class StreamFramer(Protocol):
    """What a framer offers (``LineFramer`` is one): units out of chunks, and the unfinished tail."""

    def feed(self, chunk: bytes) -> list[bytes]: ...

    @property
    def pending(self) -> bytes: ...


FramerFactory = Callable[[], StreamFramer]
Handshake = Callable[[socket.socket], None]
SOURCE_JITTER = 0.2  # a PBX serves few clients: a fifth is enough to break lock-step


@dataclass(frozen=True, slots=True)
class Keepalive:
    idle_seconds: int = DEFAULT_KEEPALIVE_IDLE
    interval_seconds: int = DEFAULT_KEEPALIVE_INTERVAL
    count: int = DEFAULT_KEEPALIVE_COUNT

    def apply(self, sock: socket.socket) -> None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for name, value in (
            ("TCP_KEEPIDLE", self.idle_seconds),
            ("TCP_KEEPINTVL", self.interval_seconds),
            ("TCP_KEEPCNT", self.count),
        ):
            option = getattr(socket, name, None)
            if option is not None:  # Linux has all three; other systems keep their defaults
                sock.setsockopt(socket.IPPROTO_TCP, option, value)


def format_seconds(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds >= 1 else f"{seconds:.1f} s"


class _Stream:
    """One connected socket, its framer and what it has delivered."""

    def __init__(
        self,
        sock: socket.socket,
        *,
        label: str,
        framer: StreamFramer,
        clock: Clock,
        max_group: int,
        stop: threading.Event,
        poll: float,
    ) -> None:
        self.sock = sock
        self.label = label
        self.framer = framer
        self.clock = clock
        self.max_group = max_group
        self.stop = stop
        self.poll = poll
        self.units = 0
        self.last_data = time.monotonic()

    def read(self, sink: UnitSink, *, recv_bytes: int) -> str | None:
        """Read once and deliver complete units; the reason the connection ended, or None.

        Raises ``TimeoutError`` when nothing arrived within the socket timeout.
        """
        try:
            chunk = self.sock.recv(recv_bytes)
        except TimeoutError:
            raise
        except OSError as exc:
            return f"connection to {self.label} lost: {exc.strerror or exc}"
        if not chunk:
            return f"PBX closed the connection ({self.label})"
        self.last_data = time.monotonic()
        self.deliver(sink, self.framer.feed(chunk))
        return None

    def deliver(self, sink: UnitSink, units: Sequence[bytes]) -> None:
        for first in range(0, len(units), self.max_group):
            group = units[first : first + self.max_group]
            if not self._deliver_group(sink, group):
                log.error("stopped with %d units from %s not journalled (the journal's disk "
                          "was full)", len(units) - first, self.label)  # fmt: skip
                return
            self.units += len(group)

    def _deliver_group(self, sink: UnitSink, group: Sequence[bytes]) -> bool:
        """Offer the group until the sink takes it (True) or stop is set (False)."""
        failed = False
        while True:
            try:
                sink.deliver(group, received_at=self.clock())
            except SinkUnavailable as exc:
                if not failed:
                    sink.report(ok=False, message=f"{exc}; holding {len(group)} units read "
                                f"from {self.label}, retrying")  # fmt: skip
                failed = True
                if self.stop.wait(self.poll):
                    return False
                continue
            if failed:
                sink.report(ok=True, message=f"journal writable again; held units delivered "
                            f"({self.label})")  # fmt: skip
            return True

    def finish(self, sink: UnitSink) -> None:
        """Deliver a partial last unit (the PBX will not resend it), then close."""
        try:
            tail = self.framer.pending
            if tail.strip(_BLANK_BYTES):
                self.deliver(sink, [tail.rstrip(b"\r")])
        finally:
            self.close()

    def close(self) -> None:
        self.sock.close()


class _StreamOptions(TypedDict, total=False):
    """The keyword options both acquirers pass on to ``_TcpAcquirer`` (defaults there)."""

    framer_factory: FramerFactory
    idle_timeout: float | None
    backoff: Backoff | None
    keepalive: Keepalive | None
    max_group: int
    poll_interval: float
    recv_bytes: int
    clock: Clock
    rng: random.Random | None


class _TcpAcquirer:
    """What both acquirers hold: the address, the framer, back-off, keepalive and read limits."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        framer_factory: FramerFactory = LineFramer,
        idle_timeout: float | None = None,
        backoff: Backoff | None = None,
        keepalive: Keepalive | None = None,
        max_group: int = DEFAULT_MAX_GROUP,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        recv_bytes: int = DEFAULT_RECV_BYTES,
        clock: Clock = utc_now,
        rng: random.Random | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.address = f"{host}:{port}"
        self._framer_factory = framer_factory
        self._idle_timeout = idle_timeout
        self._backoff = backoff or Backoff(jitter=SOURCE_JITTER)
        self._keepalive = keepalive or Keepalive()
        self._max_group = max_group
        self._poll = poll_interval
        self._recv_bytes = recv_bytes
        self._clock = clock
        self._rng = rng or random.Random()


class TcpClientAcquirer(_TcpAcquirer):
    """Connects to the PBX (the PBX is the server) and delivers what it sends until stopped."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        handshake: Handshake | None = None,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        **options: Unpack[_StreamOptions],
    ) -> None:
        super().__init__(host=host, port=port, **options)
        self._handshake = handshake
        self._connect_timeout = connect_timeout

    def run(self, sink: UnitSink, stop: threading.Event) -> None:
        attempt = 0
        while not stop.is_set():
            if not _wait_for_room(sink, stop, self._poll):
                return
            sock, problem = self._connect(stop)
            if sock is None:
                if stop.is_set():
                    return
                delay = self._backoff.delay(attempt, self._rng)
                attempt += 1
                sink.report(ok=False, message=f"{problem}, retrying in {format_seconds(delay)}")
                stop.wait(delay)
                continue
            sink.report(ok=True, message=f"connected to {self.address}")
            stream = _Stream(
                sock,
                label=self.address,
                framer=self._framer_factory(),
                clock=self._clock,
                max_group=self._max_group,
                stop=stop,
                poll=self._poll,
            )
            ended = self._stream(stream, sink, stop)
            if stream.units:
                attempt = 0
            if ended is None:  # stopped
                return
            delay = self._backoff.delay(attempt, self._rng)
            attempt += 1
            sink.report(
                ok=False,
                message=f"{ended} after {stream.units} lines, reconnecting in {format_seconds(delay)}",
                records=stream.units,
            )
            stop.wait(delay)

    def _connect(self, stop: threading.Event) -> tuple[socket.socket | None, str]:
        """Connect without blocking past ``poll_interval`` at a time, so stop stays prompt."""
        try:
            infos = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            return None, f"cannot resolve {self.host}: {exc.strerror}"
        problem = f"cannot connect to {self.address}"
        for family, kind, proto, _, address in infos:
            sock = socket.socket(family, kind, proto)
            try:
                problem = self._connect_one(sock, address, stop)
            except BaseException:
                sock.close()
                raise
            if not problem:
                with contextlib.suppress(OSError):  # keepalive helps; its absence is no fault
                    self._keepalive.apply(sock)
                try:
                    if self._handshake is not None:
                        sock.settimeout(self._connect_timeout)
                        self._handshake(sock)
                except (SourceError, OSError) as exc:
                    sock.close()
                    return None, f"login to {self.address} failed: {exc}"
                sock.settimeout(self._poll)
                return sock, ""
            sock.close()
        return None, problem

    def _connect_one(self, sock: socket.socket, address: object, stop: threading.Event) -> str:
        sock.setblocking(False)
        error = sock.connect_ex(address)  # type: ignore[arg-type]
        deadline = time.monotonic() + self._connect_timeout
        with selectors.DefaultSelector() as selector:
            selector.register(sock, selectors.EVENT_WRITE)
            while error in _IN_PROGRESS:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return (
                        f"connection to {self.address} timed out after "
                        f"{format_seconds(self._connect_timeout)}"
                    )
                if stop.is_set():
                    return "stopped"
                if selector.select(min(remaining, self._poll)):
                    error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if error == 0:
            return ""
        if error == errno.ECONNREFUSED:
            return f"connection refused: {self.address}"
        return f"cannot connect to {self.address}: {os.strerror(error)}"

    def _stream(self, stream: _Stream, sink: UnitSink, stop: threading.Event) -> str | None:
        """Read until the connection ends (its reason) or stop is set (None)."""
        ended: str | None = None
        try:
            while not stop.is_set():
                if not sink.may_read():
                    if not _wait_for_room(sink, stop, self._poll):
                        break
                    stream.last_data = time.monotonic()  # a pause is not the PBX's silence
                try:
                    ended = stream.read(sink, recv_bytes=self._recv_bytes)
                except TimeoutError:
                    idle = time.monotonic() - stream.last_data
                    if self._idle_timeout and idle >= self._idle_timeout:
                        ended = f"no data from {self.address} for {format_seconds(idle)}"
                    else:
                        continue
                if ended is not None:
                    break
        except BaseException:
            stream.close()
            raise
        stream.finish(sink)
        return ended


class TcpListenerAcquirer(_TcpAcquirer):
    """Listens for PBX connections (the PBX pushes) and delivers what each connection sends.

    Several controllers may be connected at once, each with its own framer. ``allowed_peers``
    (IP addresses) refuses anyone else, reported. ``listening`` is set once the socket is bound;
    ``bound_port`` then gives the port (useful with ``port=0``).
    """

    def __init__(
        self,
        *,
        host: str,
        port: int,
        allowed_peers: frozenset[str] | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        **options: Unpack[_StreamOptions],
    ) -> None:
        super().__init__(host=host, port=port, **options)
        self._allowed = allowed_peers
        self._max_connections = max_connections
        self.listening = threading.Event()
        self.bound_port: int | None = None

    def run(self, sink: UnitSink, stop: threading.Event) -> None:
        attempt = 0
        while not stop.is_set():
            try:
                server = socket.create_server((self.host, self.port))
            except OSError as exc:
                delay = self._backoff.delay(attempt, self._rng)
                attempt += 1
                sink.report(
                    ok=False,
                    message=f"cannot listen on {self.address}: {exc.strerror or exc}, "
                    f"retrying in {format_seconds(delay)}",
                )
                stop.wait(delay)
                continue
            with server:
                self.bound_port = int(server.getsockname()[1])
                self.listening.set()
                sink.report(ok=True, message=f"listening on {self.host}:{self.bound_port}")
                self._serve(server, sink, stop)
            return

    def _serve(self, server: socket.socket, sink: UnitSink, stop: threading.Event) -> None:
        streams: dict[socket.socket, _Stream] = {}
        server.setblocking(False)
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(server, selectors.EVENT_READ)
                while not stop.is_set():
                    if not sink.may_read():
                        # accept and read nothing: the PBX keeps its records
                        _wait_for_room(sink, stop, self._poll)
                        for stream in streams.values():
                            stream.last_data = time.monotonic()
                        continue
                    for key, _ in selector.select(self._poll):
                        if key.fileobj is server:
                            self._accept(server, selector, streams, sink, stop)
                        else:
                            stream = streams[key.fileobj]  # type: ignore[index]
                            try:
                                ended = stream.read(sink, recv_bytes=self._recv_bytes)
                            except TimeoutError:
                                continue
                            if ended is not None:
                                self._drop(stream, ended, selector, streams, sink)
                    self._drop_idle(selector, streams, sink)
        finally:
            for stream in list(streams.values()):
                stream.finish(sink)

    def _accept(
        self,
        server: socket.socket,
        selector: selectors.BaseSelector,
        streams: dict[socket.socket, _Stream],
        sink: UnitSink,
        stop: threading.Event,
    ) -> None:
        try:
            sock, peer = server.accept()
        except (BlockingIOError, InterruptedError):
            return
        label = f"{peer[0]}:{peer[1]}"
        if self._allowed is not None and peer[0] not in self._allowed:
            sock.close()
            sink.report(ok=False, message=f"refused a connection from {label}: not an allowed peer")
            return
        if len(streams) >= self._max_connections:
            sock.close()
            sink.report(
                ok=False,
                message=f"refused a connection from {label}: "
                f"{self._max_connections} connections already open",
            )
            return
        self._keepalive.apply(sock)
        sock.settimeout(self._poll)
        streams[sock] = _Stream(
            sock,
            label=label,
            framer=self._framer_factory(),
            clock=self._clock,
            max_group=self._max_group,
            stop=stop,
            poll=self._poll,
        )
        selector.register(sock, selectors.EVENT_READ)
        sink.report(ok=True, message=f"PBX connected from {label}")

    def _drop(
        self,
        stream: _Stream,
        reason: str,
        selector: selectors.BaseSelector,
        streams: dict[socket.socket, _Stream],
        sink: UnitSink,
    ) -> None:
        selector.unregister(stream.sock)
        del streams[stream.sock]
        stream.finish(sink)
        sink.report(ok=False, message=f"{reason} after {stream.units} lines", records=stream.units)

    def _drop_idle(
        self,
        selector: selectors.BaseSelector,
        streams: dict[socket.socket, _Stream],
        sink: UnitSink,
    ) -> None:
        if not self._idle_timeout:
            return
        now = time.monotonic()
        for stream in list(streams.values()):
            idle = now - stream.last_data
            if idle >= self._idle_timeout:
                reason = f"no data from {stream.label} for {format_seconds(idle)}"
                self._drop(stream, reason, selector, streams, sink)


def _wait_for_room(sink: UnitSink, stop: threading.Event, poll: float) -> bool:
    """Block while the spool is full; False if stopped meanwhile. Reports the pause once."""
    if sink.may_read():
        return True
    sink.report(ok=True, message="paused reading: the spool is full, the PBX buffers meanwhile")
    while not stop.is_set():
        if stop.wait(poll):
            return False
        if sink.may_read():
            sink.report(ok=True, message="resumed reading: the spool has room again")
            return True
    return False


_IN_PROGRESS = frozenset({errno.EINPROGRESS, errno.EALREADY, errno.EAGAIN, errno.EWOULDBLOCK})
