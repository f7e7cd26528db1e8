"""Connecting to a MiVoice Office 250 socket (SMDR or OAI): login, refusal, out-of-step streams.

Contract:

- ``login_handshake`` builds the ``handshake`` hook of ``TcpClientAcquirer``: it sends the login
  packet (and any commands the service needs right after it), then watches the socket for
  ``REFUSAL_WINDOW`` seconds. The PBX's reply to a bad password is not documented (formats.md
  §4.1); a connection closed or reset within that window is reported as a refused login with
  the fix (password, socket enabled), data or silence as a successful one. Data that arrives is
  left in the socket (peeked, not read).
- ``RestartingAcquirer`` runs an acquirer and, when a framer raises ``StreamFault`` (a length
  prefix out of range, a PBX that says too many clients), delivers the fault's bytes to the
  sink so they are journalled and quarantined, reports the message, waits a back-off and runs
  the acquirer again: a fresh connection, a fresh login, a fresh framer.
"""

from __future__ import annotations

import random
import socket
import threading
from collections.abc import Callable

from edge_agent.sources.base import Acquirer, UnitSink
from edge_agent.sources.mivo250_socket.framing import StreamFault, login_packet
from edge_agent.sources.streams.tcp import Handshake, format_seconds
from shared.backoff import Backoff
from shared.clock import Clock, utc_now
from shared.errors import SourceError

REFUSAL_WINDOW = 2.0  # formats.md §4.1: "closed within 2 s of login" is an authentication failure


def login_handshake(
    *,
    service: str,
    socket_type: int,
    password: str,
    app_name: str | None = None,
    after_login: Callable[[socket.socket], None] | None = None,
    refusal_window: float = REFUSAL_WINDOW,
) -> Handshake:
    """The hook that logs in and tells a refused login from an accepted one."""
    packet = login_packet(socket_type, password, app_name=app_name)

    def handshake(sock: socket.socket) -> None:
        sock.sendall(packet)
        if after_login is not None:
            after_login(sock)
        _expect_not_closed(sock, service=service, window=refusal_window)

    return handshake


def _expect_not_closed(sock: socket.socket, *, service: str, window: float) -> None:
    refused = SourceError(
        f"the PBX closed the {service} connection within {window:g} s of login, which is how it "
        f"refuses a wrong password; check the {service} socket password under System > Sockets "
        "in the PBX database and that the socket is enabled"
    )
    sock.settimeout(window)
    try:
        peeked = sock.recv(1, socket.MSG_PEEK)
    except TimeoutError:
        return  # a silent PBX: nothing to send yet, the login stands
    except ConnectionError as exc:
        raise refused from exc
    if not peeked:
        raise refused


class RestartingAcquirer:
    """Runs ``inner`` again after a ``StreamFault``, keeping the fault's bytes (see above)."""

    def __init__(
        self,
        inner: Acquirer,
        *,
        backoff: Backoff,
        clock: Clock = utc_now,
        rng: random.Random | None = None,
    ) -> None:
        self.inner = inner
        self._backoff = backoff
        self._clock = clock
        self._rng = rng or random.Random()
        self.faults = 0

    def run(self, sink: UnitSink, stop: threading.Event) -> None:
        attempt = 0
        while not stop.is_set():
            try:
                self.inner.run(sink, stop)
                return
            except StreamFault as fault:
                self.faults += 1
                if fault.units:
                    sink.deliver(fault.units, received_at=self._clock())
                delay = self._backoff.delay(attempt, self._rng)
                attempt += 1
                sink.report(ok=False, message=f"{fault}; reconnecting in {format_seconds(delay)}")
                stop.wait(delay)
