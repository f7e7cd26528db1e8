"""A small threaded TCP server the Mitel simulators use to play the PBX or MCS side.

Contract: ``PbxServer(handler, host=..., port=0)`` listens once ``start()`` returns (``port``
is the bound port), runs ``handler(conn, stop)`` in a thread per connection, and ``stop()``
closes the listener and every connection and joins every thread, so tests leave no socket or
thread behind. Handlers must return soon after ``stop`` is set (every socket has a timeout).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from types import TracebackType

ACCEPT_POLL_SECONDS = 0.2
JOIN_SECONDS = 5.0

Handler = Callable[[socket.socket, threading.Event], None]


class PbxServer:
    """Accepts connections and hands each to ``handler`` in its own thread."""

    def __init__(self, handler: Handler, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._handler = handler
        self._host = host
        self._requested_port = port
        self._stop = threading.Event()
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._connections: list[socket.socket] = []
        self._lock = threading.Lock()
        self.connections_accepted = 0

    @property
    def port(self) -> int:
        if self._listener is None:
            raise RuntimeError("the server is not started")
        return int(self._listener.getsockname()[1])

    def start(self) -> PbxServer:
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((self._host, self._requested_port))
            listener.listen(8)
        except OSError:
            listener.close()  # a busy port must not leak the socket
            raise
        listener.settimeout(ACCEPT_POLL_SECONDS)
        self._listener = listener
        thread = threading.Thread(target=self._accept_loop, name="pbx-sim-accept", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread in list(self._threads):
            thread.join(JOIN_SECONDS)
        if self._listener is not None:
            self._listener.close()
        for conn in connections:
            conn.close()

    def __enter__(self) -> PbxServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(ACCEPT_POLL_SECONDS)
            with self._lock:
                self._connections.append(conn)
                self.connections_accepted += 1
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, conn: socket.socket) -> None:
        try:
            self._handler(conn, self._stop)
        except OSError:
            pass  # the client went away; a simulator does not care why
        finally:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
            with self._lock:
                if conn in self._connections:
                    self._connections.remove(conn)


def recv_exactly(conn: socket.socket, count: int, stop: threading.Event) -> bytes | None:
    """Read exactly ``count`` bytes; None when the peer closed or the server is stopping."""
    data = bytearray()
    while len(data) < count:
        if stop.is_set():
            return None
        try:
            chunk = conn.recv(count - len(data))
        except TimeoutError:
            continue
        if not chunk:
            return None
        data += chunk
    return bytes(data)
